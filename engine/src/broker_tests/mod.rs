//! Tests of the queue model through the [`Engine`] calls.

mod declare;
mod delivery;
mod durability;
mod expiry;
mod paging;
mod routing;
mod stream;

use bytes::Bytes;

use crate::group::types::Output;
use crate::message::{Consume, ExchangeDeclare, MessageProps, Publish, QueueDeclare};
use crate::value::{Table, Value};
use crate::{Engine, EngineConfig, MemStorage};

pub(super) const V: &str = "/";

pub(super) fn engine_on(storage: &MemStorage) -> Engine {
    let mut e = Engine::open(EngineConfig::default(), Box::new(storage.clone()), 0).unwrap();
    e.ensure_vhost(V).unwrap();
    e
}

pub(super) fn engine() -> Engine {
    engine_on(&MemStorage::new())
}

pub(super) fn t(kv: &[(&str, Value)]) -> Table {
    kv.iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

pub(super) fn queue(e: &mut Engine, name: &str, args: Table) {
    let d = QueueDeclare {
        name: name.into(),
        arguments: args,
        ..QueueDeclare::default()
    };
    e.queue_declare(0, 1, V, d).unwrap();
}

pub(super) fn durable_queue(e: &mut Engine, name: &str) {
    let d = QueueDeclare {
        name: name.into(),
        durable: true,
        ..QueueDeclare::default()
    };
    e.queue_declare(0, 1, V, d).unwrap();
}

pub(super) fn exchange(e: &mut Engine, name: &str, kind: &str, args: Table) {
    let d = ExchangeDeclare {
        name: name.into(),
        kind: kind.into(),
        arguments: args,
        ..ExchangeDeclare::default()
    };
    e.exchange_declare(V, d).unwrap();
}

pub(super) fn msg(exchange: &str, key: &str, body: &str) -> Publish {
    Publish {
        exchange: exchange.into(),
        routing_key: key.into(),
        body: Bytes::copy_from_slice(body.as_bytes()),
        ..Publish::default()
    }
}

pub(super) fn with_props(mut p: Publish, props: MessageProps) -> Publish {
    p.props = props;
    p
}

/// Publishes at `now` (wall clock: 1_000_000 + now).
pub(super) fn publish(e: &mut Engine, now: u64, p: Publish) -> crate::PublishOutcome {
    e.publish(now, 1_000_000 + now as i64, V, p).unwrap()
}

pub(super) fn consume(e: &mut Engine, conn: u64, ch: u16, q: &str, tag: &str) -> String {
    let c = Consume {
        queue: q.into(),
        consumer_tag: tag.into(),
        ..Consume::default()
    };
    e.basic_consume(0, conn, ch, V, c).unwrap()
}

/// A delivery, simplified: (conn, channel, consumer tag, delivery tag, redelivered, body).
pub(super) type D = (u64, u16, String, u64, bool, String);

pub(super) fn deliveries(e: &mut Engine) -> Vec<D> {
    let mut out = Vec::new();
    while let Some(o) = e.poll_output() {
        if let Output::Deliver {
            conn,
            channel,
            consumer_tag,
            delivery_tag,
            redelivered,
            message,
        } = o
        {
            let body = String::from_utf8_lossy(&message.body).into_owned();
            out.push((conn, channel, consumer_tag, delivery_tag, redelivered, body));
        }
    }
    out
}

pub(super) fn bodies(e: &mut Engine) -> Vec<String> {
    deliveries(e).into_iter().map(|d| d.5).collect()
}

/// Bodies of every ready message, taken with basic.get no-ack.
pub(super) fn drain(e: &mut Engine, q: &str, now: u64) -> Vec<String> {
    let mut out = Vec::new();
    while let Some(g) = e.basic_get(now, 9, 9, V, q, true).unwrap() {
        out.push(String::from_utf8_lossy(&g.message.body).into_owned());
    }
    out
}
