//! The storage trait the engine writes through, and the values that cross it.
//!
//! Backends: [`crate::mem_storage::MemStorage`] (tests, ephemeral) and the embedded disk log in
//! the server crate. A backend stores the engine's encoded batches as opaque bytes; it only
//! needs the few header fields carried beside them in [`EncodedBatch`].

use std::collections::BTreeMap;

use bytes::Bytes;

/// A topic name and partition index.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicPartition {
    /// Topic name.
    pub topic: String,
    /// Partition index, from 0.
    pub partition: i32,
}

/// What the storage keeps about a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMeta {
    /// Topic name.
    pub name: String,
    /// Topic id (a UUID), stable across restarts.
    pub id: [u8; 16],
    /// Number of partitions.
    pub partitions: i32,
    /// Topic-level configs (`cleanup.policy`, `retention.ms`, ...), as given.
    pub configs: BTreeMap<String, String>,
}

/// One encoded engine batch with the header fields a backend indexes by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedBatch {
    /// Offset of the first record.
    pub base_offset: i64,
    /// Offset of the last record.
    pub last_offset: i64,
    /// Largest record timestamp in the batch (ms since the epoch).
    pub max_timestamp: i64,
    /// The batch in the engine's storage format (see [`crate::batch`]).
    pub bytes: Bytes,
}

/// A committed consumer-group offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    /// The next offset the group will consume.
    pub offset: i64,
    /// The leader epoch the client sent, or -1.
    pub leader_epoch: i32,
    /// Client metadata string.
    pub metadata: Option<String>,
    /// Wall-clock time of the commit (ms since the epoch).
    pub commit_timestamp: i64,
}

/// Producer state rebuilt from the log, so idempotence survives a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerSnapshot {
    /// Producer id.
    pub producer_id: i64,
    /// Producer epoch of its last batch.
    pub producer_epoch: i16,
    /// Sequence number of the first record of its last batch.
    pub first_sequence: i32,
    /// Sequence number of the last record of its last batch.
    pub last_sequence: i32,
    /// Offset of the first record of its last batch.
    pub base_offset: i64,
}

/// What a partition's log looks like after recovery.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartitionState {
    /// First offset still stored (after DeleteRecords or retention).
    pub log_start_offset: i64,
    /// Offset the next appended record gets (the high watermark on one broker).
    pub next_offset: i64,
    /// The last batches (up to [`crate::producer::RECENT_BATCHES`]) of every idempotent
    /// producer seen in this partition, per producer oldest first.
    pub producers: Vec<ProducerSnapshot>,
}

/// Everything a backend hands back at start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveredState {
    /// Every topic.
    pub topics: Vec<TopicMeta>,
    /// Every partition of every topic.
    pub partitions: BTreeMap<TopicPartition, PartitionState>,
    /// Committed offsets by group id.
    pub offsets: BTreeMap<String, BTreeMap<TopicPartition, CommittedOffset>>,
    /// The first producer id not yet handed out.
    pub next_producer_id: i64,
    /// Durable definitions (exchanges, queues, bindings), by the key the engine chose.
    pub definitions: BTreeMap<String, Bytes>,
    /// The message store of every durable queue, by queue key: counts only, the messages
    /// stay in storage until the engine reads them with [`Storage::queue_read`].
    pub queues: BTreeMap<String, StoredQueue>,
}

/// What a backend reports about one durable queue's message store at recovery.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoredQueue {
    /// Messages stored and not removed.
    pub count: u64,
    /// Their total size as stored (the lengths of the bytes given to [`Storage::queue_append`]).
    pub bytes: u64,
    /// One more than the largest id among them (0 when there are none).
    pub next_id: u64,
}

/// How old data of a partition is cleaned up by [`Storage::apply_retention`]: the topic's
/// `cleanup.policy`, `retention.ms`, `retention.bytes` and `delete.retention.ms`, with the
/// broker defaults filled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// `cleanup.policy` holds `delete`: whole closed segments go by time and size.
    pub delete: bool,
    /// `cleanup.policy` holds `compact`: closed segments keep only the latest record per key.
    pub compact: bool,
    /// Delete closed segments whose newest record is older than this (ms); -1: unlimited.
    pub retention_ms: i64,
    /// Delete the oldest closed segments while the partition is larger than this; -1:
    /// unlimited.
    pub retention_bytes: i64,
    /// How long tombstones (records with a null value) stay after their segment was first
    /// compacted (ms).
    pub delete_retention_ms: i64,
}

impl Default for RetentionPolicy {
    /// Kafka's defaults: delete, unlimited, tombstones kept a day.
    fn default() -> Self {
        Self {
            delete: true,
            compact: false,
            retention_ms: -1,
            retention_bytes: -1,
            delete_retention_ms: 86_400_000,
        }
    }
}

