//! The embedded storage backend: a segmented append-only log on local disk.
//!
//! Layout under the data directory:
//!
//! ```text
//! topics/<topic>/meta                          topic metadata (CBOR), replaced atomically
//! topics/<topic>/<partition>/<base>.log        segment: concatenated engine batches
//! topics/<topic>/<partition>/<base>.index      sparse offset index of that segment
//! topics/<topic>/<partition>/<base>.timeindex  sparse time index of that segment
//! topics/<topic>/<partition>/<base>.cleaned    when the segment was first compacted
//! topics/<topic>/<partition>/log-start         log start offset after DeleteRecords
//! topics/<topic>~<id>.deleted/                 a topic being deleted (removed at start)
//! groups/offsets.log                           committed offsets, append-only
//! producer-ids                                 the next producer id
//! definitions.log                              durable AMQP definitions, append-only
//! queues/<hex key>/messages.log                a durable queue's messages, append-only
//! queues/<hex key>.deleted/                    a queue being deleted (removed at start)
//! ```
//!
//! `<base>` is the segment's base offset as 20 decimal digits. Batches are stored as the engine
//! encodes them (see [`portask_engine::batch`]); each carries its own CRC-32C. A segment is
//! rolled when the next batch would take it past [`DiskOptions::segment_bytes`] (or the
//! topic's `segment.bytes`) or when the batch's timestamp is more than
//! [`DiskOptions::segment_ms`] (or `segment.ms`) past the segment's first batch, and the old
//! segment is fsynced then, so only the last segment of a partition can end in a torn write.
//! The time index ([`timeindex`]) is written beside the offset index, entry for entry, and is
//! rebuilt with it when missing or damaged. [`Storage::apply_retention`] deletes and compacts
//! closed segments ([`cleaner`]); compaction leaves gaps in the offsets.
//! Small files (`meta`, `log-start`, `producer-ids`) are replaced atomically: write a temporary
//! file, fsync, rename, fsync the directory.
//!
//! `offsets.log`, `definitions.log` and `messages.log` are logs of framed CBOR records (see
//! [`record_log`]), replayed at start with a torn tail cut. Queue directories are named by the
//! hex of the queue key; [`durable`] describes definitions and queue logs.
//!
//! Writes reach the OS page cache; [`Storage::sync`] makes them durable (or every append, with
//! [`DiskOptions::sync_on_append`]). After a failed fsync the store refuses writes with
//! [`StorageError::Poisoned`]. [`Storage::recover`] must be called once before anything else:
//! it loads every topic, checks the tail of every partition and cuts a torn tail.

mod cleaner;
mod definitions;
mod durable;
mod fsutil;
mod index;
mod offsets_log;
mod partition;
mod queue_log;
mod record_log;
mod segment;
mod timeindex;
mod walk;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_durable;
#[cfg(test)]
mod tests_recovery;
#[cfg(test)]
mod tests_retention;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use portask_engine::storage::{
    CommittedOffset, EncodedBatch, RecoveredState, RetentionPolicy, Storage, StorageError,
    TopicMeta, TopicPartition,
};
use serde::{Deserialize, Serialize};

use definitions::DefinitionsLog;
use fsutil::{TMP_SUFFIX, atomic_write, check_topic_name, fsync_failed, read_i64_file, sync_dir};
use offsets_log::{OffsetsLog, Record};
use partition::Partition;
use queue_log::QueueLog;

/// Tuning of the disk log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskOptions {
    /// A segment is rolled when the next batch would take it past this size (default 1 GiB;
    /// at most 4 GiB).
    pub segment_bytes: u64,
    /// Bytes of log between two sparse index entries (default 4096).
    pub index_interval_bytes: u64,
    /// A segment is also rolled when a batch's timestamp is more than this past the first
    /// batch of the segment (default 7 days; -1: never). Topics override it with
    /// `segment.ms`, as they override `segment_bytes` with `segment.bytes`.
    pub segment_ms: i64,
    /// Fsync after every append (default false: fsync on [`Storage::sync`]).
    pub sync_on_append: bool,
}

impl Default for DiskOptions {
    fn default() -> Self {
        Self {
            segment_bytes: 1 << 30,
            index_interval_bytes: 4096,
            segment_ms: 7 * 24 * 3600 * 1000,
            sync_on_append: false,
        }
    }
}

