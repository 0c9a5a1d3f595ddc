//! One client connection: socket, buffers and the readiness bookkeeping around them.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::SocketAddr;

use bytes::BytesMut;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

/// Bytes read from one socket per wake-up before other connections get their turn.
const READ_BUDGET_BYTES: usize = 256 * 1024;
/// Bytes asked of the socket per `read` call.
const READ_CHUNK_BYTES: usize = 64 * 1024;
/// Output above this stops request processing until the peer reads.
pub const WRITE_HIGH_WATER_BYTES: usize = 4 * 1024 * 1024;

/// Which protocol a connection speaks, fixed by the listener that accepted it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Kafka wire protocol.
    Kafka,
    /// AMQP 0-9-1.
    Amqp,
    /// Portask's own protocol.
    Portask,
    /// HTTP admin endpoints.
    Admin,
}

/// A client connection owned by a worker.
#[derive(Debug)]
pub struct Conn {
    /// The socket.
    pub sock: TcpStream,
    /// The peer's address.
    pub peer: SocketAddr,
    /// The protocol.
    pub kind: Kind,
    /// Distinguishes this connection from earlier ones in the same slab slot.
    pub serial: u32,
    /// Bytes read and not yet consumed as requests.
    pub rbuf: BytesMut,
    /// Encoded responses not yet written.
    pub wbuf: BytesMut,
    /// Bytes written to the socket so far.
    flushed: u64,
    /// Output before this position (counted like `flushed`) is released for writing.
    released_to: u64,
    /// Output that waits for a storage barrier: (end of that output counted like `flushed`,
    /// barrier generation), oldest first. Output before a fence's end is written only once
    /// the fence is released.
    fences: VecDeque<(u64, u64)>,
    /// The peer closed its side, or reading failed.
    pub read_closed: bool,
    /// Close once `wbuf` is flushed (after a fatal protocol error or a finished HTTP reply).
    pub close_after_flush: bool,
    /// The socket failed; drop the connection.
    pub broken: bool,
    /// Kafka protocol state (unused by other protocols).
    pub session: crate::kafka::Session,
    /// AMQP protocol state, for AMQP connections.
    pub amqp: Option<Box<crate::amqp::Session>>,
    /// Portask protocol state, for Portask connections.
    pub portask: Option<Box<crate::portask::Session>>,
    registered: Option<Interest>,
}

impl Conn {
    /// A new connection, not yet registered.
    pub fn new(sock: TcpStream, peer: SocketAddr, kind: Kind, serial: u32) -> Self {
        Self {
            sock,
            peer,
            kind,
            serial,
            rbuf: BytesMut::with_capacity(8 * 1024),
            wbuf: BytesMut::new(),
            flushed: 0,
            released_to: 0,
            fences: VecDeque::new(),
            read_closed: false,
            close_after_flush: false,
            broken: false,
            session: crate::kafka::Session::default(),
            amqp: None,
            portask: None,
            registered: None,
        }
    }

    /// The engine-facing id of this connection: its slab key and serial, so that output for
    /// a closed connection never reaches a new one in the same slot.
    pub fn id(&self, key: usize) -> u64 {
        (u64::from(self.serial) << 32) | key as u64
    }

    /// Reads until `WouldBlock`, the budget, or `rbuf_limit` buffered bytes. Returns whether
    /// reading stopped early (budget or limit), with data possibly left in the socket: the
    /// socket is edge-triggered, so no new event will say so.
    pub fn fill(&mut self, rbuf_limit: usize) -> bool {
        let mut read = 0;
        while read < READ_BUDGET_BYTES && self.rbuf.len() < rbuf_limit && !self.read_closed {
            // Zero-filling the chunk first keeps this free of `unsafe`; it costs a memset
            // of at most READ_CHUNK_BYTES per read call.
            let len = READ_CHUNK_BYTES.min(READ_BUDGET_BYTES - read);
            let start = self.rbuf.len();
            self.rbuf.resize(start + len, 0);
            match self.sock.read(&mut self.rbuf[start..]) {
                Ok(0) => {
                    self.rbuf.truncate(start);
                    self.read_closed = true;
                }
                Ok(n) => {
                    self.rbuf.truncate(start + n);
                    read += n;
                }
                Err(e) => {
                    self.rbuf.truncate(start);
                    match e.kind() {
                        io::ErrorKind::WouldBlock => return false,
                        io::ErrorKind::Interrupted => {}
                        _ => {
                            self.read_closed = true;
                            self.broken = true;
                        }
                    }
                }
            }
        }
        !self.read_closed
    }

    /// Holds the output buffered so far until sync `generation` is durable.
    pub fn fence(&mut self, generation: u64) {
        let end = self.flushed + self.wbuf.len() as u64;
        if self.wbuf.is_empty() || self.fences.back().is_some_and(|f| f.0 == end) {
            return;
        }
        self.fences.push_back((end, generation));
    }

    /// Releases the output that waited for syncs up to `generation`. Returns whether any did.
    pub fn release(&mut self, generation: u64) -> bool {
        let before = self.fences.len();
        while let Some(&(end, _)) = self.fences.front().filter(|f| f.1 <= generation) {
            self.released_to = self.released_to.max(end);
            self.fences.pop_front();
        }
        self.fences.len() != before
    }

    /// Whether some output waits for a sync.
    pub fn fenced(&self) -> bool {
        !self.fences.is_empty()
    }

    /// Writes as much of `wbuf` as the socket takes, up to the output that still waits for a
    /// barrier (what lies before the first unreleased fence's end and after the last
    /// released one's).
    pub fn flush(&mut self) {
        loop {
            let allowed = match self.fences.is_empty() {
                true => self.wbuf.len(),
                false => self.released_to.saturating_sub(self.flushed) as usize,
            };
            if allowed == 0 || self.broken {
                break;
            }
            match self.sock.write(&self.wbuf[..allowed]) {
                Ok(0) => self.broken = true,
                Ok(n) => {
                    let _ = self.wbuf.split_to(n);
                    self.flushed += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => self.broken = true,
            }
        }
        if self.wbuf.is_empty() && self.wbuf.capacity() > 1024 * 1024 {
            self.wbuf = BytesMut::new();
        }
    }

    /// Whether the connection is finished and can be dropped.
    pub fn is_done(&self) -> bool {
        self.broken || (self.wbuf.is_empty() && (self.close_after_flush || self.read_closed))
    }

    /// Registers or re-registers with the interest the state calls for; READABLE unless the
    /// output backs up, WRITABLE while output is pending.
    pub fn update_interest(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        let readable = !self.read_closed && self.wbuf.len() < WRITE_HIGH_WATER_BYTES;
        let interest = match (readable, !self.wbuf.is_empty()) {
            (true, true) => Some(Interest::READABLE | Interest::WRITABLE),
            (true, false) => Some(Interest::READABLE),
            (false, true) => Some(Interest::WRITABLE),
            (false, false) => None,
        };
        if interest == self.registered {
            return Ok(());
        }
        match (self.registered, interest) {
            (None, Some(i)) => registry.register(&mut self.sock, token, i)?,
            (Some(_), Some(i)) => registry.reregister(&mut self.sock, token, i)?,
            (Some(_), None) => registry.deregister(&mut self.sock)?,
            (None, None) => {}
        }
        self.registered = interest;
        Ok(())
    }
}
