//! The message log of one durable queue: `queues/<name>/messages.log`.
//!
//! Records are framed as in [`super::record_log`]. The first record names the queue; then
//! each stored message is one `Append` record and each batch of removals one `Remove`
//! record. Only an index of the live messages (id → place in the file, 16 bytes and the map's
//! overhead per message) stays in memory; messages are read back by id order, which is their
//! append order (see [`QueueLog::read`]). When
//! more than half of a log above [`COMPACT_MIN_BYTES`] is dead, it is rewritten with only the
//! live messages (temporary file, fsync, rename, directory fsync), which costs the live bytes
//! and happens at most once per that many bytes removed.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use portask_engine::storage::{StorageError, StoredQueue};
use serde::{Deserialize, Serialize};

use super::fsutil::{atomic_write, fsync_failed, sync_dir, tmp_path};
use super::record_log::{self, LogFile, cbor_bytes, decode_frame, encode_into};

/// Name of the log file in a queue's directory.
pub(crate) const LOG_NAME: &str = "messages.log";

/// A log is only compacted once it is bigger than this.
pub(crate) const COMPACT_MIN_BYTES: u64 = 1 << 20;

/// Hex digits of the queue key kept in a directory name before it is shortened.
const MAX_HEX: usize = 200;

/// One entry of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum Record {
    /// First record: the queue's key.
    Header { queue: String },
    /// A stored message.
    Append {
        id: u64,
        #[serde(with = "cbor_bytes")]
        bytes: Bytes,
    },
    /// Messages that are gone.
    Remove { ids: Vec<u64> },
}

/// The directory name of a queue: the lowercase hex of its key's UTF-8 bytes, or for long
/// keys a hex prefix and a 64-bit FNV-1a hash of the whole key; `-` for the empty key.
pub(crate) fn dir_name(key: &str) -> String {
    if key.is_empty() {
        return "-".to_owned();
    }
    let hex: String = key.bytes().map(|b| format!("{b:02x}")).collect();
    if hex.len() <= MAX_HEX {
        return hex;
    }
    let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{}-{hash:016x}", &hex[..MAX_HEX - 40])
}

/// The open log of one queue.
pub(crate) struct QueueLog {
    dir: PathBuf,
    key: String,
    log: LogFile,
    /// Live messages: id → (offset of the framed record, framed length).
    index: BTreeMap<u64, (u64, u64)>,
    /// Framed bytes of the live messages.
    live_bytes: u64,
}

impl QueueLog {
    /// Creates the directory and log of queue `key` in `dir`.
    pub(crate) fn create(dir: &Path, key: &str) -> Result<Self, StorageError> {
        fs::create_dir_all(dir)?;
        let path = dir.join(LOG_NAME);
        atomic_write(&path, &header(key))?;
        sync_dir(dir.parent().unwrap_or(Path::new("."))).map_err(fsync_failed)?;
        Ok(Self {
            dir: dir.to_owned(),
            key: key.to_owned(),
            log: LogFile::open(&path)?,
            index: BTreeMap::new(),
            live_bytes: 0,
        })
    }

    /// Replays the log in `dir`: the queue and what its store holds (the messages stay on
    /// disk), or `None` when the log has no header (a creation cut short).
    pub(crate) fn recover(dir: &Path) -> Result<Option<(Self, StoredQueue)>, StorageError> {
        let path = dir.join(LOG_NAME);
        let _ = fs::remove_file(tmp_path(&path));
        let corrupt = |what: &str| StorageError::Corrupt(format!("{}: {what}", path.display()));
        let mut key = None;
        // id → (offset, framed length, message length)
        let mut live: BTreeMap<u64, (u64, u64, u64)> = BTreeMap::new();
        let replayed = record_log::replay(&path, |r: Record, at, len| {
            match r {
                Record::Header { queue } if key.is_none() => key = Some(queue),
                _ if key.is_none() => return Err(corrupt("no header")),
                Record::Header { .. } => return Err(corrupt("second header")),
                Record::Append { id, bytes } => {
                    live.insert(id, (at, len, bytes.len() as u64));
                }
                Record::Remove { ids } => {
                    for id in ids {
                        live.remove(&id);
                    }
                }
            }
            Ok(())
        })?;
        let Some(key) = key else {
            return Ok(None);
        };
        if dir.file_name() != Some(dir_name(&key).as_ref()) {
            return Err(corrupt(&format!("holds queue {key:?}")));
        }
        record_log::cut_torn_tail(&path, &replayed)?;
        let stored = StoredQueue {
            count: live.len() as u64,
            bytes: live.values().map(|(_, _, n)| n).sum(),
            next_id: live.keys().next_back().map_or(0, |id| id + 1),
        };
        let mut queue = Self {
            dir: dir.to_owned(),
            key,
            log: LogFile::open(&path)?,
            live_bytes: live.values().map(|(_, len, _)| len).sum(),
            index: live
                .into_iter()
                .map(|(id, (at, len, _))| (id, (at, len)))
                .collect(),
        };
        queue.maybe_compact()?;
        Ok(Some((queue, stored)))
    }

    /// The queue's key.
    pub(crate) fn key(&self) -> &str {
        &self.key
    }

