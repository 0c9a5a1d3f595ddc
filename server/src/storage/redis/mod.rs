//! A storage backend on a Redis-protocol server (Redis 6.2+, Valkey or Dragonfly), with the
//! blocking `redis` client. `docs/storage.md` describes durability and operation.
//!
//! Keys, all under a namespace `<ns>` (`storage.redis_namespace`), so that several brokers
//! can share one server:
//!
//! ```text
//! <ns>:topics                 HASH   topic name → topic metadata (CBOR)
//! <ns>:part:<topic>:<p>       HASH   next → next offset, start → log start offset,
//!                                    compacted → active batch base at the last compaction
//! <ns>:idx:<topic>:<p>        ZSET   score = batch base offset,
//!                                    member = "base:last:max_ts:len:producer_id:epoch:base_seq"
//! <ns>:log:<topic>:<p>        HASH   base offset (decimal) → the batch as the engine encoded it
//! <ns>:tomb:<topic>:<p>       HASH   base offset → first compaction (ms) of a batch that
//!                                    keeps tombstones (compacted topics, see [`retention`])
//! <ns>:groups                 SET    groups with committed offsets
//! <ns>:offsets:<group>        HASH   "<topic>:<p>" → committed offset (CBOR)
//! <ns>:producer-id            STRING the next producer id
//! <ns>:defs                   HASH   definition key → definition bytes (opaque)
//! <ns>:queues                 SET    durable queue keys with a message store
//! <ns>:queue:<queue key>      HASH   message id (decimal) → message bytes (opaque)
//! <ns>:qids:<queue key>       ZSET   score = member = message id: the queue's ids in order
//! ```
//!
//! An append is one round trip: a `MULTI`/`EXEC` transaction that stores the batch, drops any
//! index entry at or after its base offset (left by an earlier append whose reply was lost),
//! adds its index entry and moves `next`; it lands whole or not at all. The index member
//! carries every header field a read, a timestamp lookup or recovery needs, so those read
//! batch bytes only for the batches they return. Reads take two round trips (index range,
//! then `HMGET` of the chosen batches).
//!
//! Recovery reads the topics, each partition's `part` hash and whole index (producer state is
//! the last index entry of each producer id), the groups' offsets, the producer id, the
//! definitions and every queue's message count and size, not the messages: the engine reads
//! those in id order, which is their append order (the engine hands out increasing ids per
//! queue), through the `qids` sorted set (see [`queues`]).
//!
//! Calls run on the storage thread ([`crate::storage::offload`]), never on the event loop.
//! When the server is unreachable, a call fails quickly with [`StorageError::Io`] and the
//! connection is reopened with back-off (see [`conn`]); the storage thread retries the
//! failed write until it lands and refuses new writes meanwhile, so nothing is acknowledged
//! that is not stored, and service resumes without a restart.
//! [`Storage::sync`] does nothing: what a written batch survives is the server's persistence
//! configuration (`appendonly yes`, `appendfsync always` for no loss).

mod conn;
mod keys;
mod queues;
mod retention;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bytes::Bytes;
use portask_engine::batch::HEADER_LEN;
use portask_engine::producer::{RecentBatches, last_sequence};
use portask_engine::storage::{
    CommittedOffset, EncodedBatch, PartitionState, ProducerSnapshot, RecoveredState,
    RetentionPolicy, Storage, StorageError, TopicMeta, TopicPartition,
};
use redis::Connection;
use serde::{Deserialize, Serialize};

use conn::RedisConn;
pub use conn::Timeouts;
use keys::{IndexEntry, Keys, offset_field, parse_offset_field};

/// Most batches one read returns.
const READ_MAX_BATCHES: usize = 4096;
/// Index entries fetched per round trip when scanning an index.
const SCAN_CHUNK: isize = 10_000;
/// How long recovery keeps trying to reach the server at start.
const RECOVER_WAIT: Duration = Duration::from_secs(10);

/// Where and how to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisOptions {
    /// `redis://[user:password@]host:port/db`.
    pub url: String,
    /// Prefix of every key.
    pub namespace: String,
    /// Connect and IO timeouts.
    pub timeouts: Timeouts,
}

impl RedisOptions {
    /// Options for `url` and `namespace` with the default timeouts.
    pub fn new(url: &str, namespace: &str) -> Self {
        Self {
            url: url.to_owned(),
            namespace: namespace.to_owned(),
            timeouts: Timeouts::default(),
        }
    }
}

/// The stored form of [`TopicMeta`].
#[derive(Serialize, Deserialize)]
struct MetaRecord {
    name: String,
    id: [u8; 16],
    partitions: i32,
    configs: BTreeMap<String, String>,
}

