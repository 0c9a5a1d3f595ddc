//! One segment: a log file of concatenated engine batches, its sparse offset index and its
//! sparse time index.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use portask_engine::batch::{BatchHeader, HEADER_LEN};
use portask_engine::storage::StorageError;

use super::fsutil::{
    atomic_write, cleaned_file_name, index_file_name, log_file_name, read_i64_pair,
    timeindex_file_name,
};
use super::index::{self, IndexEntry};
use super::timeindex::{self, TimeEntry};
use super::walk::{Step, Walk};

/// Open append handles of a segment.
pub(crate) struct Writer {
    log: File,
    index: Option<File>,
    time_index: Option<File>,
    dirty: bool,
}

impl Writer {
    /// Fsyncs what was written since the last sync.
    pub(crate) fn sync(&mut self) -> io::Result<()> {
        if self.dirty {
            self.log.sync_data()?;
            if let Some(index) = &self.index {
                index.sync_data()?;
            }
            if let Some(index) = &self.time_index {
                index.sync_data()?;
            }
            self.dirty = false;
        }
        Ok(())
    }
}

/// A segment of a partition's log.
pub(crate) struct Segment {
    /// Offset of the segment's first batch.
    pub(crate) base_offset: i64,
    /// Path of the log file.
    pub(crate) log_path: PathBuf,
    index_path: PathBuf,
    time_index_path: PathBuf,
    /// Bytes of whole batches in the log.
    pub(crate) size: u64,
    /// One past the last offset stored (the base offset while empty).
    pub(crate) next_offset: i64,
    index: Vec<IndexEntry>,
    time_index: Vec<TimeEntry>,
    since_index: u64,
    /// Largest max timestamp of the batches in the segment (-1 while empty).
    pub(crate) max_timestamp: i64,
    /// Max timestamp of the first batch: the segment is rolled by time counting from it.
    pub(crate) first_timestamp: Option<i64>,
    /// When the segment was first compacted (wall-clock ms) and whether tombstones were left
    /// in it; `None` until then.
    pub(crate) cleaned: Option<(i64, bool)>,
    /// Append handles, open on the active segment once it is written to.
    pub(crate) writer: Option<Writer>,
    reader: Option<File>,
}

/// How [`Segment::recover`] treats an invalid batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tail {
    /// The segment is the last one: cut the file at the first invalid batch.
    Truncate,
    /// An invalid batch is corruption.
    Strict,
}

impl Segment {
    /// Creates an empty segment file.
    pub(crate) fn create(dir: &Path, base_offset: i64) -> io::Result<Self> {
        let mut seg = Self::unloaded(dir, base_offset);
        File::create(&seg.log_path)?;
        File::create(&seg.index_path)?;
        File::create(&seg.time_index_path)?;
        seg.next_offset = base_offset;
        Ok(seg)
    }

    fn unloaded(dir: &Path, base_offset: i64) -> Self {
        Self {
            base_offset,
            log_path: dir.join(log_file_name(base_offset)),
            index_path: dir.join(index_file_name(base_offset)),
            time_index_path: dir.join(timeindex_file_name(base_offset)),
            size: 0,
            next_offset: base_offset,
            index: Vec::new(),
            time_index: Vec::new(),
            since_index: 0,
            max_timestamp: -1,
            first_timestamp: None,
            cleaned: None,
            writer: None,
            reader: None,
        }
    }

