//! The compression policy: a default and per-topic and per-queue overrides.

use std::collections::BTreeMap;

use crate::batch::{CompressionMode, StoredCompression};

/// A compression algorithm, without its level.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Algorithm {
    /// Stored as is.
    #[default]
    None,
    /// Zstandard.
    Zstd,
    /// LZ4 block format.
    Lz4,
    /// Snappy raw format.
    Snappy,
}

impl Algorithm {
    /// Every algorithm.
    pub const ALL: [Algorithm; 4] = [Self::None, Self::Zstd, Self::Lz4, Self::Snappy];

    /// The name used in configuration and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Zstd => "zstd",
            Self::Lz4 => "lz4",
            Self::Snappy => "snappy",
        }
    }

    /// Parses a name as [`Algorithm::name`] gives it.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The algorithm of a stored compression.
    pub fn of(c: StoredCompression) -> Self {
        match c {
            StoredCompression::None => Self::None,
            StoredCompression::Zstd { .. } => Self::Zstd,
            StoredCompression::Lz4 => Self::Lz4,
            StoredCompression::Snappy => Self::Snappy,
        }
    }

    /// This algorithm at `level` (used by zstd only).
    pub fn with_level(self, level: i32) -> StoredCompression {
        match self {
            Self::None => StoredCompression::None,
            Self::Zstd => StoredCompression::Zstd { level },
            Self::Lz4 => StoredCompression::Lz4,
            Self::Snappy => StoredCompression::Snappy,
        }
    }
}

/// How the batches of one topic (or the messages of one queue) are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompressionSettings {
    /// Algorithm (default none).
    pub algorithm: Algorithm,
    /// zstd level, 1..=22 (default 3).
    pub level: i32,
    /// Single-message or bulk (default bulk).
    pub mode: CompressionMode,
    /// Most records in one stored batch; a larger produce is split (default 10000).
    pub batch_max_messages: usize,
    /// Most uncompressed record bytes in one stored batch; a larger produce is split, a single
    /// larger record gets a batch of its own (default 4 MiB).
    pub batch_max_bytes: usize,
    /// Values (single mode) or batch bodies (bulk mode) smaller than this are stored
    /// uncompressed (default 0).
    pub min_size: usize,
    /// The adaptive controller picks algorithm and level instead of `algorithm`/`level`
    /// (default false).
    pub adaptive: bool,
    /// Train a zstd dictionary from the first records and use it when it helps (zstd only,
    /// default false).
    pub dictionary: bool,
}

impl Default for CompressionSettings {
    fn default() -> Self {
        Self {
            algorithm: Algorithm::None,
            level: 3,
            mode: CompressionMode::Bulk,
            batch_max_messages: 10_000,
            batch_max_bytes: 4 << 20,
            min_size: 0,
            adaptive: false,
            dictionary: false,
        }
    }
}

impl CompressionSettings {
    /// Algorithm and level as a stored compression.
    pub fn stored(&self) -> StoredCompression {
        self.algorithm.with_level(self.level)
    }
}

impl From<StoredCompression> for CompressionSettings {
    fn from(c: StoredCompression) -> Self {
        let level = match c {
            StoredCompression::Zstd { level } => level,
            _ => CompressionSettings::default().level,
        };
        Self {
            algorithm: Algorithm::of(c),
            level,
            ..Self::default()
        }
    }
}

/// The thresholds of the adaptive controller (see [`crate::compression::adaptive`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdaptiveConfig {
    /// Process CPU above this steps compression down (default 80).
    pub cpu_threshold_high_percent: u32,
    /// Process CPU below this allows stepping up (default 30).
    pub cpu_threshold_low_percent: u32,
    /// Memory above this, with CPU low, steps compression up (default 80).
    pub memory_threshold_high_percent: u32,
    /// Append latency above this steps compression down (default 50).
    pub latency_threshold_high_ms: u64,
    /// Consecutive samples that must agree before a change (default 3).
    pub samples_to_act: u32,
    /// Least time between two changes (default 10000).
    pub cooldown_ms: u64,
}

