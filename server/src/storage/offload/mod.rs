//! Storage IO off the event loop (ARCHITECTURE.md, "IO is an effect").
//!
//! [`start`] moves a backend onto a storage thread and returns two handles. The engine writes
//! through [`OffloadedStorage`]: writes are queued to the thread in order and return at once;
//! reads are answered from the tail cache (the newest appended batches of each partition,
//! which consumers that keep up read) or from completed reads, and otherwise start a read on
//! the thread and answer [`StorageError::Pending`]. The worker holds [`StorageEvents`]: it
//! asks for barriers by generation (the writes before it applied, and with an fsync also
//! durable) and takes [`Completion`]s when the thread wakes the loop, then releases the
//! acknowledgements that waited for a barrier and re-runs what waited for a read.
//!
//! A write that fails poisons the store (later writes and syncs fail, so nothing more is
//! acknowledged), except an IO error of a network store (Redis), which is retried with
//! back-off until it lands; meanwhile new writes are refused with the error, so clients get
//! retriable errors, and the acknowledgements queued behind the retried write wait for it.

mod cache;
mod command;
mod thread;

#[cfg(test)]
mod tests;

use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use portask_engine::storage::{
    CommittedOffset, EncodedBatch, RecoveredState, RetentionPolicy, Storage, StorageError,
    TopicMeta, TopicPartition,
};

use cache::{ReadCache, TailCache};
use command::{Command, Read, Write};
use thread::{Shared, StorageThread, lock};

/// Bytes of the newest appended batches kept for reads, over all partitions.
pub const TAIL_CACHE_BYTES: usize = 8 << 20;
/// Bytes of completed reads kept (the newest one is kept even when larger).
const READ_CACHE_BYTES: usize = 8 << 20;
/// Most bytes one partition read on the storage thread returns (past its first batch), so
/// the reads one request waits for fit in the read cache together.
const READ_BYTES_MAX: usize = 1 << 20;
/// Most bytes one queue read returns (past its first message).
const QUEUE_READ_BYTES_MAX: usize = 4 << 20;
/// Queued write bytes above which the worker stops reading requests until the thread
/// catches up.
pub const BACKLOG_HIGH_BYTES: usize = 8 << 20;
/// How long the loop waits for a sync at shutdown.
const SYNC_NOW_TIMEOUT: Duration = Duration::from_secs(30);

/// Something the storage thread finished.
#[derive(Debug)]
pub enum Completion {
    /// Every write queued before barrier `generation` is applied (and durable, for a
    /// barrier that syncs), or applying or syncing failed.
    Synced {
        /// The generation [`StorageEvents::barrier`] returned.
        generation: u64,
        /// The outcome.
        result: Result<(), StorageError>,
    },
    /// Reads completed: what answered [`StorageError::Pending`] can run again.
    ReadsDone,
    /// Retention ran on a partition; `start` is its log start offset afterwards (`None`:
    /// the backend does not apply retention).
    Retention {
        /// The partition.
        tp: TopicPartition,
        /// Its new log start offset.
        start: Option<i64>,
    },
}

/// Moves `backend` onto a new storage thread. `retry_io`: IO errors of writes are transient
/// (a network store) and retried rather than poisoning the store.
pub fn start(
    backend: Box<dyn Storage + Send>,
    retry_io: bool,
) -> std::io::Result<(OffloadedStorage, StorageEvents)> {
    let shared = Arc::new(Mutex::new(Shared {
        unavailable: None,
        poisoned: None,
        reads: ReadCache::new(READ_CACHE_BYTES),
        backlog_bytes: 0,
        unsynced: false,
        deferring: false,
        retained: Vec::new(),
        completions: Vec::new(),
    }));
    let waker = Arc::new(OnceLock::new());
    let (tx, rx) = mpsc::channel();
    let io = StorageThread {
        backend,
        shared: shared.clone(),
        waker: waker.clone(),
        retry_io,
    };
    std::thread::Builder::new()
        .name("portask-storage".into())
        .spawn(move || io.run(rx))?;
    let storage = OffloadedStorage {
        tx: tx.clone(),
        shared: shared.clone(),
        tails: TailCache::new(TAIL_CACHE_BYTES),
    };
    let events = StorageEvents {
        tx,
        shared,
        waker,
        next_generation: 1,
    };
    Ok((storage, events))
}

/// The engine's storage: queues writes, answers reads from caches or starts them.
pub struct OffloadedStorage {
    tx: Sender<Command>,
    shared: Arc<Mutex<Shared>>,
    tails: TailCache,
}