    /// Opens an existing segment: loads its offset and time indexes (rebuilding both from the
    /// log when either is missing or damaged) and checks every batch after the last index
    /// entry.
    pub(crate) fn recover(
        dir: &Path,
        base_offset: i64,
        interval: u64,
        tail: Tail,
    ) -> Result<Self, StorageError> {
        let mut seg = Self::unloaded(dir, base_offset);
        let file = File::open(&seg.log_path)?;
        let file_len = file.metadata()?.len();
        let loaded = seg.load_index(&file, file_len)?;
        let loaded_time = seg.load_time_index(loaded.as_deref())?;
        let (loaded, loaded_time) = match (loaded, loaded_time) {
            (Some(i), Some(t)) => (Some(i), Some(t)),
            _ => (None, None),
        };
        seg.index = loaded.clone().unwrap_or_default();
        seg.time_index = loaded_time.clone().unwrap_or_default();
        seg.max_timestamp = seg.time_index.last().map_or(-1, |e| e.timestamp);
        let start = seg.index.last().map_or(0, |e| u64::from(e.position));
        seg.next_offset = base_offset + seg.index.last().map_or(0, |e| i64::from(e.rel_offset));
        let mut walk = Walk::new(&file, start, file_len, 256 * 1024)?;
        loop {
            match walk.step(true)? {
                Step::End => break,
                Step::Batch { pos, header } => {
                    // Compaction leaves gaps, so offsets only have to increase.
                    if header.base_offset < seg.next_offset {
                        let msg = format!("{}: batch at byte {pos} is out of order", seg.name());
                        return Err(StorageError::Corrupt(msg));
                    }
                    seg.note_batch(pos, &header, interval);
                }
                Step::Invalid { pos, why } if tail == Tail::Truncate => {
                    drop(walk);
                    seg.truncate_tail(pos, &why.to_string())?;
                    break;
                }
                Step::Invalid { pos, why } => {
                    let msg = format!("{}: {why} at byte {pos}", seg.name());
                    return Err(StorageError::Corrupt(msg));
                }
            }
        }
        if loaded.as_ref() != Some(&seg.index) {
            atomic_write(&seg.index_path, &index::encode_all(&seg.index))?;
        }
        if loaded_time.as_ref() != Some(&seg.time_index) {
            atomic_write(
                &seg.time_index_path,
                &timeindex::encode_all(&seg.time_index),
            )?;
        }
        if seg.size > 0 {
            let mut head = [0; HEADER_LEN];
            file.read_exact_at(&mut head, 0)?;
            seg.first_timestamp = BatchHeader::parse(&head).ok().map(|h| h.max_timestamp);
        }
        seg.cleaned = read_i64_pair(&dir.join(cleaned_file_name(base_offset)))?
            .map(|(at, tombstones)| (at, tombstones != 0));
        Ok(seg)
    }

