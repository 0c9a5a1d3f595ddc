//! Compression of stored batches: the policy ([`policy`]), the adaptive controller
//! ([`adaptive`]), per-topic zstd dictionaries ([`dictionary`]) and the engine's state tying
//! them together ([`CompressionState`]).

pub mod adaptive;
pub mod dictionary;
pub mod policy;

use std::collections::BTreeMap;
use std::ops::Range;

use bytes::Bytes;
use ulid::Ulid;

use crate::Millis;
use crate::batch::{
    BatchFormatError, BodyEncoding, DictionarySource, ProducerFields, StoredCompression,
    encode_batch_with,
};
use crate::record::Record;
use crate::rng::Rng;
use crate::storage::{EncodedBatch, Storage};

use adaptive::{CompressionDecision, Controller, LoadSample};
use dictionary::{Dictionary, Sampler};
use policy::{Algorithm, CompressionPolicy, CompressionSettings, split_ranges};

/// Counters and the current choice, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompressionStats {
    /// What topics without an override use now (the adaptive choice when the default section
    /// is adaptive).
    pub current: StoredCompression,
    /// Changes the adaptive controller made.
    pub decisions_total: u64,
    /// Stored batches written.
    pub batches_total: u64,
    /// Uncompressed size of the stored batches written.
    pub bytes_in: u64,
    /// Stored size of those batches.
    pub bytes_out: u64,
    /// Dictionaries trained and kept.
    pub dictionaries_used: u64,
    /// Dictionaries trained and dropped because they did not help enough.
    pub dictionaries_rejected: u64,
}

/// What happened to a topic's dictionary training.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DictionaryEvent {
    /// A dictionary was trained, stored and is used from now on.
    Chosen {
        /// Topic.
        topic: String,
        /// Dictionary id.
        id: u32,
        /// Held-out bytes compressed without / with the dictionary.
        sizes: (usize, usize),
    },
    /// Training did not help by the margin (or failed); the topic goes on without.
    Rejected {
        /// Topic.
        topic: String,
        /// Held-out bytes compressed without / with the dictionary (0, 0 if training failed).
        sizes: (usize, usize),
    },
}

/// The engine's compression state.
#[derive(Debug)]
pub struct CompressionState {
    policy: CompressionPolicy,
    controller: Controller,
    dictionaries: BTreeMap<u32, Dictionary>,
    active: BTreeMap<String, u32>,
    samplers: BTreeMap<String, Sampler>,
    stats: CompressionStats,
}

impl DictionarySource for CompressionState {
    fn dictionary(&self, id: u32) -> Option<&Dictionary> {
        self.dictionaries.get(&id)
    }
}

/// A message id from the engine's random numbers and the broker's wall clock.
pub fn message_id(rng: &mut Rng, wall: i64) -> Ulid {
    let random = (u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64());
    Ulid::from_parts(wall.max(0) as u64, random)
}

impl CompressionState {
    /// State for `policy`, with the dictionaries recovered from storage.
    pub fn new(policy: CompressionPolicy, recovered: Vec<(String, Dictionary)>) -> Self {
        let controller = Controller::new(policy.adaptive, policy.default.stored());
        let mut state = Self {
            policy,
            controller,
            dictionaries: BTreeMap::new(),
            active: BTreeMap::new(),
            samplers: BTreeMap::new(),
            stats: CompressionStats::default(),
        };
        for (topic, dict) in recovered {
            let newer = state
                .active
                .get(&topic)
                .and_then(|id| state.dictionaries.get(id))
                .is_none_or(|d| (d.created(), d.id()) < (dict.created(), dict.id()));
            if newer {
                state.active.insert(topic, dict.id());
            }
            state.dictionaries.insert(dict.id(), dict);
        }
        state
    }

    /// The policy as configured.
    pub fn policy(&self) -> &CompressionPolicy {
        &self.policy
    }

    /// The settings a topic is written with now (the adaptive choice applied).
    pub fn topic_settings(&self, topic: &str) -> CompressionSettings {
        let mut s = *self.policy.for_topic(topic);
        if s.adaptive {
            let c = self.controller.current();
            s.algorithm = Algorithm::of(c);
            if let StoredCompression::Zstd { level } = c {
                s.level = level;
            }
        }
        s
    }

    /// Splits a produce into the stored batches the topic's limits allow.
    pub fn split(&self, topic: &str, records: &[Record]) -> Vec<Range<usize>> {
        let s = self.policy.for_topic(topic);
        split_ranges(
            records.iter().map(Record::approx_size),
            s.batch_max_messages,
            s.batch_max_bytes,
        )
    }