fn gone() -> StorageError {
    StorageError::Io(std::io::Error::other("the storage thread has stopped"))
}

impl OffloadedStorage {
    /// Queues a write, unless the store refuses writes now.
    fn write(&mut self, w: Write) -> Result<(), StorageError> {
        let mut sh = lock(&self.shared);
        if sh.poisoned.is_some() {
            return Err(StorageError::Poisoned);
        }
        if let Some(why) = &sh.unavailable {
            let msg = format!("storage unreachable: {why}");
            return Err(StorageError::Io(std::io::Error::other(msg)));
        }
        sh.backlog_bytes += w.payload_bytes();
        sh.unsynced = true;
        drop(sh);
        self.tx.send(Command::Write(w)).map_err(|_| gone())
    }

    /// The cached result of `read`, or `Pending` after starting it.
    fn start_read(
        &mut self,
        read: Read,
        max_bytes: usize,
    ) -> Result<command::ReadResult, StorageError> {
        let mut sh = lock(&self.shared);
        if let Some(done) = sh.reads.get(&read) {
            return Ok(done);
        }
        if sh.reads.start(&read) {
            drop(sh);
            self.tx
                .send(Command::Read(read, max_bytes))
                .map_err(|_| gone())?;
        }
        Err(StorageError::Pending)
    }

    /// Sends `cmd` built around a reply channel and waits for the answer.
    fn ask<T>(
        &self,
        cmd: impl FnOnce(mpsc::SyncSender<Result<T, StorageError>>) -> Command,
        timeout: Option<Duration>,
    ) -> Result<T, StorageError> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.tx.send(cmd(reply)).map_err(|_| gone())?;
        let got = match timeout {
            Some(t) => answer.recv_timeout(t).map_err(|_| {
                StorageError::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "storage did not answer in time",
                ))
            }),
            None => answer.recv().map_err(|_| gone()),
        };
        got?
    }
}

impl Storage for OffloadedStorage {
    fn recover(&mut self) -> Result<RecoveredState, StorageError> {
        self.ask(Command::Recover, None)
    }
    fn put_topic(&mut self, meta: &TopicMeta) -> Result<(), StorageError> {
        self.write(Write::PutTopic(meta.clone()))
    }
    fn delete_topic(&mut self, name: &str) -> Result<(), StorageError> {
        self.write(Write::DeleteTopic(name.to_owned()))?;
        self.tails.forget_topic(name);
        lock(&self.shared).reads.invalidate_topic(name);
        Ok(())
    }
    fn append(&mut self, tp: &TopicPartition, batch: &EncodedBatch) -> Result<(), StorageError> {
        self.write(Write::Append(tp.clone(), batch.clone()))?;
        self.tails.append(tp, batch);
        Ok(())
    }
    fn read(
        &mut self,
        tp: &TopicPartition,
        offset: i64,
        max_bytes: usize,
    ) -> Result<Vec<Bytes>, StorageError> {
        let retained = std::mem::take(&mut lock(&self.shared).retained);
        for tp in &retained {
            self.tails.forget(tp);
        }
        if let Some(batches) = self.tails.read(tp, offset, max_bytes) {
            return Ok(batches);
        }
        let read = Read::Batches(tp.clone(), offset);
        let max_bytes = max_bytes.min(READ_BYTES_MAX);
        self.start_read(read, max_bytes).and_then(cache::batches)
    }
    fn offset_for_timestamp(
        &mut self,
        tp: &TopicPartition,
        timestamp: i64,
    ) -> Result<Option<i64>, StorageError> {
        let read = Read::Timestamp(tp.clone(), timestamp);
        self.start_read(read, 0).and_then(cache::timestamp)
    }
    fn delete_records(&mut self, tp: &TopicPartition, before: i64) -> Result<(), StorageError> {
        self.write(Write::DeleteRecords(tp.clone(), before))?;
        self.tails.delete_before(tp, before);
        lock(&self.shared).reads.invalidate(tp);
        Ok(())
    }
    fn commit_offsets(
        &mut self,
        group: &str,
        offsets: &[(TopicPartition, CommittedOffset)],
    ) -> Result<(), StorageError> {
        self.write(Write::CommitOffsets(group.to_owned(), offsets.to_vec()))
    }
    fn delete_group(&mut self, group: &str) -> Result<(), StorageError> {
        self.write(Write::DeleteGroup(group.to_owned()))
    }
    fn set_next_producer_id(&mut self, next: i64) -> Result<(), StorageError> {
        self.write(Write::SetNextProducerId(next))
    }
    fn put_definition(&mut self, key: &str, value: Option<&Bytes>) -> Result<(), StorageError> {
        self.write(Write::PutDefinition(key.to_owned(), value.cloned()))
    }
    fn queue_append(&mut self, queue: &str, messages: &[(u64, Bytes)]) -> Result<(), StorageError> {
        self.write(Write::QueueAppend(queue.to_owned(), messages.to_vec()))
    }
    fn queue_remove(&mut self, queue: &str, ids: &[u64]) -> Result<(), StorageError> {
        self.write(Write::QueueRemove(queue.to_owned(), ids.to_vec()))
    }
    fn queue_read(
        &mut self,
        queue: &str,
        after: Option<u64>,
        max_messages: usize,
        max_bytes: usize,
    ) -> Result<Vec<(u64, Bytes)>, StorageError> {
        let read = Read::Queue(queue.to_owned(), after, max_messages);
        let max_bytes = max_bytes.min(QUEUE_READ_BYTES_MAX);
        self.start_read(read, max_bytes).and_then(cache::queue)
    }
    fn queue_remove_from(&mut self, queue: &str, from: u64) -> Result<(), StorageError> {
        self.write(Write::QueueRemoveFrom(queue.to_owned(), from))?;
        lock(&self.shared).reads.invalidate_queue(queue);
        Ok(())
    }
    fn queue_delete(&mut self, queue: &str) -> Result<(), StorageError> {
        self.write(Write::QueueDelete(queue.to_owned()))?;
        lock(&self.shared).reads.invalidate_queue(queue);
        Ok(())
    }
    /// Waits until every queued write is durable (at shutdown; the worker's syncs go through
    /// [`StorageEvents::barrier`] and do not wait).
    fn sync(&mut self) -> Result<(), StorageError> {
        lock(&self.shared).unsynced = false;
        self.ask(Command::SyncNow, Some(SYNC_NOW_TIMEOUT))
    }
    /// Starts retention on the storage thread; the new log start offset arrives as a
    /// [`Completion::Retention`], so this answers `None`.
    fn apply_retention(
        &mut self,
        tp: &TopicPartition,
        policy: &RetentionPolicy,
        now_wall: i64,
    ) -> Result<Option<i64>, StorageError> {
        let cmd = Command::Retention(tp.clone(), *policy, now_wall);
        self.tx.send(cmd).map_err(|_| gone())?;
        Ok(None)
    }
}

