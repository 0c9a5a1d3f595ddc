//! The event loop: one `mio::Poll` owning the listeners, the connections and the broker.
//!
//! Each turn: poll, take what the storage thread completed, serve the ready connections
//! (responses go to per-connection write buffers), complete parked work, then write the
//! buffers out. Storage IO runs on the storage thread ([`crate::storage::offload`]). A turn
//! that wrote anything asks for a barrier and fences the output of the connections with
//! the barrier's generation: that output reaches the socket only once the writes before
//! the barrier are applied and, with `storage.fsync = "always"`, durable. So no
//! acknowledgement is sent before the data it covers is stored, all the requests of a turn
//! share one fsync (group commit), and the loop goes on serving while the storage works.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mio::net::{TcpListener, UnixStream};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use crate::broker::Broker;
use crate::config::FsyncPolicy;
use crate::conn::{Conn, Kind};
use crate::load::LoadSampler;
use crate::storage::offload::{Completion, StorageEvents};
use crate::{admin, amqp, kafka, portask};
use portask_engine::StorageError;

/// Token of the signal pipe.
const SIGNALS: Token = Token(0);
/// Token of the storage thread's waker.
const STORAGE: Token = Token(15);
/// Tokens of listeners start here; connections start at `FIRST_CONN`.
const FIRST_LISTENER: usize = 1;
const FIRST_CONN: usize = 16;
/// Passes over parked requests per loop turn.
const RESCANS_MAX: usize = 4;

/// A bound listener and the protocol it serves.
#[derive(Debug)]
pub struct Listener {
    /// The socket.
    pub sock: TcpListener,
    /// Its protocol.
    pub kind: Kind,
}

impl Listener {
    /// Binds `addr`; the error names the address and the protocol.
    pub fn bind(addr: SocketAddr, kind: Kind) -> io::Result<Self> {
        let sock = TcpListener::bind(addr).map_err(|e| {
            io::Error::new(e.kind(), format!("cannot listen on {addr} ({kind:?}): {e}"))
        })?;
        Ok(Self { sock, kind })
    }
}

/// The time values passed to everything the loop drives during one turn.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    /// Monotonic milliseconds since the worker started.
    pub mono: u64,
    /// Milliseconds since the Unix epoch.
    pub wall: i64,
}

/// When the worker fsyncs storage (`storage.fsync` and `storage.fsync_interval_ms`).
#[derive(Debug, Clone)]
pub struct Durability {
    /// The policy.
    pub policy: FsyncPolicy,
    /// Period of the fsync with [`FsyncPolicy::IntervalMs`].
    pub interval_ms: u64,
}

impl Default for Durability {
    fn default() -> Self {
        Self {
            policy: FsyncPolicy::Always,
            interval_ms: 100,
        }
    }
}

/// One event loop and everything it owns.
pub struct Worker {
    poll: Poll,
    listeners: Vec<Listener>,
    conns: Slab<Conn>,
    broker: Broker,
    signals: UnixStream,
    started: Instant,
    next_serial: u32,
    still_ready: Vec<usize>,
    durability: Durability,
    /// The storage thread's completions and syncs.
    storage: StorageEvents,
    /// The newest barrier generation reported done.
    barrier_done: u64,
    /// Connections not served while the storage thread has too much to write.
    deferred: Vec<usize>,
    /// With [`FsyncPolicy::IntervalMs`]: when the oldest unsynced write must be synced
    /// (monotonic ms).
    sync_due: Option<u64>,
    /// Load samples for adaptive compression, when it is on.
    load: Option<LoadSampler>,
}

impl Worker {
    /// Registers the listeners and the signal pipe's read end, and lets the storage thread
    /// behind `storage` wake the loop.
    pub fn new(
        listeners: Vec<Listener>,
        broker: Broker,
        signals: UnixStream,
        storage: StorageEvents,
    ) -> io::Result<Self> {
        let poll = Poll::new()?;
        storage.set_waker(mio::Waker::new(poll.registry(), STORAGE)?);
        let mut worker = Self {
            poll,
            listeners,
            conns: Slab::new(),
            broker,
            signals,
            started: Instant::now(),
            next_serial: 0,
            still_ready: Vec::new(),
            durability: Durability::default(),
            storage,
            barrier_done: 0,
            deferred: Vec::new(),
            sync_due: None,
            load: None,
        };
        worker
            .poll
            .registry()
            .register(&mut worker.signals, SIGNALS, Interest::READABLE)?;
        for (i, l) in worker.listeners.iter_mut().enumerate() {
            worker.poll.registry().register(
                &mut l.sock,
                Token(FIRST_LISTENER + i),
                Interest::READABLE,
            )?;
        }
        Ok(worker)
    }

