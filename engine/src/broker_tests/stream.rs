//! Stream queues: topics read and written by AMQP clients.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::*;
use crate::crossing::H_STREAM_OFFSET;
use crate::message::Message;
use crate::storage::TopicPartition;
use crate::value::table_get;
use crate::{BrokerError, ProduceBatch, Record};

fn stream_args() -> Table {
    t(&[("x-queue-type", Value::str("stream"))])
}

fn declare_stream(e: &mut Engine, name: &str) -> crate::QueueDeclareOk {
    let d = QueueDeclare {
        name: name.into(),
        durable: true,
        arguments: stream_args(),
        ..QueueDeclare::default()
    };
    e.queue_declare(0, 1, V, d).unwrap()
}

fn tp(topic: &str, partition: i32) -> TopicPartition {
    TopicPartition {
        topic: topic.into(),
        partition,
    }
}

/// Kafka-style produce of records with the given values and timestamps (ms).
fn produce(e: &mut Engine, topic: &str, values: &[(&str, i64)]) -> i64 {
    let records = values
        .iter()
        .map(|(v, ts)| Record::with_value(*ts, v.as_bytes().to_vec()))
        .collect();
    let batch = ProduceBatch {
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
        records,
    };
    e.produce(5_000, &tp(topic, 0), batch).unwrap().base_offset
}

fn consume_from(
    e: &mut Engine,
    q: &str,
    tag: &str,
    offset: Option<Value>,
) -> Result<String, BrokerError> {
    e.basic_qos(1, 1, 10, false);
    let c = Consume {
        queue: q.into(),
        consumer_tag: tag.into(),
        arguments: offset
            .map(|o| vec![("x-stream-offset".into(), o)])
            .unwrap_or_default(),
        ..Consume::default()
    };
    e.basic_consume(0, 1, 1, V, c)
}

/// Deliveries as (delivery tag, body, x-stream-offset).
fn stream_deliveries(e: &mut Engine) -> Vec<(u64, String, i64)> {
    let mut out = Vec::new();
    while let Some(o) = e.poll_output() {
        if let Output::Deliver {
            delivery_tag,
            message,
            ..
        } = o
        {
            out.push((delivery_tag, body_of(&message), offset_of(&message)));
        }
    }
    out
}

fn body_of(m: &Arc<Message>) -> String {
    String::from_utf8_lossy(&m.body).into_owned()
}

fn offset_of(m: &Message) -> i64 {
    let h = m.props.headers.as_ref().unwrap();
    table_get(h, H_STREAM_OFFSET)
        .and_then(Value::as_int)
        .unwrap()
}

fn offsets(d: &[(u64, String, i64)]) -> Vec<i64> {
    d.iter().map(|x| x.2).collect()
}

#[test]
fn kafka_topic_is_readable_as_stream_queue() {
    let mut e = engine();
    e.create_topic("t", 1, BTreeMap::new()).unwrap();
    produce(&mut e, "t", &[("a", 1000), ("b", 2000), ("c", 3000)]);
    let ok = declare_stream(&mut e, "t");
    assert_eq!(ok.message_count, 3);
    consume_from(&mut e, "t", "c1", Some(Value::str("first"))).unwrap();
    let d = stream_deliveries(&mut e);
    assert_eq!(offsets(&d), [0, 1, 2]);
    assert_eq!(d[0].1, "a");
    produce(&mut e, "t", &[("d", 4000)]);
    let d = stream_deliveries(&mut e);
    assert_eq!((d[0].1.as_str(), d[0].2), ("d", 3));
}

#[test]
fn stream_offsets_first_last_next_integer_timestamp_and_age() {
    let mut e = engine();
    declare_stream(&mut e, "s");
    let at = [("r0", 1_000), ("r1", 2_000), ("r2", 3_000), ("r3", 4_000)];
    produce(&mut e, "s", &at);
    let cases = [
        (None, vec![]),
        (Some(Value::str("next")), vec![]),
        (Some(Value::str("first")), vec![0, 1, 2, 3]),
        (Some(Value::str("last")), vec![3]),
        (Some(Value::I64(2)), vec![2, 3]),
        (Some(Value::I32(-5)), vec![0, 1, 2, 3]),
        (Some(Value::U8(99)), vec![]),
        (Some(Value::Timestamp(3)), vec![2, 3]),
        (Some(Value::Timestamp(9)), vec![]),
        // The clock is 5 s in: 2 s ago is 3 000 ms.
        (Some(Value::str("2s")), vec![2, 3]),
    ];
    for (n, (arg, want)) in cases.into_iter().enumerate() {
        let tag = format!("c{n}");
        consume_from(&mut e, "s", &tag, arg.clone()).unwrap();
        assert_eq!(offsets(&stream_deliveries(&mut e)), want, "{arg:?}");
        e.basic_cancel(1, 1, &tag).unwrap();
    }
    let err = consume_from(&mut e, "s", "bad", Some(Value::str("soon"))).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid arg 'x-stream-offset' for queue 's' in vhost '/': {invalid_offset_arg,<<\"soon\">>}"
    );
}

