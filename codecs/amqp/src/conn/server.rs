//! The broker side of one AMQP 0-9-1 connection.
//!
//! [`ServerConn`] reads no socket and no clock. After every `handle_*` or `accept_*` call,
//! drain [`ServerConn::poll_event`] until `None`, write `out` to the socket, and sleep at most
//! until [`ServerConn::poll_timeout`]. Once [`ServerConn::is_closed`], flush `out` and close
//! the transport.
//!
//! # Errors the connection answers by itself
//!
//! Codes follow RabbitMQ's `rabbit_reader`, `rabbit_command_assembler` and `rabbit_channel`.
//! Hard errors send `connection.close`; before `connection.tune-ok` (and after framing errors,
//! when the stream cannot be read any further) the connection is closed right after it,
//! otherwise `connection.close-ok` is awaited for [`crate::Limits::close_timeout_ms`].
//!
//! | Input | Reply |
//! |---|---|
//! | protocol header other than `AMQP\0\0\x09\x01` | that header, then close ([`ConnError`]) |
//! | frame above frame_max (pre-auth limit before tuning), bad frame end, unknown frame type, heartbeat off channel 0, undecodable method or header | 501 `FRAME_ERROR` |
//! | unknown class or method | 540 `NOT_IMPLEMENTED` |
//! | method only the server sends; connection method on a channel, or another class on channel 0 | 503 `COMMAND_INVALID` |
//! | unsupported SASL mechanism | 503 `COMMAND_INVALID` |
//! | unreadable PLAIN/AMQPLAIN response | 403 `ACCESS_REFUSED` |
//! | method the handshake does not expect now; content header or body out of sequence; body larger than announced; content on channel 0 or for a class other than basic | 505 `UNEXPECTED_FRAME` |
//! | channel above channel_max; frame on a channel that is not open; `channel.open` on an open channel | 504 `CHANNEL_ERROR` |
//! | tune-ok frame_max below 4096 (`FRAME_MIN_SIZE`) | 530 `NOT_ALLOWED` |
//! | content header announcing more than [`Limits::content_bytes_max`] | soft: `channel.close` 406 `PRECONDITION_FAILED` |
//!
//! After `connection.close` only `connection.close` and `connection.close-ok` are read; after
//! `channel.close` only `channel.close` and `channel.close-ok` on that channel.

mod channels;
mod types;

pub use crate::conn::Negotiated;
pub use types::{ServerConfig, ServerEvent};

use std::collections::{BTreeMap, VecDeque};

use bytes::{Bytes, BytesMut};

use crate::conn::auth;
use crate::content::Assembler;
use crate::error::{CloseReason, ConnError, FrameError};
use crate::frame::{self, Frame, FrameDecoder};
use crate::generated::{
    BasicProperties, ConnectionClose, ConnectionCloseOk, ConnectionOpenOk, ConnectionStart,
    ConnectionStartOk, ConnectionTune, ConnectionTuneOk, FRAME_MIN_SIZE, Method, class_id,
    reply_code,
};
use crate::heartbeat::{Heartbeat, Tick};
use crate::table::FieldTable;

/// Connection states, in handshake order.
#[derive(Debug, Clone, PartialEq)]
enum State {
    AwaitingProtocolHeader,
    AwaitingStartOk,
    /// A [`ServerEvent::Login`] is out; waiting for accept or refuse. Frames are held.
    AwaitingLogin,
    AwaitingTuneOk,
    AwaitingOpen,
    /// A [`ServerEvent::OpenVhost`] is out; frames are held in `pending`.
    AwaitingOpenDecision,
    Open,
    Closing {
        deadline_ms: u64,
        reason: CloseReason,
    },
    Closed,
}

/// One channel's state.
#[derive(Debug, Clone, Default)]
struct Channel {
    /// We sent `channel.close` and wait for close-ok.
    closing: bool,
    content: Assembler,
}

