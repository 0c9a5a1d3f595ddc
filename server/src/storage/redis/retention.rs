//! Retention and compaction of a partition ([`Storage::apply_retention`]).
//!
//! The stored batch plays the part of the disk log's segment. The *active* batch, which is
//! never touched (as Kafka never touches the active segment), is the newest batch the engine
//! knows of: the last index entry whose base offset is below the partition's next offset.
//! An entry at the next offset is an append whose reply was lost; the next append replaces
//! it, so retention leaves it alone too. The batches before the active one are *closed*.
//!
//! Deletion (`cleanup.policy` holds `delete`): with `retention.ms`, the oldest closed batches
//! whose max timestamp is older than `now - retention.ms` go; with `retention.bytes`, the
//! oldest closed batches go while the partition (every batch up to the active one) stays at
//! least that large without them. The log start offset moves to the first batch left, through
//! [`Storage::delete_records`]. Only the part of the index that decides is read: the expired
//! batches oldest first, the retained ones newest first.
//!
//! Compaction (`compact`) keeps, in the closed batches, the latest record of each key among
//! them, and tombstones until `delete.retention.ms` after their batch was first compacted
//! (see [`crate::storage::compaction`]). A pass runs when a batch was closed since the last
//! pass (the `compacted` field of the partition's `part` hash is the active batch's base
//! offset at the end of the last pass) or a tombstone is past its horizon (the `tomb` hash:
//! base offset of a compacted batch that keeps tombstones → when it was first compacted).
//! A pass reads every closed batch twice (to find each key's latest offset, then to rewrite),
//! a chunk of at most [`CHUNK_BYTES`] per round trip; each chunk's changes are one
//! transaction: the changed batches' index entries and bytes are removed and their pieces
//! added. A crash between chunks leaves a consistent, partly compacted log that the next pass
//! finishes. A batch left without records just goes; the log start offset does not move.
//!
//! The last closed batch of each idempotent producer (one whose newest batch is not the
//! active one) is kept whole, records and tombstones alike: recovery takes a producer's
//! sequence numbers from its last index entry, which must stay as it was appended (Kafka's
//! cleaner likewise retains each producer's last batch).

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use portask_engine::storage::{RetentionPolicy, Storage, StorageError, TopicPartition};

use super::keys::IndexEntry;
use super::{RedisStorage, SCAN_CHUNK};
use crate::storage::compaction::{compact_batch, note_latest};

/// Most batch bytes read per round trip by a compaction pass (a single larger batch is read
/// alone).
const CHUNK_BYTES: usize = 1 << 20;

impl RedisStorage {
    /// Applies `policy` to `tp` at wall-clock time `now` (ms); returns the log start offset
    /// afterwards.
    pub(super) fn retain(
        &mut self,
        tp: &TopicPartition,
        policy: &RetentionPolicy,
        now: i64,
    ) -> Result<i64, StorageError> {
        let next = self.part(tp)?.next_offset;
        let key = self.keys.index(tp);
        let newest: Vec<String> = self.conn.run(|c| {
            redis::cmd("ZREVRANGEBYSCORE")
                .arg(&key)
                .arg(format!("({next}"))
                .arg("-inf")
                .arg("LIMIT")
                .arg(0)
                .arg(1)
                .query(c)
        })?;
        if let Some(m) = newest.first() {
            let active = IndexEntry::decode(m)?;
            if policy.delete {
                self.delete_old_batches(tp, policy, now, &active)?;
            }
            if policy.compact {
                self.compact(tp, policy, now, &active)?;
            }
        }
        Ok(self.part(tp)?.log_start)
    }

    /// Deletes the closed batches that `retention.ms` and `retention.bytes` let go.
    fn delete_old_batches(
        &mut self,
        tp: &TopicPartition,
        policy: &RetentionPolicy,
        now: i64,
        active: &IndexEntry,
    ) -> Result<(), StorageError> {
        let mut new_start = None;
        if policy.retention_ms >= 0 {
            let horizon = now.saturating_sub(policy.retention_ms);
            new_start = self.first_recent(tp, horizon, active)?;
        }
        if policy.retention_bytes >= 0 {
            let by_size = self.first_within_size(tp, policy.retention_bytes, active)?;
            new_start = new_start.max(by_size);
        }
        match new_start {
            Some(start) if start > self.part(tp)?.log_start => self.delete_records(tp, start),
            _ => Ok(()),
        }
    }

