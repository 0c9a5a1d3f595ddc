//! The client side of one AMQP 0-9-1 connection: small, for tests and tools.
//!
//! [`ClientConn::new`] writes the protocol header. The connection answers `connection.start`
//! with `start-ok` (PLAIN), `connection.tune` with `tune-ok` and `connection.open`, and
//! reports [`ClientEvent::Ready`] on `open-ok`. Like the server it reads no socket and no
//! clock; drain [`ClientConn::poll_event`] after every `handle_*` call.

use std::collections::{BTreeMap, VecDeque};

use bytes::{Bytes, BytesMut};

use crate::conn::{Negotiated, auth};
use crate::content::{Assembler, Content};
use crate::error::{CloseReason, ConnError};
use crate::frame::{self, Frame, FrameDecoder, PROTOCOL_HEADER};
use crate::generated::{
    BasicProperties, BasicPublish, ChannelCloseOk, ConnectionClose, ConnectionCloseOk,
    ConnectionOpen, ConnectionStartOk, ConnectionTune, ConnectionTuneOk, Method, reply_code,
};
use crate::heartbeat::{Heartbeat, Tick};
use crate::limits::Limits;
use crate::table::FieldTable;

/// What the client asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientConfig {
    /// PLAIN user name.
    pub username: String,
    /// PLAIN password.
    pub password: String,
    /// The virtual host to open.
    pub vhost: String,
    /// `client-properties` of `connection.start-ok`.
    pub client_properties: FieldTable,
    /// Highest channel number wanted (0: the server's).
    pub channel_max: u16,
    /// Largest frame wanted (0: the server's).
    pub frame_max: u32,
    /// Heartbeat interval wanted, in seconds (0: off).
    pub heartbeat_s: u16,
    /// Decoding limits.
    pub limits: Limits,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            username: "guest".into(),
            password: "guest".into(),
            vhost: "/".into(),
            client_properties: FieldTable::new(),
            channel_max: 0,
            frame_max: 0,
            heartbeat_s: 0,
            limits: Limits::default(),
        }
    }
}

/// What the client is told.
// Events are moved out at once; boxing the methods would cost an allocation each.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum ClientEvent {
    /// `connection.open-ok` arrived; channels may be opened.
    Ready,
    /// A method on a channel, or connection.blocked/unblocked on channel 0. A `channel.close`
    /// from the server is reported here after its close-ok was written.
    Method {
        /// The channel.
        channel: u16,
        /// The method.
        method: Method,
    },
    /// A complete deliver, return or get-ok with its content.
    Delivery {
        /// The channel.
        channel: u16,
        /// The content-carrying method.
        method: Method,
        /// The content properties.
        properties: BasicProperties,
        /// The body.
        body: Bytes,
    },
    /// The connection is over: the server closed it, answered our close, or sent garbage.
    Closed {
        /// The reply code.
        code: u16,
        /// The reply text.
        text: String,
    },
    /// No frame arrived for two heartbeat intervals.
    PeerDead,
}

#[derive(Debug, Clone, PartialEq)]
enum State {
    AwaitingStart,
    AwaitingTune,
    AwaitingOpenOk,
    Open,
    Closing,
    Closed,
}

/// Client side of one AMQP 0-9-1 connection. Performs no IO and reads no clock.
#[derive(Debug)]
pub struct ClientConn {
    cfg: ClientConfig,
    state: State,
    frames: FrameDecoder,
    events: VecDeque<ClientEvent>,
    negotiated: Negotiated,
    content: BTreeMap<u16, Assembler>,
    heartbeat: Heartbeat,
    now_ms: u64,
}

impl ClientConn {
    /// A connection that has written the protocol header to `out`.
    pub fn new(cfg: ClientConfig, now_ms: u64, out: &mut BytesMut) -> Self {
        frame::encode_protocol_header(out);
        let frame_max = cfg.limits.preauth_frame_bytes_max.max(1 << 20);
        Self {
            frames: FrameDecoder::client(frame_max, cfg.limits.table_depth_max),
            negotiated: Negotiated {
                channel_max: 0,
                frame_max,
                heartbeat_s: 0,
            },
            cfg,
            state: State::AwaitingStart,
            events: VecDeque::new(),
            content: BTreeMap::new(),
            heartbeat: Heartbeat::default(),
            now_ms,
        }
    }