#[test]
fn acks_give_credit_and_messages_stay_in_the_log() {
    let mut e = engine();
    declare_stream(&mut e, "s");
    let values: Vec<(String, i64)> = (0..5).map(|i| (format!("m{i}"), 1_000)).collect();
    let refs: Vec<(&str, i64)> = values.iter().map(|(v, t)| (v.as_str(), *t)).collect();
    produce(&mut e, "s", &refs);
    e.basic_qos(1, 1, 2, false);
    let c = Consume {
        queue: "s".into(),
        consumer_tag: "c".into(),
        arguments: vec![("x-stream-offset".into(), Value::str("first"))],
        ..Consume::default()
    };
    e.basic_consume(0, 1, 1, V, c).unwrap();
    let d = stream_deliveries(&mut e);
    assert_eq!(offsets(&d), [0, 1], "prefetch 2");
    e.basic_ack(1, 1, d[1].0, true).unwrap();
    assert_eq!(offsets(&stream_deliveries(&mut e)), [2, 3]);
    // A requeue gives credit back but redelivers nothing: the records stay in the log.
    e.basic_nack(0, 0, 1, 1, 0, true, true).unwrap();
    assert_eq!(offsets(&stream_deliveries(&mut e)), [4]);
    let offs = e.partition_offsets(&tp("s", 0)).unwrap();
    assert_eq!((offs.log_start_offset, offs.high_watermark), (0, 5));
    assert_eq!(declare_stream(&mut e, "s").message_count, 5);
}

#[test]
fn amqp_publish_to_stream_is_fetchable() {
    let mut e = engine();
    declare_stream(&mut e, "s");
    exchange(&mut e, "x", "direct", vec![]);
    e.queue_bind(V, "s", "x", "k", vec![], 1).unwrap();
    let props = MessageProps {
        content_type: Some("text/plain".into()),
        headers: Some(t(&[("x-key", Value::Bytes(Bytes::from_static(b"key1")))])),
        timestamp: Some(7),
        ..MessageProps::default()
    };
    let o = publish(&mut e, 0, with_props(msg("", "s", "direct"), props));
    assert!(o.routed && o.accepted);
    publish(&mut e, 0, msg("x", "k", "via-x"));
    let f = e.fetch(&tp("s", 0), 0, 1 << 20).unwrap();
    let recs: Vec<Record> = f
        .batches
        .into_iter()
        .flat_map(|b| b.records)
        .map(|r| r.1)
        .collect();
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[0].value.as_deref(), Some(&b"direct"[..]));
    assert_eq!(recs[0].key.as_deref(), Some(&b"key1"[..]));
    assert_eq!(recs[0].timestamp, 7_000);
    let h = |r: &Record, k: &str| {
        let found = r.headers.iter().find(|h| h.key == k);
        found.and_then(|h| h.value.clone())
    };
    assert_eq!(
        h(&recs[0], "content-type").as_deref(),
        Some(&b"text/plain"[..])
    );
    assert_eq!(
        recs[1].timestamp, 1_000_000,
        "no timestamp property: the wall clock"
    );
    assert_eq!(h(&recs[1], "amqp.exchange").as_deref(), Some(&b"x"[..]));
    assert_eq!(h(&recs[1], "amqp.routing-key").as_deref(), Some(&b"k"[..]));
}

#[test]
fn exchange_named_after_topic_receives_kafka_produces() {
    let mut e = engine();
    e.create_topic("orders", 3, BTreeMap::new()).unwrap();
    exchange(&mut e, "orders", "topic", vec![]);
    queue(&mut e, "eu", vec![]);
    queue(&mut e, "all", vec![]);
    e.queue_bind(V, "eu", "orders", "eu.#", vec![], 1).unwrap();
    e.queue_bind(V, "all", "orders", "#", vec![], 1).unwrap();
    let mut keyed = Record::with_value(1_500, b"o1".to_vec());
    keyed.key = Some(Bytes::from_static(b"eu.fr"));
    let batch = ProduceBatch {
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
        records: vec![keyed, Record::with_value(1_600, b"o2".to_vec())],
    };
    e.produce(2_000, &tp("orders", 2), batch).unwrap();
    let eu = e.basic_get(0, 9, 9, V, "eu", true).unwrap().unwrap();
    assert_eq!(
        (
            eu.message.exchange.as_str(),
            eu.message.routing_key.as_str()
        ),
        ("orders", "eu.fr")
    );
    assert_eq!(&eu.message.body[..], b"o1");
    assert_eq!(eu.message.props.timestamp, Some(1));
    assert_eq!(drain(&mut e, "eu", 0), Vec::<String>::new());
    assert_eq!(drain(&mut e, "all", 0), ["o1", "o2"]);
}

