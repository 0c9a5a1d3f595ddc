//! The event loop: one `mio::Poll` owning the listeners, the connections and the broker.
//!
//! Each turn: poll, serve the ready connections (responses go to per-connection write
//! buffers), complete parked work, then the sync barrier, then write the buffers out. With
//! `storage.fsync = "always"` the barrier fsyncs storage when anything was written during the
//! turn, so no acknowledgement reaches a socket before the data it covers is durable, and all
//! the requests of a turn share one fsync (group commit). Nothing writes to a socket between
//! the first request of a turn and its barrier: `serve` writes a connection's old output only
//! before running that connection's requests, and each connection is served once per turn.

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
use crate::storage::tracked::WriteCounter;
use crate::{admin, amqp, kafka, portask};
use portask_engine::StorageError;

/// Token of the signal pipe.
const SIGNALS: Token = Token(0);
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
    /// The counter of the [`TrackedStorage`] the broker writes through; without one, the
    /// worker assumes every turn may have written.
    pub writes: Option<WriteCounter>,
}

impl Default for Durability {
    fn default() -> Self {
        Self {
            policy: FsyncPolicy::Always,
            interval_ms: 100,
            writes: None,
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
    /// With [`FsyncPolicy::IntervalMs`]: when the oldest unsynced write must be synced
    /// (monotonic ms).
    sync_due: Option<u64>,
    /// Load samples for adaptive compression, when it is on.
    load: Option<LoadSampler>,
}

impl Worker {
    /// Registers the listeners and the signal pipe's read end.
    pub fn new(listeners: Vec<Listener>, broker: Broker, signals: UnixStream) -> io::Result<Self> {
        let poll = Poll::new()?;
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

    /// Sets when storage is fsynced (the default is [`FsyncPolicy::Always`] without a counter:
    /// a sync barrier on every turn).
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
                    Token(t) if t < FIRST_CONN => self.accept(t - FIRST_LISTENER),
                    Token(t) => dirty.push(t - FIRST_CONN),
                }
            }
            // Once per turn: a second `serve` would write out the first one's unsynced acks.
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
            if self.durability.policy == FsyncPolicy::Always && !self.sync_barrier() {
                continue;
            }
            for key in dirty {
                self.finish(key);
            }
            if self.durability.policy == FsyncPolicy::IntervalMs {
                self.sync_on_interval();
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

    /// Whether anything may have been written since the last successful sync.
    fn unsynced(&self) -> bool {
        self.durability.writes.as_ref().is_none_or(|w| w.get() > 0)
    }

    /// Syncs storage if anything was written since the last sync. On failure, closes every
    /// connection without writing its pending output (acknowledgements of data that may not
    /// be durable) and returns false.
    fn sync_barrier(&mut self) -> bool {
        if !self.unsynced() {
            return true;
        }
        match self.broker.sync() {
            Ok(()) => true,
            Err(e) => {
                self.sync_failed(&e);
                false
            }
        }
    }

    /// With [`FsyncPolicy::IntervalMs`]: starts the timer at the first unsynced write and
    /// syncs when it expires.
    fn sync_on_interval(&mut self) {
        if !self.unsynced() {
            self.sync_due = None;
            return;
        }
        let now = self.started.elapsed().as_millis() as u64;
        let due = *self
            .sync_due
            .get_or_insert(now + self.durability.interval_ms);
        if now >= due {
            self.sync_due = None;
            if let Err(e) = self.broker.sync() {
                self.sync_failed(&e);
            }
        }
    }

    /// A failed fsync: the data written since the previous sync may be lost, so nothing that
    /// acknowledges it may be sent. Every connection is closed with its output unsent; the
    /// storage refuses writes from now on, so later requests get retriable storage errors.
    fn sync_failed(&mut self, e: &StorageError) {
        eprintln!(
            "portask: storage: fsync failed: {e}; closing {} connections without sending \
             their pending responses; writes are refused from now on",
            self.conns.len()
        );
        let keys: Vec<usize> = self.conns.iter().map(|(key, _)| key).collect();
        for key in keys {
            let mut conn = self.conns.remove(key);
            let _ = self.poll.registry().deregister(&mut conn.sock);
            self.broker.connection_closed(conn.id(key));
        }
        self.still_ready.clear();
        self.sync_due = None;
        if let Some(w) = &self.durability.writes {
            w.reset();
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
            self.broker.data_arrived = false;
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