/// Server side of one AMQP 0-9-1 connection. Performs no IO and reads no clock.
#[derive(Debug)]
pub struct ServerConn {
    cfg: ServerConfig,
    state: State,
    frames: FrameDecoder,
    events: VecDeque<ServerEvent>,
    negotiated: Negotiated,
    client_properties: Option<FieldTable>,
    channels: BTreeMap<u16, Channel>,
    heartbeat: Heartbeat,
    pending: VecDeque<Frame>,
    now_ms: u64,
}

impl ServerConn {
    /// A connection waiting for the client's protocol header.
    pub fn new(cfg: ServerConfig, now_ms: u64) -> Self {
        let preauth = cfg.limits.preauth_frame_bytes_max.max(FRAME_MIN_SIZE);
        let negotiated = Negotiated {
            channel_max: cfg.channel_max,
            frame_max: preauth,
            heartbeat_s: 0,
        };
        Self {
            frames: FrameDecoder::server(preauth, cfg.limits.table_depth_max),
            cfg,
            state: State::AwaitingProtocolHeader,
            events: VecDeque::new(),
            negotiated,
            client_properties: None,
            channels: BTreeMap::new(),
            heartbeat: Heartbeat::default(),
            pending: VecDeque::new(),
            now_ms,
        }
    }