/// The on-disk form of [`TopicMeta`].
#[derive(Serialize, Deserialize)]
struct MetaFile {
    name: String,
    id: [u8; 16],
    partitions: i32,
    configs: BTreeMap<String, String>,
}

/// The embedded disk log. See the module documentation for the layout.
pub struct DiskStorage {
    dir: PathBuf,
    opts: DiskOptions,
    topics: BTreeMap<String, TopicMeta>,
    partitions: BTreeMap<TopicPartition, Partition>,
    offsets: Option<OffsetsLog>,
    /// Partitions appended to or changed since the last sync.
    dirty: BTreeSet<TopicPartition>,
    definitions: Option<DefinitionsLog>,
    /// Open durable queue logs by queue key.
    queues: BTreeMap<String, QueueLog>,
    /// Queues written to since the last sync.
    dirty_queues: BTreeSet<String>,
    poisoned: bool,
}

impl DiskStorage {
    /// Opens the store in `dir`, creating the directory layout if needed. Call
    /// [`Storage::recover`] next.
    pub fn open(dir: &Path, opts: DiskOptions) -> Result<DiskStorage, StorageError> {
        fs::create_dir_all(dir.join("topics"))?;
        fs::create_dir_all(dir.join("groups"))?;
        Ok(DiskStorage {
            dir: dir.to_owned(),
            opts,
            topics: BTreeMap::new(),
            partitions: BTreeMap::new(),
            offsets: None,
            dirty: BTreeSet::new(),
            definitions: None,
            queues: BTreeMap::new(),
            dirty_queues: BTreeSet::new(),
            poisoned: false,
        })
    }

    fn topics_dir(&self) -> PathBuf {
        self.dir.join("topics")
    }

    fn partition_dir(&self, tp: &TopicPartition) -> PathBuf {
        self.topics_dir()
            .join(&tp.topic)
            .join(tp.partition.to_string())
    }

    /// Fails when poisoned; every write starts with it.
    fn writable(&self) -> Result<(), StorageError> {
        if self.poisoned {
            Err(StorageError::Poisoned)
        } else {
            Ok(())
        }
    }

    /// Records a poisoning error on its way out.
    fn watch<T>(&mut self, r: Result<T, StorageError>) -> Result<T, StorageError> {
        if matches!(r, Err(StorageError::Poisoned)) {
            self.poisoned = true;
        }
        r
    }

    /// The options with the topic's `segment.bytes` and `segment.ms` applied.
    fn topic_options(&self, topic: &str) -> DiskOptions {
        let mut opts = self.opts.clone();
        if let Some(configs) = self.topics.get(topic).map(|m| &m.configs) {
            let get = |k: &str| configs.get(k).and_then(|v| v.trim().parse::<i64>().ok());
            if let Some(bytes) = get("segment.bytes").filter(|b| *b > 0) {
                opts.segment_bytes = bytes as u64;
            }
            if let Some(ms) = get("segment.ms").filter(|m| *m >= -1) {
                opts.segment_ms = ms;
            }
        }
        opts
    }

    fn partition(&mut self, tp: &TopicPartition) -> Result<&mut Partition, StorageError> {
        self.partitions
            .get_mut(tp)
            .ok_or_else(|| StorageError::UnknownPartition(tp.clone()))
    }

    fn offsets_log(&mut self) -> Result<&mut OffsetsLog, StorageError> {
        if self.offsets.is_none() {
            self.offsets = Some(OffsetsLog::open(&self.dir.join("groups"))?.0);
        }
        Ok(self.offsets.as_mut().expect("opened above"))
    }

