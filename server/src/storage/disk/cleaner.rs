//! Retention and compaction of a partition's closed segments (the active segment is never
//! touched).
//!
//! Deletion follows Kafka: with `retention.ms`, the oldest closed segments whose newest record
//! is older than `now - retention.ms` go; with `retention.bytes`, the oldest closed segments go
//! while the partition stays at least that large without them. The log start offset moves to
//! the first segment left, through the same path as DeleteRecords (`log-start` written first).
//!
//! Compaction keeps, in the closed segments, only the latest record of every key (as found in
//! the closed segments); records without a key are dropped. A tombstone (null value) stays
//! until `delete.retention.ms` after its segment was first compacted, then goes too. Remaining
//! records keep their offsets: a stored batch that loses records is split into batches of
//! consecutive survivors. A pass runs when a closed segment was never compacted or holds
//! tombstones past that horizon; segments that do not change are not rewritten.
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
use portask_engine::batch::{
    ALGORITHM_MASK, BatchHeader, BodyEncoding, CompressionMode, FLAG_SINGLE, ProducerFields,
    StoredCompression, decode_batch, encode_batch_with,
};
use portask_engine::storage::{RetentionPolicy, StorageError};

use super::fsutil::{atomic_write, cleaned_file_name, fsync_failed, sync_dir, tmp_path};
use super::partition::Partition;
use super::segment::{Segment, Tail};

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
                let Ok(decoded) = decode_batch(&batch) else {
                    continue;
                };
                for (offset, r) in (decoded.header.base_offset..).zip(decoded.records) {
                    if let Some(key) = r.key {
                        latest.insert(key, offset);
                    }
                }
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

/// Compacts the batches of one segment: keeps records that are the latest of their key, and
/// tombstones only while `expire` is false. Batches that keep every record are copied as they
/// are; the others are split into runs of consecutive survivors, re-encoded at their offsets
/// with their message ids, algorithm and mode (zstd at its default level).
fn clean(
    batches: &[Bytes],
    latest: &HashMap<Bytes, i64>,
    expire: bool,
) -> Result<Cleaned, StorageError> {
    let mut out = Vec::new();
    let mut changed = false;
    let mut tombstones = false;
    for raw in batches {
        // A batch that cannot be decoded here (a dictionary-compressed one) is kept whole.
        let Ok(decoded) = decode_batch(raw) else {
            out.extend_from_slice(raw);
            continue;
        };
        let h = decoded.header;
        let keep: Vec<bool> = (h.base_offset..)
            .zip(&decoded.records)
            .map(|(offset, r)| {
                r.key
                    .as_ref()
                    .is_some_and(|k| latest.get(k) == Some(&offset))
                    && !(r.value.is_none() && expire)
            })
            .collect();
        let kept_tombstone = decoded
            .records
            .iter()
            .zip(&keep)
            .any(|(r, &k)| k && r.value.is_none());
        tombstones |= kept_tombstone;
        if keep.iter().all(|&k| k) {
            out.extend_from_slice(raw);
            continue;
        }
        changed = true;
        let enc = BodyEncoding {
            mode: if h.compression & FLAG_SINGLE != 0 {
                CompressionMode::Single
            } else {
                CompressionMode::Bulk
            },
            ..BodyEncoding::bulk(stored_compression(h.compression))
        };
        let mut j = 0;
        while j < keep.len() {
            if !keep[j] {
                j += 1;
                continue;
            }
            let start = j;
            while j < keep.len() && keep[j] {
                j += 1;
            }
            let producer = ProducerFields {
                producer_id: h.producer_id,
                producer_epoch: h.producer_epoch,
                base_sequence: advance_sequence(h.base_sequence, start),
            };
            let base = h.base_offset + start as i64;
            let (batch, _) = encode_batch_with(
                base,
                producer,
                &decoded.records[start..j],
                &decoded.ids[start..j],
                &enc,
            )
            .map_err(|e| StorageError::Corrupt(format!("re-encoding a compacted batch: {e}")))?;
            out.extend_from_slice(&batch.bytes);
        }
    }
    Ok(Cleaned {
        bytes: changed.then_some(out),
        tombstones,
    })
}

/// The compression of a batch header's `compression` byte (its algorithm bits).
fn stored_compression(code: u8) -> StoredCompression {
    match code & ALGORITHM_MASK {
        1 => StoredCompression::Zstd { level: 3 },
        2 => StoredCompression::Lz4,
        3 => StoredCompression::Snappy,
        _ => StoredCompression::None,
    }
}

/// The sequence number `n` records after `base` (-1 stays -1), wrapping as Kafka's do.
fn advance_sequence(base: i32, n: usize) -> i32 {
    if base < 0 {
        return base;
    }
    ((i64::from(base) + n as i64) % (i64::from(i32::MAX) + 1)) as i32
}
