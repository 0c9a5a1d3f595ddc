//! One partition's log: its segments, log start offset and append/read paths.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use portask_engine::batch::BatchHeader;
use portask_engine::producer::RecentBatches;
use portask_engine::storage::{EncodedBatch, PartitionState, ProducerSnapshot, StorageError};

use super::DiskOptions;
use super::fsutil::{self, TMP_SUFFIX, atomic_write, fsync_failed, read_i64_file, sync_dir};
use super::segment::{Segment, Tail};

/// Suffixes of the files kept beside a segment log (removed when the log is missing).
const SIDE_SUFFIXES: [&str; 3] = [".index", ".timeindex", ".cleaned"];

/// Name of the file holding the log start offset.
const LOG_START_FILE: &str = "log-start";

/// A partition's log on disk.
pub(crate) struct Partition {
    pub(super) dir: PathBuf,
    /// Segments by base offset; never empty, the last one is the active one.
    pub(super) segments: Vec<Segment>,
    pub(super) log_start: i64,
    /// Base offset of the one older segment whose read handle is kept open.
    pub(super) open_reader: Option<i64>,
    /// Files were created or removed in `dir` since the last sync.
    pub(super) dir_dirty: bool,
}

impl Partition {
    /// Creates the directory and first segment of a new, empty partition.
    pub(crate) fn create(dir: &Path) -> io::Result<Self> {
        fs::create_dir_all(dir)?;
        let segment = Segment::create(dir, 0)?;
        Ok(Self::new(dir, vec![segment], 0))
    }

    fn new(dir: &Path, segments: Vec<Segment>, log_start: i64) -> Self {
        Self {
            dir: dir.to_owned(),
            segments,
            log_start,
            open_reader: None,
            dir_dirty: true,
        }
    }

    /// Opens an existing partition, checking its segments and cutting a torn tail.
    pub(crate) fn recover(
        dir: &Path,
        opts: &DiskOptions,
    ) -> Result<(Self, PartitionState), StorageError> {
        fs::create_dir_all(dir)?;
        let bases = list_segments(dir)?;
        let stored_start = read_i64_file(&dir.join(LOG_START_FILE))?;
        let mut segments: Vec<Segment> = Vec::with_capacity(bases.len().max(1));
        for (i, &base) in bases.iter().enumerate() {
            let tail = if i + 1 == bases.len() {
                Tail::Truncate
            } else {
                Tail::Strict
            };
            let seg = Segment::recover(dir, base, opts.index_interval_bytes, tail)?;
            // Compaction can leave a gap after a segment it cleaned; nothing else can.
            let bad = |p: &&Segment| {
                p.next_offset > base || (p.next_offset < base && p.cleaned.is_none())
            };
            if let Some(prev) = segments.last().filter(bad) {
                return Err(StorageError::Corrupt(format!(
                    "{}: segment ends at offset {} but the next one starts at {base}",
                    prev.log_path.display(),
                    prev.next_offset
                )));
            }
            segments.push(seg);
        }
        if segments.is_empty() {
            segments.push(Segment::create(dir, stored_start.unwrap_or(0).max(0))?);
        }
        let first_base = segments[0].base_offset;
        let next = segments.last().map_or(0, |s| s.next_offset);
        let log_start = stored_start.unwrap_or(first_base).max(first_base).min(next);
        let mut part = Self::new(dir, segments, log_start);
        part.drop_segments_below_start()?;
        let producers = part.scan_producers()?;
        let state = PartitionState {
            log_start_offset: log_start,
            next_offset: next,
            producers,
        };
        Ok((part, state))
    }

    /// The offset the next appended batch must start at.
    pub(crate) fn next_offset(&self) -> i64 {
        self.active().next_offset
    }

    fn active(&self) -> &Segment {
        self.segments
            .last()
            .expect("a partition always has a segment")
    }

    /// The last batches of each idempotent producer in the active segment.
    fn scan_producers(&mut self) -> Result<Vec<ProducerSnapshot>, StorageError> {
        let mut recent = RecentBatches::default();
        let active = self
            .segments
            .last_mut()
            .expect("a partition always has a segment");
        active.scan(active.base_offset, |_, h| {
            recent.observe(snapshot(h));
            true
        })?;
        active.close_reader();
        Ok(recent.into_snapshots())
    }

