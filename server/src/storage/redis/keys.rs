//! Key names and the encoding of partition index entries (see the module documentation).

use portask_engine::batch::BatchHeader;
use portask_engine::storage::{EncodedBatch, StorageError, TopicPartition};

/// Key names under one namespace.
#[derive(Debug, Clone)]
pub(super) struct Keys {
    ns: String,
}

impl Keys {
    pub(super) fn new(ns: &str) -> Self {
        Self { ns: ns.to_owned() }
    }

    pub(super) fn topics(&self) -> String {
        format!("{}:topics", self.ns)
    }

    pub(super) fn part(&self, tp: &TopicPartition) -> String {
        format!("{}:part:{}:{}", self.ns, tp.topic, tp.partition)
    }

    pub(super) fn index(&self, tp: &TopicPartition) -> String {
        format!("{}:idx:{}:{}", self.ns, tp.topic, tp.partition)
    }

    pub(super) fn log(&self, tp: &TopicPartition) -> String {
        format!("{}:log:{}:{}", self.ns, tp.topic, tp.partition)
    }

    /// Compacted batches that keep tombstones: base offset → when first compacted (ms).
    pub(super) fn tombstones(&self, tp: &TopicPartition) -> String {
        format!("{}:tomb:{}:{}", self.ns, tp.topic, tp.partition)
    }

    pub(super) fn groups(&self) -> String {
        format!("{}:groups", self.ns)
    }

    pub(super) fn offsets(&self, group: &str) -> String {
        format!("{}:offsets:{group}", self.ns)
    }

    pub(super) fn producer_id(&self) -> String {
        format!("{}:producer-id", self.ns)
    }

    pub(super) fn defs(&self) -> String {
        format!("{}:defs", self.ns)
    }

    pub(super) fn queues(&self) -> String {
        format!("{}:queues", self.ns)
    }

    pub(super) fn queue(&self, key: &str) -> String {
        format!("{}:queue:{key}", self.ns)
    }

    pub(super) fn queue_ids(&self, key: &str) -> String {
        format!("{}:qids:{key}", self.ns)
    }
}

/// Field of a group's offsets hash: `<topic>:<partition>`.
pub(super) fn offset_field(tp: &TopicPartition) -> String {
    format!("{}:{}", tp.topic, tp.partition)
}

pub(super) fn parse_offset_field(field: &str) -> Result<TopicPartition, StorageError> {
    let bad = || StorageError::Corrupt(format!("bad committed offset field {field:?}"));
    let (topic, partition) = field.rsplit_once(':').ok_or_else(bad)?;
    Ok(TopicPartition {
        topic: topic.to_owned(),
        partition: partition.parse().map_err(|_| bad())?,
    })
}

/// What the index keeps about one batch, so that reads, timestamp lookups and recovery need
/// no batch bytes: `base:last:max_timestamp:len:producer_id:producer_epoch:base_sequence`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct IndexEntry {
    pub(super) base: i64,
    pub(super) last: i64,
    pub(super) max_timestamp: i64,
    pub(super) len: usize,
    pub(super) producer_id: i64,
    pub(super) producer_epoch: i16,
    pub(super) base_sequence: i32,
}

impl IndexEntry {
    pub(super) fn of(batch: &EncodedBatch) -> Result<Self, StorageError> {
        let h = BatchHeader::parse(&batch.bytes)
            .map_err(|e| StorageError::Corrupt(format!("appending a bad batch: {e}")))?;
        Ok(Self {
            base: batch.base_offset,
            last: batch.last_offset,
            max_timestamp: batch.max_timestamp,
            len: batch.bytes.len(),
            producer_id: h.producer_id,
            producer_epoch: h.producer_epoch,
            base_sequence: h.base_sequence,
        })
    }

    pub(super) fn encode(&self) -> String {
        format!(
            "{}:{}:{}:{}:{}:{}:{}",
            self.base,
            self.last,
            self.max_timestamp,
            self.len,
            self.producer_id,
            self.producer_epoch,
            self.base_sequence
        )
    }

    pub(super) fn decode(member: &str) -> Result<Self, StorageError> {
        let bad = || StorageError::Corrupt(format!("bad index entry {member:?}"));
        let mut it = member.split(':');
        let mut next = || it.next().ok_or_else(bad);
        let e = Self {
            base: next()?.parse().map_err(|_| bad())?,
            last: next()?.parse().map_err(|_| bad())?,
            max_timestamp: next()?.parse().map_err(|_| bad())?,
            len: next()?.parse().map_err(|_| bad())?,
            producer_id: next()?.parse().map_err(|_| bad())?,
            producer_epoch: next()?.parse().map_err(|_| bad())?,
            base_sequence: next()?.parse().map_err(|_| bad())?,
        };
        if e.last < e.base {
            return Err(bad());
        }
        Ok(e)
    }

    /// Number of records in the batch.
    pub(super) fn record_count(&self) -> i64 {
        self.last - self.base + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_entries_round_trip() {
        let e = IndexEntry {
            base: 10,
            last: 19,
            max_timestamp: -1,
            len: 123,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
        };
        assert_eq!(IndexEntry::decode(&e.encode()).unwrap(), e);
        assert!(IndexEntry::decode("1:2:3").is_err());
        assert!(IndexEntry::decode("5:4:0:1:0:0:0").is_err());
    }

    #[test]
    fn offset_fields_round_trip() {
        let tp = TopicPartition {
            topic: "a.b-c".into(),
            partition: 7,
        };
        assert_eq!(parse_offset_field(&offset_field(&tp)).unwrap(), tp);
        assert!(parse_offset_field("nocolon").is_err());
    }
}
