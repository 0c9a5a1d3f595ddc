//! What the loop asks of the storage thread, as owned values.

use std::sync::mpsc::SyncSender;

use bytes::Bytes;
use portask_engine::storage::{
    CommittedOffset, EncodedBatch, RecoveredState, RetentionPolicy, Storage, StorageError,
    TopicMeta, TopicPartition,
};

/// A write, applied in the order the engine made it.
#[derive(Debug)]
pub(super) enum Write {
    PutTopic(TopicMeta),
    DeleteTopic(String),
    Append(TopicPartition, EncodedBatch),
    DeleteRecords(TopicPartition, i64),
    CommitOffsets(String, Vec<(TopicPartition, CommittedOffset)>),
    DeleteGroup(String),
    SetNextProducerId(i64),
    PutDefinition(String, Option<Bytes>),
    QueueAppend(String, Vec<(u64, Bytes)>),
    QueueRemove(String, Vec<u64>),
    QueueRemoveFrom(String, u64),
    QueueDelete(String),
}

impl Write {
    /// Applies the write to `backend`.
    pub(super) fn apply(&self, backend: &mut dyn Storage) -> Result<(), StorageError> {
        match self {
            Self::PutTopic(meta) => backend.put_topic(meta),
            Self::DeleteTopic(name) => backend.delete_topic(name),
            Self::Append(tp, batch) => backend.append(tp, batch),
            Self::DeleteRecords(tp, before) => backend.delete_records(tp, *before),
            Self::CommitOffsets(group, offsets) => backend.commit_offsets(group, offsets),
            Self::DeleteGroup(group) => backend.delete_group(group),
            Self::SetNextProducerId(next) => backend.set_next_producer_id(*next),
            Self::PutDefinition(key, value) => backend.put_definition(key, value.as_ref()),
            Self::QueueAppend(queue, messages) => backend.queue_append(queue, messages),
            Self::QueueRemove(queue, ids) => backend.queue_remove(queue, ids),
            Self::QueueRemoveFrom(queue, from) => backend.queue_remove_from(queue, *from),
            Self::QueueDelete(queue) => backend.queue_delete(queue),
        }
    }

    /// Payload bytes the write holds while it waits in the queue.
    pub(super) fn payload_bytes(&self) -> usize {
        match self {
            Self::Append(_, batch) => batch.bytes.len(),
            Self::QueueAppend(_, messages) => messages.iter().map(|(_, b)| b.len()).sum(),
            Self::PutDefinition(_, Some(value)) => value.len(),
            _ => 0,
        }
    }
}

/// A read whose result goes to the read cache, and the key it is cached under.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum Read {
    /// [`Storage::read`] from an offset.
    Batches(TopicPartition, i64),
    /// [`Storage::offset_for_timestamp`].
    Timestamp(TopicPartition, i64),
    /// [`Storage::queue_read`] after an id, at most that many messages.
    Queue(String, Option<u64>, usize),
}

/// The answer to a [`Read`].
#[derive(Debug)]
pub(super) enum ReadResult {
    Batches(Result<Vec<Bytes>, StorageError>),
    Timestamp(Result<Option<i64>, StorageError>),
    Queue(Result<Vec<(u64, Bytes)>, StorageError>),
}

/// One request to the storage thread.
pub(super) enum Command {
    Write(Write),
    /// A read, with the byte budget of [`Read::Batches`].
    Read(Read, usize),
    /// Report `generation` done once every earlier write is applied (in the OS page cache
    /// for the disk log), and with `true` also made durable (fsync).
    Barrier(u64, bool),
    /// Apply a retention policy and report the new log start offset.
    Retention(TopicPartition, RetentionPolicy, i64),
    /// Run at start, answered on the channel (the loop waits: nothing is served yet).
    Recover(SyncSender<Result<RecoveredState, StorageError>>),
    /// Sync now and answer on the channel (used at shutdown).
    SyncNow(SyncSender<Result<(), StorageError>>),
}