/// The stored form of [`CommittedOffset`].
#[derive(Serialize, Deserialize)]
struct OffsetRecord {
    offset: i64,
    leader_epoch: i32,
    metadata: Option<String>,
    commit_timestamp: i64,
}

/// A partition's `next` and `start` fields as stored (absent: `None`).
type PartHead = (Option<i64>, Option<i64>);

#[derive(Debug, Clone, Copy, Default)]
struct PartState {
    next_offset: i64,
    log_start: i64,
}

/// The Redis backend. See the module documentation for the key layout.
pub struct RedisStorage {
    conn: RedisConn,
    keys: Keys,
    topics: BTreeMap<String, TopicMeta>,
    partitions: BTreeMap<TopicPartition, PartState>,
    next_producer_id: i64,
}

fn cbor<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(value, &mut out).expect("CBOR into a Vec cannot fail");
    out
}

fn uncbor<T: for<'de> Deserialize<'de>>(bytes: &[u8], what: &str) -> Result<T, StorageError> {
    ciborium::from_reader(bytes).map_err(|e| StorageError::Corrupt(format!("bad {what}: {e}")))
}

impl RedisStorage {
    /// Prepares a store on the server at `opts.url`; nothing is sent before
    /// [`Storage::recover`], which must be called first.
    pub fn open(opts: &RedisOptions) -> Result<Self, StorageError> {
        if opts.namespace.is_empty() {
            return Err(StorageError::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "empty redis namespace",
            )));
        }
        Ok(Self {
            conn: RedisConn::new(&opts.url, opts.timeouts)?,
            keys: Keys::new(&opts.namespace),
            topics: BTreeMap::new(),
            partitions: BTreeMap::new(),
            next_producer_id: 0,
        })
    }

    fn part(&self, tp: &TopicPartition) -> Result<PartState, StorageError> {
        self.partitions
            .get(tp)
            .copied()
            .ok_or_else(|| StorageError::UnknownPartition(tp.clone()))
    }

    /// Reads a whole index, in base offset order, a chunk per round trip.
    fn read_index(conn: &mut Connection, key: &str) -> redis::RedisResult<Vec<String>> {
        let mut all = Vec::new();
        let mut from = 0isize;
        loop {
            let chunk: Vec<String> = redis::cmd("ZRANGE")
                .arg(key)
                .arg(from)
                .arg(from + SCAN_CHUNK - 1)
                .query(conn)?;
            let n = chunk.len();
            all.extend(chunk);
            if (n as isize) < SCAN_CHUNK {
                return Ok(all);
            }
            from += SCAN_CHUNK;
        }
    }

    fn recover_once(&mut self) -> Result<RecoveredState, StorageError> {
        let keys = self.keys.clone();
        let mut state = RecoveredState::default();

        let topics: HashMap<String, Vec<u8>> = self
            .conn
            .run(|c| redis::cmd("HGETALL").arg(keys.topics()).query(c))?;
        let mut metas = Vec::new();
        for (name, bytes) in topics {
            let m: MetaRecord = uncbor(&bytes, &format!("metadata of topic {name}"))?;
            metas.push(TopicMeta {
                name: m.name,
                id: m.id,
                partitions: m.partitions,
                configs: m.configs,
            });
        }
        metas.sort_by(|a, b| a.name.cmp(&b.name));

        let tps: Vec<TopicPartition> = metas
            .iter()
            .flat_map(|m| {
                (0..m.partitions).map(|partition| TopicPartition {
                    topic: m.name.clone(),
                    partition,
                })
            })
            .collect();
        let heads: Vec<(PartHead, usize)> = if tps.is_empty() {
            Vec::new()
        } else {
            self.conn.run(|c| {
                let mut p = redis::pipe();
                for tp in &tps {
                    p.cmd("HMGET").arg(keys.part(tp)).arg("next").arg("start");
                }
                let parts: Vec<PartHead> = p.query(c)?;
                let mut p = redis::pipe();
                for tp in &tps {
                    p.cmd("ZCARD").arg(keys.index(tp));
                }
                let cards: Vec<usize> = p.query(c)?;
                Ok(parts.into_iter().zip(cards).collect())
            })?
        };
        let mut partitions = BTreeMap::new();
        for (tp, ((next, start), card)) in tps.into_iter().zip(heads) {
            let log_start = start.unwrap_or(0);
            let mut next_offset = next.unwrap_or(0).max(log_start);
            let mut producers = RecentBatches::default();
            if card > 0 {
                let members = self.conn.run(|c| Self::read_index(c, &keys.index(&tp)))?;
                for m in &members {
                    let e = IndexEntry::decode(m)?;
                    next_offset = next_offset.max(e.last + 1);
                    producers.observe(ProducerSnapshot {
                        producer_id: e.producer_id,
                        producer_epoch: e.producer_epoch,
                        first_sequence: e.base_sequence,
                        last_sequence: last_sequence(e.base_sequence, e.record_count() as usize),
                        base_offset: e.base,
                    });
                }
            }
            let snapshots = producers.into_snapshots();
            state.partitions.insert(
                tp.clone(),
                PartitionState {
                    log_start_offset: log_start,
                    next_offset,
                    producers: snapshots,
                },
            );
            partitions.insert(
                tp,
                PartState {
                    next_offset,
                    log_start,
                },
            );
        }

        let groups: Vec<String> = self
            .conn
            .run(|c| redis::cmd("SMEMBERS").arg(keys.groups()).query(c))?;
        if !groups.is_empty() {
            let all: Vec<HashMap<String, Vec<u8>>> = self.conn.run(|c| {
                let mut p = redis::pipe();
                for g in &groups {
                    p.cmd("HGETALL").arg(keys.offsets(g));
                }
                p.query(c)
            })?;
            for (group, fields) in groups.into_iter().zip(all) {
                let mut offsets = BTreeMap::new();
                for (field, bytes) in fields {
                    let tp = parse_offset_field(&field)?;
                    let o: OffsetRecord = uncbor(&bytes, "committed offset")?;
                    offsets.insert(
                        tp,
                        CommittedOffset {
                            offset: o.offset,
                            leader_epoch: o.leader_epoch,
                            metadata: o.metadata,
                            commit_timestamp: o.commit_timestamp,
                        },
                    );
                }
                if !offsets.is_empty() {
                    state.offsets.insert(group, offsets);
                }
            }
        }

        let next_pid: Option<i64> = self
            .conn
            .run(|c| redis::cmd("GET").arg(keys.producer_id()).query(c))?;
        state.next_producer_id = next_pid.unwrap_or(0);

        let defs: HashMap<String, Vec<u8>> = self
            .conn
            .run(|c| redis::cmd("HGETALL").arg(keys.defs()).query(c))?;
        state.definitions = defs.into_iter().map(|(k, v)| (k, Bytes::from(v))).collect();

        state.queues = self.recover_queues()?;

        state.topics = metas;
        self.topics = state
            .topics
            .iter()
            .map(|m| (m.name.clone(), m.clone()))
            .collect();
        self.partitions = partitions;
        self.next_producer_id = state.next_producer_id;
        Ok(state)
    }
}

