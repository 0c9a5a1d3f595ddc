//! What the loop can answer without the storage thread: the newest appended batches of each
//! partition (the tail that consumers keep up with) and the results of completed reads.

use std::collections::{HashMap, HashSet, VecDeque};

use bytes::Bytes;
use portask_engine::storage::{EncodedBatch, StorageError, TopicPartition};

use super::command::{Read, ReadResult};

/// The newest appended batches, up to a byte budget over all partitions; the oldest go first.
#[derive(Debug)]
pub(super) struct TailCache {
    budget: usize,
    bytes: usize,
    /// Per partition, contiguous batches: (base offset, last offset, bytes).
    parts: HashMap<TopicPartition, VecDeque<(i64, i64, Bytes)>>,
    /// Every cached batch in append order, to evict the oldest first.
    order: VecDeque<TopicPartition>,
}

impl TailCache {
    pub(super) fn new(budget: usize) -> Self {
        Self {
            budget,
            bytes: 0,
            parts: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// Remembers an appended batch (the partition's next one).
    pub(super) fn append(&mut self, tp: &TopicPartition, batch: &EncodedBatch) {
        let size = batch.bytes.len();
        if size > self.budget {
            self.forget(tp);
            return;
        }
        let part = self.parts.entry(tp.clone()).or_default();
        if part.back().is_some_and(|b| b.1 + 1 != batch.base_offset) {
            // Not contiguous (never expected): start over so reads never skip offsets.
            self.forget(tp);
        }
        let part = self.parts.entry(tp.clone()).or_default();
        part.push_back((batch.base_offset, batch.last_offset, batch.bytes.clone()));
        self.bytes += size;
        self.order.push_back(tp.clone());
        while self.bytes > self.budget {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if let Some(part) = self.parts.get_mut(&oldest)
                && let Some((_, _, b)) = part.pop_front()
            {
                self.bytes -= b.len();
                if part.is_empty() {
                    self.parts.remove(&oldest);
                }
            }
        }
    }

    /// The batches from the one holding `offset` on, up to `max_bytes` (at least one), when
    /// the cache holds `offset`.
    pub(super) fn read(
        &self,
        tp: &TopicPartition,
        offset: i64,
        max_bytes: usize,
    ) -> Option<Vec<Bytes>> {
        let part = self.parts.get(tp)?;
        if part.front()?.0 > offset {
            return None;
        }
        let first = part.partition_point(|b| b.1 < offset);
        let mut out = Vec::new();
        let mut total = 0;
        for (_, _, bytes) in part.range(first..) {
            if !out.is_empty() && total + bytes.len() > max_bytes {
                break;
            }
            total += bytes.len();
            out.push(bytes.clone());
        }
        Some(out)
    }

    /// Drops the batches that end below `before`.
    pub(super) fn delete_before(&mut self, tp: &TopicPartition, before: i64) {
        let Some(part) = self.parts.get_mut(tp) else {
            return;
        };
        let mut dropped = 0;
        while part.front().is_some_and(|b| b.1 < before) {
            let (_, _, b) = part.pop_front().expect("checked");
            self.bytes -= b.len();
            dropped += 1;
        }
        if part.is_empty() {
            self.parts.remove(tp);
        }
        self.drop_order(tp, dropped);
    }

    /// Drops a partition's batches.
    pub(super) fn forget(&mut self, tp: &TopicPartition) {
        if let Some(part) = self.parts.remove(tp) {
            self.bytes -= part.iter().map(|b| b.2.len()).sum::<usize>();
            self.drop_order(tp, part.len());
        }
    }

    /// Removes the `n` oldest entries of `tp` from the eviction order.
    fn drop_order(&mut self, tp: &TopicPartition, mut n: usize) {
        if n > 0 {
            self.order.retain(|t| {
                let drop = n > 0 && t == tp;
                n -= usize::from(drop);
                !drop
            });
        }
    }

    /// Drops every partition of a topic.
    pub(super) fn forget_topic(&mut self, topic: &str) {
        let tps: Vec<TopicPartition> = (self.parts.keys())
            .filter(|tp| tp.topic == topic)
            .cloned()
            .collect();
        for tp in &tps {
            self.forget(tp);
        }
    }
}

/// Results of reads the storage thread completed, kept (up to a byte budget and an entry
/// count) until they are evicted or their partition changes, so a request that waited for
/// several reads finds all of them when it runs again.
#[derive(Debug)]
pub(super) struct ReadCache {
    budget: usize,
    bytes: usize,
    done: HashMap<Read, ReadResult>,
    order: VecDeque<Read>,
    /// Reads sent to the storage thread and not completed.
    in_flight: HashSet<Read>,
    /// Partitions with a cached timestamp lookup that found nothing.
    lookups_without_answer: HashSet<TopicPartition>,
}

/// Most completed reads kept.
const READS_MAX: usize = 4096;

impl ReadCache {
    pub(super) fn new(budget: usize) -> Self {
        Self {
            budget,
            bytes: 0,
            done: HashMap::new(),
            order: VecDeque::new(),
            in_flight: HashSet::new(),
            lookups_without_answer: HashSet::new(),
        }
    }

    /// The completed result of `read`: a copy of a partition read (errors are taken, so
    /// the read runs again); a queue read is taken (the queue's store changes as its
    /// messages are delivered and acknowledged, and the engine reads each part once).
    pub(super) fn get(&mut self, read: &Read) -> Option<ReadResult> {
        match self.done.get(read)? {
            ReadResult::Batches(Ok(b)) => Some(ReadResult::Batches(Ok(b.clone()))),
            ReadResult::Timestamp(Ok(t)) => Some(ReadResult::Timestamp(Ok(*t))),
            ReadResult::Batches(Err(_)) | ReadResult::Timestamp(Err(_)) | ReadResult::Queue(_) => {
                let result = self.done.remove(read)?;
                self.bytes -= size_of_result(&result);
                self.order.retain(|r| r != read);
                Some(result)
            }
        }
    }

    /// Forgets completed reads of a queue's store (it was purged or deleted).
    pub(super) fn invalidate_queue(&mut self, queue: &str) {
        self.forget(|r, _| matches!(r, Read::Queue(q, _, _) if q == queue));
    }

    /// Marks `read` as sent; false when it already is.
    pub(super) fn start(&mut self, read: &Read) -> bool {
        self.in_flight.insert(read.clone())
    }

    /// Stores the result of a completed read.
    pub(super) fn complete(&mut self, read: Read, result: ReadResult) {
        self.in_flight.remove(&read);
        if let (Read::Timestamp(tp, _), ReadResult::Timestamp(Ok(None))) = (&read, &result) {
            self.lookups_without_answer.insert(tp.clone());
        }
        self.bytes += size_of_result(&result);
        if let Some(old) = self.done.insert(read.clone(), result) {
            self.bytes -= size_of_result(&old);
            self.order.retain(|r| r != &read);
        }
        self.order.push_back(read);
        // The newest result stays even when it alone passes the budget: a request waits for it.
        while (self.bytes > self.budget || self.done.len() > READS_MAX) && self.order.len() > 1 {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if let Some(old) = self.done.remove(&oldest) {
                self.bytes -= size_of_result(&old);
            }
        }
    }

    /// Forgets completed reads of a partition (its data changed).
    pub(super) fn invalidate(&mut self, tp: &TopicPartition) {
        self.forget(|r, _| matches!(r, Read::Batches(t, _) | Read::Timestamp(t, _) if t == tp));
    }

    /// Forgets the timestamp lookups of a partition that found nothing: an append can give
    /// them an answer (one that found a record keeps it, as appends go after it).
    pub(super) fn appended(&mut self, tp: &TopicPartition) {
        if !self.lookups_without_answer.remove(tp) {
            return;
        }
        self.forget(|r, result| {
            matches!(r, Read::Timestamp(t, _) if t == tp)
                && matches!(result, ReadResult::Timestamp(Ok(None)))
        });
    }

    /// Forgets the completed reads `stale` picks.
    fn forget(&mut self, stale: impl Fn(&Read, &ReadResult) -> bool) {
        let mut freed = 0;
        let mut gone = Vec::new();
        self.done.retain(|r, result| {
            let keep = !stale(r, result);
            if !keep {
                freed += size_of_result(result);
                gone.push(r.clone());
            }
            keep
        });
        if gone.is_empty() {
            return;
        }
        self.bytes -= freed;
        self.order.retain(|r| !gone.contains(r));
    }

    /// Forgets completed reads of every partition of a topic.
    pub(super) fn invalidate_topic(&mut self, topic: &str) {
        self.forget(
            |r, _| matches!(r, Read::Batches(t, _) | Read::Timestamp(t, _) if t.topic == topic),
        );
    }
}

fn size_of_result(r: &ReadResult) -> usize {
    match r {
        ReadResult::Batches(Ok(b)) => b.iter().map(Bytes::len).sum(),
        ReadResult::Queue(Ok(m)) => m.iter().map(|(_, b)| b.len()).sum(),
        _ => 0,
    }
}

/// Turns a cached result into what [`portask_engine::Storage::read`] returns.
pub(super) fn batches(r: ReadResult) -> Result<Vec<Bytes>, StorageError> {
    match r {
        ReadResult::Batches(b) => b,
        _ => Err(StorageError::Pending),
    }
}

/// Turns a cached result into what [`portask_engine::Storage::offset_for_timestamp`] returns.
pub(super) fn timestamp(r: ReadResult) -> Result<Option<i64>, StorageError> {
    match r {
        ReadResult::Timestamp(t) => t,
        _ => Err(StorageError::Pending),
    }
}

/// Turns a cached result into what [`portask_engine::Storage::queue_read`] returns.
pub(super) fn queue(r: ReadResult) -> Result<Vec<(u64, Bytes)>, StorageError> {
    match r {
        ReadResult::Queue(m) => m,
        _ => Err(StorageError::Pending),
    }
}
