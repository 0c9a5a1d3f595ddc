//! Publish, Fetch, Commit, Consume, Ack and Nack.

use std::collections::BTreeMap;

use portask_engine::{
    Consume as EngineConsume, EngineError, ProduceBatch, Publish as EnginePublish, StorageError,
    TopicPartition,
};
use portask_protocol::body::{
    Ack, Commit, Consume, ConsumeOk, Fetch, FetchOk, Nack, Publish, PublishOk, PublishResult,
    Response, StoredMessage, Target,
};
use portask_protocol::partition::partition_for_key;

use super::admin::{broker_failure, done, engine_failure};
use super::{Failure, convert, split_tag};
use crate::broker::Broker;
use crate::worker::Now;

pub(super) fn publish(broker: &mut Broker, now: Now, p: Publish) -> Result<Response, Failure> {
    let results = match p.target {
        Target::Topic { topic, partition } => {
            publish_topic(broker, now, &topic, partition, p.messages)?
        }
        Target::Exchange {
            vhost,
            exchange,
            routing_key,
            mandatory,
        } => {
            let mut results = Vec::with_capacity(p.messages.len());
            for m in p.messages {
                let (props, body) = convert::to_amqp(m, p.durable, now.wall);
                let publish = EnginePublish {
                    exchange: exchange.clone(),
                    routing_key: routing_key.clone(),
                    mandatory,
                    props,
                    body,
                };
                let outcome = broker
                    .engine
                    .publish(now.mono, now.wall, &vhost, publish)
                    .map_err(broker_failure)?;
                if !outcome.accepted {
                    return Err((
                        portask_protocol::error::code::RESOURCE_LIMIT,
                        "a queue refused the message (x-overflow = reject-publish)".to_owned(),
                    ));
                }
                results.push(PublishResult::Routed(outcome.routed));
            }
            results
        }
    };
    Ok(Response::PublishOk(PublishOk { results }))
}

/// Appends messages to a topic, one stored batch per partition, in the order given.
fn publish_topic(
    broker: &mut Broker,
    now: Now,
    topic: &str,
    partition: Option<i32>,
    messages: Vec<portask_protocol::body::Message>,
) -> Result<Vec<PublishResult>, Failure> {
    let info = broker.engine.ensure_topic(topic).map_err(engine_failure)?;
    let mut by_partition: BTreeMap<i32, Vec<(usize, portask_engine::Record)>> = BTreeMap::new();
    let mut unkeyed = 0i32;
    for (i, m) in messages.into_iter().enumerate() {
        let p = match (partition, &m.key) {
            (Some(p), _) => p,
            (None, Some(key)) => partition_for_key(key, info.partitions),
            (None, None) => {
                unkeyed = (unkeyed + 1) % info.partitions;
                unkeyed
            }
        };
        by_partition
            .entry(p)
            .or_default()
            .push((i, convert::to_record(m)));
    }
    let total: usize = by_partition.values().map(Vec::len).sum();
    let mut results = vec![PublishResult::Routed(false); total];
    for (p, records) in by_partition {
        let tp = TopicPartition {
            topic: topic.to_owned(),
            partition: p,
        };
        let (indexes, records): (Vec<usize>, Vec<_>) = records.into_iter().unzip();
        let batch = ProduceBatch {
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            records,
        };
        let outcome = broker
            .engine
            .produce(now.wall, &tp, batch)
            .map_err(engine_failure)?;
        for (n, i) in indexes.into_iter().enumerate() {
            results[i] = PublishResult::Appended {
                partition: p,
                offset: outcome.base_offset + n as i64,
            };
        }
    }
    broker.data_arrived = true;
    Ok(results)
}

/// Answers a Fetch; `None` while the storage is still reading the records (the fetch is
/// tried again after the storage reports progress).
pub(super) fn fetch(broker: &mut Broker, f: &Fetch) -> Result<Option<Response>, Failure> {
    let tp = TopicPartition {
        topic: f.topic.clone(),
        partition: f.partition,
    };
    let max_bytes = usize::try_from(f.max_bytes).unwrap_or(usize::MAX).max(1);
    let out = match broker.engine.fetch(&tp, f.offset, max_bytes) {
        Ok(out) => out,
        Err(EngineError::Storage(StorageError::Pending)) => return Ok(None),
        Err(e) => return Err(engine_failure(e)),
    };
    let messages = out
        .batches
        .into_iter()
        .flat_map(|b| b.records)
        .take(f.max_messages.max(1) as usize)
        .map(|(offset, r)| StoredMessage {
            offset,
            message: convert::from_record(r),
        })
        .collect();
    Ok(Some(Response::FetchOk(FetchOk {
        high_watermark: out.high_watermark,
        messages,
    })))
}

pub(super) fn commit(broker: &mut Broker, now: Now, c: Commit) -> Result<Response, Failure> {
    let offsets = c
        .offsets
        .into_iter()
        .map(|o| {
            (
                TopicPartition {
                    topic: o.topic,
                    partition: o.partition,
                },
                o.offset,
                -1,
                None,
            )
        })
        .collect();
    let results = broker
        .engine
        .commit_offsets(
            now.mono,
            now.wall,
            &c.group,
            c.generation.unwrap_or(-1),
            c.member_id.as_deref().unwrap_or_default(),
            offsets,
        )
        .map_err(engine_failure)?;
    for (_, r) in results {
        r.map_err(engine_failure)?;
    }
    Ok(done())
}

pub(super) fn consume(
    broker: &mut Broker,
    now: Now,
    id: u64,
    channel: u16,
    c: Consume,
) -> Result<Response, Failure> {
    broker.engine.channel_open(id, channel);
    broker.engine.basic_qos(
        id,
        channel,
        u16::try_from(c.credit).unwrap_or(u16::MAX),
        true,
    );
    let consume = EngineConsume {
        queue: c.queue,
        consumer_tag: String::new(),
        no_ack: c.no_ack,
        exclusive: false,
        arguments: Vec::new(),
    };
    match broker
        .engine
        .basic_consume(now.mono, id, channel, &c.vhost, consume)
    {
        Ok(consumer_tag) => Ok(Response::ConsumeOk(ConsumeOk { consumer_tag })),
        Err(e) => {
            broker.engine.channel_close(now.mono, id, channel);
            Err(broker_failure(e))
        }
    }
}

pub(super) fn ack(broker: &mut Broker, id: u64, a: Ack) -> Result<Response, Failure> {
    for tag in a.delivery_tags {
        let (channel, tag) = split_tag(tag);
        broker
            .engine
            .basic_ack(id, channel, tag, a.multiple)
            .map_err(broker_failure)?;
    }
    Ok(done())
}

pub(super) fn nack(broker: &mut Broker, now: Now, id: u64, n: Nack) -> Result<Response, Failure> {
    for tag in n.delivery_tags {
        let (channel, tag) = split_tag(tag);
        broker
            .engine
            .basic_nack(now.mono, now.wall, id, channel, tag, false, n.requeue)
            .map_err(broker_failure)?;
    }
    Ok(done())
}
