//! The event loop: one `mio::Poll` owning the listeners, the connections and the broker.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mio::net::{TcpListener, UnixStream};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use crate::broker::Broker;
use crate::conn::{Conn, Kind};
use crate::{admin, amqp, kafka, portask};

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
            for &key in &dirty {
                self.serve(key, now);
            }
            self.after_turn(now, &mut dirty);
            dirty.sort_unstable();
            dirty.dedup();
            for key in dirty {
                self.finish(key);
            }
        }
    }

    fn poll_timeout(&self) -> Option<Duration> {
        if !self.still_ready.is_empty() || self.broker.data_arrived {
            return Some(Duration::ZERO);
        }
        let now = self.started.elapsed().as_millis() as u64;
        self.broker
            .next_deadline()
            .map(|d| Duration::from_millis(d.saturating_sub(now)))
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
        let budget_left = match conn.kind {
            Kind::Kafka => conn.fill(self.broker.read_buffer_limit()),
            Kind::Amqp => conn.fill(self.broker.amqp_read_buffer_limit()),
            Kind::Portask => conn.fill(self.broker.portask.limits.frame_bytes_max as usize + 16),
            Kind::Admin => conn.fill(admin::REQUEST_BYTES_MAX),
        };
        if budget_left {
            self.still_ready.push(key);
        }
        match conn.kind {
            Kind::Kafka => kafka::drive(conn, key, &mut self.broker, now),
            Kind::Amqp => amqp::drive(conn, conn.id(key), &mut self.broker, now),
            Kind::Portask => portask::drive(conn, conn.id(key), &mut self.broker, now),
            Kind::Admin => admin::drive(conn, &self.broker),
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

    fn shut_down(mut self) -> io::Result<Broker> {
        eprintln!("portask: shutting down");
        for (key, conn) in &mut self.conns {
            conn.flush();
            self.broker.connection_closed(conn.id(key));
        }
        self.broker.sync().map_err(io::Error::other)?;
        Ok(self.broker)
    }
}
