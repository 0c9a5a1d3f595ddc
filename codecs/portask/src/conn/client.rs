//! The client side of one Portask protocol connection, for clients, tests and tools.
//!
//! Call [`ClientConn::start`] to write the `Hello`, feed server bytes to
//! [`ClientConn::handle_input`] and drain [`ClientConn::poll_event`]; requests may be sent
//! once [`ClientEvent::Connected`] was reported.

use std::collections::VecDeque;

use bytes::BytesMut;

use crate::body::{Delivery, ErrorBody, Hello, HelloOk, Request, Response, opcode};
use crate::compression::Compression;
use crate::conn::Negotiated;
use crate::error::{ConnError, DecodeError, EncodeError};
use crate::frame::{self, FrameDecoder, Header, RawFrame, VERSION, flags};
use crate::limits::Limits;
use crate::wire::{decode_body, encode_body};

/// Client settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// Decoding limits for server frames.
    pub limits: Limits,
    /// Client software name and version, sent in `Hello`.
    pub client: String,
    /// The user, if authenticating.
    pub user: Option<String>,
    /// The password, if authenticating.
    pub password: Option<String>,
    /// Protocol versions spoken.
    pub versions: Vec<u8>,
    /// Compression algorithms accepted, preferred first.
    pub compression: Vec<Compression>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            client: concat!("portask-protocol/", env!("CARGO_PKG_VERSION")).to_owned(),
            user: None,
            password: None,
            versions: vec![VERSION],
            compression: Compression::ALL.to_vec(),
        }
    }
}

/// What the client side reports.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ClientEvent {
    /// The server accepted the `Hello`.
    Connected {
        /// What was negotiated.
        negotiated: Negotiated,
        /// The server's software name.
        server: String,
    },
    /// A response (or one part of it, when `more`).
    Response {
        /// The request's correlation id.
        correlation_id: u64,
        /// More parts follow.
        more: bool,
        /// The response.
        response: Response,
    },
    /// A request failed (correlation id 0: the server is closing the connection).
    Error {
        /// The request's correlation id.
        correlation_id: u64,
        /// The error code.
        code: u16,
        /// The explanation.
        message: String,
    },
    /// A delivery for the consumer started by the `Consume` with this correlation id.
    Delivery {
        /// The `Consume`'s correlation id.
        correlation_id: u64,
        /// The delivery.
        delivery: Delivery,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Start,
    AwaitingHelloOk,
    Open(Negotiated),
    Closed,
}

/// Client side of one Portask connection. Performs no IO and reads no clock.
#[derive(Debug)]
pub struct ClientConn {
    cfg: ClientConfig,
    state: State,
    frames: FrameDecoder,
    events: VecDeque<ClientEvent>,
    next_correlation_id: u64,
}

impl ClientConn {
    /// A connection that has sent nothing yet.
    pub fn new(cfg: ClientConfig) -> Self {
        Self {
            frames: FrameDecoder::new(cfg.limits.frame_bytes_max),
            cfg,
            state: State::Start,
            events: VecDeque::new(),
            next_correlation_id: 1,
        }
    }

    /// What the handshake settled on, once connected.
    pub fn negotiated(&self) -> Option<Negotiated> {
        match self.state {
            State::Open(n) => Some(n),
            _ => None,
        }
    }

    /// Whether the connection is closed.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// Writes the `Hello` frame; returns its correlation id.
    pub fn start(&mut self, out: &mut BytesMut) -> u64 {
        let hello = Hello {
            versions: self.cfg.versions.clone(),
            client: self.cfg.client.clone(),
            user: self.cfg.user.clone(),
            password: self.cfg.password.clone(),
            compression: self
                .cfg
                .compression
                .iter()
                .map(|c| c.name().to_owned())
                .collect(),
        };
        let cid = self.fresh_id();
        let header = Header {
            version: VERSION,
            opcode: opcode::HELLO,
            flags: 0,
            correlation_id: cid,
        };
        frame::encode_frame(header, None, 0, out, |o| encode_body(&hello, o));
        self.state = State::AwaitingHelloOk;
        cid
    }

    /// Writes a request with a fresh correlation id, which it returns.
    pub fn send_request(
        &mut self,
        request: &Request,
        out: &mut BytesMut,
    ) -> Result<u64, EncodeError> {
        self.send(request, 0, out)
    }