    /// Encodes one stored batch of `topic`.
    pub fn encode(
        &mut self,
        topic: &str,
        base_offset: i64,
        producer: ProducerFields,
        records: &[Record],
        ids: &[Option<Ulid>],
    ) -> Result<EncodedBatch, BatchFormatError> {
        let s = self.topic_settings(topic);
        let dictionary = match (s.algorithm, self.active.get(topic)) {
            (Algorithm::Zstd, Some(id)) => self.dictionaries.get(id),
            _ => None,
        };
        let enc = BodyEncoding {
            compression: s.stored(),
            mode: s.mode,
            min_size: s.min_size,
            dictionary,
        };
        let (batch, stats) = encode_batch_with(base_offset, producer, records, ids, &enc)?;
        self.stats.batches_total += 1;
        self.stats.bytes_in += stats.raw_bytes;
        self.stats.bytes_out += stats.stored_bytes;
        Ok(batch)
    }

    /// Samples the values of records just stored in `topic`; once enough are sampled, trains
    /// a dictionary and, when it helps, stores it durably and uses it for the topic's next
    /// batches. Only for zstd topics with `dictionary = true`.
    pub fn sample(
        &mut self,
        topic: &str,
        records: &[Record],
        wall: i64,
        storage: &mut dyn Storage,
        rng: &mut Rng,
    ) -> Option<DictionaryEvent> {
        let s = self.topic_settings(topic);
        if !s.dictionary || s.algorithm != Algorithm::Zstd || self.active.contains_key(topic) {
            return None;
        }
        let cfg = self.policy.dictionary;
        let sampler = self.samplers.entry(topic.to_string()).or_default();
        if sampler.done {
            return None;
        }
        let mut ready = false;
        for v in records.iter().filter_map(|r| r.value.as_ref()) {
            ready = sampler.add(v, &cfg);
            if ready {
                break;
            }
        }
        if !ready {
            return None;
        }
        let (samples, bytes) = sampler.take();
        let trial = dictionary::train(&samples, bytes, s.level, s.mode, &cfg);
        let rejected = |sizes| {
            Some(DictionaryEvent::Rejected {
                topic: topic.to_string(),
                sizes,
            })
        };
        let Some(trial) = trial else {
            self.stats.dictionaries_rejected += 1;
            return rejected((0, 0));
        };
        let sizes = (trial.without, trial.with);
        let Some(raw) = trial.dictionary else {
            self.stats.dictionaries_rejected += 1;
            return rejected(sizes);
        };
        let mut id = 0;
        while id == 0 || self.dictionaries.contains_key(&id) {
            id = rng.next_u64() as u32;
        }
        let dict = Dictionary::new(id, wall, Bytes::from(raw));
        if storage
            .put_definition(&Dictionary::key(topic, id), Some(&dict.encode()))
            .is_err()
        {
            // Not stored, so not used: batches must stay readable after a restart.
            self.stats.dictionaries_rejected += 1;
            return rejected(sizes);
        }
        self.dictionaries.insert(id, dict);
        self.active.insert(topic.to_string(), id);
        self.stats.dictionaries_used += 1;
        Some(DictionaryEvent::Chosen {
            topic: topic.to_string(),
            id,
            sizes,
        })
    }

    /// The dictionary id a topic's new batches use, if any.
    pub fn topic_dictionary(&self, topic: &str) -> Option<u32> {
        self.active.get(topic).copied()
    }

    /// Feeds a load sample to the adaptive controller.
    pub fn observe_load(
        &mut self,
        now: Millis,
        sample: &LoadSample,
    ) -> Option<CompressionDecision> {
        self.controller.observe(now, sample)
    }

    /// Counters and the current choice.
    pub fn stats(&self) -> CompressionStats {
        let current = if self.policy.default.adaptive {
            self.controller.current()
        } else {
            self.policy.default.stored()
        };
        CompressionStats {
            current,
            decisions_total: self.controller.decisions(),
            ..self.stats
        }
    }
}

impl crate::Engine {
    /// Feeds one load measurement (taken by the caller about once a second) to the adaptive
    /// controller; returns the change made, if any, for the caller to log.
    pub fn observe_load(&mut self, now: Millis, sample: LoadSample) -> Option<CompressionDecision> {
        self.compression.observe_load(now, &sample)
    }

    /// Compression counters and the current choice, for metrics.
    pub fn compression_stats(&self) -> CompressionStats {
        self.compression.stats()
    }

    /// The compression settings `topic`'s next batches are written with.
    pub fn compression_settings(&self, topic: &str) -> CompressionSettings {
        self.compression.topic_settings(topic)
    }

    /// The id of the zstd dictionary `topic`'s next batches use, if any.
    pub fn topic_dictionary(&self, topic: &str) -> Option<u32> {
        self.compression.topic_dictionary(topic)
    }
}

#[cfg(test)]
mod tests;