    /// Loads one topic directory; `None` when it has no metadata (a creation cut short).
    fn recover_topic(
        &mut self,
        name: &str,
        state: &mut RecoveredState,
    ) -> Result<(), StorageError> {
        let dir = self.topics_dir().join(name);
        let _ = fs::remove_file(dir.join(format!("meta{TMP_SUFFIX}")));
        let bytes = match fs::read(dir.join("meta")) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                eprintln!(
                    "portask: storage: skipping {} without metadata",
                    dir.display()
                );
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        let meta: MetaFile = ciborium::from_reader(&bytes[..])
            .map_err(|e| StorageError::Corrupt(format!("{}/meta: {e}", dir.display())))?;
        if meta.name != name {
            let msg = format!("{}/meta names topic {:?}", dir.display(), meta.name);
            return Err(StorageError::Corrupt(msg));
        }
        for partition in 0..meta.partitions {
            let tp = TopicPartition {
                topic: name.to_owned(),
                partition,
            };
            let (part, pstate) = Partition::recover(&self.partition_dir(&tp), &self.opts)?;
            self.partitions.insert(tp.clone(), part);
            state.partitions.insert(tp, pstate);
        }
        let meta = TopicMeta {
            name: meta.name,
            id: meta.id,
            partitions: meta.partitions,
            configs: meta.configs,
        };
        self.topics.insert(name.to_owned(), meta.clone());
        state.topics.push(meta);
        Ok(())
    }

    /// Removes leftovers of interrupted deletes and writes; returns the topic names.
    fn list_topics(&self) -> Result<Vec<String>, StorageError> {
        let mut names = Vec::new();
        for entry in fs::read_dir(self.topics_dir())? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.contains('~') && name.ends_with(".deleted") {
                fs::remove_dir_all(entry.path())?;
            } else if entry.file_type()?.is_dir() && check_topic_name(&name).is_ok() {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }
}

impl Storage for DiskStorage {
    fn recover(&mut self) -> Result<RecoveredState, StorageError> {
        self.topics.clear();
        self.partitions.clear();
        self.dirty.clear();
        let mut state = RecoveredState::default();
        for name in self.list_topics()? {
            self.recover_topic(&name, &mut state)?;
        }
        let (log, offsets) = OffsetsLog::open(&self.dir.join("groups"))?;
        self.offsets = Some(log);
        state.offsets = offsets;
        let ids = self.dir.join("producer-ids");
        let _ = fs::remove_file(fsutil::tmp_path(&ids));
        state.next_producer_id = read_i64_file(&ids)?.unwrap_or(0);
        self.recover_durable(&mut state)?;
        Ok(state)
    }

    fn put_topic(&mut self, meta: &TopicMeta) -> Result<(), StorageError> {
        self.writable()?;
        check_topic_name(&meta.name)?;
        let topic_dir = self.topics_dir().join(&meta.name);
        fs::create_dir_all(&topic_dir)?;
        for partition in 0..meta.partitions {
            let tp = TopicPartition {
                topic: meta.name.clone(),
                partition,
            };
            if self.partitions.contains_key(&tp) {
                continue;
            }
            let dir = self.partition_dir(&tp);
            let part = if dir.exists() {
                Partition::recover(&dir, &self.opts)?.0
            } else {
                Partition::create(&dir)?
            };
            self.partitions.insert(tp.clone(), part);
            self.dirty.insert(tp);
        }
        let r = sync_dir(&topic_dir).and_then(|()| sync_dir(&self.topics_dir()));
        self.watch(r.map_err(fsync_failed))?;
        let file = MetaFile {
            name: meta.name.clone(),
            id: meta.id,
            partitions: meta.partitions,
            configs: meta.configs.clone(),
        };
        let mut bytes = Vec::new();
        ciborium::into_writer(&file, &mut bytes).expect("writing CBOR to a Vec cannot fail");
        let r = atomic_write(&topic_dir.join("meta"), &bytes);
        self.watch(r)?;
        self.topics.insert(meta.name.clone(), meta.clone());
        Ok(())
    }

    fn delete_topic(&mut self, name: &str) -> Result<(), StorageError> {
        self.writable()?;
        check_topic_name(name)?;
        self.partitions.retain(|tp, _| tp.topic != name);
        self.dirty.retain(|tp| tp.topic != name);
        let id = self.topics.remove(name).map_or([0; 16], |m| m.id);
        let dir = self.topics_dir().join(name);
        if !dir.exists() {
            return Ok(());
        }
        let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
        let trash = self.topics_dir().join(format!("{name}~{hex}.deleted"));
        if trash.exists() {
            fs::remove_dir_all(&trash)?;
        }
        fs::rename(&dir, &trash)?;
        let r = sync_dir(&self.topics_dir()).map_err(fsync_failed);
        self.watch(r)?;
        fs::remove_dir_all(&trash)?;
        Ok(())
    }