    /// Samples CPU, memory and request time once a second for the adaptive compression
    /// controller; RSS is compared with `memory_limit_bytes` (0: the machine's memory).
    pub fn with_load_sampling(mut self, memory_limit_bytes: u64) -> Self {
        self.load = Some(LoadSampler::new(memory_limit_bytes));
        self
    }

    /// Sets when storage is fsynced (the default is [`FsyncPolicy::Always`]: a barrier with
    /// an fsync after every turn that wrote).
    pub fn with_durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    fn now(&self) -> Now {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        Now {
            mono: self.started.elapsed().as_millis() as u64,
            wall: wall as i64,
        }
    }

    /// Runs until SIGTERM or SIGINT, then syncs storage. Returns the broker for inspection.
    pub fn run(mut self) -> io::Result<Broker> {
        let mut events = Events::with_capacity(1024);
        loop {
            let timeout = self.poll_timeout();
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            let now = self.now();
            let mut dirty = std::mem::take(&mut self.still_ready);
            for event in &events {
                match event.token() {
                    SIGNALS => return self.shut_down(),
                    STORAGE => {}
                    Token(t) if t < FIRST_CONN => self.accept(t - FIRST_LISTENER),
                    Token(t) => dirty.push(t - FIRST_CONN),
                }
            }
            self.storage_completions(now);
            self.broker.storage_unavailable = self.storage.unavailable();
            // While the storage thread is behind, requests wait (back-pressure on clients).
            if self.storage.backlog_high() {
                self.deferred.append(&mut dirty);
                self.deferred.sort_unstable();
                self.deferred.dedup();
            } else {
                dirty.append(&mut self.deferred);
            }
            // Once per turn, so each connection's output of the turn gets one fence.
            dirty.sort_unstable();
            dirty.dedup();
            let turn_started = Instant::now();
            for &key in &dirty {
                self.serve(key, now);
            }
            self.after_turn(now, &mut dirty);
            if let Some(load) = self.load.as_mut().filter(|_| !dirty.is_empty()) {
                load.record_turn(turn_started.elapsed());
            }
            self.observe_load(now);
            dirty.sort_unstable();
            dirty.dedup();
            self.request_sync();
            for key in dirty {
                self.finish(key);
            }
        }
    }

    /// After a turn that wrote, fences the output of the connections behind a storage
    /// barrier: with `always` the barrier fsyncs, so acknowledgements wait until
    /// their data is durable; with the other policies it only waits until the writes are
    /// applied (in the page cache, which survives the broker's own crash). With
    /// `interval_ms`, an fsync also runs once the oldest unsynced write is that old.
    fn request_sync(&mut self) {
        let wrote = self.storage.take_unsynced();
        let policy = self.durability.policy;
        let generation = match wrote {
            true => self.storage.barrier(policy == FsyncPolicy::Always),
            // While the store is unreachable nothing is answered as stored without a write
            // (retried produces are refused), so errors and heartbeats go out at once.
            false if self.broker.storage_unavailable => 0,
            // Output that wrote nothing can still report on data whose barrier is pending
            // (a retried produce answered as a duplicate): it waits for that barrier too.
            false => self.storage.last_barrier(),
        };
        if generation > self.barrier_done {
            // Every connection, not only the served ones: output can be produced for any
            // (deliveries, group replies), and none of it may pass the data it reports on.
            for (_, conn) in &mut self.conns {
                conn.fence(generation);
            }
        }
        if self.broker.storage_unavailable {
            self.close_fenced();
        }
        if policy == FsyncPolicy::IntervalMs {
            let now = self.started.elapsed().as_millis() as u64;
            if wrote && self.sync_due.is_none() {
                self.sync_due = Some(now + self.durability.interval_ms);
            }
            if self.sync_due.is_some_and(|due| now >= due) {
                self.sync_due = None;
                self.storage.barrier(true);
            }
        }
    }

