//! Stream queues: a queue declared with `x-queue-type: stream` is the topic of the same name,
//! as RabbitMQ streams are to AMQP clients. Publishes append records to the topic; consumers
//! read the topic's partition 0 from an `x-stream-offset`; acknowledgements only give credit
//! back. Records appended to a topic are also routed through the exchange named after it in
//! vhost `/`. See docs/cross-protocol.md.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::crossing::{message_to_record, record_to_message};
use crate::data::ProduceBatch;
use crate::deliver::MAX_DELIVERIES_PER_DISPATCH;
use crate::error::BrokerError;
use crate::exchange::routing::route;
use crate::message::{ConnId, Consume, Message, QueueDeclare, QueueDeclareOk};
use crate::queue::args::QueueArgs;
use crate::queue::consumer::{Channel, Consumer};
use crate::queue::{Queue, QueuedMessage};
use crate::record::Record;
use crate::storage::{StorageError, TopicPartition};
use crate::topics::validate_topic_name;
use crate::value::{Value, table_get};
use crate::vhost::{Definition, queue_key, queue_res};
use crate::{Engine, EngineError, Millis, WallMillis};

/// The vhost whose exchanges named after topics receive the topics' records.
pub(crate) const TOPIC_EXCHANGE_VHOST: &str = "/";

/// About how many stored bytes one read of a stream dispatch takes.
const FETCH_BYTES: usize = 256 * 1024;

/// Where a new stream consumer starts reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StreamStart {
    /// At this offset.
    Offset(i64),
    /// At the first record stamped at or after this time (ms since the epoch).
    Timestamp(i64),
}

/// Partition 0 of a stream's topic: what stream consumers read and publishes append to.
pub(crate) fn stream_tp(name: &str) -> TopicPartition {
    TopicPartition {
        topic: name.to_owned(),
        partition: 0,
    }
}

/// An engine error met while serving a stream, as a queue-model error.
fn broker_err(e: EngineError, what: &str) -> BrokerError {
    match e {
        EngineError::Storage(s) => BrokerError::Storage(s),
        other => BrokerError::PreconditionFailed(format!("{what}: {other}")),
    }
}

/// RabbitMQ's `x-max-age` / `x-stream-offset` duration (`7D`, `12h`, ...) in ms.
fn parse_age(s: &str) -> Option<i64> {
    let unit = s.chars().last()?;
    let n: i64 = s[..s.len() - unit.len_utf8()].parse().ok()?;
    let secs = match unit {
        'Y' => 365 * 86_400,
        'M' => 30 * 86_400,
        'D' => 86_400,
        'h' => 3_600,
        'm' => 60,
        's' => 1,
        _ => return None,
    };
    (n >= 0).then(|| n.saturating_mul(secs * 1000))
}

fn text(v: &Value) -> Option<&str> {
    match v {
        Value::Str(b) | Value::Bytes(b) => std::str::from_utf8(b).ok(),
        _ => None,
    }
}

