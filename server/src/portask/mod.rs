//! The Portask protocol adapter: drives the codec's server connection and answers requests
//! with engine calls. One connection reaches topics, queues and exchanges.
//!
//! Each `Consume` gets an engine channel of its own; its credit is that channel's prefetch
//! window. Delivery tags on the wire carry the channel in their top 16 bits, so an `Ack` or
//! `Nack` names its consumer without ambiguity.

mod admin;
mod convert;
mod data;
mod groups;

use std::collections::BTreeMap;

use portask_engine::Output;
use portask_protocol::body::{Delivery, Fetch, Request};
use portask_protocol::conn::server::{ServerConfig, ServerConn, ServerEvent};
use portask_protocol::error::code;

use crate::broker::Broker;
use crate::conn::{Conn, WRITE_HIGH_WATER_BYTES};
use crate::worker::Now;

/// A failed request: a protocol error code and a message for the client.
pub(crate) type Failure = (u16, String);

/// Fetches of one connection that may wait for storage reads; at this many, its input is
/// not read until some are answered.
const WAITING_FETCHES_MAX: usize = 64;

/// A queue consumer of this connection.
#[derive(Debug)]
struct Consumer {
    /// Correlation id of the `Consume`; deliveries carry it.
    correlation_id: u64,
    consumer_tag: String,
}

/// Per-connection Portask protocol state.
pub struct Session {
    conn: ServerConn,
    /// Consumers by engine channel.
    consumers: BTreeMap<u16, Consumer>,
    next_channel: u16,
    paused: bool,
    /// Subscribes waiting for their group, by correlation id.
    joins: BTreeMap<u64, groups::PendingJoin>,
    /// Fetches waiting for a storage read: (correlation id, no reply wanted, request).
    fetches: Vec<(u64, bool, Fetch)>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("consumers", &self.consumers.len())
            .finish()
    }
}

impl Session {
    /// A session for a freshly accepted connection.
    pub fn new(config: &ServerConfig) -> Self {
        Self {
            conn: ServerConn::new(config.clone()),
            consumers: BTreeMap::new(),
            next_channel: 1,
            paused: false,
            joins: BTreeMap::new(),
            fetches: Vec::new(),
        }
    }
}

/// The wire delivery tag for an engine tag on `channel`.
fn wire_tag(channel: u16, tag: u64) -> u64 {
    (u64::from(channel) << 48) | tag
}

/// The engine channel and tag of a wire delivery tag.
fn split_tag(tag: u64) -> (u16, u64) {
    ((tag >> 48) as u16, tag & ((1 << 48) - 1))
}

/// Reads and answers what `conn` has buffered, then sends its deliveries.
pub fn drive(conn: &mut Conn, id: u64, broker: &mut Broker, now: Now) {
    let Some(mut session) = conn.portask.take() else {
        return;
    };
    retry_fetches(&mut session, conn, broker);
    let waiting = session.fetches.len() >= WAITING_FETCHES_MAX;
    if conn.wbuf.len() < WRITE_HIGH_WATER_BYTES && !conn.close_after_flush && !waiting {
        // Accepting a Hello lets the codec read requests queued behind it, so loop.
        for _ in 0..2 {
            if let Err(e) = session.conn.handle_input(&mut conn.rbuf, &mut conn.wbuf) {
                eprintln!(
                    "portask: portask protocol: closing connection from {}: {e}",
                    conn.peer
                );
                conn.rbuf.clear();
                conn.close_after_flush = true;
                break;
            }
            let mut greeted = false;
            while let Some(event) = session.conn.poll_event() {
                greeted |= matches!(event, ServerEvent::Hello { .. });
                handle_event(&mut session, conn, id, broker, now, event);
            }
            if !greeted {
                break;
            }
        }
    }
    deliver(&mut session, conn, id, broker, now);
    if session.conn.is_closed() {
        conn.close_after_flush = true;
    }
    conn.portask = Some(session);
}

/// Sends deliveries that became ready. Returns whether the connection has output.
pub fn resume(conn: &mut Conn, id: u64, broker: &mut Broker, now: Now) -> bool {
    let before = conn.wbuf.len();
    drive(conn, id, broker, now);
    conn.wbuf.len() != before || conn.close_after_flush
}