    /// Takes what the storage thread completed: releases output that waited for a sync,
    /// re-runs what waited for a read, and moves log start offsets after retention.
    fn storage_completions(&mut self, now: Now) {
        for completion in self.storage.take_completions() {
            match completion {
                Completion::Synced {
                    generation,
                    result: Ok(()),
                } => {
                    self.barrier_done = self.barrier_done.max(generation);
                    let released: Vec<usize> = (self.conns.iter_mut())
                        .filter_map(|(key, c)| c.release(generation).then_some(key))
                        .collect();
                    for key in released {
                        self.finish(key);
                    }
                }
                Completion::Synced { result: Err(e), .. } => self.sync_failed(&e),
                Completion::ReadsDone => {
                    self.broker.data_arrived = true;
                    self.broker.engine.storage_progress(now.mono);
                }
                Completion::Retention { tp, start } => {
                    if let Some(start) = start {
                        self.broker.engine.retention_applied(&tp, start);
                    }
                }
            }
        }
    }

    /// Hands a load sample to the compression controller when one is due, and logs its
    /// decisions.
    fn observe_load(&mut self, now: Now) {
        let Some(sample) = self.load.as_mut().and_then(|l| l.sample(Instant::now())) else {
            return;
        };
        if let Some(d) = self.broker.engine.observe_load(now.mono, sample) {
            eprintln!(
                "portask: compression: {:?} -> {:?}: {}",
                d.from, d.to, d.reason
            );
        }
    }

    /// A failed barrier (a write or an fsync failed): the data written since the previous one
    /// may be lost, so nothing that acknowledges it may be sent. Every connection is closed
    /// with its output unsent; the storage refuses writes from now on, so later requests get
    /// retriable storage errors.
    fn sync_failed(&mut self, e: &StorageError) {
        eprintln!(
            "portask: storage: a write or fsync failed: {e}; closing {} connections without \
             sending their pending responses; writes are refused from now on",
            self.conns.len()
        );
        let keys: Vec<usize> = self.conns.iter().map(|(key, _)| key).collect();
        self.close(keys);
        // Nothing is waiting for the failed barriers any more; new output is not fenced
        // behind them (writes are refused from now on, and so are retried produces).
        self.barrier_done = self.storage.last_barrier();
        self.still_ready.clear();
        self.deferred.clear();
        self.sync_due = None;
    }

    /// While the store is unreachable: closes the connections whose output waits for a
    /// barrier (acknowledgements of writes queued before the outage, released only when the
    /// store answers), so their clients do not wait in silence; they reconnect and retry,
    /// and get retriable errors until the store is back.
    fn close_fenced(&mut self) {
        let keys: Vec<usize> = (self.conns.iter())
            .filter_map(|(key, c)| c.fenced().then_some(key))
            .collect();
        self.close(keys);
    }

    /// Drops connections without writing their pending output.
    fn close(&mut self, keys: Vec<usize>) {
        for key in keys {
            let mut conn = self.conns.remove(key);
            let _ = self.poll.registry().deregister(&mut conn.sock);
            self.broker.connection_closed(conn.id(key));
        }
    }

    fn poll_timeout(&self) -> Option<Duration> {
        if !self.still_ready.is_empty() || self.broker.data_arrived {
            return Some(Duration::ZERO);
        }
        let now = self.started.elapsed().as_millis() as u64;
        let heartbeats = self
            .conns
            .iter()
            .filter_map(|(_, c)| c.amqp.as_ref()?.poll_timeout());
        let load = self.load.as_ref().map(|l| {
            let until = l.next_at().saturating_duration_since(Instant::now());
            now + until.as_millis() as u64
        });
        let deadline = [self.broker.next_deadline(), self.sync_due, load]
            .into_iter()
            .flatten()
            .chain(heartbeats)
            .min();
        deadline.map(|d| Duration::from_millis(d.saturating_sub(now)))
    }

