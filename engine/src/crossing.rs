//! The one mapping between topic records (Kafka, Portask topics) and queue-model messages
//! (AMQP), used wherever a record crosses to the queue model or a message to a topic. The
//! table is in docs/cross-protocol.md.

use bytes::Bytes;

use crate::message::{Message, MessageProps};
use crate::record::{Record, RecordHeader};
use crate::value::{Table, Value};

/// AMQP header carrying the record key (as [`Value::Bytes`]).
pub const H_KEY: &str = "x-key";
/// AMQP header carrying the record timestamp in milliseconds (as [`Value::I64`]).
pub const H_TIMESTAMP_MS: &str = "x-timestamp-ms";
/// AMQP header carrying the record's offset in its partition (as [`Value::I64`]).
pub const H_STREAM_OFFSET: &str = "x-stream-offset";

/// Record header names of the message properties, in the order they are written.
const PROPS: [&str; 13] = [
    "content-type",
    "amqp.content-encoding",
    "amqp.delivery-mode",
    "priority",
    "amqp.correlation-id",
    "amqp.reply-to",
    "expiration-ms",
    "message-id",
    "amqp.type",
    "amqp.user-id",
    "amqp.app-id",
    "amqp.cluster-id",
    "amqp.exchange",
];
/// Record header carrying the routing key an AMQP publish used.
const H_ROUTING_KEY: &str = "amqp.routing-key";

/// The text slot of a property (`None` for the numeric ones and the exchange).
fn text_slot<'a>(p: &'a mut MessageProps, header: &str) -> Option<&'a mut Option<String>> {
    Some(match header {
        "content-type" => &mut p.content_type,
        "amqp.content-encoding" => &mut p.content_encoding,
        "amqp.correlation-id" => &mut p.correlation_id,
        "amqp.reply-to" => &mut p.reply_to,
        "expiration-ms" => &mut p.expiration,
        "message-id" => &mut p.message_id,
        "amqp.type" => &mut p.kind,
        "amqp.user-id" => &mut p.user_id,
        "amqp.app-id" => &mut p.app_id,
        "amqp.cluster-id" => &mut p.cluster_id,
        _ => return None,
    })
}

/// Stores a record header into the property it names, if it names one that is still unset
/// and the value fits; `false` leaves it an ordinary header.
/// `seen` tracks whether the exchange and the routing key were already taken.
fn assign(m: &mut Message, seen: &mut (bool, bool), key: &str, value: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(value) else {
        return false;
    };
    let p = &mut m.props;
    match key {
        "amqp.delivery-mode" | "priority" => {
            let slot = match key {
                "priority" => &mut p.priority,
                _ => &mut p.delivery_mode,
            };
            match (slot.is_none(), text.parse::<u8>()) {
                (true, Ok(n)) => *slot = Some(n),
                _ => return false,
            }
        }
        "expiration-ms" if text.parse::<u64>().is_err() || p.expiration.is_some() => {
            return false;
        }
        "amqp.exchange" | H_ROUTING_KEY => {
            let (slot, seen) = match key {
                H_ROUTING_KEY => (&mut m.routing_key, &mut seen.1),
                _ => (&mut m.exchange, &mut seen.0),
            };
            if *seen {
                return false;
            }
            *seen = true;
            *slot = text.to_owned();
        }
        _ => match text_slot(p, key) {
            Some(slot) if slot.is_none() => *slot = Some(text.to_owned()),
            _ => return false,
        },
    }
    true
}