    /// Consumes complete frames from `rbuf` and leaves a partial one. While a
    /// [`ServerEvent::Login`] or [`ServerEvent::OpenVhost`] awaits an answer, decoded frames
    /// are held (at most [`crate::Limits::pending_frames_max`], the rest stays in `rbuf`) and
    /// handled by `accept_*`; call `handle_input` again afterwards if `rbuf` is not empty. Writes the replies the
    /// connection makes by itself into `out`. Fails only on a bad protocol header, after
    /// writing the AMQP 0-9-1 header to `out`.
    pub fn handle_input(
        &mut self,
        rbuf: &mut BytesMut,
        now_ms: u64,
        out: &mut BytesMut,
    ) -> Result<(), ConnError> {
        self.now_ms = self.now_ms.max(now_ms);
        loop {
            if self.state == State::Closed {
                rbuf.clear();
                return Ok(());
            }
            let holding = self.holding();
            if holding && self.pending.len() >= self.cfg.limits.pending_frames_max {
                return Ok(());
            }
            let frame = match self.frames.decode(rbuf) {
                Ok(Some(frame)) => frame,
                Ok(None) => return Ok(()),
                Err(FrameError::BadProtocolHeader) => {
                    frame::encode_protocol_header(out);
                    self.state = State::Closed;
                    rbuf.clear();
                    return Err(ConnError::BadProtocolHeader);
                }
                Err(e) => {
                    self.fatal(CloseReason::from(&e), out);
                    continue;
                }
            };
            self.heartbeat.on_recv(self.now_ms);
            if holding && frame != Frame::Heartbeat {
                self.pending.push_back(frame);
            } else {
                self.handle_frame(frame, out);
            }
        }
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    /// Sends heartbeats, declares the peer dead after two silent intervals, and gives up on a
    /// `connection.close` that got no close-ok.
    pub fn handle_timeout(&mut self, now_ms: u64, out: &mut BytesMut) {
        self.now_ms = self.now_ms.max(now_ms);
        if let State::Closing {
            deadline_ms,
            reason,
        } = &self.state
        {
            if self.now_ms >= *deadline_ms {
                let reason = reason.clone();
                self.finish(reason.code, reason.text);
            }
            return;
        }
        match self.heartbeat.on_timeout(self.now_ms) {
            Tick::Idle => {}
            Tick::Send => frame::encode_heartbeat(out),
            Tick::PeerDead => {
                self.events.push_back(ServerEvent::PeerDead);
                self.state = State::Closed;
            }
        }
    }

    /// The next instant [`ServerConn::handle_timeout`] has work to do.
    pub fn poll_timeout(&self) -> Option<u64> {
        match &self.state {
            State::Closing { deadline_ms, .. } => Some(*deadline_ms),
            State::Closed => None,
            _ => self.heartbeat.deadline(),
        }
    }

    /// Accepts the credentials of [`ServerEvent::Login`] and continues with `connection.tune`.
    pub fn accept_login(&mut self, out: &mut BytesMut) {
        if self.state != State::AwaitingLogin {
            return;
        }
        let tune = ConnectionTune {
            channel_max: self.cfg.channel_max,
            frame_max: self.cfg.frame_max,
            heartbeat: self.cfg.heartbeat_s,
        };
        self.write(0, &tune.into(), out);
        self.state = State::AwaitingTuneOk;
        self.drain_pending(out);
    }

    /// Refuses the login: `connection.close` 403 `ACCESS_REFUSED` with `text` (RabbitMQ says
    /// `ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. For details
    /// see the broker logfile.`), then the connection is closed.
    pub fn refuse_login(&mut self, text: &str, out: &mut BytesMut) {
        if self.state != State::AwaitingLogin {
            return;
        }
        let reason = CloseReason {
            code: reply_code::ACCESS_REFUSED,
            text: text.to_string(),
            class_id: ConnectionStartOk::CLASS_ID,
            method_id: ConnectionStartOk::METHOD_ID,
        };
        self.fatal(reason, out);
    }

    /// Accepts the virtual host of [`ServerEvent::OpenVhost`]: `connection.open-ok`, then the
    /// frames the client sent meanwhile are handled.
    pub fn accept_open(&mut self, out: &mut BytesMut) {
        if self.state != State::AwaitingOpenDecision {
            return;
        }
        self.write(0, &ConnectionOpenOk::default().into(), out);
        self.state = State::Open;
        self.drain_pending(out);
    }

    /// Whether a decision of the broker is awaited; frames are held meanwhile.
    fn holding(&self) -> bool {
        matches!(
            self.state,
            State::AwaitingLogin | State::AwaitingOpenDecision
        )
    }

    /// Handles the frames held while a decision was awaited, until the next decision.
    fn drain_pending(&mut self, out: &mut BytesMut) {
        while !self.holding() {
            let Some(frame) = self.pending.pop_front() else {
                break;
            };
            self.handle_frame(frame, out);
        }
    }

    /// Refuses the virtual host: `connection.close` with `code` (RabbitMQ: 530 `NOT_ALLOWED`,
    /// `NOT_ALLOWED - access to vhost 'x' refused for user 'y'`).
    pub fn refuse_open(&mut self, code: u16, text: &str, out: &mut BytesMut) {
        if self.state != State::AwaitingOpenDecision {
            return;
        }
        self.pending.clear();
        self.state = State::AwaitingOpen;
        self.close_connection(code, text, class_id::CONNECTION, 40, out);
    }

    /// Sends a method. Dropped once the connection or the channel is closing.
    pub fn send_method(&mut self, channel: u16, method: &Method, out: &mut BytesMut) {
        if self.can_send(channel) {
            self.write(channel, method, out);
        }
    }

    /// Sends a content-carrying method with its content, split at the negotiated frame_max.
    pub fn send_content(
        &mut self,
        channel: u16,
        method: &Method,
        props: &BasicProperties,
        body: &Bytes,
        out: &mut BytesMut,
    ) {
        if self.can_send(channel) {
            frame::encode_content(channel, method, props, body, self.negotiated.frame_max, out);
            self.heartbeat.on_send();
        }
    }

    /// Closes a channel with a soft error: `channel.close`, then frames on the channel are
    /// ignored until close-ok, which gives [`ServerEvent::ChannelClosed`].
    pub fn close_channel(
        &mut self,
        channel: u16,
        code: u16,
        text: &str,
        class_id: u16,
        method_id: u16,
        out: &mut BytesMut,
    ) {
        let reason = CloseReason {
            code,
            text: text.to_string(),
            class_id,
            method_id,
        };
        self.soft_error(channel, reason, out);
    }

    /// Closes the connection with a hard error: `connection.close`, then only close/close-ok
    /// are read until close-ok or [`crate::Limits::close_timeout_ms`].
    pub fn close_connection(
        &mut self,
        code: u16,
        text: &str,
        class_id: u16,
        method_id: u16,
        out: &mut BytesMut,
    ) {
        let reason = CloseReason {
            code,
            text: text.to_string(),
            class_id,
            method_id,
        };
        self.hard_error(reason, out);
    }

    /// What tuning settled on (before tune-ok: our offer, with the pre-auth frame limit).
    pub fn negotiated(&self) -> Negotiated {
        self.negotiated
    }

    /// The `client-properties` of `connection.start-ok`, once received.
    pub fn client_properties(&self) -> Option<&FieldTable> {
        self.client_properties.as_ref()
    }

    /// Whether the transport can be closed once `out` is flushed.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    fn can_send(&self, channel: u16) -> bool {
        let open = matches!(self.state, State::Open | State::AwaitingOpenDecision);
        open && (channel == 0 || self.channels.get(&channel).is_some_and(|c| !c.closing))
    }