impl Default for AdaptiveConfig {
    fn default() -> Self {
        Self {
            cpu_threshold_high_percent: 80,
            cpu_threshold_low_percent: 30,
            memory_threshold_high_percent: 80,
            latency_threshold_high_ms: 50,
            samples_to_act: 3,
            cooldown_ms: 10_000,
        }
    }
}

/// When and how topic dictionaries are trained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DictionaryConfig {
    /// Values sampled before training (default 1000).
    pub sample_records: usize,
    /// Least sampled bytes needed to train (default 16 KiB).
    pub min_sample_bytes: usize,
    /// Largest dictionary (default 16 KiB).
    pub max_size: usize,
    /// The dictionary is used only when it shrinks the held-out sample by at least this many
    /// percent more (default 10).
    pub min_gain_percent: u32,
}

impl Default for DictionaryConfig {
    fn default() -> Self {
        Self {
            sample_records: 1000,
            min_sample_bytes: 16 << 10,
            max_size: 16 << 10,
            min_gain_percent: 10,
        }
    }
}

/// The whole policy: the `[compression]` section of the server config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompressionPolicy {
    /// Settings of topics and queues without an override.
    pub default: CompressionSettings,
    /// Per-topic settings.
    pub topics: BTreeMap<String, CompressionSettings>,
    /// Per-queue settings (by queue name).
    pub queues: BTreeMap<String, CompressionSettings>,
    /// Adaptive controller thresholds.
    pub adaptive: AdaptiveConfig,
    /// Dictionary training.
    pub dictionary: DictionaryConfig,
}

impl CompressionPolicy {
    /// The settings of a topic.
    pub fn for_topic(&self, topic: &str) -> &CompressionSettings {
        self.topics.get(topic).unwrap_or(&self.default)
    }

    /// The settings of a queue.
    pub fn for_queue(&self, queue: &str) -> &CompressionSettings {
        self.queues.get(queue).unwrap_or(&self.default)
    }
}

impl From<StoredCompression> for CompressionPolicy {
    fn from(c: StoredCompression) -> Self {
        Self {
            default: c.into(),
            ..Self::default()
        }
    }
}

/// Splits `sizes` (record sizes) into consecutive ranges of at most `max_messages` records and,
/// unless one record alone is larger, at most `max_bytes` bytes.
pub fn split_ranges(
    sizes: impl IntoIterator<Item = usize>,
    max_messages: usize,
    max_bytes: usize,
) -> Vec<std::ops::Range<usize>> {
    let (max_messages, max_bytes) = (max_messages.max(1), max_bytes.max(1));
    let mut out = Vec::new();
    let (mut start, mut bytes, mut n) = (0, 0usize, 0);
    for (i, size) in sizes.into_iter().enumerate() {
        if i > start && (i - start >= max_messages || bytes + size > max_bytes) {
            out.push(start..i);
            start = i;
            bytes = 0;
        }
        bytes += size;
        n = i + 1;
    }
    if n > start {
        out.push(start..n);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_by_count_and_bytes() {
        assert_eq!(split_ranges([1; 5], 2, 100), vec![0..2, 2..4, 4..5]);
        assert_eq!(
            split_ranges([10, 10, 30, 5], 100, 20),
            vec![0..2, 2..3, 3..4]
        );
        assert_eq!(split_ranges([50], 1, 1), vec![0..1]);
        assert!(split_ranges([0usize; 0], 1, 1).is_empty());
    }

    #[test]
    fn overrides_win() {
        let mut p = CompressionPolicy::from(StoredCompression::Lz4);
        p.topics.insert(
            "t".into(),
            CompressionSettings::from(StoredCompression::Zstd { level: 9 }),
        );
        assert_eq!(
            p.for_topic("t").stored(),
            StoredCompression::Zstd { level: 9 }
        );
        assert_eq!(p.for_topic("u").stored(), StoredCompression::Lz4);
        assert_eq!(p.for_queue("q").algorithm, Algorithm::Lz4);
        assert_eq!(Algorithm::from_name("snappy"), Some(Algorithm::Snappy));
    }
}