/// A record of `topic` at `offset` as a message: published to the default exchange with
/// the topic name as routing key (unless the record carries the exchange and routing key of
/// an AMQP publish), persistent unless the record says otherwise.
pub fn record_to_message(topic: &str, offset: i64, r: &Record) -> Message {
    let mut m = Message {
        exchange: String::new(),
        routing_key: topic.to_owned(),
        props: MessageProps::default(),
        body: r.value.clone().unwrap_or_default(),
    };
    let mut headers = Table::new();
    let mut seen = (false, false);
    for h in &r.headers {
        let bytes = h.value.as_deref().unwrap_or_default();
        let taken = h.value.is_some() && assign(&mut m, &mut seen, &h.key, bytes);
        if !taken {
            let v = h.value.clone().map_or(Value::Void, Value::Bytes);
            headers.push((h.key.clone(), v));
        }
    }
    if let Some(key) = &r.key {
        headers.push((H_KEY.to_owned(), Value::Bytes(key.clone())));
    }
    headers.push((H_TIMESTAMP_MS.to_owned(), Value::I64(r.timestamp)));
    headers.push((H_STREAM_OFFSET.to_owned(), Value::I64(offset)));
    m.props.headers = Some(headers);
    m.props.delivery_mode.get_or_insert(2);
    m.props.timestamp = u64::try_from(r.timestamp.div_euclid(1000)).ok();
    m
}

/// A header value as record header bytes: strings and byte arrays as they are, void as no
/// value, anything else as its text form.
fn header_bytes(v: &Value) -> Option<Bytes> {
    match v {
        Value::Void => None,
        Value::Str(b) | Value::Bytes(b) => Some(b.clone()),
        other => Some(Bytes::from(other.display())),
    }
}

/// The record timestamp of a message: `x-timestamp-ms` when it agrees with the `timestamp`
/// property (or there is none), else the property in ms, else `wall`.
fn timestamp_ms(m: &Message, wall: i64) -> i64 {
    let secs = m.props.timestamp.and_then(|s| i64::try_from(s).ok());
    let ms = (m.props.headers.as_ref())
        .and_then(|t| crate::value::table_get(t, H_TIMESTAMP_MS))
        .and_then(Value::as_int);
    match (ms, secs) {
        (Some(ms), Some(s)) if ms.div_euclid(1000) == s => ms,
        (Some(ms), None) => ms,
        (_, Some(s)) => s.saturating_mul(1000),
        (None, None) => wall,
    }
}

/// A message as a record (timestamp: see docs/cross-protocol.md; `wall` when it has none).
pub fn message_to_record(m: &Message, wall: i64) -> Record {
    let mut key = None;
    let mut headers = Vec::new();
    for (k, v) in m.props.headers.iter().flatten() {
        match k.as_str() {
            H_KEY if key.is_none() => key = header_bytes(v),
            H_TIMESTAMP_MS | H_STREAM_OFFSET => {}
            _ => headers.push(RecordHeader {
                key: k.clone(),
                value: header_bytes(v),
            }),
        }
    }
    let p = &m.props;
    let text = |n: Option<u8>| n.map(|n| n.to_string());
    let values: [Option<String>; 13] = [
        p.content_type.clone(),
        p.content_encoding.clone(),
        // 2 (persistent) is what the way back assumes without the header.
        text(p.delivery_mode.filter(|&d| d != 2)),
        text(p.priority),
        p.correlation_id.clone(),
        p.reply_to.clone(),
        p.expiration.clone(),
        p.message_id.clone(),
        p.kind.clone(),
        p.user_id.clone(),
        p.app_id.clone(),
        p.cluster_id.clone(),
        (!m.exchange.is_empty()).then(|| m.exchange.clone()),
    ];
    for (name, value) in PROPS.iter().zip(values) {
        if let Some(v) = value {
            headers.push(RecordHeader {
                key: (*name).to_owned(),
                value: Some(Bytes::from(v)),
            });
        }
    }
    if !m.exchange.is_empty() {
        headers.push(RecordHeader {
            key: H_ROUTING_KEY.to_owned(),
            value: Some(Bytes::from(m.routing_key.clone())),
        });
    }
    Record {
        timestamp: timestamp_ms(m, wall),
        key,
        value: Some(m.body.clone()),
        headers,
    }
}
