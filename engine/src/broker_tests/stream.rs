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