    /// Base offset of the oldest batch with a record at or after `horizon` (the active batch
    /// when there is none), when older batches precede it.
    fn first_recent(
        &mut self,
        tp: &TopicPartition,
        horizon: i64,
        active: &IndexEntry,
    ) -> Result<Option<i64>, StorageError> {
        let closed = format!("({}", active.base);
        let mut from = 0;
        loop {
            let chunk = self.index_chunk(tp, "ZRANGEBYSCORE", "-inf", &closed, from)?;
            let recent = chunk.iter().position(|e| e.max_timestamp >= horizon);
            let any_expired = from > 0 || recent.unwrap_or(chunk.len()) > 0;
            if let Some(i) = recent {
                return Ok(any_expired.then_some(chunk[i].base));
            }
            if chunk.len() < SCAN_CHUNK as usize {
                return Ok(any_expired.then_some(active.base));
            }
            from += SCAN_CHUNK;
        }
    }

    /// Base offset of the oldest batch of the shortest run of newest batches (up to the
    /// active one) that holds at least `limit` bytes, when older batches precede it.
    fn first_within_size(
        &mut self,
        tp: &TopicPartition,
        limit: i64,
        active: &IndexEntry,
    ) -> Result<Option<i64>, StorageError> {
        let newest = active.base.to_string();
        let mut from = 0;
        let mut total = 0i64;
        let mut first_kept = None;
        loop {
            let chunk = self.index_chunk(tp, "ZREVRANGEBYSCORE", &newest, "-inf", from)?;
            for e in &chunk {
                if first_kept.is_some() {
                    // An older batch exists: it and everything before it go.
                    return Ok(first_kept);
                }
                total += e.len as i64;
                if total >= limit {
                    first_kept = Some(e.base);
                }
            }
            if chunk.len() < SCAN_CHUNK as usize {
                return Ok(None);
            }
            from += SCAN_CHUNK;
        }
    }

    /// Up to [`SCAN_CHUNK`] index entries from rank `from` of a score range (`cmd` is
    /// `ZRANGEBYSCORE` or `ZREVRANGEBYSCORE`, with its bounds in its order).
    fn index_chunk(
        &mut self,
        tp: &TopicPartition,
        cmd: &str,
        first: &str,
        last: &str,
        from: isize,
    ) -> Result<Vec<IndexEntry>, StorageError> {
        let key = self.keys.index(tp);
        let members: Vec<String> = self.conn.run(|c| {
            redis::cmd(cmd)
                .arg(&key)
                .arg(first)
                .arg(last)
                .arg("LIMIT")
                .arg(from)
                .arg(SCAN_CHUNK)
                .query(c)
        })?;
        members.iter().map(|m| IndexEntry::decode(m)).collect()
    }

    /// Compacts the closed batches when a pass is due (see the module documentation).
    fn compact(
        &mut self,
        tp: &TopicPartition,
        policy: &RetentionPolicy,
        now: i64,
        active: &IndexEntry,
    ) -> Result<(), StorageError> {
        let (part_key, tomb_key) = (self.keys.part(tp), self.keys.tombstones(tp));
        let (compacted, notes): (Option<i64>, HashMap<i64, i64>) = self.conn.run(|c| {
            redis::pipe()
                .cmd("HGET")
                .arg(&part_key)
                .arg("compacted")
                .cmd("HGETALL")
                .arg(&tomb_key)
                .query(c)
        })?;
        let mut pass = Pass {
            latest: HashMap::new(),
            kept_whole: HashSet::new(),
            notes,
            now,
            delete_retention_ms: policy.delete_retention_ms,
        };
        let closed_since = compacted.is_none_or(|c| c < active.base);
        if !closed_since && !pass.notes.values().any(|&at| pass.expired(at)) {
            return Ok(());
        }
        let mut closed = Vec::new();
        loop {
            let bound = format!("({}", active.base);
            let chunk =
                self.index_chunk(tp, "ZRANGEBYSCORE", "-inf", &bound, closed.len() as isize)?;
            let n = chunk.len();
            closed.extend(chunk);
            if n < SCAN_CHUNK as usize {
                break;
            }
        }
        let mut last_of_producer = HashMap::new();
        for e in closed.iter().filter(|e| e.producer_id >= 0) {
            last_of_producer.insert(e.producer_id, e.base);
        }
        last_of_producer.remove(&active.producer_id);
        pass.kept_whole = last_of_producer.into_values().collect();
        let chunks = byte_chunks(&closed);
        for chunk in &chunks {
            for batch in self.batches(tp, chunk)? {
                note_latest(&batch, &mut pass.latest);
            }
        }
        for chunk in &chunks {
            let batches = self.batches(tp, chunk)?;
            self.rewrite(tp, chunk, &batches, &pass)?;
        }
        let bases: HashSet<i64> = closed.iter().map(|e| e.base).collect();
        let stale: Vec<i64> = (pass.notes.keys())
            .filter(|b| !bases.contains(b))
            .copied()
            .collect();
        self.conn.run(|c| {
            let mut p = redis::pipe();
            p.atomic();
            p.cmd("HSET")
                .arg(&part_key)
                .arg("compacted")
                .arg(active.base)
                .ignore();
            if !stale.is_empty() {
                p.cmd("HDEL").arg(&tomb_key).arg(&stale).ignore();
            }
            p.query::<()>(c)
        })
    }

