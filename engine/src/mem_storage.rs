//! [`MemStorage`]: a [`Storage`] kept entirely in memory, for tests and ephemeral brokers.
//!
//! Clones share the same contents, so a test can drop an engine and open a new one on what the
//! first one wrote, like a restart.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;

use crate::batch::BatchHeader;
use crate::producer::{RecentBatches, last_sequence};
use crate::storage::{
    CommittedOffset, EncodedBatch, PartitionState, ProducerSnapshot, RecoveredState,
    RetentionPolicy, Storage, StorageError, StoredQueue, TopicMeta, TopicPartition,
};

#[derive(Debug, Default)]
struct MemPartition {
    log_start_offset: i64,
    next_offset: i64,
    batches: BTreeMap<i64, EncodedBatch>,
}

#[derive(Debug, Default)]
struct Inner {
    topics: BTreeMap<String, TopicMeta>,
    partitions: BTreeMap<TopicPartition, MemPartition>,
    offsets: BTreeMap<String, BTreeMap<TopicPartition, CommittedOffset>>,
    next_producer_id: i64,
    definitions: BTreeMap<String, Bytes>,
    queues: BTreeMap<String, BTreeMap<u64, Bytes>>,
    fail_writes: bool,
    appends: u64,
}

/// An in-memory storage backend. Cloning gives another handle on the same contents.
#[derive(Debug, Clone, Default)]
pub struct MemStorage {
    inner: Arc<Mutex<Inner>>,
}

impl MemStorage {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes every later write fail with an IO error (or succeed again), to test error paths.
    pub fn set_fail_writes(&self, fail: bool) {
        self.lock().fail_writes = fail;
    }

    /// How many batches were appended so far.
    pub fn append_count(&self) -> u64 {
        self.lock().appends
    }
}

impl Inner {
    fn check_writable(&self) -> Result<(), StorageError> {
        if self.fail_writes {
            return Err(StorageError::Io(std::io::Error::other(
                "injected write failure",
            )));
        }
        Ok(())
    }

    fn partition(&mut self, tp: &TopicPartition) -> Result<&mut MemPartition, StorageError> {
        self.partitions
            .get_mut(tp)
            .ok_or_else(|| StorageError::UnknownPartition(tp.clone()))
    }
}

fn producer_snapshots(p: &MemPartition) -> Result<Vec<ProducerSnapshot>, StorageError> {
    let mut recent = RecentBatches::default();
    for batch in p.batches.values() {
        let h =
            BatchHeader::parse(&batch.bytes).map_err(|e| StorageError::Corrupt(e.to_string()))?;
        recent.observe(ProducerSnapshot {
            producer_id: h.producer_id,
            producer_epoch: h.producer_epoch,
            first_sequence: h.base_sequence,
            last_sequence: last_sequence(h.base_sequence, h.record_count as usize),
            base_offset: h.base_offset,
        });
    }
    Ok(recent.into_snapshots())
}

fn stored_queue(messages: &BTreeMap<u64, Bytes>) -> StoredQueue {
    StoredQueue {
        count: messages.len() as u64,
        bytes: messages.values().map(|b| b.len() as u64).sum(),
        next_id: messages.keys().next_back().map_or(0, |id| id + 1),
    }
}

impl Storage for MemStorage {
    fn recover(&mut self) -> Result<RecoveredState, StorageError> {
        let inner = self.lock();
        let mut partitions = BTreeMap::new();
        for (tp, p) in &inner.partitions {
            let state = PartitionState {
                log_start_offset: p.log_start_offset,
                next_offset: p.next_offset,
                producers: producer_snapshots(p)?,
            };
            partitions.insert(tp.clone(), state);
        }
        Ok(RecoveredState {
            topics: inner.topics.values().cloned().collect(),
            partitions,
            offsets: inner.offsets.clone(),
            next_producer_id: inner.next_producer_id,
            definitions: inner.definitions.clone(),
            queues: inner
                .queues
                .iter()
                .map(|(q, m)| (q.clone(), stored_queue(m)))
                .collect(),
        })
    }

    fn put_definition(&mut self, key: &str, value: Option<&Bytes>) -> Result<(), StorageError> {
        let mut inner = self.lock();
        inner.check_writable()?;
        match value {
            Some(v) => inner.definitions.insert(key.to_owned(), v.clone()),
            None => inner.definitions.remove(key),
        };
        Ok(())
    }

    fn queue_append(&mut self, queue: &str, messages: &[(u64, Bytes)]) -> Result<(), StorageError> {
        let mut inner = self.lock();
        inner.check_writable()?;
        let q = inner.queues.entry(queue.to_owned()).or_default();
        q.extend(messages.iter().cloned());
        Ok(())
    }

    fn queue_remove(&mut self, queue: &str, ids: &[u64]) -> Result<(), StorageError> {
        let mut inner = self.lock();
        inner.check_writable()?;
        if let Some(q) = inner.queues.get_mut(queue) {
            for id in ids {
                q.remove(id);
            }
        }
        Ok(())
    }

    fn queue_read(
        &mut self,
        queue: &str,
        after: Option<u64>,
        max_messages: usize,
        max_bytes: usize,
    ) -> Result<Vec<(u64, Bytes)>, StorageError> {
        let inner = self.lock();
        let Some(q) = inner.queues.get(queue) else {
            return Ok(Vec::new());
        };
        let from = after.map_or(0, |a| a.saturating_add(1));
        let mut out = Vec::new();
        let mut total = 0;
        for (id, b) in q.range(from..).take(max_messages.max(1)) {
            if !out.is_empty() && total + b.len() > max_bytes {
                break;
            }
            total += b.len();
            out.push((*id, b.clone()));
        }
        Ok(out)
    }