/// A storage failure. The engine answers with a retriable storage error and acknowledges nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The operating system failed an IO call.
    #[error("io error: {0}")]
    Io(#[from] std::io::Error),
    /// Stored data failed a check that is not a torn tail (CRC in the middle, bad header).
    #[error("corrupt storage: {0}")]
    Corrupt(String),
    /// The store refuses writes after an earlier failed sync.
    #[error("storage is poisoned after a failed sync")]
    Poisoned,
    /// The partition or topic is not in the store.
    #[error("unknown partition {0:?}")]
    UnknownPartition(TopicPartition),
    /// A read was started and completes later: the caller tries again once the backend has
    /// reported progress (see [`crate::Engine::storage_progress`]). Never returned by writes.
    #[error("storage read in progress")]
    Pending,
}

/// A storage backend. Calls complete before they return; a write that returned `Ok` is in the
/// backend's hands (in the OS page cache for the disk log), and [`Storage::sync`] makes it
/// durable.
pub trait Storage {
    /// Reads back everything stored, truncating a torn tail, once at start.
    fn recover(&mut self) -> Result<RecoveredState, StorageError>;
    /// Creates a topic, or records a new partition count or configs for an existing one.
    fn put_topic(&mut self, meta: &TopicMeta) -> Result<(), StorageError>;
    /// Deletes a topic, its partitions' data and nothing else.
    fn delete_topic(&mut self, name: &str) -> Result<(), StorageError>;
    /// Appends a batch; its `base_offset` is the partition's next offset.
    fn append(&mut self, tp: &TopicPartition, batch: &EncodedBatch) -> Result<(), StorageError>;
    /// Returns consecutive batches, the first one containing `offset` (or the first after it),
    /// until their total size passes `max_bytes`; always at least one batch if any exists.
    fn read(
        &mut self,
        tp: &TopicPartition,
        offset: i64,
        max_bytes: usize,
    ) -> Result<Vec<Bytes>, StorageError>;
    /// The base offset of the first batch whose max timestamp is at or after `timestamp`.
    fn offset_for_timestamp(
        &mut self,
        tp: &TopicPartition,
        timestamp: i64,
    ) -> Result<Option<i64>, StorageError>;
    /// Moves the log start offset forward; whole batches below it may be dropped.
    fn delete_records(&mut self, tp: &TopicPartition, before: i64) -> Result<(), StorageError>;
    /// Stores committed offsets of a group (replacing earlier ones for the same partitions).
    fn commit_offsets(
        &mut self,
        group: &str,
        offsets: &[(TopicPartition, CommittedOffset)],
    ) -> Result<(), StorageError>;
    /// Forgets all committed offsets of a group.
    fn delete_group(&mut self, group: &str) -> Result<(), StorageError>;
    /// Records that producer ids below `next` have been handed out.
    fn set_next_producer_id(&mut self, next: i64) -> Result<(), StorageError>;
    /// Stores (`Some`) or removes (`None`) a durable definition under `key`. The value is
    /// opaque to the backend.
    fn put_definition(&mut self, key: &str, value: Option<&Bytes>) -> Result<(), StorageError>;
    /// Appends messages, each with an id unique within the queue, to a durable queue's store.
    fn queue_append(&mut self, queue: &str, messages: &[(u64, Bytes)]) -> Result<(), StorageError>;
    /// Removes messages (acknowledged, dropped, expired or moved) from a durable queue's store.
    /// Unknown ids are ignored.
    fn queue_remove(&mut self, queue: &str, ids: &[u64]) -> Result<(), StorageError>;
    /// Reads stored messages of a durable queue in append order (ids increase in append order):
    /// those with an id above `after` (all with `None`), at most `max_messages`, stopping before
    /// their total size would pass `max_bytes`; always at least one if any is stored past
    /// `after`. A backend that reads in the background may answer [`StorageError::Pending`].
    fn queue_read(
        &mut self,
        queue: &str,
        after: Option<u64>,
        max_messages: usize,
        max_bytes: usize,
    ) -> Result<Vec<(u64, Bytes)>, StorageError>;
    /// Removes every message of a durable queue's store whose id is `from` or above.
    fn queue_remove_from(&mut self, queue: &str, from: u64) -> Result<(), StorageError>;
    /// Removes a durable queue's store and every message in it.
    fn queue_delete(&mut self, queue: &str) -> Result<(), StorageError>;
    /// Makes every earlier write durable.
    fn sync(&mut self) -> Result<(), StorageError>;
    /// Applies `policy` to a partition at wall-clock time `now_wall` (ms since the epoch):
    /// deletes expired or excess closed segments and compacts closed segments, never
    /// touching the active one and keeping every remaining record at its offset. Returns the
    /// log start offset afterwards, or `None` when the backend does not apply retention (the
    /// default).
    fn apply_retention(
        &mut self,
        tp: &TopicPartition,
        policy: &RetentionPolicy,
        now_wall: i64,
    ) -> Result<Option<i64>, StorageError> {
        let _ = (tp, policy, now_wall);
        Ok(None)
    }
}
