//! Retention and compaction of a partition's closed segments (the active segment is never
//! touched).
//!
//! Deletion follows Kafka: with `retention.ms`, the oldest closed segments whose newest record
//! is older than `now - retention.ms` go; with `retention.bytes`, the oldest closed segments go
//! while the partition stays at least that large without them. The log start offset moves to
//! the first segment left, through the same path as DeleteRecords (`log-start` written first).
//!
//! Compaction keeps, in the closed segments, only the latest record of every key (as found in
//! the closed segments); records without a key are dropped (see [`crate::storage::compaction`]).
//! A tombstone (null value) stays until `delete.retention.ms` after its segment was first
//! compacted, then goes too. Remaining records keep their offsets: a stored batch that loses
//! records is split into batches of consecutive survivors. A pass runs when a closed segment
//! was never compacted or holds tombstones past that horizon; segments that do not change are
//! not rewritten.
//!
//! A segment is rewritten crash-safely: the cleaned log is written to `<base>.log.tmp` and
//! fsynced; its index, time index and compaction note are removed and the directory fsynced;
//! the new compaction note `<base>.cleaned` ("<first compaction ms> <tombstones left 0|1>")
//! is written; the temporary file is renamed over the log and the directory fsynced; the
//! indexes are then rebuilt from the new log. A crash leaves either the old log or the new
//! one, with missing indexes at worst (rebuilt at start), and a leftover `.tmp` is removed at
//! start. Recovery accepts a gap in the offsets after a segment only when it has a note.

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::Write;

use bytes::Bytes;
use portask_engine::batch::BatchHeader;
use portask_engine::storage::{RetentionPolicy, StorageError};

use super::fsutil::{atomic_write, cleaned_file_name, fsync_failed, sync_dir, tmp_path};
use super::partition::Partition;
use super::segment::{Segment, Tail};
use crate::storage::compaction::{compact_batch, note_latest};

/// What compacting one segment gives.
struct Cleaned {
    /// The new log, or `None` when nothing changes.
    bytes: Option<Vec<u8>>,
    /// Tombstones are left in it.
    tombstones: bool,
}

impl Partition {
    /// Applies `policy` at wall-clock time `now`; returns the log start offset afterwards.
    pub(crate) fn apply_retention(
        &mut self,
        policy: &RetentionPolicy,
        now: i64,
        interval: u64,
    ) -> Result<i64, StorageError> {
        if policy.delete {
            self.delete_old_segments(policy, now)?;
        }
        if policy.compact {
            self.compact(policy, now, interval)?;
        }
        Ok(self.log_start)
    }

    /// Deletes the closed segments that `retention.ms` and `retention.bytes` let go.
    fn delete_old_segments(
        &mut self,
        policy: &RetentionPolicy,
        now: i64,
    ) -> Result<(), StorageError> {
        let closed = self.segments.len() - 1;
        let mut count = 0;
        if policy.retention_ms >= 0 {
            let horizon = now.saturating_sub(policy.retention_ms);
            while count < closed && self.segments[count].max_timestamp < horizon {
                count += 1;
            }
        }
        if policy.retention_bytes >= 0 {
            let total: u64 = self.segments.iter().map(|s| s.size).sum();
            let mut excess = total as i64 - policy.retention_bytes;
            let mut by_size = 0;
            while by_size < closed && excess - self.segments[by_size].size as i64 >= 0 {
                excess -= self.segments[by_size].size as i64;
                by_size += 1;
            }
            count = count.max(by_size);
        }
        if count == 0 {
            return Ok(());
        }
        let new_start = self.segments[count].base_offset;
        self.delete_records(new_start)
    }

