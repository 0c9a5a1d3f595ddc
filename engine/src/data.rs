//! Produce, fetch and the other per-partition data calls.

use crate::batch::{ProducerFields, decode_batch_with};
use crate::compression::message_id;
use crate::partition::{Partition, PartitionOffsets};
use crate::producer::{SeqCheck, SeqRange, last_sequence};
use crate::record::Record;
use crate::storage::TopicPartition;
use crate::{Engine, EngineError, WallMillis};

/// The records of one produce call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProduceBatch {
    /// Idempotent producer id, or -1.
    pub producer_id: i64,
    /// Producer epoch (ignored without a producer id).
    pub producer_epoch: i16,
    /// Sequence number of the first record (ignored without a producer id).
    pub base_sequence: i32,
    /// The records, at least one.
    pub records: Vec<Record>,
}

/// Result of a produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendOutcome {
    /// Offset of the first record.
    pub base_offset: i64,
    /// The partition's log start offset.
    pub log_start_offset: i64,
    /// The batch had already been appended; `base_offset` is the original one.
    pub duplicate: bool,
}

/// One batch of a fetch answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedBatch {
    /// Offset of the first record in `records` (later than the stored base if trimmed).
    pub base_offset: i64,
    /// Idempotent producer id, or -1.
    pub producer_id: i64,
    /// Producer epoch.
    pub producer_epoch: i16,
    /// Sequence of the first record in `records`, or -1.
    pub base_sequence: i32,
    /// The records with their offsets, ascending.
    pub records: Vec<(i64, Record)>,
    /// The message id (ULID) of each record, parallel to `records`; `None` for records
    /// stored before message ids existed.
    pub message_ids: Vec<Option<ulid::Ulid>>,
}

/// Result of a fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchOutcome {
    /// Offset the next produced record gets.
    pub high_watermark: i64,
    /// Equal to the high watermark (no transactions).
    pub last_stable_offset: i64,
    /// First offset still stored.
    pub log_start_offset: i64,
    /// Batches from the requested offset on.
    pub batches: Vec<FetchedBatch>,
}

/// Special timestamp of [`Engine::offset_for_timestamp`]: the high watermark.
pub const LATEST_TIMESTAMP: i64 = -1;
/// Special timestamp of [`Engine::offset_for_timestamp`]: the log start offset.
pub const EARLIEST_TIMESTAMP: i64 = -2;

impl Engine {
    fn partition(&self, tp: &TopicPartition) -> Result<&Partition, EngineError> {
        self.partitions
            .get(tp)
            .ok_or(EngineError::UnknownTopicOrPartition)
    }

    /// Appends a batch to a partition, with idempotent-producer checks. The new records are
    /// delivered to the topic's stream-queue consumers and routed through the exchange named
    /// after the topic (docs/cross-protocol.md).
    pub fn produce(
        &mut self,
        wall: WallMillis,
        tp: &TopicPartition,
        batch: ProduceBatch,
    ) -> Result<AppendOutcome, EngineError> {
        let now = self.broker.clock.0;
        self.broker.observe(now, Some(wall));
        self.produce_from(wall, tp, batch, true)
    }

    /// [`Engine::produce`]; `route` false keeps the records out of the exchange named after
    /// the topic (they came from the queue model).
    pub(crate) fn produce_from(
        &mut self,
        wall: WallMillis,
        tp: &TopicPartition,
        batch: ProduceBatch,
        route: bool,
    ) -> Result<AppendOutcome, EngineError> {
        if batch.records.is_empty() {
            return Err(EngineError::InvalidRequest("produce without records"));
        }
        let part = self
            .partitions
            .get_mut(tp)
            .ok_or(EngineError::UnknownTopicOrPartition)?;
        let idempotent = batch.producer_id >= 0;
        let count = batch.records.len();
        if idempotent {
            let check = part.producers.check(
                batch.producer_id,
                batch.producer_epoch,
                batch.base_sequence,
                count,
            )?;
            if let SeqCheck::Duplicate(base_offset) = check {
                let log_start_offset = part.log_start_offset;
                return Ok(AppendOutcome {
                    base_offset,
                    log_start_offset,
                    duplicate: true,
                });
            }
        }
        let mut records = batch.records;
        for r in records.iter_mut().filter(|r| r.timestamp == -1) {
            r.timestamp = wall;
        }
        let base_offset = part.next_offset;
        let ids: Vec<_> = records
            .iter()
            .map(|_| Some(message_id(&mut self.rng, wall)))
            .collect();
        for range in self.compression.split(&tp.topic, &records) {
            let base_sequence = match batch.base_sequence {
                s if s < 0 || !idempotent => s,
                s => last_sequence(s, range.start + 1),
            };
            let producer = ProducerFields {
                producer_id: batch.producer_id,
                producer_epoch: batch.producer_epoch,
                base_sequence,
            };
            let first = base_offset + range.start as i64;
            let encoded = self
                .compression
                .encode(
                    &tp.topic,
                    first,
                    producer,
                    &records[range.clone()],
                    &ids[range],
                )
                .map_err(|_| EngineError::InvalidRequest("batch too large"))?;
            self.storage.append(tp, &encoded)?;
            part.next_offset = encoded.last_offset + 1;
        }
        assert_eq!(part.next_offset, base_offset + count as i64);
        if idempotent {
            let last = last_sequence(batch.base_sequence, count);
            let range = SeqRange {
                first: batch.base_sequence,
                last,
                base_offset,
            };
            part.producers
                .record(batch.producer_id, batch.producer_epoch, range);
        }
        let log_start_offset = part.log_start_offset;
        // Dictionary training is best effort: the records are stored either way.
        let _ = self.compression.sample(
            &tp.topic,
            &records,
            wall,
            self.storage.as_mut(),
            &mut self.rng,
        );
        self.topic_appended(tp, base_offset, &records, route);
        Ok(AppendOutcome {
            base_offset,
            log_start_offset,
            duplicate: false,
        })
    }