/// The worker's side: syncs by generation, completions, back-pressure.
pub struct StorageEvents {
    tx: Sender<Command>,
    shared: Arc<Mutex<Shared>>,
    waker: Arc<OnceLock<mio::Waker>>,
    next_generation: u64,
}

impl StorageEvents {
    /// Lets the storage thread wake the loop through `waker` when it completes something.
    pub fn set_waker(&self, waker: mio::Waker) {
        let _ = self.waker.set(waker);
    }

    /// Asks to be told when every write queued so far is applied and, with `fsync`, durable;
    /// returns the generation a [`Completion::Synced`] will report.
    pub fn barrier(&mut self, fsync: bool) -> u64 {
        let generation = self.next_generation;
        self.next_generation += 1;
        if self.tx.send(Command::Barrier(generation, fsync)).is_err() {
            // The thread is gone: report the failure the way the thread would.
            let result = Err(gone());
            lock(&self.shared)
                .completions
                .push(Completion::Synced { generation, result });
        }
        generation
    }

    /// Whether anything was written since the last call; clears the mark.
    pub fn take_unsynced(&self) -> bool {
        std::mem::take(&mut lock(&self.shared).unsynced)
    }

    /// The generation of the newest barrier asked for (0: none yet).
    pub fn last_barrier(&self) -> u64 {
        self.next_generation - 1
    }

    /// Takes what the storage thread completed since the last call.
    pub fn take_completions(&self) -> Vec<Completion> {
        std::mem::take(&mut lock(&self.shared).completions)
    }

    /// Whether writes are refused: the store is unreachable for now (the pending writes are
    /// retried) or poisoned for good.
    pub fn unavailable(&self) -> bool {
        let sh = lock(&self.shared);
        sh.unavailable.is_some() || sh.poisoned.is_some()
    }

    /// Whether so many write bytes wait for the thread that requests should wait too; if
    /// so, the thread wakes the loop once the backlog is down to half the limit.
    pub fn backlog_high(&self) -> bool {
        let mut sh = lock(&self.shared);
        let high = sh.backlog_bytes > BACKLOG_HIGH_BYTES;
        sh.deferring = high;
        high
    }
}