impl Storage for RedisStorage {
    fn recover(&mut self) -> Result<RecoveredState, StorageError> {
        let timeouts = self.conn.timeouts();
        self.conn.set_io_timeout(timeouts.recover_io);
        let deadline = Instant::now() + RECOVER_WAIT;
        let result = loop {
            match self.recover_once() {
                Err(StorageError::Io(_)) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                other => break other,
            }
        };
        self.conn.set_io_timeout(timeouts.io);
        result
    }

    fn put_topic(&mut self, meta: &TopicMeta) -> Result<(), StorageError> {
        let record = MetaRecord {
            name: meta.name.clone(),
            id: meta.id,
            partitions: meta.partitions,
            configs: meta.configs.clone(),
        };
        let key = self.keys.topics();
        self.conn.run(|c| {
            redis::cmd("HSET")
                .arg(key)
                .arg(&meta.name)
                .arg(cbor(&record))
                .query::<()>(c)
        })?;
        for partition in 0..meta.partitions {
            let tp = TopicPartition {
                topic: meta.name.clone(),
                partition,
            };
            self.partitions.entry(tp).or_default();
        }
        self.topics.insert(meta.name.clone(), meta.clone());
        Ok(())
    }

    fn delete_topic(&mut self, name: &str) -> Result<(), StorageError> {
        let tps: Vec<TopicPartition> = self
            .partitions
            .keys()
            .filter(|tp| tp.topic == name)
            .cloned()
            .collect();
        let keys = &self.keys;
        self.conn.run(|c| {
            let mut p = redis::pipe();
            p.atomic();
            p.cmd("HDEL").arg(keys.topics()).arg(name).ignore();
            for tp in &tps {
                p.cmd("UNLINK")
                    .arg(keys.part(tp))
                    .arg(keys.index(tp))
                    .arg(keys.log(tp))
                    .arg(keys.tombstones(tp))
                    .ignore();
            }
            p.query::<()>(c)
        })?;
        self.topics.remove(name);
        self.partitions.retain(|tp, _| tp.topic != name);
        Ok(())
    }