    /// Reads records from `offset` on, about `max_bytes` of stored batches (at least one batch
    /// when data exists at `offset`).
    pub fn fetch(
        &mut self,
        tp: &TopicPartition,
        offset: i64,
        max_bytes: usize,
    ) -> Result<FetchOutcome, EngineError> {
        let offs = self.partition(tp)?.offsets();
        if offset < offs.log_start_offset || offset > offs.high_watermark {
            return Err(EngineError::OffsetOutOfRange);
        }
        let mut out = FetchOutcome {
            high_watermark: offs.high_watermark,
            last_stable_offset: offs.last_stable_offset,
            log_start_offset: offs.log_start_offset,
            batches: Vec::new(),
        };
        if offset == offs.high_watermark {
            return Ok(out);
        }
        for bytes in self.storage.read(tp, offset, max_bytes)? {
            let decoded = decode_batch_with(&bytes, &self.compression)?;
            let h = decoded.header;
            let (records, message_ids): (Vec<(i64, Record)>, Vec<_>) = (h.base_offset..)
                .zip(decoded.records.into_iter().zip(decoded.ids))
                .filter(|(o, _)| *o >= offset && *o < offs.high_watermark)
                .map(|(o, (r, id))| ((o, r), id))
                .unzip();
            let Some(&(first, _)) = records.first() else {
                continue;
            };
            let skipped = (first - h.base_offset) as i32;
            let base_sequence = match h.base_sequence {
                s if s < 0 => s,
                s => last_sequence(s, skipped as usize + 1),
            };
            out.batches.push(FetchedBatch {
                base_offset: first,
                producer_id: h.producer_id,
                producer_epoch: h.producer_epoch,
                base_sequence,
                records,
                message_ids,
            });
        }
        Ok(out)
    }

    /// The partition's log start offset and high watermark.
    pub fn partition_offsets(&self, tp: &TopicPartition) -> Result<PartitionOffsets, EngineError> {
        Ok(self.partition(tp)?.offsets())
    }

    /// The first record with a timestamp at or after `timestamp`, as (offset, timestamp).
    /// [`LATEST_TIMESTAMP`] and [`EARLIEST_TIMESTAMP`] give the high watermark and the log
    /// start offset with timestamp -1.
    pub fn offset_for_timestamp(
        &mut self,
        tp: &TopicPartition,
        timestamp: i64,
    ) -> Result<Option<(i64, i64)>, EngineError> {
        let offs = self.partition(tp)?.offsets();
        match timestamp {
            LATEST_TIMESTAMP => return Ok(Some((offs.high_watermark, -1))),
            EARLIEST_TIMESTAMP => return Ok(Some((offs.log_start_offset, -1))),
            t if t < 0 => return Err(EngineError::InvalidRequest("unsupported special timestamp")),
            _ => {}
        }
        let Some(start) = self.storage.offset_for_timestamp(tp, timestamp)? else {
            return Ok(None);
        };
        let mut pos = start.max(offs.log_start_offset);
        while pos < offs.high_watermark {
            let batches = self.storage.read(tp, pos, 1)?;
            let Some(bytes) = batches.first() else { break };
            let decoded = decode_batch_with(bytes, &self.compression)?;
            let base = decoded.header.base_offset;
            let found = (base..)
                .zip(decoded.records)
                .find(|(o, r)| *o >= pos && r.timestamp >= timestamp);
            if let Some((o, r)) = found {
                return Ok((o < offs.high_watermark).then_some((o, r.timestamp)));
            }
            if decoded.header.last_offset() < pos {
                break;
            }
            pos = decoded.header.last_offset() + 1;
        }
        Ok(None)
    }

    /// Moves the log start offset to `before` (-1: the high watermark); returns the new one.
    pub fn delete_records(&mut self, tp: &TopicPartition, before: i64) -> Result<i64, EngineError> {
        let offs = self.partition(tp)?.offsets();
        let before = if before == -1 {
            offs.high_watermark
        } else {
            before
        };
        if before < 0 || before > offs.high_watermark {
            return Err(EngineError::OffsetOutOfRange);
        }
        if before <= offs.log_start_offset {
            return Ok(offs.log_start_offset);
        }
        self.storage.delete_records(tp, before)?;
        let part = self.partitions.get_mut(tp).expect("checked above");
        part.log_start_offset = before;
        Ok(before)
    }
}
