//! The committed-offsets log: `groups/offsets.log`.
//!
//! Each record is a big-endian `u32` payload length, a big-endian `u32` CRC-32C of the payload
//! and the payload, a CBOR [`Record`]. The log is replayed at start (the last write wins), a
//! torn tail is cut, and the file is rewritten compactly when most of it is stale.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use portask_engine::storage::{CommittedOffset, StorageError, TopicPartition};
use serde::{Deserialize, Serialize};

use super::fsutil::{atomic_write, fsync_failed, sync_dir};

/// Committed offsets by group, then partition.
pub(crate) type GroupOffsets = BTreeMap<String, BTreeMap<TopicPartition, CommittedOffset>>;

/// Bytes before each record's payload.
const FRAME_LEN: usize = 8;

/// One entry of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Record {
    /// A committed offset.
    Commit {
        group: String,
        topic: String,
        partition: i32,
        offset: i64,
        leader_epoch: i32,
        metadata: Option<String>,
        commit_timestamp: i64,
    },
    /// Every offset of the group is forgotten.
    DeleteGroup { group: String },
}

impl Record {
    /// A commit record for one partition.
    pub(crate) fn commit(group: &str, tp: &TopicPartition, c: &CommittedOffset) -> Self {
        Record::Commit {
            group: group.to_owned(),
            topic: tp.topic.clone(),
            partition: tp.partition,
            offset: c.offset,
            leader_epoch: c.leader_epoch,
            metadata: c.metadata.clone(),
            commit_timestamp: c.commit_timestamp,
        }
    }

    fn apply(self, offsets: &mut GroupOffsets) {
        match self {
            Record::Commit {
                group,
                topic,
                partition,
                offset,
                leader_epoch,
                metadata,
                commit_timestamp,
            } => {
                let c = CommittedOffset {
                    offset,
                    leader_epoch,
                    metadata,
                    commit_timestamp,
                };
                offsets
                    .entry(group)
                    .or_default()
                    .insert(TopicPartition { topic, partition }, c);
            }
            Record::DeleteGroup { group } => {
                offsets.remove(&group);
            }
        }
    }

    /// Appends the framed record to `out`.
    fn encode_into(&self, out: &mut Vec<u8>) {
        let mut payload = Vec::new();
        ciborium::into_writer(self, &mut payload).expect("writing CBOR to a Vec cannot fail");
        out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        out.extend_from_slice(&crc32c::crc32c(&payload).to_be_bytes());
        out.extend_from_slice(&payload);
    }
}

/// The open offsets log.
pub(crate) struct OffsetsLog {
    path: PathBuf,
    file: File,
    size: u64,
    dirty: bool,
}

impl OffsetsLog {
    /// Opens (or creates) `dir/offsets.log` and replays it.
    pub(crate) fn open(dir: &Path) -> Result<(Self, GroupOffsets), StorageError> {
        fs::create_dir_all(dir)?;
        let path = dir.join("offsets.log");
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        let (offsets, records, valid_len) = replay(&path, &bytes)?;
        let live: usize = offsets.values().map(BTreeMap::len).sum();
        let torn = valid_len < bytes.len();
        if torn {
            eprintln!(
                "portask: storage: truncated torn tail of {} at byte {valid_len} ({} bytes cut)",
                path.display(),
                bytes.len() - valid_len
            );
        }
        if records > 2 * live + 8 {
            let mut out = Vec::new();
            for (group, parts) in &offsets {
                for (tp, c) in parts {
                    Record::commit(group, tp, c).encode_into(&mut out);
                }
            }
            atomic_write(&path, &out)?;
        } else if torn {
            let file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)?;
            file.set_len(valid_len as u64)?;
            file.sync_all()?;
        }
        let file = OpenOptions::new().append(true).create(true).open(&path)?;
        sync_dir(dir)?;
        let size = file.metadata()?.len();
        Ok((
            Self {
                path,
                file,
                size,
                dirty: false,
            },
            offsets,
        ))
    }

    /// Appends records with one write.
    pub(crate) fn append(&mut self, records: &[Record]) -> Result<(), StorageError> {
        let mut out = Vec::new();
        for r in records {
            r.encode_into(&mut out);
        }
        self.dirty = true;
        if let Err(e) = self.file.write_all(&out) {
            if let Err(e2) = self.file.set_len(self.size) {
                let path = self.path.display();
                eprintln!("portask: storage: cannot undo a failed append to {path}: {e2}");
                return Err(StorageError::Poisoned);
            }
            return Err(e.into());
        }
        self.size += out.len() as u64;
        Ok(())
    }

    /// Fsyncs what was appended since the last sync.
    pub(crate) fn sync(&mut self) -> Result<(), StorageError> {
        if self.dirty {
            self.file.sync_data().map_err(fsync_failed)?;
            self.dirty = false;
        }
        Ok(())
    }
}

/// Replays `bytes`: returns the offsets, the number of records and the length of the valid
/// prefix. An invalid record is a torn tail when nothing but zeros follows its frame; anything
/// else is corruption.
fn replay(path: &Path, bytes: &[u8]) -> Result<(GroupOffsets, usize, usize), StorageError> {
    let mut offsets = GroupOffsets::new();
    let mut pos = 0;
    let mut records = 0;
    while pos < bytes.len() {
        let rest = &bytes[pos..];
        let Some(record) = decode_one(rest) else {
            let frame_end = frame_len(rest).map_or(rest.len(), |n| n.min(rest.len()));
            if rest[frame_end..].iter().all(|&b| b == 0) {
                return Ok((offsets, records, pos));
            }
            let msg = format!("{}: invalid record at byte {pos}", path.display());
            return Err(StorageError::Corrupt(msg));
        };
        pos += frame_len(rest).expect("decoded records have a frame");
        records += 1;
        record.apply(&mut offsets);
    }
    Ok((offsets, records, pos))
}

/// Length of the framed record at the start of `buf`, from its length field.
fn frame_len(buf: &[u8]) -> Option<usize> {
    let len = u32::from_be_bytes(buf.get(..4)?.try_into().ok()?);
    Some(FRAME_LEN + len as usize)
}

fn decode_one(buf: &[u8]) -> Option<Record> {
    let payload = buf.get(FRAME_LEN..frame_len(buf)?)?;
    let crc = u32::from_be_bytes(buf[4..8].try_into().ok()?);
    if crc32c::crc32c(payload) != crc {
        return None;
    }
    ciborium::from_reader(payload).ok()
}