    /// Appends a batch whose base offset is the partition's next offset.
    pub(crate) fn append(
        &mut self,
        batch: &EncodedBatch,
        opts: &DiskOptions,
    ) -> Result<(), StorageError> {
        let header = BatchHeader::parse(&batch.bytes)
            .map_err(|e| StorageError::Corrupt(format!("appended batch: {e}")))?;
        if header.base_offset != batch.base_offset
            || header.last_offset() != batch.last_offset
            || header.total_len() != batch.bytes.len()
        {
            return Err(StorageError::Corrupt(
                "appended batch header does not match".into(),
            ));
        }
        if batch.base_offset != self.next_offset() {
            return Err(StorageError::Corrupt("non-contiguous append".into()));
        }
        let active = self.active();
        let len = batch.bytes.len() as u64;
        let max_size = opts.segment_bytes.clamp(1, u64::from(u32::MAX));
        let rel_overflow = batch.last_offset - active.base_offset > i64::from(u32::MAX);
        // Rolled by time as Kafka does: once the batch's timestamp is more than `segment_ms`
        // past the max timestamp of the segment's first batch.
        let too_old = opts.segment_ms >= 0
            && active
                .first_timestamp
                .is_some_and(|first| header.max_timestamp.saturating_sub(first) > opts.segment_ms);
        if active.size > 0 && (active.size + len > max_size || rel_overflow || too_old) {
            self.roll()?;
        }
        let active = self
            .segments
            .last_mut()
            .expect("a partition always has a segment");
        active.append(&batch.bytes, &header, opts.index_interval_bytes)?;
        if opts.sync_on_append {
            self.sync()?;
        }
        Ok(())
    }

    /// Starts a new active segment at the next offset. The old one is fsynced first, so only
    /// the last segment of a partition can ever have a torn tail.
    fn roll(&mut self) -> Result<(), StorageError> {
        let next = self.next_offset();
        let old = self
            .segments
            .last_mut()
            .expect("a partition always has a segment");
        if let Some(mut writer) = old.writer.take() {
            writer.sync().map_err(fsync_failed)?;
        }
        old.close_reader();
        let segment = Segment::create(&self.dir, next)?;
        self.segments.push(segment);
        self.dir_dirty = true;
        Ok(())
    }

    /// Whole batches from the one containing `offset` (or the first after it), until the next
    /// would take the total past `max_bytes`; at least one when any exists.
    pub(crate) fn read(
        &mut self,
        offset: i64,
        max_bytes: usize,
    ) -> Result<Vec<Bytes>, StorageError> {
        let target = offset.max(self.log_start);
        let mut out = Vec::new();
        if target >= self.next_offset() {
            return Ok(out);
        }
        let mut total = 0usize;
        let mut i = self.segment_for(target);
        while i < self.segments.len() {
            self.touch_reader(i);
            let seg = &mut self.segments[i];
            let mut batches: Vec<(u64, usize)> = Vec::new();
            let mut full = false;
            seg.scan(target, |pos, h| {
                if h.last_offset() < target {
                    return true;
                }
                let len = h.total_len();
                if (!out.is_empty() || !batches.is_empty()) && total + len > max_bytes {
                    full = true;
                    return false;
                }
                total += len;
                batches.push((pos, len));
                true
            })?;
            if let (Some(&(start, _)), Some(&(last, last_len))) = (batches.first(), batches.last())
            {
                let run = Bytes::from(seg.read_at(start, (last - start) as usize + last_len)?);
                for (pos, len) in batches {
                    let at = (pos - start) as usize;
                    out.push(run.slice(at..at + len));
                }
            }
            if full {
                break;
            }
            i += 1;
        }
        Ok(out)
    }