    fn append(&mut self, tp: &TopicPartition, batch: &EncodedBatch) -> Result<(), StorageError> {
        self.writable()?;
        let opts = self.topic_options(&tp.topic);
        let r = self.partition(tp)?.append(batch, &opts);
        self.dirty.insert(tp.clone());
        self.watch(r)
    }

    fn read(
        &mut self,
        tp: &TopicPartition,
        offset: i64,
        max_bytes: usize,
    ) -> Result<Vec<Bytes>, StorageError> {
        self.partition(tp)?.read(offset, max_bytes)
    }

    fn offset_for_timestamp(
        &mut self,
        tp: &TopicPartition,
        timestamp: i64,
    ) -> Result<Option<i64>, StorageError> {
        self.partition(tp)?.offset_for_timestamp(timestamp)
    }

    fn delete_records(&mut self, tp: &TopicPartition, before: i64) -> Result<(), StorageError> {
        self.writable()?;
        let r = self.partition(tp)?.delete_records(before);
        self.dirty.insert(tp.clone());
        self.watch(r)
    }

    fn commit_offsets(
        &mut self,
        group: &str,
        offsets: &[(TopicPartition, CommittedOffset)],
    ) -> Result<(), StorageError> {
        self.writable()?;
        let records: Vec<Record> = offsets
            .iter()
            .map(|(tp, c)| Record::commit(group, tp, c))
            .collect();
        let r = self.offsets_log().and_then(|log| log.append(&records));
        self.watch(r)
    }

    fn delete_group(&mut self, group: &str) -> Result<(), StorageError> {
        self.writable()?;
        let record = Record::DeleteGroup {
            group: group.to_owned(),
        };
        let r = self.offsets_log().and_then(|log| log.append(&[record]));
        self.watch(r)
    }

    fn set_next_producer_id(&mut self, next: i64) -> Result<(), StorageError> {
        self.writable()?;
        let r = atomic_write(&self.dir.join("producer-ids"), next.to_string().as_bytes());
        self.watch(r)
    }

    fn put_definition(&mut self, key: &str, value: Option<&Bytes>) -> Result<(), StorageError> {
        self.durable_put_definition(key, value)
    }

    fn queue_append(&mut self, queue: &str, messages: &[(u64, Bytes)]) -> Result<(), StorageError> {
        self.durable_queue_append(queue, messages)
    }

    fn queue_remove(&mut self, queue: &str, ids: &[u64]) -> Result<(), StorageError> {
        self.durable_queue_remove(queue, ids)
    }

    fn queue_read(
        &mut self,
        queue: &str,
        after: Option<u64>,
        max_messages: usize,
        max_bytes: usize,
    ) -> Result<Vec<(u64, Bytes)>, StorageError> {
        self.durable_queue_read(queue, after, max_messages, max_bytes)
    }

    fn queue_remove_from(&mut self, queue: &str, from: u64) -> Result<(), StorageError> {
        self.durable_queue_remove_from(queue, from)
    }

    fn queue_delete(&mut self, queue: &str) -> Result<(), StorageError> {
        self.durable_queue_delete(queue)
    }

    fn apply_retention(
        &mut self,
        tp: &TopicPartition,
        policy: &RetentionPolicy,
        now_wall: i64,
    ) -> Result<Option<i64>, StorageError> {
        self.writable()?;
        let interval = self.opts.index_interval_bytes;
        let r = self
            .partition(tp)?
            .apply_retention(policy, now_wall, interval);
        self.dirty.insert(tp.clone());
        self.watch(r).map(Some)
    }

    fn sync(&mut self) -> Result<(), StorageError> {
        self.writable()?;
        while let Some(tp) = self.dirty.pop_first() {
            if let Some(part) = self.partitions.get_mut(&tp) {
                let r = part.sync();
                if r.is_err() {
                    self.dirty.insert(tp);
                }
                self.watch(r)?;
            }
        }
        if let Some(log) = &mut self.offsets {
            let r = log.sync();
            self.watch(r)?;
        }
        self.sync_durable()
    }
}