    /// Consumes complete frames from `rbuf`, writing the handshake replies to `out`. Fails if
    /// the server answers with a protocol header, i.e. does not speak AMQP 0-9-1.
    pub fn handle_input(
        &mut self,
        rbuf: &mut BytesMut,
        now_ms: u64,
        out: &mut BytesMut,
    ) -> Result<(), ConnError> {
        self.now_ms = self.now_ms.max(now_ms);
        if self.state == State::AwaitingStart && rbuf.starts_with(&PROTOCOL_HEADER[..4]) {
            self.state = State::Closed;
            return Err(ConnError::ProtocolRejected);
        }
        while self.state != State::Closed {
            match self.frames.decode(rbuf) {
                Ok(Some(f)) => {
                    self.heartbeat.on_recv(self.now_ms);
                    self.handle_frame(f, out);
                }
                Ok(None) => return Ok(()),
                Err(e) => self.close_now(CloseReason::from(&e), out),
            }
        }
        rbuf.clear();
        Ok(())
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// Sends heartbeats and notices a silent server.
    pub fn handle_timeout(&mut self, now_ms: u64, out: &mut BytesMut) {
        self.now_ms = self.now_ms.max(now_ms);
        match self.heartbeat.on_timeout(self.now_ms) {
            Tick::Idle => {}
            Tick::Send => frame::encode_heartbeat(out),
            Tick::PeerDead => {
                self.state = State::Closed;
                self.events.push_back(ClientEvent::PeerDead);
            }
        }
    }

    /// The next instant [`ClientConn::handle_timeout`] has work to do.
    pub fn poll_timeout(&self) -> Option<u64> {
        if self.state == State::Closed {
            None
        } else {
            self.heartbeat.deadline()
        }
    }

    /// Sends a method.
    pub fn send_method(&mut self, channel: u16, method: &Method, out: &mut BytesMut) {
        frame::encode_method(channel, method, out);
        self.heartbeat.on_send();
    }

    /// Publishes a message, split at the negotiated frame_max.
    pub fn publish(
        &mut self,
        channel: u16,
        method: BasicPublish,
        props: &BasicProperties,
        body: &Bytes,
        out: &mut BytesMut,
    ) {
        let m = Method::BasicPublish(method);
        frame::encode_content(channel, &m, props, body, self.negotiated.frame_max, out);
        self.heartbeat.on_send();
    }

    /// Starts the close handshake with `connection.close`.
    pub fn close(&mut self, code: u16, text: &str, out: &mut BytesMut) {
        if matches!(self.state, State::Closing | State::Closed) {
            return;
        }
        let close = ConnectionClose {
            reply_code: code,
            reply_text: text.into(),
            ..Default::default()
        };
        self.send_method(0, &close.into(), out);
        self.state = State::Closing;
    }

    /// What tuning settled on.
    pub fn negotiated(&self) -> Negotiated {
        self.negotiated
    }

    /// Whether `connection.open-ok` arrived and no close started.
    pub fn is_open(&self) -> bool {
        self.state == State::Open
    }

    /// Whether the transport can be closed.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    fn handle_frame(&mut self, frame: Frame, out: &mut BytesMut) {
        let result = match frame {
            Frame::ProtocolHeader | Frame::Heartbeat => Ok(None),
            Frame::Method { channel: 0, method } => {
                self.on_connection_method(method, out);
                Ok(None)
            }
            Frame::Method { channel, method } => self.on_channel_method(channel, method, out),
            Frame::Header {
                channel,
                body_size,
                properties,
                ..
            } => {
                let limits = self.cfg.limits;
                let a = self.content.entry(channel).or_default();
                a.header(body_size, properties, &limits)
                    .map(|c| c.map(|c| (channel, c)))
            }
            Frame::Body { channel, payload } => {
                let a = self.content.entry(channel).or_default();
                a.body(payload).map(|c| c.map(|c| (channel, c)))
            }
        };
        match result {
            Ok(Some((
                channel,
                Content {
                    method,
                    properties,
                    body,
                },
            ))) => {
                self.events.push_back(ClientEvent::Delivery {
                    channel,
                    method,
                    properties,
                    body,
                });
            }
            Ok(None) => {}
            Err((code, why)) => self.close_now(CloseReason::new(code, why, 60, 0), out),
        }
    }

