//! Idempotent producer state of one partition.

use std::collections::{BTreeMap, VecDeque};

use crate::error::EngineError;
use crate::storage::ProducerSnapshot;

/// How many recent batches per producer are remembered for duplicate detection.
pub const RECENT_BATCHES: usize = 5;

/// One appended batch of a producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeqRange {
    /// Sequence of the first record.
    pub first: i32,
    /// Sequence of the last record.
    pub last: i32,
    /// Offset of the first record.
    pub base_offset: i64,
}

/// What a producer has appended to a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerEntry {
    /// Current epoch.
    pub epoch: i16,
    /// Most recent batches, oldest first.
    pub batches: VecDeque<SeqRange>,
}

/// Verdict on an incoming idempotent batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqCheck {
    /// Append it.
    Append,
    /// Already appended at this base offset.
    Duplicate(i64),
}

/// The sequence number of the last record of a batch, wrapping past `i32::MAX` to 0.
pub fn last_sequence(base: i32, count: usize) -> i32 {
    let modulus = i64::from(i32::MAX) + 1;
    ((i64::from(base) + count as i64 - 1) % modulus) as i32
}

fn next_sequence(last: i32) -> i32 {
    if last == i32::MAX { 0 } else { last + 1 }
}

/// Per-producer state of one partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Producers {
    entries: BTreeMap<i64, ProducerEntry>,
}

impl Producers {
    /// Rebuilds the state from recovered snapshots.
    pub fn from_snapshots(snapshots: &[ProducerSnapshot]) -> Self {
        let entries = snapshots
            .iter()
            .map(|s| {
                let range = SeqRange {
                    first: s.first_sequence,
                    last: s.last_sequence,
                    base_offset: s.base_offset,
                };
                (
                    s.producer_id,
                    ProducerEntry {
                        epoch: s.producer_epoch,
                        batches: [range].into(),
                    },
                )
            })
            .collect();
        Self { entries }
    }

    /// Checks a batch of `count` records from `producer_id` without changing anything.
    pub fn check(
        &self,
        producer_id: i64,
        epoch: i16,
        base_sequence: i32,
        count: usize,
    ) -> Result<SeqCheck, EngineError> {
        if base_sequence < 0 {
            return Err(EngineError::InvalidRequest(
                "idempotent batch without a sequence",
            ));
        }
        let Some(entry) = self.entries.get(&producer_id) else {
            return Ok(SeqCheck::Append);
        };
        if epoch < entry.epoch {
            return Err(EngineError::InvalidProducerEpoch);
        }
        if epoch > entry.epoch {
            return match base_sequence {
                0 => Ok(SeqCheck::Append),
                _ => Err(EngineError::OutOfOrderSequence),
            };
        }
        let last = last_sequence(base_sequence, count);
        if let Some(dup) = entry
            .batches
            .iter()
            .find(|b| b.first == base_sequence && b.last == last)
        {
            return Ok(SeqCheck::Duplicate(dup.base_offset));
        }
        match entry.batches.back() {
            Some(prev) if base_sequence != next_sequence(prev.last) => {
                Err(EngineError::OutOfOrderSequence)
            }
            _ => Ok(SeqCheck::Append),
        }
    }

    /// Records an appended batch (after [`Producers::check`] said [`SeqCheck::Append`]).
    pub fn record(&mut self, producer_id: i64, epoch: i16, range: SeqRange) {
        let entry = self
            .entries
            .entry(producer_id)
            .or_insert_with(|| ProducerEntry {
                epoch,
                batches: VecDeque::new(),
            });
        if entry.epoch != epoch {
            entry.epoch = epoch;
            entry.batches.clear();
        }
        if entry.batches.len() == RECENT_BATCHES {
            entry.batches.pop_front();
        }
        entry.batches.push_back(range);
    }

    /// The last batch of every producer, for backends that persist snapshots.
    pub fn snapshots(&self) -> Vec<ProducerSnapshot> {
        self.entries
            .iter()
            .filter_map(|(&id, e)| {
                e.batches.back().map(|b| ProducerSnapshot {
                    producer_id: id,
                    producer_epoch: e.epoch,
                    first_sequence: b.first,
                    last_sequence: b.last,
                    base_offset: b.base_offset,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_wrap() {
        assert_eq!(last_sequence(0, 1), 0);
        assert_eq!(last_sequence(i32::MAX, 2), 0);
        assert_eq!(next_sequence(i32::MAX), 0);
    }

    #[test]
    fn checks_follow_kafka_rules() {
        let mut p = Producers::default();
        assert!(matches!(p.check(1, 0, 5, 2), Ok(SeqCheck::Append)));
        p.record(
            1,
            0,
            SeqRange {
                first: 0,
                last: 1,
                base_offset: 10,
            },
        );
        assert!(matches!(p.check(1, 0, 0, 2), Ok(SeqCheck::Duplicate(10))));
        assert!(matches!(p.check(1, 0, 2, 1), Ok(SeqCheck::Append)));
        assert!(matches!(
            p.check(1, 0, 3, 1),
            Err(EngineError::OutOfOrderSequence)
        ));
        assert!(matches!(
            p.check(1, 0, 1, 1),
            Err(EngineError::OutOfOrderSequence)
        ));
        assert!(matches!(
            p.check(1, 1, 3, 1),
            Err(EngineError::OutOfOrderSequence)
        ));
        assert!(matches!(p.check(1, 1, 0, 1), Ok(SeqCheck::Append)));
        p.record(
            1,
            1,
            SeqRange {
                first: 0,
                last: 0,
                base_offset: 12,
            },
        );
        assert!(matches!(
            p.check(1, 0, 2, 1),
            Err(EngineError::InvalidProducerEpoch)
        ));
    }
}
