//! The storage thread: owns the backend and runs the loop's commands in order.

use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread;
use std::time::Duration;

use portask_engine::storage::{Storage, StorageError};

use super::cache::ReadCache;
use super::command::{Command, Read, ReadResult, Write};
use super::{BACKLOG_HIGH_BYTES, Completion};

/// First wait before a write that failed with an IO error is tried again (Redis).
const RETRY_FIRST: Duration = Duration::from_millis(50);
/// Longest wait between tries.
const RETRY_MAX: Duration = Duration::from_secs(2);

/// State the storage thread and the loop share.
pub(super) struct Shared {
    /// Why writes are refused for now (the store is unreachable); cleared when a retried
    /// write lands.
    pub(super) unavailable: Option<String>,
    /// Why writes are refused for good (a write or sync failed in a way that cannot be
    /// retried: what was acknowledged as written may not be).
    pub(super) poisoned: Option<String>,
    /// Completed reads.
    pub(super) reads: ReadCache,
    /// Bytes of writes queued and not yet applied.
    pub(super) backlog_bytes: usize,
    /// Something was written since the last sync was asked for.
    pub(super) unsynced: bool,
    /// The loop stopped reading requests because of the backlog: wake it once the backlog
    /// is down to half the limit.
    pub(super) deferring: bool,
    /// Partitions that retention ran on (their older data may have changed): the loop's
    /// tail cache forgets them.
    pub(super) retained: Vec<portask_engine::storage::TopicPartition>,
    /// Completions not yet taken by the loop.
    pub(super) completions: Vec<Completion>,
}

/// Locks the shared state; a panic on the other side never leaves it half-updated in a way
/// that matters more than stopping would, so a poisoned lock is taken as is.
pub(super) fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Forgets completed reads that `w` changes the answer of. The loop forgets them too when
/// it queues the write; this catches reads queued before the write that completed after.
fn forget_changed_reads(reads: &mut ReadCache, w: &Write) {
    match w {
        Write::Append(tp, _) => reads.appended(tp),
        Write::DeleteTopic(topic) => reads.invalidate_topic(topic),
        Write::DeleteRecords(tp, _) => reads.invalidate(tp),
        Write::QueueRemoveFrom(queue, _) | Write::QueueDelete(queue) => {
            reads.invalidate_queue(queue)
        }
        _ => {}
    }
}

/// The thread's side: the backend and what it reports to.
pub(super) struct StorageThread {
    pub(super) backend: Box<dyn Storage + Send>,
    pub(super) shared: Arc<Mutex<Shared>>,
    /// Wakes the event loop; set once the loop exists.
    pub(super) waker: Arc<OnceLock<mio::Waker>>,
    /// Whether IO errors of writes are transient (a network store) and retried with back-off
    /// until they succeed, instead of poisoning the store.
    pub(super) retry_io: bool,
}

impl StorageThread {
    /// Runs commands until the loop's side is dropped.
    pub(super) fn run(mut self, commands: Receiver<Command>) {
        while let Ok(cmd) = commands.recv() {
            match cmd {
                Command::Write(w) => self.write(&w),
                Command::Read(read, max_bytes) => self.read(read, max_bytes),
                Command::Barrier(generation, fsync) => {
                    let result = match fsync {
                        true => self.sync(),
                        false => self.writable(),
                    };
                    self.report(Completion::Synced { generation, result });
                }
                Command::Retention(tp, policy, wall) => {
                    let result = self
                        .writable()
                        .and_then(|()| self.backend.apply_retention(&tp, &policy, wall));
                    let mut sh = lock(&self.shared);
                    sh.reads.invalidate(&tp);
                    if !sh.retained.contains(&tp) {
                        sh.retained.push(tp.clone());
                    }
                    drop(sh);
                    match result {
                        Ok(start) => self.report(Completion::Retention { tp, start }),
                        Err(e) => eprintln!("portask: storage: retention of {tp:?} failed: {e}"),
                    }
                }
                Command::Recover(reply) => {
                    let _ = reply.send(self.backend.recover());
                }
                Command::SyncNow(reply) => {
                    let _ = reply.send(self.sync());
                }
            }
        }
    }

    fn writable(&self) -> Result<(), StorageError> {
        match lock(&self.shared).poisoned {
            Some(_) => Err(StorageError::Poisoned),
            None => Ok(()),
        }
    }

    fn sync(&mut self) -> Result<(), StorageError> {
        self.writable()?;
        let r = self.backend.sync();
        if let Err(e) = &r {
            self.poison(format!("sync failed: {e}"));
        }
        r
    }

    /// Applies a write; IO errors of a network store are retried until the write lands.
    fn write(&mut self, w: &Write) {
        let mut wait = RETRY_FIRST;
        let result = loop {
            if self.writable().is_err() {
                break Ok(());
            }
            match w.apply(self.backend.as_mut()) {
                Err(StorageError::Io(e)) if self.retry_io => {
                    let mut sh = lock(&self.shared);
                    if sh.unavailable.is_none() {
                        eprintln!(
                            "portask: storage: unreachable ({e}); writes are refused and the \
                             pending ones retried until it answers"
                        );
                    }
                    sh.unavailable = Some(e.to_string());
                    drop(sh);
                    thread::sleep(wait);
                    wait = (wait * 2).min(RETRY_MAX);
                }
                other => break other,
            }
        };
        let mut sh = lock(&self.shared);
        sh.backlog_bytes = sh.backlog_bytes.saturating_sub(w.payload_bytes());
        forget_changed_reads(&mut sh.reads, w);
        if result.is_ok() && sh.unavailable.take().is_some() {
            eprintln!("portask: storage: reachable again; writes are accepted");
        }
        let drained = sh.deferring && sh.backlog_bytes <= BACKLOG_HIGH_BYTES / 2;
        if drained {
            sh.deferring = false;
        }
        drop(sh);
        if drained && let Some(waker) = self.waker.get() {
            let _ = waker.wake();
        }
        if let Err(e) = result {
            self.poison(format!("a write failed: {e}"));
        }
    }

    fn read(&mut self, read: Read, max_bytes: usize) {
        let result =
            match &read {
                Read::Batches(tp, offset) => {
                    ReadResult::Batches(self.backend.read(tp, *offset, max_bytes))
                }
                Read::Timestamp(tp, ts) => {
                    ReadResult::Timestamp(self.backend.offset_for_timestamp(tp, *ts))
                }
                Read::Queue(queue, after, max_messages) => ReadResult::Queue(
                    self.backend
                        .queue_read(queue, *after, *max_messages, max_bytes),
                ),
            };
        lock(&self.shared).reads.complete(read, result);
        self.report(Completion::ReadsDone);
    }

    /// Refuses every later write: the data acknowledged as written may not be.
    fn poison(&self, why: String) {
        let mut sh = lock(&self.shared);
        if sh.poisoned.is_none() {
            eprintln!("portask: storage: {why}; writes are refused from now on");
            sh.poisoned = Some(why);
        }
    }

    fn report(&self, c: Completion) {
        let mut sh = lock(&self.shared);
        let was_empty = sh.completions.is_empty();
        sh.completions.push(c);
        drop(sh);
        if was_empty && let Some(w) = self.waker.get() {
            let _ = w.wake();
        }
    }
}