    /// Writes a request with the no-reply flag: the server sends no success response.
    pub fn send_no_reply(
        &mut self,
        request: &Request,
        out: &mut BytesMut,
    ) -> Result<u64, EncodeError> {
        self.send(request, flags::NO_REPLY, out)
    }

    fn fresh_id(&mut self) -> u64 {
        let id = self.next_correlation_id;
        self.next_correlation_id = id.wrapping_add(1).max(1);
        id
    }

    fn send(
        &mut self,
        request: &Request,
        extra: u8,
        out: &mut BytesMut,
    ) -> Result<u64, EncodeError> {
        let State::Open(n) = self.state else {
            return Err(EncodeError::NotOpen);
        };
        let cid = self.fresh_id();
        let header = Header {
            version: n.version,
            opcode: request.opcode(),
            flags: extra,
            correlation_id: cid,
        };
        let start = out.len();
        let min = self.cfg.limits.compress_bytes_min;
        let size = frame::encode_frame(header, n.compression, min, out, |o| request.encode_body(o));
        if size > n.max_frame_bytes as usize {
            out.truncate(start);
            return Err(EncodeError::FrameTooLarge {
                size,
                max: n.max_frame_bytes,
            });
        }
        Ok(cid)
    }

    /// Consumes complete frames from `rbuf` and leaves a partial one. `Err` means the
    /// connection is closed: the server refused the handshake, or sent bytes that cannot be
    /// decoded.
    pub fn handle_input(&mut self, rbuf: &mut BytesMut) -> Result<(), ConnError> {
        loop {
            if self.state == State::Closed {
                return Err(ConnError::Closed);
            }
            let frame = match self.frames.decode(rbuf) {
                Ok(Some(f)) => f,
                Ok(None) => return Ok(()),
                Err(e) => {
                    self.state = State::Closed;
                    return Err(e.into());
                }
            };
            if let Err(e) = self.handle_frame(frame) {
                self.state = State::Closed;
                return Err(e);
            }
        }
    }

    fn handle_frame(&mut self, f: RawFrame) -> Result<(), ConnError> {
        let h = f.header;
        let open = self.negotiated();
        if !h.has(flags::RESPONSE) || h.has(flags::NO_REPLY) {
            return Err(DecodeError::InvalidFlags(h.flags).into());
        }
        let body = f.decompressed(open.and_then(|n| n.compression), &self.cfg.limits)?;
        let depth = self.cfg.limits.nesting_depth_max;
        let cid = h.correlation_id;
        if h.opcode == opcode::ERROR {
            let e: ErrorBody = decode_body(&body, depth)?;
            if open.is_none() {
                return Err(ConnError::Refused {
                    code: e.code,
                    message: e.message,
                });
            }
            self.events.push_back(ClientEvent::Error {
                correlation_id: cid,
                code: e.code,
                message: e.message,
            });
            return Ok(());
        }
        match open {
            None if h.opcode == opcode::HELLO_OK && self.state == State::AwaitingHelloOk => {
                self.on_hello_ok(decode_body(&body, depth)?)
            }
            None => Err(ConnError::Handshake("server frame before HelloOk")),
            Some(_) if h.opcode == opcode::DELIVERY => {
                let delivery = decode_body(&body, depth)?;
                let ev = ClientEvent::Delivery {
                    correlation_id: cid,
                    delivery,
                };
                self.events.push_back(ev);
                Ok(())
            }
            Some(_) => {
                let response = Response::decode(h.opcode, &body, depth)?;
                self.events.push_back(ClientEvent::Response {
                    correlation_id: cid,
                    more: h.has(flags::MORE),
                    response,
                });
                Ok(())
            }
        }
    }

    fn on_hello_ok(&mut self, ok: HelloOk) -> Result<(), ConnError> {
        if !self.cfg.versions.contains(&ok.version) {
            return Err(ConnError::Handshake("server chose a version not offered"));
        }
        let compression = match ok.compression.as_deref() {
            None => None,
            Some(name) => match Compression::from_name(name) {
                Some(c) if self.cfg.compression.contains(&c) => Some(c),
                _ => {
                    return Err(ConnError::Handshake(
                        "server chose a compression not offered",
                    ));
                }
            },
        };
        let negotiated = Negotiated {
            version: ok.version,
            compression,
            max_frame_bytes: ok.max_frame_bytes,
        };
        self.frames.set_version(ok.version);
        self.state = State::Open(negotiated);
        self.events.push_back(ClientEvent::Connected {
            negotiated,
            server: ok.server,
        });
        Ok(())
    }
}