    fn on_connection_method(&mut self, method: Method, out: &mut BytesMut) {
        match (&self.state, method) {
            (_, Method::ConnectionClose(c)) => {
                self.send_method(0, &ConnectionCloseOk {}.into(), out);
                self.finish(c.reply_code, c.reply_text);
            }
            (State::Closing, Method::ConnectionCloseOk(_)) => {
                self.finish(reply_code::REPLY_SUCCESS, String::new());
            }
            (State::Closing, _) => {}
            (State::AwaitingStart, Method::ConnectionStart(_)) => {
                let start_ok = ConnectionStartOk {
                    client_properties: self.cfg.client_properties.clone(),
                    mechanism: "PLAIN".into(),
                    response: auth::plain_response(&self.cfg.username, &self.cfg.password),
                    locale: "en_US".into(),
                };
                self.send_method(0, &start_ok.into(), out);
                self.state = State::AwaitingTune;
            }
            (State::AwaitingTune, Method::ConnectionTune(t)) => self.on_tune(&t, out),
            (State::AwaitingOpenOk, Method::ConnectionOpenOk(_)) => {
                self.state = State::Open;
                self.events.push_back(ClientEvent::Ready);
            }
            (State::Open, method) => self
                .events
                .push_back(ClientEvent::Method { channel: 0, method }),
            (_, m) => {
                let why = format!("{} not expected now", m.name());
                let r = CloseReason::new(
                    reply_code::UNEXPECTED_FRAME,
                    &why,
                    m.class_id(),
                    m.method_id(),
                );
                self.close_now(r, out);
            }
        }
    }

    fn on_tune(&mut self, t: &ConnectionTune, out: &mut BytesMut) {
        let pick = |ours: u32, theirs: u32| match (ours, theirs) {
            (0, x) | (x, 0) => x,
            (a, b) => a.min(b),
        };
        let channel_max = pick(self.cfg.channel_max.into(), t.channel_max.into()) as u16;
        let frame_max = pick(self.cfg.frame_max, t.frame_max);
        let heartbeat = pick(self.cfg.heartbeat_s.into(), t.heartbeat.into()) as u16;
        let heartbeat = if self.cfg.heartbeat_s == 0 {
            0
        } else {
            heartbeat
        };
        let tune_ok = ConnectionTuneOk {
            channel_max,
            frame_max,
            heartbeat,
        };
        self.send_method(0, &tune_ok.into(), out);
        let open = ConnectionOpen {
            virtual_host: self.cfg.vhost.clone(),
            ..Default::default()
        };
        self.send_method(0, &open.into(), out);
        self.negotiated = Negotiated {
            channel_max,
            frame_max,
            heartbeat_s: heartbeat,
        };
        if frame_max != 0 {
            self.frames.set_frame_max(frame_max);
        }
        self.heartbeat.start(heartbeat, self.now_ms);
        self.state = State::AwaitingOpenOk;
    }

    fn on_channel_method(
        &mut self,
        channel: u16,
        method: Method,
        out: &mut BytesMut,
    ) -> Result<Option<(u16, Content)>, (u16, &'static str)> {
        if self.state == State::Closing {
            return Ok(None);
        }
        if method.has_content() {
            self.content.entry(channel).or_default().start(method)?;
            return Ok(None);
        }
        if let Method::ChannelClose(_) = method {
            self.send_method(channel, &ChannelCloseOk {}.into(), out);
            self.content.remove(&channel);
        }
        self.events
            .push_back(ClientEvent::Method { channel, method });
        Ok(None)
    }

    fn close_now(&mut self, reason: CloseReason, out: &mut BytesMut) {
        if !matches!(self.state, State::Closing | State::Closed) {
            let close = ConnectionClose {
                reply_code: reason.code,
                reply_text: reason.text.clone(),
                class_id: reason.class_id,
                method_id: reason.method_id,
            };
            self.send_method(0, &close.into(), out);
        }
        self.finish(reason.code, reason.text);
    }

    fn finish(&mut self, code: u16, text: String) {
        if self.state != State::Closed {
            self.state = State::Closed;
            self.heartbeat.stop();
            self.events.push_back(ClientEvent::Closed { code, text });
        }
    }
}