    fn queue_remove_from(&mut self, queue: &str, from: u64) -> Result<(), StorageError> {
        let mut inner = self.lock();
        inner.check_writable()?;
        if let Some(q) = inner.queues.get_mut(queue) {
            q.split_off(&from);
        }
        Ok(())
    }

    fn queue_delete(&mut self, queue: &str) -> Result<(), StorageError> {
        let mut inner = self.lock();
        inner.check_writable()?;
        inner.queues.remove(queue);
        Ok(())
    }

    fn put_topic(&mut self, meta: &TopicMeta) -> Result<(), StorageError> {
        let mut inner = self.lock();
        inner.check_writable()?;
        for partition in 0..meta.partitions {
            let tp = TopicPartition {
                topic: meta.name.clone(),
                partition,
            };
            inner.partitions.entry(tp).or_default();
        }
        inner.topics.insert(meta.name.clone(), meta.clone());
        Ok(())
    }

    fn delete_topic(&mut self, name: &str) -> Result<(), StorageError> {
        let mut inner = self.lock();
        inner.check_writable()?;
        inner.topics.remove(name);
        inner.partitions.retain(|tp, _| tp.topic != name);
        Ok(())
    }

    fn append(&mut self, tp: &TopicPartition, batch: &EncodedBatch) -> Result<(), StorageError> {
        let mut inner = self.lock();
        inner.check_writable()?;
        inner.appends += 1;
        let p = inner.partition(tp)?;
        if batch.base_offset != p.next_offset || batch.last_offset < batch.base_offset {
            return Err(StorageError::Corrupt(format!(
                "append at {} but next offset is {}",
                batch.base_offset, p.next_offset
            )));
        }
        p.next_offset = batch.last_offset + 1;
        p.batches.insert(batch.base_offset, batch.clone());
        Ok(())
    }

    fn read(
        &mut self,
        tp: &TopicPartition,
        offset: i64,
        max_bytes: usize,
    ) -> Result<Vec<Bytes>, StorageError> {
        let mut inner = self.lock();
        let p = inner.partition(tp)?;
        let start = match p.batches.range(..=offset).next_back() {
            Some((&base, b)) if b.last_offset >= offset => base,
            _ => offset,
        };
        let mut out = Vec::new();
        let mut total = 0;
        for b in p.batches.range(start..).map(|(_, b)| &b.bytes) {
            if !out.is_empty() && total + b.len() > max_bytes {
                break;
            }
            total += b.len();
            out.push(b.clone());
        }
        Ok(out)
    }

    fn offset_for_timestamp(
        &mut self,
        tp: &TopicPartition,
        timestamp: i64,
    ) -> Result<Option<i64>, StorageError> {
        let mut inner = self.lock();
        let p = inner.partition(tp)?;
        let start = p.log_start_offset;
        Ok(p.batches
            .values()
            .find(|b| b.last_offset >= start && b.max_timestamp >= timestamp)
            .map(|b| b.base_offset))
    }

    fn delete_records(&mut self, tp: &TopicPartition, before: i64) -> Result<(), StorageError> {
        let mut inner = self.lock();
        inner.check_writable()?;
        let p = inner.partition(tp)?;
        p.log_start_offset = p.log_start_offset.max(before);
        p.batches.retain(|_, b| b.last_offset >= before);
        Ok(())
    }

    fn commit_offsets(
        &mut self,
        group: &str,
        offsets: &[(TopicPartition, CommittedOffset)],
    ) -> Result<(), StorageError> {
        let mut inner = self.lock();
        inner.check_writable()?;
        let g = inner.offsets.entry(group.to_owned()).or_default();
        for (tp, o) in offsets {
            g.insert(tp.clone(), o.clone());
        }
        Ok(())
    }

    fn delete_group(&mut self, group: &str) -> Result<(), StorageError> {
        let mut inner = self.lock();
        inner.check_writable()?;
        inner.offsets.remove(group);
        Ok(())
    }

    fn set_next_producer_id(&mut self, next: i64) -> Result<(), StorageError> {
        let mut inner = self.lock();
        inner.check_writable()?;
        inner.next_producer_id = inner.next_producer_id.max(next);
        Ok(())
    }

    fn sync(&mut self) -> Result<(), StorageError> {
        self.lock().check_writable()
    }

    /// Deletion only (each batch counts as a segment and the last one as the active one);
    /// compaction is not applied in memory.
    fn apply_retention(
        &mut self,
        tp: &TopicPartition,
        policy: &RetentionPolicy,
        now_wall: i64,
    ) -> Result<Option<i64>, StorageError> {
        let mut inner = self.lock();
        inner.check_writable()?;
        let p = inner.partition(tp)?;
        if policy.delete {
            let batches: Vec<&EncodedBatch> = p.batches.values().collect();
            let closed = batches.len().saturating_sub(1);
            let mut count = 0;
            if policy.retention_ms >= 0 {
                let horizon = now_wall.saturating_sub(policy.retention_ms);
                while count < closed && batches[count].max_timestamp < horizon {
                    count += 1;
                }
            }
            if policy.retention_bytes >= 0 {
                let total: usize = batches.iter().map(|b| b.bytes.len()).sum();
                let mut excess = total as i64 - policy.retention_bytes;
                let mut by_size = 0;
                while by_size < closed && excess - batches[by_size].bytes.len() as i64 >= 0 {
                    excess -= batches[by_size].bytes.len() as i64;
                    by_size += 1;
                }
                count = count.max(by_size);
            }
            if count > 0 {
                let start = batches[count].base_offset.max(p.log_start_offset);
                p.log_start_offset = start;
                p.batches.retain(|_, b| b.last_offset >= start);
            }
        }
        Ok(Some(p.log_start_offset))
    }
}
