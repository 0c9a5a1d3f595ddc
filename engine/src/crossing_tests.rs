//! Round trips of the record/message mapping in [`crate::crossing`].

use bytes::Bytes;

use crate::crossing::{
    H_KEY, H_STREAM_OFFSET, H_TIMESTAMP_MS, message_to_record, record_to_message,
};
use crate::message::{Message, MessageProps};
use crate::record::{Record, RecordHeader};
use crate::value::{Value, table_get};

fn header(key: &str, value: Option<&[u8]>) -> RecordHeader {
    RecordHeader {
        key: key.into(),
        value: value.map(Bytes::copy_from_slice),
    }
}

fn kafka_record(value: &[u8]) -> Record {
    Record {
        timestamp: 1_700_000_000_123,
        key: Some(Bytes::from_static(b"k\x00\xff")),
        value: Some(Bytes::copy_from_slice(value)),
        headers: vec![
            header("trace", Some(b"\x01\x02\xfe")),
            header("empty", Some(b"")),
            header("null", None),
            header("trace", Some(b"again")),
        ],
    }
}

#[test]
fn kafka_to_amqp_to_kafka_keeps_key_headers_payload_and_ms() {
    for value in [&b"\x00binary\xff\x80"[..], b"", b"text"] {
        let r = kafka_record(value);
        let m = record_to_message("t", 42, &r);
        assert_eq!(&m.body[..], value);
        assert_eq!((m.exchange.as_str(), m.routing_key.as_str()), ("", "t"));
        assert_eq!(m.props.timestamp, Some(1_700_000_000));
        assert_eq!(m.props.delivery_mode, Some(2));
        let h = m.props.headers.as_ref().unwrap();
        assert_eq!(
            table_get(h, H_KEY),
            Some(&Value::Bytes(r.key.clone().unwrap()))
        );
        assert_eq!(table_get(h, H_STREAM_OFFSET), Some(&Value::I64(42)));
        assert_eq!(
            table_get(h, H_TIMESTAMP_MS),
            Some(&Value::I64(1_700_000_000_123))
        );
        assert_eq!(table_get(h, "null"), Some(&Value::Void));
        assert_eq!(message_to_record(&m, 0), r);
    }
}

#[test]
fn property_headers_become_properties_and_come_back() {
    let mut r = kafka_record(b"p");
    r.headers = vec![
        header("content-type", Some(b"application/json")),
        header("priority", Some(b"7")),
        header("amqp.correlation-id", Some(b"c1")),
        header("amqp.reply-to", Some(b"replies")),
        header("expiration-ms", Some(b"60000")),
        header("message-id", Some(b"01h")),
        header("amqp.type", Some(b"order")),
        header("amqp.app-id", Some(b"shop")),
    ];
    let m = record_to_message("t", 0, &r);
    let p = &m.props;
    assert_eq!(p.content_type.as_deref(), Some("application/json"));
    assert_eq!(p.priority, Some(7));
    assert_eq!(p.expiration.as_deref(), Some("60000"));
    assert_eq!(p.message_id.as_deref(), Some("01h"));
    assert_eq!(p.correlation_id.as_deref(), Some("c1"));
    assert_eq!(p.reply_to.as_deref(), Some("replies"));
    assert_eq!(p.kind.as_deref(), Some("order"));
    assert_eq!(p.app_id.as_deref(), Some("shop"));
    assert_eq!(
        p.headers.as_ref().unwrap().len(),
        3,
        "key, timestamp, offset"
    );
    assert_eq!(
        message_to_record(&m, 0),
        r,
        "written back in the table's order"
    );
}

#[test]
fn unusable_property_headers_stay_headers() {
    let mut r = kafka_record(b"p");
    r.headers = vec![
        header("priority", Some(b"high")),
        header("content-type", Some(b"\xff")),
        header("content-type", Some(b"a/b")),
        header("expiration-ms", Some(b"-1")),
    ];
    let m = record_to_message("t", 0, &r);
    assert_eq!(m.props.priority, None);
    assert_eq!(m.props.content_type.as_deref(), Some("a/b"));
    assert_eq!(m.props.expiration, None);
    let h = m.props.headers.as_ref().unwrap();
    assert_eq!(
        table_get(h, "priority"),
        Some(&Value::Bytes(Bytes::from_static(b"high")))
    );
    let back = message_to_record(&m, 0);
    let mut keys: Vec<&str> = back.headers.iter().map(|h| h.key.as_str()).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["content-type", "content-type", "expiration-ms", "priority"]
    );
}

#[test]
fn amqp_to_kafka_to_amqp_keeps_properties_and_publish_address() {
    let props = MessageProps {
        content_type: Some("text/plain".into()),
        content_encoding: Some("gzip".into()),
        delivery_mode: Some(1),
        priority: Some(3),
        correlation_id: Some("c".into()),
        reply_to: Some("r".into()),
        expiration: Some("1000".into()),
        message_id: Some("m".into()),
        timestamp: Some(1_700_000_000),
        kind: Some("k".into()),
        user_id: Some("guest".into()),
        app_id: Some("a".into()),
        cluster_id: Some("cl".into()),
        headers: Some(vec![
            ("s".into(), Value::str("text")),
            ("n".into(), Value::I32(-5)),
            ("b".into(), Value::Bool(true)),
        ]),
    };
    let m = Message {
        exchange: "x".into(),
        routing_key: "a.b".into(),
        props,
        body: Bytes::from_static(b"\x00\x01"),
    };
    let r = message_to_record(&m, 99);
    assert_eq!(r.timestamp, 1_700_000_000_000);
    assert_eq!(r.key, None);
    let text: Vec<(&str, &[u8])> = r.headers[..3]
        .iter()
        .map(|h| (h.key.as_str(), h.value.as_deref().unwrap()))
        .collect();
    assert_eq!(text, [("s", &b"text"[..]), ("n", b"-5"), ("b", b"true")]);
    let back = record_to_message("t", 5, &r);
    assert_eq!(
        (back.exchange.as_str(), back.routing_key.as_str()),
        ("x", "a.b")
    );
    let mut want = m.props.clone();
    let bytes = |s: &'static [u8]| Value::Bytes(Bytes::from_static(s));
    want.headers = Some(vec![
        ("s".into(), bytes(b"text")),
        ("n".into(), bytes(b"-5")),
        ("b".into(), bytes(b"true")),
        (H_TIMESTAMP_MS.into(), Value::I64(1_700_000_000_000)),
        (H_STREAM_OFFSET.into(), Value::I64(5)),
    ]);
    assert_eq!(back.props, want);
    assert_eq!(back.body, m.body);
}

#[test]
fn timestamp_sources() {
    let mut m = record_to_message("t", 0, &Record::with_value(-1_500, b"x".to_vec()));
    assert_eq!(
        m.props.timestamp, None,
        "before the epoch: no AMQP timestamp"
    );
    assert_eq!(message_to_record(&m, 7).timestamp, -1_500);
    m.props.timestamp = Some(3);
    assert_eq!(
        message_to_record(&m, 7).timestamp,
        3_000,
        "a disagreeing ms header loses"
    );
    m.props.headers = None;
    m.props.timestamp = None;
    assert_eq!(
        message_to_record(&m, 7).timestamp,
        7,
        "neither: the wall clock"
    );
}
