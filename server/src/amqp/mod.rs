//! The AMQP 0-9-1 adapter: drives the codec's server connection and turns its events into
//! engine calls, and engine deliveries into basic.deliver.

mod basic;
mod convert;
mod errors;
mod methods;

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;
use portask_amqp::conn::server::{ServerConfig, ServerConn, ServerEvent};
use portask_amqp::generated::{
    BasicCancel, BasicDeliver, BasicGet, BasicProperties, BasicPublish, ConnectionBlocked, Method,
};
use portask_amqp::table::{FieldTable, FieldValue};
use portask_engine::Output;

use self::errors::Failure;
use crate::broker::Broker;
use crate::conn::{Conn, WRITE_HIGH_WATER_BYTES};
use crate::worker::Now;

/// A publish or acknowledgement held back by a transactional channel until tx.commit.
#[derive(Debug)]
enum TxOp {
    Publish(Box<(BasicPublish, BasicProperties, Bytes)>),
    Ack(AckOp),
}

/// basic.ack, or basic.nack / basic.reject (a reject is a nack of one tag).
#[derive(Debug)]
enum AckOp {
    Ack {
        tag: u64,
        multiple: bool,
    },
    Nack {
        tag: u64,
        multiple: bool,
        requeue: bool,
    },
}

/// Per-channel adapter state.
#[derive(Debug, Default)]
struct Channel {
    /// confirm.select was sent; `next_seq` numbers the publishes.
    confirm: bool,
    next_seq: u64,
    /// tx.select was sent; operations wait here for commit.
    tx: Option<Vec<TxOp>>,
}

/// Per-connection AMQP state.
pub struct Session {
    conn: ServerConn,
    user: String,
    vhost: String,
    channels: BTreeMap<u16, Channel>,
    /// The engine was told this connection cannot take deliveries.
    paused: bool,
    /// connection.blocked was sent (memory alarm); input is not read meanwhile.
    blocked: bool,
    published: bool,
    /// A basic.get waiting for its queue's head to be read from storage: (channel, method).
    parked_get: Option<(u16, BasicGet)>,
    /// Events that arrived behind the parked get, run in order once it is answered.
    held: VecDeque<ServerEvent>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("user", &self.user)
            .field("vhost", &self.vhost)
            .finish()
    }
}

/// AMQP settings shared by all connections.
#[derive(Debug)]
pub struct AmqpSettings {
    /// Frame and channel limits, heartbeat, server properties.
    pub server: ServerConfig,
    /// Users and permissions.
    pub users: crate::auth::Users,
    /// Queued body bytes above which publishers are blocked.
    pub memory_high_watermark_bytes: u64,
}

impl Session {
    /// A session for a freshly accepted connection.
    pub fn new(settings: &AmqpSettings, now: Now) -> Self {
        Self {
            conn: ServerConn::new(settings.server.clone(), now.mono),
            user: String::new(),
            vhost: String::new(),
            channels: BTreeMap::new(),
            paused: false,
            blocked: false,
            published: false,
            parked_get: None,
            held: VecDeque::new(),
        }
    }

    /// When the codec next needs `handle_timeout` (heartbeats).
    pub fn poll_timeout(&self) -> Option<u64> {
        self.conn.poll_timeout()
    }

    /// Whether the client announced a capability in its client-properties.
    fn capability(&self, name: &str) -> bool {
        let caps = self
            .conn
            .client_properties()
            .and_then(|p| p.get("capabilities"));
        matches!(caps, Some(FieldValue::Table(t)) if matches!(t.get(name), Some(FieldValue::Bool(true))))
    }
}

/// What the server says about itself in connection.start.
pub fn server_properties() -> FieldTable {
    let mut caps = FieldTable::new();
    for cap in [
        "publisher_confirms",
        "exchange_exchange_bindings",
        "basic.nack",
        "consumer_cancel_notify",
        "connection.blocked",
        "authentication_failure_close",
        "per_consumer_qos",
    ] {
        caps.insert(cap, FieldValue::Bool(true));
    }
    let mut props = FieldTable::new();
    let text = |s: &str| FieldValue::LongString(Bytes::copy_from_slice(s.as_bytes()));
    props.insert("product", text("Portask"));
    props.insert("version", text(env!("CARGO_PKG_VERSION")));
    props.insert("platform", text("Rust"));
    props.insert("capabilities", FieldValue::Table(caps));
    props
}