    /// Base offset of the first batch at or after the log start with a max timestamp at or
    /// after `timestamp`. Segments whose newest record is older are skipped whole; within the
    /// segment that has one, the time index gives where to start scanning headers.
    pub(crate) fn offset_for_timestamp(
        &mut self,
        timestamp: i64,
    ) -> Result<Option<i64>, StorageError> {
        let log_start = self.log_start;
        for i in self.segment_for(log_start)..self.segments.len() {
            if self.segments[i].size == 0 || self.segments[i].max_timestamp < timestamp {
                continue;
            }
            let start = self.segments[i].time_lookup(timestamp).max(log_start);
            self.touch_reader(i);
            let mut found = None;
            self.segments[i].scan(start, |_, h| {
                if h.last_offset() >= start && h.max_timestamp >= timestamp {
                    found = Some(h.base_offset);
                }
                found.is_none()
            })?;
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    /// Moves the log start offset to `before` (at most the next offset) and deletes segments
    /// entirely below it.
    pub(crate) fn delete_records(&mut self, before: i64) -> Result<(), StorageError> {
        let before = before.min(self.next_offset());
        if before <= self.log_start {
            return Ok(());
        }
        atomic_write(
            &self.dir.join(LOG_START_FILE),
            before.to_string().as_bytes(),
        )?;
        self.log_start = before;
        self.drop_segments_below_start()
    }

    /// Deletes segments whose every offset is below the log start; never the active one.
    pub(super) fn drop_segments_below_start(&mut self) -> Result<(), StorageError> {
        let below = self.segments[1..].partition_point(|s| s.base_offset <= self.log_start);
        if below > 0 {
            for seg in self.segments.drain(..below) {
                seg.remove()?;
            }
            self.open_reader = None;
            self.dir_dirty = true;
        }
        Ok(())
    }

    /// Fsyncs what was appended since the last sync.
    pub(crate) fn sync(&mut self) -> Result<(), StorageError> {
        let active = self
            .segments
            .last_mut()
            .expect("a partition always has a segment");
        if let Some(writer) = &mut active.writer {
            writer.sync().map_err(fsync_failed)?;
        }
        if self.dir_dirty {
            sync_dir(&self.dir).map_err(fsync_failed)?;
            self.dir_dirty = false;
        }
        Ok(())
    }

    /// Index of the segment that holds `offset` (the first one if it is below them all).
    pub(super) fn segment_for(&self, offset: i64) -> usize {
        self.segments
            .partition_point(|s| s.base_offset <= offset)
            .saturating_sub(1)
    }

    /// Keeps read handles bounded: the active segment plus one older segment.
    pub(super) fn touch_reader(&mut self, i: usize) {
        let base = self.segments[i].base_offset;
        if i + 1 == self.segments.len() || self.open_reader == Some(base) {
            return;
        }
        if let Some(old) = self.open_reader.replace(base) {
            let j = self.segment_for(old);
            self.segments[j].close_reader();
        }
    }
}

fn snapshot(h: &BatchHeader) -> ProducerSnapshot {
    ProducerSnapshot {
        producer_id: h.producer_id,
        producer_epoch: h.producer_epoch,
        first_sequence: h.base_sequence,
        last_sequence: h.base_sequence.wrapping_add(h.record_count as i32 - 1),
        base_offset: h.base_offset,
    }
}

/// Base offsets of the segment logs in `dir`, sorted; removes leftover temporary files and
/// indexes without a log.
fn list_segments(dir: &Path) -> io::Result<Vec<i64>> {
    let mut bases = Vec::new();
    let mut indexes = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(base) = fsutil::parse_log_file_name(&name) {
            bases.push(base);
        } else if SIDE_SUFFIXES.iter().any(|s| name.ends_with(s)) {
            indexes.push(name);
        } else if name.ends_with(TMP_SUFFIX) {
            fs::remove_file(entry.path())?;
        }
    }
    bases.sort_unstable();
    for name in indexes {
        let base = SIDE_SUFFIXES
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .and_then(|b| b.parse::<i64>().ok());
        if base.is_none_or(|b| bases.binary_search(&b).is_err()) {
            fs::remove_file(dir.join(name))?;
        }
    }
    Ok(bases)
}