/// Answers the fetches that waited for storage reads, once their reads completed.
fn retry_fetches(session: &mut Session, conn: &mut Conn, broker: &mut Broker) {
    if session.fetches.is_empty() {
        return;
    }
    for (correlation_id, no_reply, f) in std::mem::take(&mut session.fetches) {
        match data::fetch(broker, &f) {
            Ok(Some(response)) if !no_reply => {
                session
                    .conn
                    .send_response(correlation_id, &response, &mut conn.wbuf);
            }
            Ok(Some(_)) => {}
            Ok(None) => session.fetches.push((correlation_id, no_reply, f)),
            Err((code, message)) => {
                session
                    .conn
                    .send_error(correlation_id, code, &message, &mut conn.wbuf);
            }
        }
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
        ServerEvent::Hello { user, password, .. } => {
            // Without credentials only local clients are let in, like RabbitMQ's guest.
            let result = match (user, password) {
                (Some(u), p) => broker.amqp.users.authenticate(
                    "PORTASK",
                    &u,
                    p.as_deref().unwrap_or_default(),
                    conn.peer.ip(),
                ),
                (None, _) if conn.peer.ip().is_loopback() => Ok(()),
                (None, _) => Err("credentials are required from non-local clients".to_owned()),
            };
            match result {
                Ok(()) => session.conn.accept_hello(out),
                Err(text) => session.conn.refuse_hello(code::AUTH_FAILED, &text, out),
            }
        }
        ServerEvent::Request {
            correlation_id,
            no_reply,
            request,
        } => {
            broker.requests_total += 1;
            if let Request::Subscribe(s) = request {
                let peer = format!("/{}", conn.peer.ip());
                let pending = groups::subscribe(broker, now, id, correlation_id, &peer, s);
                session.joins.insert(correlation_id, pending);
                return;
            }
            if let Request::Fetch(f) = request {
                match data::fetch(broker, &f) {
                    Ok(Some(response)) if !no_reply => {
                        session.conn.send_response(correlation_id, &response, out);
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => session.fetches.push((correlation_id, no_reply, f)),
                    Err((code, message)) => {
                        session.conn.send_error(correlation_id, code, &message, out)
                    }
                }
                return;
            }
            match handle_request(session, id, broker, now, correlation_id, request) {
                Ok(Some(response)) if !no_reply => {
                    session.conn.send_response(correlation_id, &response, out);
                }
                Ok(_) => {}
                Err((code, message)) => {
                    session.conn.send_error(correlation_id, code, &message, out)
                }
            }
        }
        #[allow(unreachable_patterns)]
        _ => {}
    }
}

fn handle_request(
    session: &mut Session,
    id: u64,
    broker: &mut Broker,
    now: Now,
    correlation_id: u64,
    request: Request,
) -> Result<Option<portask_protocol::body::Response>, Failure> {
    use portask_protocol::body::{Pong, Response};
    Ok(Some(match request {
        Request::Ping(_) => Response::Pong(Pong {}),
        Request::Publish(p) => data::publish(broker, now, p)?,
        Request::Commit(c) => data::commit(broker, now, c)?,
        Request::Consume(c) => {
            let channel = session.next_channel;
            session.next_channel = session.next_channel.checked_add(1).ok_or((
                code::RESOURCE_LIMIT,
                "too many consumers on this connection".to_owned(),
            ))?;
            let response = data::consume(broker, now, id, channel, c)?;
            if let Response::ConsumeOk(ok) = &response {
                let consumer = Consumer {
                    correlation_id,
                    consumer_tag: ok.consumer_tag.clone(),
                };
                session.consumers.insert(channel, consumer);
            }
            response
        }
        Request::Credit(c) => {
            let channel = channel_of(session, &c.consumer_tag)?;
            let credit = u16::try_from(c.credit).unwrap_or(u16::MAX);
            broker.engine.basic_qos(id, channel, credit, true);
            return Ok(None);
        }
        Request::Cancel(c) => {
            let channel = channel_of(session, &c.consumer_tag)?;
            broker.engine.channel_close(now.mono, id, channel);
            session.consumers.remove(&channel);
            admin::done()
        }
        Request::Ack(a) => data::ack(broker, id, a)?,
        Request::Heartbeat(h) => groups::heartbeat(broker, now, h)?,
        Request::Leave(l) => groups::leave(broker, now, l)?,
        Request::Nack(n) => data::nack(broker, now, id, n)?,
        other => admin::handle(broker, now, id, other)?,
    }))
}

fn channel_of(session: &Session, tag: &str) -> Result<u16, Failure> {
    session
        .consumers
        .iter()
        .find(|(_, c)| c.consumer_tag == tag)
        .map(|(ch, _)| *ch)
        .ok_or((
            code::UNKNOWN_CONSUMER,
            format!("no consumer '{tag}' on this connection"),
        ))
}

/// Writes the engine's deliveries for this connection as Delivery frames.
fn deliver(session: &mut Session, conn: &mut Conn, id: u64, broker: &mut Broker, now: Now) {
    broker.collect_outputs();
    while conn.wbuf.len() < WRITE_HIGH_WATER_BYTES {
        let Some(out) = broker.take_output(id) else {
            break;
        };
        let (channel, consumer_tag, delivery_tag, redelivered, message) = match out {
            Output::Deliver {
                channel,
                consumer_tag,
                delivery_tag,
                redelivered,
                message,
                ..
            } => (channel, consumer_tag, delivery_tag, redelivered, message),
            Output::Joined { waiter, .. } | Output::Synced { waiter, .. } => {
                group_output(session, conn, broker, now, waiter.request, out);
                broker.collect_outputs();
                continue;
            }
            Output::ConsumerCancelled { .. } => continue,
        };
        let Some(consumer) = session.consumers.get(&channel) else {
            continue;
        };
        let delivery = Delivery {
            consumer_tag,
            delivery_tag: wire_tag(channel, delivery_tag),
            redelivered,
            exchange: message.exchange.clone(),
            routing_key: message.routing_key.clone(),
            message: convert::from_amqp(&message),
        };
        session
            .conn
            .send_delivery(consumer.correlation_id, &delivery, &mut conn.wbuf);
    }
    let writable = conn.wbuf.len() < WRITE_HIGH_WATER_BYTES;
    if writable == session.paused {
        session.paused = !writable;
        broker.engine.set_conn_writable(id, writable);
    }
}

/// Advances a pending Subscribe with a group output and answers it when complete.
fn group_output(
    session: &mut Session,
    conn: &mut Conn,
    broker: &mut Broker,
    now: Now,
    correlation_id: u64,
    out: Output,
) {
    let Some(pending) = session.joins.get_mut(&correlation_id) else {
        return;
    };
    let Some(answer) = groups::on_output(broker, now, pending, out) else {
        return;
    };
    session.joins.remove(&correlation_id);
    match answer {
        Ok(response) => session
            .conn
            .send_response(correlation_id, &response, &mut conn.wbuf),
        Err((code, message)) => {
            session
                .conn
                .send_error(correlation_id, code, &message, &mut conn.wbuf)
        }
    }
}
