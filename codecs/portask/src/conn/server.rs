//! The broker side of one Portask protocol connection.
//!
//! [`ServerConn`] reads no socket and no clock. After every `handle_input` or `accept_*`
//! call, drain [`ServerConn::poll_event`] until `None` and write `out` to the socket. Once
//! [`ServerConn::is_closed`], flush `out` and close the transport.
//!
//! # Errors the connection answers by itself
//!
//! | Input | Reply |
//! |---|---|
//! | length prefix above `frame_bytes_max` | `Error` 4, close |
//! | length below 12, bad magic | `Error` 3, close |
//! | bad version byte | `Error` 1, close |
//! | anything before `Hello`, or a second `Hello` | `Error` 3, close |
//! | no common version in `Hello` | `Error` 1, close |
//! | undecodable body, bad flags, unknown opcode, compression not negotiated, body above `body_bytes_max` after the handshake | `Error` 3, 5, 6 or 4 for that correlation id; the connection goes on |

use std::collections::VecDeque;

use bytes::BytesMut;

use crate::body::{Delivery, Hello, HelloOk, Request, Response, opcode};
use crate::compression::Compression;
use crate::conn::{Negotiated, write_error};
use crate::error::{ConnError, DecodeError, code};
use crate::frame::{self, FrameDecoder, Header, RawFrame, VERSION, flags};
use crate::limits::Limits;
use crate::wire::encode_body;

/// Server settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Decoding limits; `frame_bytes_max` is announced as `HelloOk.max_frame_bytes`.
    pub limits: Limits,
    /// Server software name and version, sent in `HelloOk`.
    pub server: String,
    /// Protocol versions spoken.
    pub versions: Vec<u8>,
    /// Compression algorithms accepted, any order (the client's preference decides).
    pub compression: Vec<Compression>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            server: concat!("portask/", env!("CARGO_PKG_VERSION")).to_owned(),
            versions: vec![VERSION],
            compression: Compression::ALL.to_vec(),
        }
    }
}

/// What the server side reports.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ServerEvent {
    /// A valid `Hello` with a common version: answer with [`ServerConn::accept_hello`] or
    /// [`ServerConn::refuse_hello`] (e.g. code 2 when the credentials are wrong). Input is
    /// not read until then.
    Hello {
        /// The client software.
        client: String,
        /// The user, if given.
        user: Option<String>,
        /// The password, if given.
        password: Option<String>,
        /// The version that will be used.
        version: u8,
        /// The compression that will be used.
        compression: Option<Compression>,
    },
    /// A request after the handshake. Answer with [`ServerConn::send_response`] or
    /// [`ServerConn::send_error`] using its correlation id.
    Request {
        /// The client's id for this request.
        correlation_id: u64,
        /// The client asked for no success response (errors are still sent).
        no_reply: bool,
        /// The request.
        request: Request,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    AwaitingHello,
    /// A [`ServerEvent::Hello`] is out; input stays in the caller's buffer.
    AwaitingDecision {
        correlation_id: u64,
        negotiated: Negotiated,
    },
    Open(Negotiated),
    Closed,
}

/// Server side of one Portask connection. Performs no IO and reads no clock.
#[derive(Debug)]
pub struct ServerConn {
    cfg: ServerConfig,
    state: State,
    frames: FrameDecoder,
    events: VecDeque<ServerEvent>,
}

impl ServerConn {
    /// A connection waiting for the client's `Hello`.
    pub fn new(cfg: ServerConfig) -> Self {
        Self {
            frames: FrameDecoder::new(cfg.limits.frame_bytes_max),
            cfg,
            state: State::AwaitingHello,
            events: VecDeque::new(),
        }
    }

