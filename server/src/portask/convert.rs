//! Portask protocol messages to engine records and AMQP messages, and back.
//!
//! The field mapping is the one in docs/cross-protocol.md: key, headers, payload and
//! timestamp map directly; content type, priority, expiration and the message id travel as
//! headers on topics and as AMQP properties on queues.

use bytes::Bytes;
use portask_engine::{Message as AmqpMessage, MessageProps, Record, RecordHeader, Table, Value};
use portask_protocol::body::Message;
use portask_protocol::body::Value as PValue;

/// Record headers that carry Portask message fields which records have no slot for.
const H_CONTENT_TYPE: &str = "content-type";
const H_PRIORITY: &str = "priority";
const H_EXPIRATION: &str = "expiration-ms";
const H_MESSAGE_ID: &str = "message-id";
/// AMQP header carrying the Portask/Kafka key.
const H_KEY: &str = "x-key";

/// A message published to a topic, as an engine record.
pub(crate) fn to_record(m: Message) -> Record {
    let mut headers: Vec<RecordHeader> = m
        .headers
        .into_iter()
        .map(|(key, value)| RecordHeader {
            key,
            value: Some(value),
        })
        .collect();
    let mut extra = |key: &str, value: Option<String>| {
        if let Some(v) = value {
            headers.push(RecordHeader {
                key: key.to_owned(),
                value: Some(Bytes::from(v)),
            });
        }
    };
    extra(H_CONTENT_TYPE, m.content_type);
    extra(H_PRIORITY, m.priority.map(|p| p.to_string()));
    extra(H_EXPIRATION, m.expiration_ms.map(|e| e.to_string()));
    extra(H_MESSAGE_ID, m.id.map(hex));
    Record {
        timestamp: m.timestamp.unwrap_or(-1),
        key: m.key,
        value: Some(m.payload),
        headers,
    }
}

/// A stored record as a Portask message; the headers [`to_record`] added are read back.
pub(crate) fn from_record(r: Record) -> Message {
    let mut m = Message {
        key: r.key,
        payload: r.value.unwrap_or_default(),
        timestamp: Some(r.timestamp),
        ..Default::default()
    };
    for h in r.headers {
        let value = h.value.unwrap_or_default();
        let text = || String::from_utf8(value.to_vec()).ok();
        match h.key.as_str() {
            H_CONTENT_TYPE => m.content_type = text(),
            H_PRIORITY => m.priority = text().and_then(|t| t.parse().ok()),
            H_EXPIRATION => m.expiration_ms = text().and_then(|t| t.parse().ok()),
            H_MESSAGE_ID => m.id = text().and_then(|t| unhex(&t)),
            _ => m.headers.push((h.key, value)),
        }
    }
    m
}

/// A message published to an exchange, as AMQP properties and body.
pub(crate) fn to_amqp(m: Message, durable: bool, wall: i64) -> (MessageProps, Bytes) {
    let mut headers: Table = m
        .headers
        .into_iter()
        .map(|(k, v)| (k, Value::Bytes(v)))
        .collect();
    if let Some(key) = m.key {
        headers.push((H_KEY.to_owned(), Value::Bytes(key)));
    }
    let timestamp_ms = m.timestamp.unwrap_or(wall);
    let props = MessageProps {
        content_type: m.content_type,
        headers: (!headers.is_empty()).then_some(headers),
        delivery_mode: Some(if durable { 2 } else { 1 }),
        priority: m.priority,
        expiration: m.expiration_ms.map(|e| e.to_string()),
        message_id: m.id.map(hex),
        timestamp: u64::try_from(timestamp_ms / 1000).ok(),
        ..Default::default()
    };
    (props, m.payload)
}

/// A delivered AMQP message as a Portask message. Header values that are not byte or text
/// strings arrive as their text form.
pub(crate) fn from_amqp(msg: &AmqpMessage) -> Message {
    let p = &msg.props;
    let mut m = Message {
        payload: msg.body.clone(),
        content_type: p.content_type.clone(),
        priority: p.priority,
        expiration_ms: p.expiration.as_deref().and_then(|e| e.parse().ok()),
        id: p.message_id.as_deref().and_then(unhex),
        timestamp: p.timestamp.map(|t| t as i64 * 1000),
        ..Default::default()
    };
    for (k, v) in p.headers.iter().flatten() {
        let bytes = match v {
            Value::Bytes(b) | Value::Str(b) => b.clone(),
            other => Bytes::from(format!("{other:?}")),
        };
        if k == H_KEY {
            m.key = Some(bytes);
        } else {
            m.headers.push((k.clone(), bytes));
        }
    }
    m
}

/// A Portask protocol value (queue arguments) as an engine value.
pub(crate) fn value_in(v: PValue) -> Value {
    match v {
        PValue::Null => Value::Void,
        PValue::Bool(b) => Value::Bool(b),
        PValue::Int(i) => Value::I64(i),
        PValue::Float(f) => Value::F64(f),
        PValue::Text(t) => Value::Str(Bytes::from(t)),
        PValue::Bytes(b) => Value::Bytes(b),
        PValue::Array(a) => Value::Array(a.into_iter().map(value_in).collect()),
        PValue::Map(m) => Value::Table(m.into_iter().map(|(k, v)| (k, value_in(v))).collect()),
    }
}

fn hex(id: [u8; 16]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<[u8; 16]> {
    if s.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Message {
        Message {
            id: Some([7; 16]),
            key: Some(Bytes::from_static(b"k\x00\xff")),
            headers: vec![("h".into(), Bytes::from_static(b"\x01\x02"))],
            payload: Bytes::from_static(b"\x00binary\xff"),
            timestamp: Some(1_700_000_000_123),
            content_type: Some("application/octet-stream".into()),
            priority: Some(3),
            expiration_ms: Some(60_000),
        }
    }

    #[test]
    fn topic_round_trip_keeps_every_field() {
        assert_eq!(from_record(to_record(sample())), sample());
    }

    #[test]
    fn queue_round_trip_keeps_fields_timestamp_to_the_second() {
        let (props, body) = to_amqp(sample(), true, 0);
        assert_eq!(props.delivery_mode, Some(2));
        let msg = AmqpMessage {
            exchange: String::new(),
            routing_key: "q".into(),
            props,
            body,
        };
        let back = from_amqp(&msg);
        assert_eq!(back.timestamp, Some(1_700_000_000_000));
        assert_eq!(
            Message {
                timestamp: sample().timestamp,
                ..back
            },
            sample()
        );
    }
}