    /// Reads the time index file; `None` when missing, damaged or not paired with `offsets`.
    fn load_time_index(
        &self,
        offsets: Option<&[IndexEntry]>,
    ) -> io::Result<Option<Vec<TimeEntry>>> {
        let Some(offsets) = offsets else {
            return Ok(None);
        };
        let bytes = match fs::read(&self.time_index_path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(timeindex::decode(&bytes).filter(|t| timeindex::matches(t, offsets)))
    }

    fn name(&self) -> String {
        self.log_path.display().to_string()
    }

    /// Reads the index file; `None` when missing or damaged.
    fn load_index(&self, file: &File, file_len: u64) -> io::Result<Option<Vec<IndexEntry>>> {
        let bytes = match fs::read(&self.index_path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let Some(entries) = index::decode(&bytes, file_len) else {
            return Ok(None);
        };
        // The last entry must point at a batch header with the offset it claims.
        if let Some(last) = entries.last() {
            let mut head = [0; HEADER_LEN];
            if file
                .read_exact_at(&mut head, u64::from(last.position))
                .is_err()
            {
                return Ok(None);
            }
            let expected = self.base_offset + i64::from(last.rel_offset);
            if BatchHeader::parse(&head).map(|h| h.base_offset) != Ok(expected) {
                return Ok(None);
            }
        }
        Ok(Some(entries))
    }

    /// Cuts the log at `pos` after a torn write and drops index entries past it.
    fn truncate_tail(&mut self, pos: u64, why: &str) -> io::Result<()> {
        eprintln!(
            "portask: storage: truncated torn tail of {} at byte {pos} ({why})",
            self.log_path.display()
        );
        let file = OpenOptions::new().write(true).open(&self.log_path)?;
        file.set_len(pos)?;
        file.sync_all()?;
        self.index.retain(|e| u64::from(e.position) < pos);
        self.time_index.truncate(self.index.len());
        self.size = pos;
        Ok(())
    }

    /// Accounts for a batch at `pos`: moves `next_offset`, `size` and the max timestamp, adds
    /// offset and time index entries when due. Returns the entries added.
    fn note_batch(
        &mut self,
        pos: u64,
        header: &BatchHeader,
        interval: u64,
    ) -> Option<(IndexEntry, TimeEntry)> {
        let mut added = None;
        self.max_timestamp = self.max_timestamp.max(header.max_timestamp);
        if pos == 0 {
            self.first_timestamp = Some(header.max_timestamp);
        }
        if self.since_index >= interval.max(1) {
            let rel_offset = (header.base_offset - self.base_offset) as u32;
            let entry = IndexEntry {
                rel_offset,
                position: pos as u32,
            };
            let time = TimeEntry {
                timestamp: self.max_timestamp,
                rel_offset,
            };
            self.index.push(entry);
            self.time_index.push(time);
            self.since_index = 0;
            added = Some((entry, time));
        }
        let len = header.total_len() as u64;
        self.since_index += len;
        self.size = pos + len;
        self.next_offset = header.last_offset() + 1;
        added
    }

    /// Appends one batch with a single write; adds an index entry when one is due. On a failed
    /// write the file is cut back; `Err(Poisoned)` when even that fails.
    pub(crate) fn append(
        &mut self,
        bytes: &[u8],
        header: &BatchHeader,
        interval: u64,
    ) -> Result<(), StorageError> {
        if self.writer.is_none() {
            let log = OpenOptions::new().append(true).open(&self.log_path)?;
            let index = OpenOptions::new()
                .append(true)
                .create(true)
                .open(&self.index_path)?;
            let time_index = OpenOptions::new()
                .append(true)
                .create(true)
                .open(&self.time_index_path)?;
            self.writer = Some(Writer {
                log,
                index: Some(index),
                time_index: Some(time_index),
                dirty: false,
            });
        }
        let pos = self.size;
        let Some(writer) = self.writer.as_mut() else {
            unreachable!("writer opened above")
        };
        writer.dirty = true;
        if let Err(e) = writer.log.write_all(bytes) {
            if let Err(e2) = writer.log.set_len(pos) {
                let path = self.log_path.display();
                eprintln!("portask: storage: cannot undo a failed append to {path}: {e2}");
                return Err(StorageError::Poisoned);
            }
            return Err(e.into());
        }
        if let Some((entry, time)) = self.note_batch(pos, header, interval) {
            let writer = self.writer.as_mut().expect("writer opened above");
            // A failed index write stops further index writes: the indexes no longer pair
            // up, and both are rebuilt from the log at the next start.
            let written = writer
                .index
                .as_mut()
                .map(|index| index.write_all(&entry.encode()));
            if let Some(Err(e)) = written {
                let path = self.index_path.display();
                eprintln!("portask: storage: index write failed for {path}: {e}");
                writer.index = None;
                writer.time_index = None;
            }
            let written = writer
                .time_index
                .as_mut()
                .map(|index| index.write_all(&time.encode()));
            if let Some(Err(e)) = written {
                let path = self.time_index_path.display();
                eprintln!("portask: storage: time index write failed for {path}: {e}");
                writer.time_index = None;
            }
        }
        Ok(())
    }

    /// The open read handle, opened on first use.
    fn reader(&mut self) -> io::Result<&File> {
        if self.reader.is_none() {
            self.reader = Some(File::open(&self.log_path)?);
        }
        Ok(self.reader.as_ref().expect("opened above"))
    }

    /// Closes the read handle.
    pub(crate) fn close_reader(&mut self) {
        self.reader = None;
    }

    /// Calls `f` with each batch header from the indexed position at or before `offset` to
    /// the end of the segment, until it returns `false`.
    pub(crate) fn scan(
        &mut self,
        offset: i64,
        mut f: impl FnMut(u64, &BatchHeader) -> bool,
    ) -> Result<(), StorageError> {
        let rel = offset.saturating_sub(self.base_offset).max(0) as u64;
        let start = index::lookup(&self.index, rel);
        let size = self.size;
        let name = self.name();
        let mut walk = Walk::new(self.reader()?, start, size, 8 * 1024)?;
        loop {
            match walk.step(false)? {
                Step::End => return Ok(()),
                Step::Batch { pos, header } => {
                    if !f(pos, &header) {
                        return Ok(());
                    }
                }
                Step::Invalid { pos, why } => {
                    return Err(StorageError::Corrupt(format!(
                        "{name}: {why} at byte {pos}"
                    )));
                }
            }
        }
    }

    /// The offset to start scanning from for the first batch with a max timestamp at or after
    /// `timestamp` (the segment's base offset when the time index does not narrow it).
    pub(crate) fn time_lookup(&self, timestamp: i64) -> i64 {
        self.base_offset + timeindex::lookup(&self.time_index, timestamp).map_or(0, i64::from)
    }

    /// Reads `len` bytes at `pos`.
    pub(crate) fn read_at(&mut self, pos: u64, len: usize) -> io::Result<Vec<u8>> {
        let mut buf = vec![0; len];
        self.reader()?.read_exact_at(&mut buf, pos)?;
        Ok(buf)
    }

    /// Deletes the segment's files.
    pub(crate) fn remove(self) -> io::Result<()> {
        fs::remove_file(&self.log_path)?;
        self.remove_side_files()
    }

    /// Deletes the indexes and the compaction note (the log stays).
    pub(crate) fn remove_side_files(&self) -> io::Result<()> {
        let dir = self.log_path.parent().unwrap_or(Path::new("."));
        for path in [
            self.index_path.clone(),
            self.time_index_path.clone(),
            dir.join(cleaned_file_name(self.base_offset)),
        ] {
            match fs::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }
}