    fn write(&mut self, channel: u16, method: &Method, out: &mut BytesMut) {
        frame::encode_method(channel, method, out);
        self.heartbeat.on_send();
    }

    fn handle_frame(&mut self, frame: Frame, out: &mut BytesMut) {
        match frame {
            Frame::ProtocolHeader => self.send_start(out),
            Frame::Heartbeat => {}
            Frame::Method { channel: 0, method } => self.on_connection_method(method, out),
            Frame::Method { channel, method } => self.on_channel_method(channel, method, out),
            Frame::Header {
                channel,
                body_size,
                properties,
                ..
            } => {
                self.on_header(channel, body_size, properties, out);
            }
            Frame::Body { channel, payload } => self.on_body(channel, payload, out),
        }
    }

    fn send_start(&mut self, out: &mut BytesMut) {
        let start = ConnectionStart {
            version_major: 0,
            version_minor: 9,
            server_properties: self.cfg.server_properties.clone(),
            mechanisms: Bytes::from(self.cfg.mechanisms.join(" ")),
            locales: Bytes::from_static(b"en_US"),
        };
        self.write(0, &start.into(), out);
        self.state = State::AwaitingStartOk;
    }

    fn on_connection_method(&mut self, method: Method, out: &mut BytesMut) {
        if matches!(self.state, State::Closing { .. }) {
            return self.on_closing_method(method, out);
        }
        let (class, id) = (method.class_id(), method.method_id());
        if class != class_id::CONNECTION || !method.sent_by_client() {
            let why = format!("{} is not a client method on channel 0", method.name());
            return self.hard_error(
                CloseReason::new(reply_code::COMMAND_INVALID, &why, class, id),
                out,
            );
        }
        match (&self.state, method) {
            (_, Method::ConnectionClose(c)) => {
                self.write(0, &ConnectionCloseOk {}.into(), out);
                self.finish(c.reply_code, c.reply_text);
            }
            (State::AwaitingStartOk, Method::ConnectionStartOk(m)) => self.on_start_ok(m, out),
            (State::AwaitingTuneOk, Method::ConnectionTuneOk(m)) => self.on_tune_ok(&m, out),
            (State::AwaitingOpen, Method::ConnectionOpen(m)) => {
                self.events.push_back(ServerEvent::OpenVhost {
                    vhost: m.virtual_host,
                });
                self.state = State::AwaitingOpenDecision;
            }
            (
                State::Open,
                m @ (Method::ConnectionBlocked(_)
                | Method::ConnectionUnblocked(_)
                | Method::ConnectionUpdateSecret(_)),
            ) => self.events.push_back(ServerEvent::Method {
                channel: 0,
                method: m,
            }),
            (_, m) => {
                let why = format!("{} not expected now", m.name());
                let reason = CloseReason::new(reply_code::UNEXPECTED_FRAME, &why, class, id);
                self.hard_error(reason, out);
            }
        }
    }

    fn on_closing_method(&mut self, method: Method, out: &mut BytesMut) {
        match method {
            Method::ConnectionClose(_) => {
                self.write(0, &ConnectionCloseOk {}.into(), out);
                if let State::Closing { reason, .. } = &self.state {
                    let reason = reason.clone();
                    self.finish(reason.code, reason.text);
                }
            }
            Method::ConnectionCloseOk(_) => {
                if let State::Closing { reason, .. } = &self.state {
                    let reason = reason.clone();
                    self.finish(reason.code, reason.text);
                }
            }
            _ => {}
        }
    }

