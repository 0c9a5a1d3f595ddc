//! A storage wrapper that counts writes, so the worker fsyncs only when something was
//! written since the last sync (the group-commit barrier).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use portask_engine::storage::{
    CommittedOffset, EncodedBatch, RecoveredState, RetentionPolicy, Storage, StorageError,
    TopicMeta, TopicPartition,
};

/// Writes that reached storage since its last successful sync, shared between a
/// [`TrackedStorage`] and the worker that decides when to sync.
#[derive(Debug, Clone, Default)]
pub struct WriteCounter(Arc<AtomicU64>);

impl WriteCounter {
    /// Writes since the last successful sync.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    pub(crate) fn add(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn reset(&self) {
        self.0.store(0, Ordering::Relaxed);
    }
}

/// A storage backend that counts its successful writes in a [`WriteCounter`] and resets it on
/// a successful sync, so the worker syncs only when there is something to make durable.
///
/// Every [`Storage`] method is forwarded; a method added to the trait must be added here.
pub struct TrackedStorage {
    inner: Box<dyn Storage>,
    writes: WriteCounter,
}

impl TrackedStorage {
    /// Wraps `inner`, counting into `writes`.
    pub fn new(inner: Box<dyn Storage>, writes: WriteCounter) -> Self {
        Self { inner, writes }
    }

    fn count<T>(&self, r: Result<T, StorageError>) -> Result<T, StorageError> {
        if r.is_ok() {
            self.writes.add();
        }
        r
    }
}

impl Storage for TrackedStorage {
    fn recover(&mut self) -> Result<RecoveredState, StorageError> {
        let r = self.inner.recover();
        self.count(r)
    }
    fn put_topic(&mut self, meta: &TopicMeta) -> Result<(), StorageError> {
        let r = self.inner.put_topic(meta);
        self.count(r)
    }
    fn delete_topic(&mut self, name: &str) -> Result<(), StorageError> {
        let r = self.inner.delete_topic(name);
        self.count(r)
    }
    fn append(&mut self, tp: &TopicPartition, batch: &EncodedBatch) -> Result<(), StorageError> {
        let r = self.inner.append(tp, batch);
        self.count(r)
    }
    fn read(
        &mut self,
        tp: &TopicPartition,
        offset: i64,
        max_bytes: usize,
    ) -> Result<Vec<Bytes>, StorageError> {
        self.inner.read(tp, offset, max_bytes)
    }
    fn offset_for_timestamp(
        &mut self,
        tp: &TopicPartition,
        timestamp: i64,
    ) -> Result<Option<i64>, StorageError> {
        self.inner.offset_for_timestamp(tp, timestamp)
    }
    fn delete_records(&mut self, tp: &TopicPartition, before: i64) -> Result<(), StorageError> {
        let r = self.inner.delete_records(tp, before);
        self.count(r)
    }
    fn commit_offsets(
        &mut self,
        group: &str,
        offsets: &[(TopicPartition, CommittedOffset)],
    ) -> Result<(), StorageError> {
        let r = self.inner.commit_offsets(group, offsets);
        self.count(r)
    }
    fn delete_group(&mut self, group: &str) -> Result<(), StorageError> {
        let r = self.inner.delete_group(group);
        self.count(r)
    }
    fn set_next_producer_id(&mut self, next: i64) -> Result<(), StorageError> {
        let r = self.inner.set_next_producer_id(next);
        self.count(r)
    }
    fn put_definition(&mut self, key: &str, value: Option<&Bytes>) -> Result<(), StorageError> {
        let r = self.inner.put_definition(key, value);
        self.count(r)
    }
    fn queue_append(&mut self, queue: &str, messages: &[(u64, Bytes)]) -> Result<(), StorageError> {
        let r = self.inner.queue_append(queue, messages);
        self.count(r)
    }
    fn queue_remove(&mut self, queue: &str, ids: &[u64]) -> Result<(), StorageError> {
        let r = self.inner.queue_remove(queue, ids);
        self.count(r)
    }
    fn queue_read(
        &mut self,
        queue: &str,
        after: Option<u64>,
        max_messages: usize,
        max_bytes: usize,
    ) -> Result<Vec<(u64, Bytes)>, StorageError> {
        self.inner.queue_read(queue, after, max_messages, max_bytes)
    }
    fn queue_remove_from(&mut self, queue: &str, from: u64) -> Result<(), StorageError> {
        let r = self.inner.queue_remove_from(queue, from);
        self.count(r)
    }
    fn queue_delete(&mut self, queue: &str) -> Result<(), StorageError> {
        let r = self.inner.queue_delete(queue);
        self.count(r)
    }
    fn apply_retention(
        &mut self,
        tp: &TopicPartition,
        policy: &RetentionPolicy,
        now_wall: i64,
    ) -> Result<Option<i64>, StorageError> {
        let r = self.inner.apply_retention(tp, policy, now_wall);
        self.count(r)
    }
    fn sync(&mut self) -> Result<(), StorageError> {
        let r = self.inner.sync();
        if r.is_ok() {
            self.writes.reset();
        }
        r
    }
}