/// Reads and answers what `conn` has buffered, then sends what the engine has for it.
pub fn drive(conn: &mut Conn, id: u64, broker: &mut Broker, now: Now) {
    let Some(mut session) = conn.amqp.take() else {
        return;
    };
    let alarm = broker.memory_alarm();
    update_blocked(&mut session, conn, alarm);
    let backed_up = conn.wbuf.len() >= WRITE_HIGH_WATER_BYTES;
    if !backed_up
        && !session.blocked
        && !conn.close_after_flush
        && run_held(&mut session, conn, id, broker, now)
    {
        if let Err(e) = session
            .conn
            .handle_input(&mut conn.rbuf, now.mono, &mut conn.wbuf)
        {
            eprintln!("portask: amqp: closing connection from {}: {e}", conn.peer);
            conn.rbuf.clear();
            conn.close_after_flush = true;
        }
        while let Some(event) = session.conn.poll_event() {
            match session.parked_get {
                Some(_) => session.held.push_back(event),
                None => handle_event(&mut session, conn, id, broker, now, event),
            }
        }
    }
    deliver(&mut session, conn, id, broker);
    if session.conn.is_closed() {
        conn.close_after_flush = true;
    }
    conn.amqp = Some(session);
}

/// Answers a parked basic.get and then the events held behind it, in order. Returns false
/// while a get is still parked: the connection's input is not read meanwhile.
fn run_held(
    session: &mut Session,
    conn: &mut Conn,
    id: u64,
    broker: &mut Broker,
    now: Now,
) -> bool {
    if let Some((channel, m)) = session.parked_get.take() {
        // basic.get is class 60, method 70.
        let ids = (60, 70);
        if let Err(f) = basic::get(session, &mut conn.wbuf, id, broker, now, channel, m) {
            fail(session, &mut conn.wbuf, channel, ids, &f);
        }
    }
    while session.parked_get.is_none() {
        let Some(event) = session.held.pop_front() else {
            return true;
        };
        handle_event(session, conn, id, broker, now, event);
    }
    false
}

/// Sends heartbeats and engine output to an idle connection. Returns whether it wrote.
pub fn resume(conn: &mut Conn, id: u64, broker: &mut Broker, now: Now) -> bool {
    let before = conn.wbuf.len();
    if let Some(session) = conn.amqp.as_mut()
        && session.conn.poll_timeout().is_some_and(|t| t <= now.mono)
    {
        session.conn.handle_timeout(now.mono, &mut conn.wbuf);
    }
    drive(conn, id, broker, now);
    conn.wbuf.len() != before || conn.close_after_flush
}

fn update_blocked(session: &mut Session, conn: &mut Conn, alarm: bool) {
    if !session.published || alarm == session.blocked {
        return;
    }
    session.blocked = alarm;
    if session.capability("connection.blocked") {
        let method = if alarm {
            Method::ConnectionBlocked(ConnectionBlocked {
                reason: "low on memory".into(),
            })
        } else {
            Method::ConnectionUnblocked(Default::default())
        };
        session.conn.send_method(0, &method, &mut conn.wbuf);
    }
}