#[test]
fn records_published_into_a_stream_are_not_routed_back() {
    let mut e = engine();
    declare_stream(&mut e, "s");
    exchange(&mut e, "s", "fanout", vec![]);
    queue(&mut e, "copy", vec![]);
    e.queue_bind(V, "copy", "s", "", vec![], 1).unwrap();
    e.queue_bind(V, "s", "s", "", vec![], 1).unwrap();
    publish(&mut e, 0, msg("s", "", "once"));
    assert_eq!(e.partition_offsets(&tp("s", 0)).unwrap().high_watermark, 1);
    assert_eq!(drain(&mut e, "copy", 0), ["once"]);
    produce(&mut e, "s", &[("kafka", 1)]);
    assert_eq!(e.partition_offsets(&tp("s", 0)).unwrap().high_watermark, 2);
    assert_eq!(drain(&mut e, "copy", 0), ["kafka"]);
}

#[test]
fn stream_declarations_survive_reopen() {
    let storage = MemStorage::new();
    let mut e = engine_on(&storage);
    declare_stream(&mut e, "s");
    produce(&mut e, "s", &[("a", 1), ("b", 2)]);
    drop(e);
    let mut e = engine_on(&storage);
    let d = QueueDeclare {
        name: "s".into(),
        passive: true,
        ..QueueDeclare::default()
    };
    assert_eq!(e.queue_declare(0, 1, V, d).unwrap().message_count, 2);
    consume_from(&mut e, "s", "c", Some(Value::str("first"))).unwrap();
    assert_eq!(offsets(&stream_deliveries(&mut e)), [0, 1]);
    e.queue_delete(1, V, "s", false, false).unwrap();
    assert!(
        e.topic("s").is_none(),
        "deleting the stream deletes the topic"
    );
    drop(e);
    let mut e = engine_on(&storage);
    let d = QueueDeclare {
        name: "s".into(),
        passive: true,
        ..QueueDeclare::default()
    };
    assert!(e.queue_declare(0, 1, V, d).is_err());
}

#[test]
fn rabbitmq_refusals() {
    let mut e = engine();
    let declare = |e: &mut Engine, durable: bool, exclusive: bool, auto_delete: bool| {
        let d = QueueDeclare {
            name: "s".into(),
            durable,
            exclusive,
            auto_delete,
            arguments: stream_args(),
            ..QueueDeclare::default()
        };
        e.queue_declare(0, 1, V, d)
            .map(|_| ())
            .unwrap_err()
            .to_string()
    };
    let res = "queue 's' in vhost '/'";
    assert_eq!(
        declare(&mut e, false, false, false),
        format!("invalid property 'non-durable' for {res}")
    );
    assert_eq!(
        declare(&mut e, true, true, false),
        format!("invalid property 'exclusive-owner' for {res}")
    );
    assert_eq!(
        declare(&mut e, true, false, true),
        format!("invalid property 'auto-delete' for {res}")
    );
    assert!(e.topic("s").is_none());
    let mut args = stream_args();
    args.push(("x-message-ttl".into(), Value::I32(5)));
    let d = QueueDeclare {
        name: "s".into(),
        durable: true,
        arguments: args,
        ..QueueDeclare::default()
    };
    let err = e.queue_declare(0, 1, V, d).unwrap_err().to_string();
    assert_eq!(
        err,
        format!("invalid arg 'x-message-ttl' for {res} of queue type rabbit_stream_queue")
    );
    declare_stream(&mut e, "s");
    let c = Consume {
        queue: "s".into(),
        ..Consume::default()
    };
    let err = e.basic_consume(0, 1, 1, V, c.clone()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("consumer prefetch count is not set for stream {res}")
    );
    e.basic_qos(1, 1, 5, false);
    let no_ack = Consume { no_ack: true, ..c };
    let err = e.basic_consume(0, 1, 1, V, no_ack).unwrap_err();
    assert!(matches!(err, BrokerError::NotImplemented(_)));
    assert_eq!(
        err.to_string(),
        format!("automatic acknowledgement not supported by stream {res}")
    );
    let err = e.basic_get(0, 1, 1, V, "s", false).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("basic.get not supported by stream queues {res}")
    );
    let err = e.queue_purge(1, V, "s").unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("queue.purge not supported by stream queues {res}")
    );
    let d = QueueDeclare {
        name: "s".into(),
        durable: true,
        ..QueueDeclare::default()
    };
    let err = e.queue_declare(0, 1, V, d).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "inequivalent arg 'x-queue-type' for {res}: received none but current is the value 'stream' of type 'longstr'"
        )
    );
}

#[test]
fn deleting_the_topic_cancels_stream_consumers() {
    let mut e = engine();
    declare_stream(&mut e, "s");
    consume_from(&mut e, "s", "c", None).unwrap();
    e.delete_topic("s").unwrap();
    let cancelled = std::iter::from_fn(|| e.poll_output()).any(
        |o| matches!(o, Output::ConsumerCancelled { consumer_tag, .. } if consumer_tag == "c"),
    );
    assert!(cancelled);
    let d = QueueDeclare {
        name: "s".into(),
        passive: true,
        ..QueueDeclare::default()
    };
    assert!(e.queue_declare(0, 1, V, d).is_err());
}
