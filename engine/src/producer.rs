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

impl ProducerEntry {
    /// The base offset of a remembered batch with sequences `first..=last`, or of
    /// consecutive remembered parts that together have them (a batch stored in parts and
    /// recovered so).
    fn duplicate_of(&self, first: i32, last: i32) -> Option<i64> {
        let start = self.batches.iter().position(|b| b.first == first)?;
        let mut expected = first;
        for b in self.batches.range(start..) {
            if b.first != expected {
                return None;
            }
            if b.last == last {
                return Some(self.batches[start].base_offset);
            }
            expected = next_sequence(b.last);
        }
        None
    }
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

/// How many stored batches per producer recovery hands back. A produce batch may be stored
/// as several batches (compression splits it), so this covers [`RECENT_BATCHES`] produce
/// batches of up to that many parts each.
pub const RECOVERED_PARTS: usize = RECENT_BATCHES * 16;

/// Collects, from stored batches seen in log order, the last [`RECOVERED_PARTS`] of every
/// producer: what recovery hands back so that retries of any batch a producer may still have
/// in flight are recognised as duplicates after a restart.
#[derive(Debug, Default)]
pub struct RecentBatches {
    by_producer: BTreeMap<i64, VecDeque<ProducerSnapshot>>,
}

impl RecentBatches {
    /// Records the next batch of the log (batches without a producer id are ignored).
    pub fn observe(&mut self, s: ProducerSnapshot) {
        if s.producer_id < 0 {
            return;
        }
        let recent = self.by_producer.entry(s.producer_id).or_default();
        if recent
            .back()
            .is_some_and(|b| b.producer_epoch != s.producer_epoch)
        {
            // A new epoch starts the producer's sequences over.
            recent.clear();
        }
        if recent.len() == RECOVERED_PARTS {
            recent.pop_front();
        }
        recent.push_back(s);
    }

    /// The collected batches, per producer oldest first.
    pub fn into_snapshots(self) -> Vec<ProducerSnapshot> {
        self.by_producer.into_values().flatten().collect()
    }
}

impl Producers {
    /// Rebuilds the state from recovered snapshots (per producer oldest first; a batch with
    /// a newer epoch replaces what came before it). All of them are kept until the producer
    /// appends again.
    pub fn from_snapshots(snapshots: &[ProducerSnapshot]) -> Self {
        let mut entries: BTreeMap<i64, ProducerEntry> = BTreeMap::new();
        for s in snapshots {
            let entry = entries
                .entry(s.producer_id)
                .or_insert_with(|| ProducerEntry {
                    epoch: s.producer_epoch,
                    batches: VecDeque::new(),
                });
            if entry.epoch != s.producer_epoch {
                entry.epoch = s.producer_epoch;
                entry.batches.clear();
            }
            entry.batches.push_back(SeqRange {
                first: s.first_sequence,
                last: s.last_sequence,
                base_offset: s.base_offset,
            });
        }
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
        if let Some(base_offset) = entry.duplicate_of(base_sequence, last) {
            return Ok(SeqCheck::Duplicate(base_offset));
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
        while entry.batches.len() >= RECENT_BATCHES {
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
    fn recovery_keeps_the_recent_batches_so_older_retries_are_duplicates() {
        let mut recent = RecentBatches::default();
        for i in 0..8 {
            recent.observe(ProducerSnapshot {
                producer_id: 7,
                producer_epoch: 0,
                first_sequence: i * 10,
                last_sequence: i * 10 + 9,
                base_offset: i64::from(i) * 10,
            });
        }
        let snapshots = recent.into_snapshots();
        assert_eq!(snapshots.len(), 8);
        let p = Producers::from_snapshots(&snapshots);
        // The third-newest batch is retried after a restart: a duplicate, not out of order.
        assert_eq!(p.check(7, 0, 50, 10).unwrap(), SeqCheck::Duplicate(50));
        // A produce batch that was stored in two parts is retried whole.
        assert_eq!(p.check(7, 0, 50, 20).unwrap(), SeqCheck::Duplicate(50));
        assert!(p.check(7, 0, 50, 15).is_err(), "ends inside a stored part");
        assert_eq!(p.check(7, 0, 80, 10).unwrap(), SeqCheck::Append);
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
