//! The committed-offsets log: `groups/offsets.log`.
//!
//! Records are framed as described in [`super::record_log`]; the payload is a CBOR
//! [`Record`]. The log is replayed at start (the last write wins), a
//! torn tail is cut, and the file is rewritten compactly when most of it is stale.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use portask_engine::storage::{CommittedOffset, StorageError, TopicPartition};
use serde::{Deserialize, Serialize};

use super::record_log::{self, LogFile, encode_into};

/// Committed offsets by group, then partition.
pub(crate) type GroupOffsets = BTreeMap<String, BTreeMap<TopicPartition, CommittedOffset>>;

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
}

/// The open offsets log.
pub(crate) struct OffsetsLog {
    log: LogFile,
}

impl OffsetsLog {
    /// Opens (or creates) `dir/offsets.log` and replays it.
    pub(crate) fn open(dir: &Path) -> Result<(Self, GroupOffsets), StorageError> {
        fs::create_dir_all(dir)?;
        let path = dir.join("offsets.log");
        let mut offsets = GroupOffsets::new();
        let replayed = record_log::replay(&path, |r: Record, _, _| {
            r.apply(&mut offsets);
            Ok(())
        })?;
        let live: usize = offsets.values().map(BTreeMap::len).sum();
        let log = record_log::settle(&path, &replayed, live, || {
            let mut out = Vec::new();
            for (group, parts) in &offsets {
                for (tp, c) in parts {
                    encode_into(&Record::commit(group, tp, c), &mut out);
                }
            }
            out
        })?;
        Ok((Self { log }, offsets))
    }

    /// Appends records with one write.
    pub(crate) fn append(&mut self, records: &[Record]) -> Result<(), StorageError> {
        let mut out = Vec::new();
        for r in records {
            encode_into(r, &mut out);
        }
        self.log.append(&out).map(drop)
    }

    /// Fsyncs what was appended since the last sync.
    pub(crate) fn sync(&mut self) -> Result<(), StorageError> {
        self.log.sync()
    }
}