    /// Compacts the closed segments when a pass is due.
    fn compact(
        &mut self,
        policy: &RetentionPolicy,
        now: i64,
        interval: u64,
    ) -> Result<(), StorageError> {
        let horizon_passed = |s: &Segment| {
            s.cleaned.is_some_and(|(at, tombstones)| {
                tombstones && at.saturating_add(policy.delete_retention_ms) <= now
            })
        };
        let closed = self.segments.len() - 1;
        let due = self.segments[..closed]
            .iter()
            .any(|s| s.cleaned.is_none() || horizon_passed(s));
        if !due {
            return Ok(());
        }
        let mut latest: HashMap<Bytes, i64> = HashMap::new();
        for i in 0..closed {
            for batch in self.segment_batches(i)? {
                note_latest(&batch, &mut latest);
            }
        }
        let mut i = 0;
        let mut end = closed;
        while i < end {
            let expire = horizon_passed(&self.segments[i]);
            let batches = self.segment_batches(i)?;
            let cleaned = clean(&batches, &latest, expire)?;
            let at = self.segments[i].cleaned.map_or(now, |(at, _)| at);
            let note = (at, cleaned.tombstones);
            match cleaned.bytes {
                Some(bytes) if bytes.is_empty() && i > 0 => {
                    // Nothing left: the segment goes (the first one stays, empty, so that the
                    // log start does not move).
                    self.segments.remove(i).remove()?;
                    self.open_reader = None;
                    self.dir_dirty = true;
                    end -= 1;
                    continue;
                }
                Some(bytes) => self.rewrite(i, &bytes, note, interval)?,
                None => {}
            }
            if self.segments[i].cleaned != Some(note) {
                self.write_note(i, note)?;
            }
            i += 1;
        }
        Ok(())
    }

    /// Every batch of segment `i`, read in one go.
    fn segment_batches(&mut self, i: usize) -> Result<Vec<Bytes>, StorageError> {
        self.touch_reader(i);
        let seg = &mut self.segments[i];
        let data = Bytes::from(seg.read_at(0, seg.size as usize)?);
        let mut out = Vec::new();
        let mut pos = 0;
        while pos < data.len() {
            let header = BatchHeader::parse(&data[pos..]).map_err(|e| {
                StorageError::Corrupt(format!("{}: {e} at byte {pos}", seg.log_path.display()))
            })?;
            let end = (pos + header.total_len()).min(data.len());
            out.push(data.slice(pos..end));
            pos = end;
        }
        Ok(out)
    }

    /// Writes segment `i`'s compaction note.
    fn write_note(&mut self, i: usize, note: (i64, bool)) -> Result<(), StorageError> {
        let base = self.segments[i].base_offset;
        let text = format!("{} {}", note.0, u8::from(note.1));
        atomic_write(&self.dir.join(cleaned_file_name(base)), text.as_bytes())?;
        self.segments[i].cleaned = Some(note);
        Ok(())
    }

    /// Replaces segment `i`'s log with `bytes` (see the module documentation).
    fn rewrite(
        &mut self,
        i: usize,
        bytes: &[u8],
        note: (i64, bool),
        interval: u64,
    ) -> Result<(), StorageError> {
        let (base, log_path) = {
            let seg = &self.segments[i];
            (seg.base_offset, seg.log_path.clone())
        };
        let tmp = tmp_path(&log_path);
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all().map_err(fsync_failed)?;
        drop(file);
        let seg = &mut self.segments[i];
        seg.close_reader();
        seg.remove_side_files()?;
        sync_dir(&self.dir).map_err(fsync_failed)?;
        // The note goes first: a log with gaps at its end is only accepted after a cleaned
        // segment.
        self.write_note(i, note)?;
        fs::rename(&tmp, &log_path)?;
        sync_dir(&self.dir).map_err(fsync_failed)?;
        self.segments[i] = Segment::recover(&self.dir, base, interval, Tail::Strict)?;
        self.open_reader = None;
        Ok(())
    }
}

/// Compacts the batches of one segment (see [`compact_batch`]): batches that keep every
/// record are copied as they are, the others are replaced by their re-encoded pieces.
fn clean(
    batches: &[Bytes],
    latest: &HashMap<Bytes, i64>,
    expire: bool,
) -> Result<Cleaned, StorageError> {
    let mut out = Vec::new();
    let mut changed = false;
    let mut tombstones = false;
    for raw in batches {
        let compacted = compact_batch(raw, latest, expire)?;
        tombstones |= compacted.tombstones;
        match compacted.pieces {
            None => out.extend_from_slice(raw),
            Some(pieces) => {
                changed = true;
                for piece in pieces {
                    out.extend_from_slice(&piece.bytes);
                }
            }
        }
    }
    Ok(Cleaned {
        bytes: changed.then_some(out),
        tombstones,
    })
}