    fn append(&mut self, tp: &TopicPartition, batch: &EncodedBatch) -> Result<(), StorageError> {
        let part = self.part(tp)?;
        if batch.base_offset != part.next_offset || batch.last_offset < batch.base_offset {
            return Err(StorageError::Corrupt(format!(
                "append at {} but next offset is {}",
                batch.base_offset, part.next_offset
            )));
        }
        let entry = IndexEntry::of(batch)?;
        let keys = &self.keys;
        let base = batch.base_offset;
        self.conn.run(|c| {
            redis::pipe()
                .atomic()
                .cmd("HSET")
                .arg(keys.log(tp))
                .arg(base)
                .arg(batch.bytes.as_ref())
                .ignore()
                .cmd("ZREMRANGEBYSCORE")
                .arg(keys.index(tp))
                .arg(base)
                .arg("+inf")
                .ignore()
                .cmd("ZADD")
                .arg(keys.index(tp))
                .arg(base)
                .arg(entry.encode())
                .ignore()
                .cmd("HSET")
                .arg(keys.part(tp))
                .arg("next")
                .arg(batch.last_offset + 1)
                .ignore()
                .query::<()>(c)
        })?;
        if let Some(p) = self.partitions.get_mut(tp) {
            p.next_offset = batch.last_offset + 1;
        }
        Ok(())
    }

    fn read(
        &mut self,
        tp: &TopicPartition,
        offset: i64,
        max_bytes: usize,
    ) -> Result<Vec<Bytes>, StorageError> {
        self.part(tp)?;
        let keys = &self.keys;
        let limit = (max_bytes / HEADER_LEN + 1).min(READ_MAX_BATCHES);
        let (before, after): (Vec<String>, Vec<String>) = self.conn.run(|c| {
            redis::pipe()
                .cmd("ZREVRANGEBYSCORE")
                .arg(keys.index(tp))
                .arg(offset)
                .arg("-inf")
                .arg("LIMIT")
                .arg(0)
                .arg(1)
                .cmd("ZRANGEBYSCORE")
                .arg(keys.index(tp))
                .arg(format!("({offset}"))
                .arg("+inf")
                .arg("LIMIT")
                .arg(0)
                .arg(limit)
                .query(c)
        })?;
        let mut chosen = Vec::new();
        let mut total = 0usize;
        if let Some(m) = before.first() {
            let e = IndexEntry::decode(m)?;
            if e.last >= offset {
                total += e.len;
                chosen.push(e);
            }
        }
        for m in &after {
            let e = IndexEntry::decode(m)?;
            if !chosen.is_empty() && total + e.len > max_bytes {
                break;
            }
            total += e.len;
            chosen.push(e);
        }
        if chosen.is_empty() {
            return Ok(Vec::new());
        }
        let values: Vec<Option<Vec<u8>>> = self.conn.run(|c| {
            let mut cmd = redis::cmd("HMGET");
            cmd.arg(keys.log(tp));
            for e in &chosen {
                cmd.arg(e.base);
            }
            cmd.query(c)
        })?;
        chosen
            .iter()
            .zip(values)
            .map(|(e, v)| match v {
                Some(b) if b.len() == e.len => Ok(Bytes::from(b)),
                Some(b) => Err(StorageError::Corrupt(format!(
                    "batch at {} of {tp:?} is {} bytes, its index says {}",
                    e.base,
                    b.len(),
                    e.len
                ))),
                None => Err(StorageError::Corrupt(format!(
                    "batch at {} of {tp:?} is indexed but missing",
                    e.base
                ))),
            })
            .collect()
    }

    fn offset_for_timestamp(
        &mut self,
        tp: &TopicPartition,
        timestamp: i64,
    ) -> Result<Option<i64>, StorageError> {
        let start = self.part(tp)?.log_start;
        let key = self.keys.index(tp);
        let mut from = 0isize;
        loop {
            let chunk: Vec<String> = self.conn.run(|c| {
                redis::cmd("ZRANGE")
                    .arg(&key)
                    .arg(from)
                    .arg(from + SCAN_CHUNK - 1)
                    .query(c)
            })?;
            for m in &chunk {
                let e = IndexEntry::decode(m)?;
                if e.last >= start && e.max_timestamp >= timestamp {
                    return Ok(Some(e.base));
                }
            }
            if (chunk.len() as isize) < SCAN_CHUNK {
                return Ok(None);
            }
            from += SCAN_CHUNK;
        }
    }