    fn accept(&mut self, index: usize) {
        let Some(listener) = self.listeners.get(index) else {
            return;
        };
        let kind = listener.kind;
        loop {
            match listener.sock.accept() {
                Ok((sock, peer)) => {
                    let _ = sock.set_nodelay(true);
                    self.next_serial = self.next_serial.wrapping_add(1);
                    let now = self.now();
                    let entry = self.conns.vacant_entry();
                    let key = entry.key();
                    let conn = entry.insert(Conn::new(sock, peer, kind, self.next_serial));
                    match kind {
                        Kind::Amqp => {
                            let session = amqp::Session::new(&self.broker.amqp, now);
                            conn.amqp = Some(Box::new(session));
                        }
                        Kind::Portask => {
                            let session = portask::Session::new(&self.broker.portask);
                            conn.portask = Some(Box::new(session));
                        }
                        Kind::Kafka | Kind::Admin => {}
                    }
                    if conn
                        .update_interest(self.poll.registry(), Token(key + FIRST_CONN))
                        .is_err()
                    {
                        self.conns.remove(key);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // Out of file descriptors and the like: try again on the next readiness event.
                Err(e) => {
                    eprintln!("portask: accept failed: {e}");
                    return;
                }
            }
        }
    }

    /// Reads what the socket has and runs the requests it completes.
    fn serve(&mut self, key: usize, now: Now) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        // Writing first makes room, so a connection that was backed up can take more output.
        conn.flush();
        let limit = match conn.kind {
            Kind::Kafka => self.broker.read_buffer_limit(),
            Kind::Amqp => self.broker.amqp_read_buffer_limit(),
            Kind::Portask => self.broker.portask.limits.frame_bytes_max as usize + 16,
            Kind::Admin => admin::REQUEST_BYTES_MAX,
        };
        let stopped_early = conn.fill(limit);
        match conn.kind {
            Kind::Kafka => kafka::drive(conn, key, &mut self.broker, now),
            Kind::Amqp => amqp::drive(conn, conn.id(key), &mut self.broker, now),
            Kind::Portask => portask::drive(conn, conn.id(key), &mut self.broker, now),
            Kind::Admin => admin::drive(conn, &self.broker),
        }
        // Read again next turn while the requests made room; a connection that cannot
        // consume its buffer now is served again when it is resumed or becomes writable.
        if stopped_early && conn.rbuf.len() < limit {
            self.still_ready.push(key);
        }
    }

    /// Completes work that became ready during the turn: long-polls, timers, group replies.
    ///
    /// A resumed request can let a connection run further requests that append data, so the
    /// scan repeats (a bounded number of times; the next poll does not block if data is still
    /// marked as arrived).
    fn after_turn(&mut self, now: Now, dirty: &mut Vec<usize>) {
        for _ in 0..RESCANS_MAX {
            let heartbeat_due = self.conns.iter().any(|(_, c)| {
                c.amqp
                    .as_ref()
                    .and_then(|a| a.poll_timeout())
                    .is_some_and(|t| t <= now.mono)
            });
            if !self.broker.handle_timers(now) && !heartbeat_due {
                return;
            }
            // Appends made while resuming set `data_arrived` again for the next pass.
            self.broker.wake_parked = std::mem::take(&mut self.broker.data_arrived);
            for (key, conn) in &mut self.conns {
                let woke = match conn.kind {
                    Kind::Kafka => kafka::resume(conn, key, &mut self.broker, now),
                    Kind::Amqp => amqp::resume(conn, conn.id(key), &mut self.broker, now),
                    Kind::Portask => portask::resume(conn, conn.id(key), &mut self.broker, now),
                    Kind::Admin => false,
                };
                if woke {
                    dirty.push(key);
                    // Reading may have stopped while it was blocked; read again next turn.
                    self.still_ready.push(key);
                }
            }
            self.broker.wake_parked = false;
        }
    }

    /// Writes pending output, updates interest, and drops finished connections.
    fn finish(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        conn.flush();
        let token = Token(key + FIRST_CONN);
        if conn.is_done() || conn.update_interest(self.poll.registry(), token).is_err() {
            let mut conn = self.conns.remove(key);
            let _ = self.poll.registry().deregister(&mut conn.sock);
            self.broker.connection_closed(conn.id(key));
        }
    }

    /// Syncs storage, then writes what the connections still have pending (nothing when the
    /// sync fails: that output may acknowledge data that is not durable).
    fn shut_down(mut self) -> io::Result<Broker> {
        eprintln!("portask: shutting down");
        let synced = self.broker.sync();
        for (key, conn) in &mut self.conns {
            if synced.is_ok() {
                conn.release(u64::MAX);
                conn.flush();
            }
            self.broker.connection_closed(conn.id(key));
        }
        // Closing connections can write too (messages returned to durable queues).
        synced
            .and_then(|()| self.broker.sync())
            .map_err(io::Error::other)?;
        Ok(self.broker)
    }
}