    fn on_start_ok(&mut self, m: ConnectionStartOk, out: &mut BytesMut) {
        let (class, id) = (ConnectionStartOk::CLASS_ID, ConnectionStartOk::METHOD_ID);
        self.client_properties = Some(m.client_properties);
        if !self.cfg.mechanisms.contains(&m.mechanism.as_str()) {
            let why = format!("unknown authentication mechanism '{}'", m.mechanism);
            return self.fatal(
                CloseReason::new(reply_code::COMMAND_INVALID, &why, class, id),
                out,
            );
        }
        let creds = match m.mechanism.as_str() {
            "PLAIN" => auth::parse_plain(&m.response),
            "AMQPLAIN" => auth::parse_amqplain(&m.response, self.cfg.limits.table_depth_max),
            _ => None,
        };
        let Some(creds) = creds else {
            let why = format!("{} response is invalid", m.mechanism);
            return self.fatal(
                CloseReason::new(reply_code::ACCESS_REFUSED, &why, class, id),
                out,
            );
        };
        self.events.push_back(ServerEvent::Login {
            mechanism: m.mechanism,
            username: creds.username,
            password: creds.password,
        });
        self.state = State::AwaitingLogin;
    }

    fn on_tune_ok(&mut self, m: &ConnectionTuneOk, out: &mut BytesMut) {
        if m.frame_max != 0 && m.frame_max < FRAME_MIN_SIZE {
            let why = format!("frame_max={} < {FRAME_MIN_SIZE} min size", m.frame_max);
            let reason = CloseReason::new(reply_code::NOT_ALLOWED, &why, 10, 31);
            return self.fatal(reason, out);
        }
        let pick = |theirs: u32, ours: u32| if theirs == 0 { ours } else { theirs.min(ours) };
        self.negotiated = Negotiated {
            channel_max: pick(u32::from(m.channel_max), u32::from(self.cfg.channel_max)) as u16,
            frame_max: pick(m.frame_max, self.cfg.frame_max).max(FRAME_MIN_SIZE),
            heartbeat_s: m.heartbeat,
        };
        self.frames.set_frame_max(self.negotiated.frame_max);
        self.heartbeat.start(m.heartbeat, self.now_ms);
        self.state = State::AwaitingOpen;
    }

    /// A hard error: `connection.close`, then wait for close-ok. Before tuning, and when
    /// already closing, the connection is closed at once instead.
    fn hard_error(&mut self, reason: CloseReason, out: &mut BytesMut) {
        match self.state {
            State::Closing { .. } | State::Closed => {}
            State::AwaitingProtocolHeader
            | State::AwaitingStartOk
            | State::AwaitingLogin
            | State::AwaitingTuneOk => self.fatal(reason, out),
            _ => {
                self.write(0, &close_method(&reason), out);
                self.pending.clear();
                let deadline_ms = self.now_ms + self.cfg.limits.close_timeout_ms;
                self.state = State::Closing {
                    deadline_ms,
                    reason,
                };
            }
        }
    }

    /// An error after which nothing more is read: `connection.close`, then closed.
    fn fatal(&mut self, reason: CloseReason, out: &mut BytesMut) {
        if !matches!(self.state, State::Closing { .. } | State::Closed) {
            self.write(0, &close_method(&reason), out);
        }
        self.finish(reason.code, reason.text);
    }

    /// Moves to `Closed` and reports it.
    fn finish(&mut self, code: u16, text: String) {
        if self.state != State::Closed {
            self.state = State::Closed;
            self.heartbeat.stop();
            self.pending.clear();
            self.events
                .push_back(ServerEvent::ConnectionClosed { code, text });
        }
    }
}

fn close_method(reason: &CloseReason) -> Method {
    Method::ConnectionClose(ConnectionClose {
        reply_code: reason.code,
        reply_text: reason.text.clone(),
        class_id: reason.class_id,
        method_id: reason.method_id,
    })
}