impl Engine {
    /// Records in a stream's topic: high watermark − log start over all partitions.
    pub(crate) fn stream_length(&self, topic: &str) -> u32 {
        let parts = self.partitions.range(stream_tp(topic)..);
        let n: i64 = parts
            .take_while(|(tp, _)| tp.topic == topic)
            .map(|(_, p)| p.next_offset - p.log_start_offset)
            .sum();
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// Declares a stream queue that does not exist yet, creating its topic (one partition)
    /// unless the topic exists.
    pub(crate) fn stream_declare(
        &mut self,
        now: Millis,
        conn: ConnId,
        vhost: &str,
        d: &QueueDeclare,
        name: String,
        args: QueueArgs,
    ) -> Result<QueueDeclareOk, BrokerError> {
        let res = queue_res(vhost, &name);
        let refuse =
            |p: &str| BrokerError::PreconditionFailed(format!("invalid property '{p}' for {res}"));
        if d.auto_delete {
            return Err(refuse("auto-delete"));
        }
        if d.exclusive {
            return Err(refuse("exclusive-owner"));
        }
        if !d.durable {
            return Err(refuse("non-durable"));
        }
        validate_topic_name(&name).map_err(|e| broker_err(e, &format!("invalid stream {res}")))?;
        if self.topic(&name).is_none() {
            let created = self.create_topic(&name, 1, BTreeMap::new());
            created.map_err(|e| broker_err(e, &format!("cannot create stream {res}")))?;
        }
        let q = self.new_queue(now, name, d, conn, args);
        let def = Definition::Queue {
            vhost: vhost.to_owned(),
            name: q.name.clone(),
            auto_delete: false,
            arguments: q.arguments.clone(),
        };
        self.storage
            .put_definition(&queue_key(vhost, &q.name), Some(&def.encode()))?;
        let ok = QueueDeclareOk {
            name: q.name.clone(),
            message_count: self.stream_length(&q.name),
            consumer_count: 0,
        };
        self.vhost_mut(vhost)?.queues.insert(q.name.clone(), q);
        Ok(ok)
    }

    /// Appends a message routed to a stream queue to its topic (partition 0, no key). The
    /// record is not routed through the exchange named after the topic.
    pub(crate) fn stream_append(&mut self, queue: &str, m: &Message) -> Result<(), BrokerError> {
        let wall = self.broker.clock.1;
        let batch = ProduceBatch {
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            records: vec![message_to_record(m, wall)],
        };
        let what = format!("cannot append to stream '{queue}'");
        self.produce_from(wall, &stream_tp(queue), batch, false)
            .map(|_| ())
            .map_err(|e| broker_err(e, &what))
    }

    /// basic.consume on a stream queue: RabbitMQ's checks and the first offset to deliver.
    /// `None` when the queue is not a stream queue.
    pub(crate) fn stream_start(
        &mut self,
        now: Millis,
        conn: ConnId,
        channel: u16,
        vhost: &str,
        c: &Consume,
    ) -> Result<Option<StreamStart>, BrokerError> {
        let v = self.broker.vhosts.get(vhost);
        if !v
            .and_then(|v| v.queues.get(&c.queue))
            .is_some_and(|q| q.args.stream)
        {
            return Ok(None);
        }
        let res = queue_res(vhost, &c.queue);
        let ch = self.broker.channels.entry((conn, channel)).or_default();
        if ch.prefetch == 0 {
            let text = format!("consumer prefetch count is not set for stream {res}");
            return Err(BrokerError::PreconditionFailed(text));
        }
        if c.no_ack {
            let text = format!("automatic acknowledgement not supported by stream {res}");
            return Err(BrokerError::NotImplemented(text));
        }
        if ch.global_prefetch > 0 {
            let text = format!("{res} does not support global qos");
            return Err(BrokerError::NotImplemented(text));
        }
        let wall = self.broker.observe(now, None);
        let arg = table_get(&c.arguments, "x-stream-offset");
        self.stream_offset_arg(&c.queue, arg, wall, &res).map(Some)
    }

    /// Where `x-stream-offset` starts: `first`, `last` (the last record), `next` (the
    /// default), an integer offset (clamped to the log), a timestamp (seconds: the first
    /// record stamped at or after it) or an age such as `1h` (the same from now minus it).
    fn stream_offset_arg(
        &mut self,
        topic: &str,
        arg: Option<&Value>,
        wall: WallMillis,
        res: &str,
    ) -> Result<StreamStart, BrokerError> {
        let tp = stream_tp(topic);
        let offs = self
            .partition_offsets(&tp)
            .map_err(|e| broker_err(e, res))?;
        let (first, next) = (offs.log_start_offset, offs.high_watermark);
        let at = |o: i64| Ok(StreamStart::Offset(o));
        let at_ms = match arg {
            None => return at(next),
            Some(v) if v.as_int().is_some() => {
                return at(v.as_int().expect("checked").clamp(first, next));
            }
            Some(Value::Timestamp(s)) => i64::try_from(*s).unwrap_or(i64::MAX / 1000) * 1000,
            Some(v) => match text(v) {
                Some("first") => return at(first),
                Some("last") => return at((next - 1).max(first)),
                Some("next") => return at(next),
                Some(age) if parse_age(age).is_some() => wall - parse_age(age).expect("checked"),
                _ => {
                    return Err(BrokerError::PreconditionFailed(format!(
                        "invalid arg 'x-stream-offset' for {res}: {{invalid_offset_arg,{}}}",
                        v.erlang_term()
                    )));
                }
            },
        };
        Ok(StreamStart::Timestamp(at_ms.max(0)))
    }

    /// Looks up the start offset of a stream consumer that starts at a time. Returns false
    /// while the lookup waits for a storage read (the queue is dispatched again after it).
    fn resolve_stream_start(&mut self, vhost: &str, q: &mut Queue, i: usize) -> bool {
        let Some(at_ms) = q.consumers[i].stream_from_ms else {
            return true;
        };
        let tp = stream_tp(&q.name);
        let Ok(offs) = self.partition_offsets(&tp) else {
            return false;
        };
        let found = match self.offset_for_timestamp(&tp, at_ms) {
            Ok(found) => found,
            Err(EngineError::Storage(StorageError::Pending)) => {
                let key = (vhost.to_owned(), q.name.clone());
                self.broker.waiting_for_storage.insert(key);
                return false;
            }
            Err(_) => None,
        };
        let c = &mut q.consumers[i];
        c.stream_from_ms = None;
        c.stream_offset =
            Some(found.map_or(offs.high_watermark, |(o, _)| o.max(offs.log_start_offset)));
        true
    }

    /// Whether a stream consumer may get another delivery now.
    fn stream_credit(&self, c: &Consumer) -> bool {
        let channel = self.broker.channels.get(&(c.conn, c.channel));
        !self.broker.blocked.contains(&c.conn)
            && c.has_credit()
            && channel.is_none_or(Channel::has_credit)
    }

    /// Delivers records of a stream queue's topic to its consumers, each from its own offset,
    /// as far as their credit allows. `q` is out of its vhost for the call.
    pub(crate) fn dispatch_stream(&mut self, vhost: &str, q: &mut Queue) {
        let tp = stream_tp(&q.name);
        let Ok(offs) = self.partition_offsets(&tp) else {
            return;
        };
        let mut capped = false;
        for i in 0..q.consumers.len() {
            if !self.resolve_stream_start(vhost, q, i) {
                continue;
            }
            let mut rounds = 0;
            while let Some(next) = q.consumers[i].stream_offset {
                let next = next.max(offs.log_start_offset);
                q.consumers[i].stream_offset = Some(next);
                if next >= offs.high_watermark || !self.stream_credit(&q.consumers[i]) {
                    break;
                }
                if rounds >= MAX_DELIVERIES_PER_DISPATCH {
                    capped = true;
                    break;
                }
                let fetched = match self.fetch(&tp, next, FETCH_BYTES) {
                    Ok(fetched) => fetched,
                    Err(EngineError::Storage(StorageError::Pending)) => {
                        let key = (vhost.to_owned(), q.name.clone());
                        self.broker.waiting_for_storage.insert(key);
                        break;
                    }
                    Err(_) => break,
                };
                let records = fetched.batches.into_iter().flat_map(|b| b.records);
                let before = rounds;
                for (offset, r) in records {
                    let c = &q.consumers[i];
                    if rounds >= MAX_DELIVERIES_PER_DISPATCH || !self.stream_credit(c) {
                        break;
                    }
                    q.consumers[i].stream_offset = Some(offset + 1);
                    self.deliver(vhost, q, i, stream_message(&q.name, offset, &r));
                    rounds += 1;
                }
                if rounds == before {
                    break;
                }
            }
        }
        if capped {
            let key = (vhost.to_owned(), q.name.clone());
            self.broker.pending.insert(key);
        }
    }

    /// After records were appended to a topic: wakes the stream queues named after it and,
    /// with `route`, routes the records through the exchange named after it.
    pub(crate) fn topic_appended(
        &mut self,
        tp: &TopicPartition,
        base_offset: i64,
        records: &[Record],
        route: bool,
    ) {
        let streams: Vec<(String, String)> = (self.broker.vhosts.iter())
            .filter(|(_, v)| v.queues.get(&tp.topic).is_some_and(|q| q.args.stream))
            .map(|(name, _)| (name.clone(), tp.topic.clone()))
            .collect();
        self.broker.touched.extend(streams);
        let now = self.broker.clock.0;
        if route {
            self.route_records(now, &tp.topic, base_offset, records);
        }
        self.settle(now);
    }

    /// Routes appended records through the exchange named after their topic in vhost `/`,
    /// with the record key (UTF-8, lossy; empty without a key) as routing key. The stream
    /// queue of the topic itself is left out: the records are already in it.
    fn route_records(&mut self, now: Millis, topic: &str, base: i64, records: &[Record]) {
        let vh = TOPIC_EXCHANGE_VHOST;
        let has_exchange = self.broker.vhosts.get(vh);
        if !has_exchange.is_some_and(|v| v.exchanges.contains_key(topic)) {
            return;
        }
        for (offset, r) in (base..).zip(records) {
            let mut m = record_to_message(topic, offset, r);
            m.exchange = topic.to_owned();
            let key = r.key.as_deref().unwrap_or_default();
            m.routing_key = String::from_utf8_lossy(key).into_owned();
            let Some(v) = self.broker.vhosts.get(vh) else {
                return;
            };
            let none = Vec::new();
            let headers = m.props.headers.as_ref().unwrap_or(&none);
            let exists = |q: &str| v.queues.contains_key(q);
            let mut targets = route(&v.exchanges, exists, topic, &m.routing_key, headers);
            targets.remove(topic);
            let m = Arc::new(m);
            for t in targets {
                // Not strict: a queue that cannot store the copy keeps it in memory.
                let _ = self.enqueue(now, vh, &t, m.clone(), false);
            }
        }
    }

    /// Removes the stream queues of a deleted topic, in every vhost.
    pub(crate) fn drop_streams(&mut self, topic: &str) -> Result<(), EngineError> {
        let vhosts: Vec<String> = (self.broker.vhosts.iter())
            .filter(|(_, v)| v.queues.get(topic).is_some_and(|q| q.args.stream))
            .map(|(name, _)| name.clone())
            .collect();
        for vhost in vhosts {
            // The vhost exists, so only storage can fail.
            if let Err(BrokerError::Storage(e)) = self.remove_queue(&vhost, topic) {
                return Err(e.into());
            }
        }
        Ok(())
    }
}

/// A record delivered from a stream, as a queued message (never requeued or stored).
fn stream_message(topic: &str, offset: i64, r: &Record) -> QueuedMessage {
    QueuedMessage {
        seq: u64::try_from(offset).unwrap_or(0),
        store_id: None,
        message: Arc::new(record_to_message(topic, offset, r)),
        redelivered: false,
        expires_at: None,
        priority: 0,
    }
}