    /// Appends messages with one write.
    pub(crate) fn append(&mut self, messages: &[(u64, Bytes)]) -> Result<(), StorageError> {
        let mut out = Vec::new();
        let mut frames = Vec::with_capacity(messages.len());
        for (id, bytes) in messages {
            let start = out.len();
            let record = Record::Append {
                id: *id,
                bytes: bytes.clone(),
            };
            encode_into(&record, &mut out);
            frames.push((*id, start as u64, (out.len() - start) as u64));
        }
        let at = self.log.append(&out)?;
        for (id, start, len) in frames {
            if let Some((_, old)) = self.index.insert(id, (at + start, len)) {
                self.live_bytes -= old;
            }
            self.live_bytes += len;
        }
        Ok(())
    }

    /// Removes the messages among `ids` that are stored; compacts the log when due.
    pub(crate) fn remove(&mut self, ids: &[u64]) -> Result<(), StorageError> {
        let mut known: Vec<u64> = ids
            .iter()
            .copied()
            .filter(|id| self.index.contains_key(id))
            .collect();
        known.sort_unstable();
        known.dedup();
        if known.is_empty() {
            return Ok(());
        }
        let mut out = Vec::new();
        let record = Record::Remove { ids: known.clone() };
        encode_into(&record, &mut out);
        self.log.append(&out)?;
        for id in known {
            if let Some((_, len)) = self.index.remove(&id) {
                self.live_bytes -= len;
            }
        }
        self.maybe_compact()
    }

    /// Reads live messages with ids above `after`, in id order (their append order): at most
    /// `max_messages`, stopping before their framed sizes (a little above the message sizes)
    /// would pass `max_bytes`, at least one. Messages next to each other in the file are
    /// read with one call.
    pub(crate) fn read(
        &self,
        after: Option<u64>,
        max_messages: usize,
        max_bytes: usize,
    ) -> Result<Vec<(u64, Bytes)>, StorageError> {
        let from = after.map_or(0, |a| a.saturating_add(1));
        let mut picked: Vec<(u64, u64, u64)> = Vec::new();
        let mut total = 0;
        for (&id, &(at, len)) in self.index.range(from..).take(max_messages.max(1)) {
            if !picked.is_empty() && total + len > max_bytes as u64 {
                break;
            }
            total += len;
            picked.push((id, at, len));
        }
        let mut out = Vec::with_capacity(picked.len());
        for run in picked.chunk_by(|a, b| a.1 + a.2 == b.1) {
            let start = run[0].1;
            let buf = self.log.read_at(start, run.iter().map(|m| m.2).sum())?;
            for &(id, at, len) in run {
                let frame = &buf[(at - start) as usize..(at - start + len) as usize];
                match decode_frame(frame) {
                    Some(Record::Append { id: got, bytes }) if got == id => out.push((id, bytes)),
                    _ => {
                        let path = self.dir.join(LOG_NAME);
                        let what = format!("{}: bad message {id} at byte {at}", path.display());
                        return Err(StorageError::Corrupt(what));
                    }
                }
            }
        }
        Ok(out)
    }

    /// The ids of the live messages at `from` or above.
    pub(crate) fn ids_from(&self, from: u64) -> Vec<u64> {
        self.index.range(from..).map(|(id, _)| *id).collect()
    }

    /// Fsyncs what was written since the last sync.
    pub(crate) fn sync(&mut self) -> Result<(), StorageError> {
        self.log.sync()
    }

    /// Compacts when more than half of a log above [`COMPACT_MIN_BYTES`] is dead. A failed
    /// compaction other than a failed fsync is logged and leaves the old log in place.
    fn maybe_compact(&mut self) -> Result<(), StorageError> {
        let size = self.log.size();
        if size <= COMPACT_MIN_BYTES || size - self.live_bytes <= self.live_bytes {
            return Ok(());
        }
        match self.compact() {
            Err(StorageError::Poisoned) => Err(StorageError::Poisoned),
            Err(e) => {
                let path = self.dir.join(LOG_NAME);
                eprintln!("portask: storage: cannot compact {}: {e}", path.display());
                let _ = fs::remove_file(tmp_path(&path));
                Ok(())
            }
            Ok(()) => Ok(()),
        }
    }

    /// Rewrites the log with only the live messages, in append order.
    fn compact(&mut self) -> Result<(), StorageError> {
        let path = self.dir.join(LOG_NAME);
        let tmp = tmp_path(&path);
        let mut live: Vec<(u64, u64, u64)> = self
            .index
            .iter()
            .map(|(&id, &(at, len))| (at, id, len))
            .collect();
        live.sort_unstable();
        let mut out = BufWriter::new(File::create(&tmp)?);
        let head = header(&self.key);
        out.write_all(&head)?;
        let mut pos = head.len() as u64;
        let mut index = BTreeMap::new();
        for (at, id, len) in live {
            out.write_all(&self.log.read_at(at, len)?)?;
            index.insert(id, (pos, len));
            pos += len;
        }
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all().map_err(fsync_failed)?;
        drop(file);
        fs::rename(&tmp, &path)?;
        sync_dir(&self.dir).map_err(fsync_failed)?;
        self.log = LogFile::open(&path)?;
        self.index = index;
        self.live_bytes = pos - head.len() as u64;
        Ok(())
    }
}

/// The framed header record of queue `key`.
fn header(key: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let record = Record::Header {
        queue: key.to_owned(),
    };
    encode_into(&record, &mut out);
    out
}