    fn delete_records(&mut self, tp: &TopicPartition, before: i64) -> Result<(), StorageError> {
        let part = self.part(tp)?;
        let new_start = part.log_start.max(before);
        let keys = &self.keys;
        let below: Vec<String> = self.conn.run(|c| {
            redis::cmd("ZRANGEBYSCORE")
                .arg(keys.index(tp))
                .arg("-inf")
                .arg(format!("({new_start}"))
                .query(c)
        })?;
        let mut members = Vec::new();
        let mut bases = Vec::new();
        for m in below {
            let e = IndexEntry::decode(&m)?;
            if e.last < new_start {
                bases.push(e.base);
                members.push(m);
            }
        }
        self.conn.run(|c| {
            let mut p = redis::pipe();
            p.atomic();
            p.cmd("HSET")
                .arg(keys.part(tp))
                .arg("start")
                .arg(new_start)
                .ignore();
            if !members.is_empty() {
                p.cmd("ZREM").arg(keys.index(tp)).arg(&members).ignore();
                p.cmd("HDEL").arg(keys.log(tp)).arg(&bases).ignore();
            }
            p.query::<()>(c)
        })?;
        if let Some(p) = self.partitions.get_mut(tp) {
            p.log_start = new_start;
        }
        Ok(())
    }

    fn commit_offsets(
        &mut self,
        group: &str,
        offsets: &[(TopicPartition, CommittedOffset)],
    ) -> Result<(), StorageError> {
        if offsets.is_empty() {
            return Ok(());
        }
        let keys = &self.keys;
        self.conn.run(|c| {
            let mut hset = redis::cmd("HSET");
            hset.arg(keys.offsets(group));
            for (tp, o) in offsets {
                let record = OffsetRecord {
                    offset: o.offset,
                    leader_epoch: o.leader_epoch,
                    metadata: o.metadata.clone(),
                    commit_timestamp: o.commit_timestamp,
                };
                hset.arg(offset_field(tp)).arg(cbor(&record));
            }
            redis::pipe()
                .atomic()
                .cmd("SADD")
                .arg(keys.groups())
                .arg(group)
                .ignore()
                .add_command(hset)
                .ignore()
                .query::<()>(c)
        })
    }

    fn delete_group(&mut self, group: &str) -> Result<(), StorageError> {
        let keys = &self.keys;
        self.conn.run(|c| {
            redis::pipe()
                .atomic()
                .cmd("SREM")
                .arg(keys.groups())
                .arg(group)
                .ignore()
                .cmd("UNLINK")
                .arg(keys.offsets(group))
                .ignore()
                .query::<()>(c)
        })
    }

    fn set_next_producer_id(&mut self, next: i64) -> Result<(), StorageError> {
        let next = next.max(self.next_producer_id);
        let key = self.keys.producer_id();
        self.conn
            .run(|c| redis::cmd("SET").arg(key).arg(next).query::<()>(c))?;
        self.next_producer_id = next;
        Ok(())
    }

    fn put_definition(&mut self, key: &str, value: Option<&Bytes>) -> Result<(), StorageError> {
        let defs = self.keys.defs();
        self.conn.run(|c| match value {
            Some(v) => redis::cmd("HSET")
                .arg(defs)
                .arg(key)
                .arg(v.as_ref())
                .query::<()>(c),
            None => redis::cmd("HDEL").arg(defs).arg(key).query::<()>(c),
        })
    }

    fn queue_append(&mut self, queue: &str, messages: &[(u64, Bytes)]) -> Result<(), StorageError> {
        self.append_messages(queue, messages)
    }

    fn queue_remove(&mut self, queue: &str, ids: &[u64]) -> Result<(), StorageError> {
        self.remove_messages(queue, ids)
    }

    fn queue_read(
        &mut self,
        queue: &str,
        after: Option<u64>,
        max_messages: usize,
        max_bytes: usize,
    ) -> Result<Vec<(u64, Bytes)>, StorageError> {
        self.read_messages(queue, after, max_messages, max_bytes)
    }

    fn queue_remove_from(&mut self, queue: &str, from: u64) -> Result<(), StorageError> {
        self.remove_messages_from(queue, from)
    }

    fn queue_delete(&mut self, queue: &str) -> Result<(), StorageError> {
        self.delete_messages(queue)
    }

    fn sync(&mut self) -> Result<(), StorageError> {
        // Every write returned after the server's reply; how durable it is then is the
        // server's persistence configuration (see docs/storage.md).
        Ok(())
    }

    fn apply_retention(
        &mut self,
        tp: &TopicPartition,
        policy: &RetentionPolicy,
        now_wall: i64,
    ) -> Result<Option<i64>, StorageError> {
        self.retain(tp, policy, now_wall).map(Some)
    }
}