    /// The bytes of the batches of `entries`, in their order.
    fn batches(
        &mut self,
        tp: &TopicPartition,
        entries: &[IndexEntry],
    ) -> Result<Vec<Bytes>, StorageError> {
        let key = self.keys.log(tp);
        let values: Vec<Option<Vec<u8>>> = self.conn.run(|c| {
            let mut cmd = redis::cmd("HMGET");
            cmd.arg(&key);
            for e in entries {
                cmd.arg(e.base);
            }
            cmd.query(c)
        })?;
        entries
            .iter()
            .zip(values)
            .map(|(e, v)| {
                v.map(Bytes::from).ok_or_else(|| {
                    StorageError::Corrupt(format!(
                        "batch at {} of {tp:?} is indexed but missing",
                        e.base
                    ))
                })
            })
            .collect()
    }

    /// Compacts one chunk of closed batches and stores the result in one transaction.
    fn rewrite(
        &mut self,
        tp: &TopicPartition,
        entries: &[IndexEntry],
        batches: &[Bytes],
        pass: &Pass,
    ) -> Result<(), StorageError> {
        let (index, log, tomb) = (
            self.keys.index(tp),
            self.keys.log(tp),
            self.keys.tombstones(tp),
        );
        let mut p = redis::pipe();
        p.atomic();
        let mut changes = false;
        for (e, raw) in entries.iter().zip(batches) {
            if pass.kept_whole.contains(&e.base) {
                continue;
            }
            let note = pass.notes.get(&e.base).copied();
            let compacted =
                compact_batch(raw, &pass.latest, note.is_some_and(|at| pass.expired(at)))?;
            let at = note.unwrap_or(pass.now);
            let Some(pieces) = compacted.pieces else {
                if compacted.tombstones != note.is_some() {
                    changes = true;
                    if compacted.tombstones {
                        p.cmd("HSET").arg(&tomb).arg(e.base).arg(at).ignore();
                    } else {
                        p.cmd("HDEL").arg(&tomb).arg(e.base).ignore();
                    }
                }
                continue;
            };
            changes = true;
            p.cmd("ZREMRANGEBYSCORE")
                .arg(&index)
                .arg(e.base)
                .arg(e.base)
                .ignore();
            p.cmd("HDEL").arg(&log).arg(e.base).ignore();
            p.cmd("HDEL").arg(&tomb).arg(e.base).ignore();
            for piece in &pieces {
                let entry = IndexEntry::of(piece)?;
                p.cmd("HSET")
                    .arg(&log)
                    .arg(piece.base_offset)
                    .arg(piece.bytes.as_ref())
                    .ignore();
                p.cmd("ZADD")
                    .arg(&index)
                    .arg(piece.base_offset)
                    .arg(entry.encode())
                    .ignore();
                if compacted.tombstones {
                    p.cmd("HSET")
                        .arg(&tomb)
                        .arg(piece.base_offset)
                        .arg(at)
                        .ignore();
                }
            }
        }
        if !changes {
            return Ok(());
        }
        self.conn.run(|c| p.query::<()>(c))
    }
}

/// What a compaction pass decides with.
struct Pass {
    /// Each key's latest offset in the closed batches.
    latest: HashMap<Bytes, i64>,
    /// Base offsets of the batches kept whole: the last closed one of each producer whose
    /// newest batch is not the active one.
    kept_whole: HashSet<i64>,
    /// The partition's `tomb` hash: base offset → when first compacted (ms).
    notes: HashMap<i64, i64>,
    /// Wall-clock time of the pass (ms).
    now: i64,
    /// `delete.retention.ms`.
    delete_retention_ms: i64,
}

impl Pass {
    /// Whether the tombstones of a batch first compacted at `at` have expired.
    fn expired(&self, at: i64) -> bool {
        at.saturating_add(self.delete_retention_ms) <= self.now
    }
}

/// Splits `entries` into runs of at most [`CHUNK_BYTES`] batch bytes (a larger batch alone).
fn byte_chunks(entries: &[IndexEntry]) -> Vec<&[IndexEntry]> {
    let mut chunks = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, e) in entries.iter().enumerate() {
        if i > start && bytes + e.len > CHUNK_BYTES {
            chunks.push(&entries[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += e.len;
    }
    if start < entries.len() {
        chunks.push(&entries[start..]);
    }
    chunks
}