fn handle_event(
    session: &mut Session,
    conn: &mut Conn,
    id: u64,
    broker: &mut Broker,
    now: Now,
    event: ServerEvent,
) {
    let out = &mut conn.wbuf;
    match event {
        ServerEvent::Login {
            mechanism,
            username,
            password,
        } => {
            let amqp = &broker.amqp;
            match amqp
                .users
                .authenticate(&mechanism, &username, &password, conn.peer.ip())
            {
                Ok(()) => {
                    session.user = username;
                    session.conn.accept_login(out);
                }
                Err(text) => {
                    eprintln!(
                        "portask: amqp: login of '{username}' from {} refused",
                        conn.peer
                    );
                    session
                        .conn
                        .refuse_login(&format!("ACCESS_REFUSED - {text}"), out);
                }
            }
        }
        ServerEvent::OpenVhost { vhost } => {
            let allowed = if broker.engine.vhost_exists(&vhost) {
                broker.amqp.users.may_open(&session.user, &vhost)
            } else {
                Err(format!("vhost {vhost} not found"))
            };
            match allowed {
                Ok(()) => {
                    session.vhost = vhost;
                    session.conn.accept_open(out);
                }
                Err(text) => session.conn.refuse_open(
                    portask_amqp::generated::reply_code::NOT_ALLOWED,
                    &format!("NOT_ALLOWED - {text}"),
                    out,
                ),
            }
        }
        ServerEvent::ChannelOpened { channel } => {
            broker.engine.channel_open(id, channel);
            session.channels.insert(channel, Channel::default());
        }
        ServerEvent::ChannelClosed { channel } => {
            broker.engine.channel_close(now.mono, id, channel);
            session.channels.remove(&channel);
        }
        ServerEvent::Method { channel, method } => {
            let ids = (method.class_id(), method.method_id());
            if let Err(f) = methods::handle(session, out, id, broker, now, channel, method) {
                fail(session, out, channel, ids, &f);
            }
        }
        ServerEvent::Publish {
            channel,
            method,
            properties,
            body,
        } => {
            session.published = true;
            let ids = (60, 40);
            if let Err(f) =
                basic::publish(session, out, broker, now, channel, method, properties, body)
            {
                fail(session, out, channel, ids, &f);
            }
        }
        ServerEvent::ConnectionClosed { .. } | ServerEvent::PeerDead => {
            conn.close_after_flush = true;
        }
        #[allow(unreachable_patterns)]
        _ => {}
    }
}

/// Closes the channel (soft error) or the connection (hard error) with the failure's code.
fn fail(
    session: &mut Session,
    out: &mut bytes::BytesMut,
    channel: u16,
    (class_id, method_id): (u16, u16),
    f: &Failure,
) {
    if f.hard {
        session
            .conn
            .close_connection(f.code, &f.text, class_id, method_id, out);
    } else {
        session
            .conn
            .close_channel(channel, f.code, &f.text, class_id, method_id, out);
    }
}

/// Writes the engine's deliveries and cancellations for this connection, and tells the engine
/// when the connection stops or starts taking more.
fn deliver(session: &mut Session, conn: &mut Conn, id: u64, broker: &mut Broker) {
    broker.collect_outputs();
    while conn.wbuf.len() < WRITE_HIGH_WATER_BYTES {
        let Some(out) = broker.take_output(id) else {
            break;
        };
        match out {
            Output::Deliver {
                channel,
                consumer_tag,
                delivery_tag,
                redelivered,
                message,
                ..
            } => {
                // A channel closed since the delivery was made: the engine requeued it.
                if !session.channels.contains_key(&channel) {
                    continue;
                }
                let method = Method::BasicDeliver(BasicDeliver {
                    consumer_tag,
                    delivery_tag,
                    redelivered,
                    exchange: message.exchange.clone(),
                    routing_key: message.routing_key.clone(),
                });
                let props = convert::props_out(&message.props);
                session
                    .conn
                    .send_content(channel, &method, &props, &message.body, &mut conn.wbuf);
            }
            Output::ConsumerCancelled {
                channel,
                consumer_tag,
                ..
            } if session.channels.contains_key(&channel)
                && session.capability("consumer_cancel_notify") =>
            {
                let method = Method::BasicCancel(BasicCancel {
                    consumer_tag,
                    nowait: true,
                });
                session.conn.send_method(channel, &method, &mut conn.wbuf);
            }
            _ => {}
        }
    }
    let writable = conn.wbuf.len() < WRITE_HIGH_WATER_BYTES;
    if writable == session.paused {
        session.paused = !writable;
        broker.engine.set_conn_writable(id, writable);
    }
}