    /// Whether the connection is closed: flush `out`, then close the transport.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// What the handshake settled on, once accepted.
    pub fn negotiated(&self) -> Option<Negotiated> {
        match self.state {
            State::Open(n) => Some(n),
            _ => None,
        }
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    /// Consumes complete frames from `rbuf` and leaves a partial one. Answers bad input with
    /// `Error` frames in `out`. While a [`ServerEvent::Hello`] awaits an answer nothing is
    /// read: call again after answering. `Err` means the connection is closed; flush `out`.
    pub fn handle_input(
        &mut self,
        rbuf: &mut BytesMut,
        out: &mut BytesMut,
    ) -> Result<(), ConnError> {
        loop {
            match self.state {
                State::Closed => return Err(ConnError::Closed),
                State::AwaitingDecision { .. } => return Ok(()),
                State::AwaitingHello | State::Open(_) => {}
            }
            match self.frames.decode(rbuf) {
                Ok(None) => return Ok(()),
                Ok(Some(f)) => self.handle_frame(f, out)?,
                Err(e) => {
                    self.close(e.code(), &e.to_string(), out);
                    return Err(e.into());
                }
            }
        }
    }

    fn handle_frame(&mut self, f: RawFrame, out: &mut BytesMut) -> Result<(), ConnError> {
        let cid = f.header.correlation_id;
        let open = match self.state {
            State::Open(n) => Some(n),
            _ => None,
        };
        let decoded = self.decode_request(&f, open.and_then(|n| n.compression));
        match (open, decoded) {
            (None, Ok(Request::Hello(hello))) => self.on_hello(cid, hello, out),
            (None, Ok(_)) => self.fail_handshake(cid, "expected Hello", out),
            (None, Err(e)) => self.fail_handshake(cid, &e.to_string(), out),
            (Some(_), Ok(Request::Hello(_))) => self.fail_handshake(cid, "second Hello", out),
            (Some(n), Err(e)) => {
                write_error(n.version, cid, e.code(), &e.to_string(), out);
                Ok(())
            }
            (Some(_), Ok(request)) => {
                let no_reply = f.header.has(flags::NO_REPLY);
                self.events.push_back(ServerEvent::Request {
                    correlation_id: cid,
                    no_reply,
                    request,
                });
                Ok(())
            }
        }
    }

    fn decode_request(
        &self,
        f: &RawFrame,
        compression: Option<Compression>,
    ) -> Result<Request, DecodeError> {
        let server_only = flags::RESPONSE | flags::ERROR | flags::MORE;
        if f.header.has(server_only) {
            return Err(DecodeError::InvalidFlags(f.header.flags));
        }
        let body = f.decompressed(compression, &self.cfg.limits)?;
        Request::decode(f.header.opcode, &body, self.cfg.limits.nesting_depth_max)
    }

    fn on_hello(&mut self, cid: u64, hello: Hello, out: &mut BytesMut) -> Result<(), ConnError> {
        let common = hello
            .versions
            .iter()
            .filter(|v| self.cfg.versions.contains(v));
        let Some(&version) = common.max() else {
            let message = format!("no common version; server speaks {:?}", self.cfg.versions);
            self.close_with(cid, code::UNSUPPORTED_VERSION, &message, out);
            return Err(ConnError::Refused {
                code: code::UNSUPPORTED_VERSION,
                message,
            });
        };
        let compression = hello
            .compression
            .iter()
            .filter_map(|name| Compression::from_name(name))
            .find(|c| self.cfg.compression.contains(c));
        let negotiated = Negotiated {
            version,
            compression,
            max_frame_bytes: self.cfg.limits.frame_bytes_max,
        };
        self.state = State::AwaitingDecision {
            correlation_id: cid,
            negotiated,
        };
        self.events.push_back(ServerEvent::Hello {
            client: hello.client,
            user: hello.user,
            password: hello.password,
            version,
            compression,
        });
        Ok(())
    }

    fn fail_handshake(&mut self, cid: u64, why: &str, out: &mut BytesMut) -> Result<(), ConnError> {
        self.close_with(cid, code::MALFORMED_FRAME, why, out);
        Err(ConnError::Handshake(
            "frame out of order or malformed during the handshake",
        ))
    }

    /// Answers the pending [`ServerEvent::Hello`] with `HelloOk`; the connection is open.
    pub fn accept_hello(&mut self, out: &mut BytesMut) {
        let State::AwaitingDecision {
            correlation_id,
            negotiated,
        } = self.state
        else {
            return;
        };
        let ok = HelloOk {
            version: negotiated.version,
            server: self.cfg.server.clone(),
            compression: negotiated.compression.map(|c| c.name().to_owned()),
            max_frame_bytes: negotiated.max_frame_bytes,
        };
        let header = Header {
            version: VERSION,
            opcode: opcode::HELLO_OK,
            flags: flags::RESPONSE,
            correlation_id,
        };
        frame::encode_frame(header, None, 0, out, |o| encode_body(&ok, o));
        self.frames.set_version(negotiated.version);
        self.state = State::Open(negotiated);
    }

    /// Answers the pending [`ServerEvent::Hello`] with an `Error` frame and closes.
    pub fn refuse_hello(&mut self, code: u16, message: &str, out: &mut BytesMut) {
        if let State::AwaitingDecision { correlation_id, .. } = self.state {
            self.close_with(correlation_id, code, message, out);
        }
    }

    /// Sends a response to the request with `correlation_id`.
    pub fn send_response(&mut self, correlation_id: u64, response: &Response, out: &mut BytesMut) {
        self.send_response_part(correlation_id, response, false, out);
    }

    /// Sends one part of a response; `more` says further parts follow (flag bit 5).
    pub fn send_response_part(
        &mut self,
        correlation_id: u64,
        response: &Response,
        more: bool,
        out: &mut BytesMut,
    ) {
        let more = if more { flags::MORE } else { 0 };
        self.send(response.opcode(), correlation_id, more, out, |o| {
            response.encode_body(o)
        });
    }

    /// Sends a delivery for the consumer started by the `Consume` with `correlation_id`.
    pub fn send_delivery(&mut self, correlation_id: u64, delivery: &Delivery, out: &mut BytesMut) {
        self.send(opcode::DELIVERY, correlation_id, 0, out, |o| {
            encode_body(delivery, o)
        });
    }

    /// Sends an `Error` frame answering the request with `correlation_id`.
    pub fn send_error(
        &mut self,
        correlation_id: u64,
        code: u16,
        message: &str,
        out: &mut BytesMut,
    ) {
        if let State::Open(n) = self.state {
            write_error(n.version, correlation_id, code, message, out);
        }
    }

    /// Sends an `Error` frame with correlation id 0 and closes (e.g. at shutdown).
    pub fn close(&mut self, code: u16, message: &str, out: &mut BytesMut) {
        self.close_with(0, code, message, out);
    }

    fn close_with(&mut self, cid: u64, code: u16, message: &str, out: &mut BytesMut) {
        if self.state != State::Closed {
            let version = self.negotiated().map_or(VERSION, |n| n.version);
            write_error(version, cid, code, message, out);
            self.state = State::Closed;
        }
    }

    fn send(
        &mut self,
        opcode: u8,
        correlation_id: u64,
        extra_flags: u8,
        out: &mut BytesMut,
        body: impl FnOnce(&mut BytesMut),
    ) {
        let State::Open(n) = self.state else {
            return;
        };
        let header = Header {
            version: n.version,
            opcode,
            flags: flags::RESPONSE | extra_flags,
            correlation_id,
        };
        let min = self.cfg.limits.compress_bytes_min;
        frame::encode_frame(header, n.compression, min, out, body);
    }
}
