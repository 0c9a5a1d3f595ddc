//! The `[compression]` section: the default policy, `[compression.topics."name"]` and
//! `[compression.queues."name"]` overrides, adaptive thresholds and dictionary training.

use std::collections::BTreeMap;

use portask_engine::{
    Algorithm, CompressionMode, CompressionPolicy, CompressionSettings, DictionaryConfig,
    StoredCompression,
};
use serde::Deserialize;

use super::ConfigError;

/// Keys a default section and an override share.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompressionKeys {
    /// "zstd", "lz4", "snappy" or "none".
    pub algorithm: Option<String>,
    /// zstd level, 1 to 22.
    pub level: Option<i32>,
    /// "single" or "bulk".
    pub mode: Option<String>,
    /// Most records in one stored batch.
    pub batch_max_messages: Option<u64>,
    /// Most bytes in one stored batch.
    pub batch_max_bytes: Option<u64>,
    /// Values or bodies below this stay uncompressed.
    pub min_size: Option<u64>,
    /// The adaptive controller picks algorithm and level.
    pub adaptive: Option<bool>,
    /// Train and use a zstd dictionary.
    pub dictionary: Option<bool>,
}

/// The `[compression]` section.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompressionSection {
    /// The default keys.
    #[serde(flatten)]
    pub keys: CompressionKeys,
    /// Adaptive: CPU above this steps compression down.
    pub cpu_threshold_high_percent: Option<u32>,
    /// Adaptive: CPU below this allows stepping up.
    pub cpu_threshold_low_percent: Option<u32>,
    /// Adaptive: memory above this (with CPU low) steps compression up.
    pub memory_threshold_high_percent: Option<u32>,
    /// Adaptive: append latency above this steps compression down.
    pub latency_threshold_high_ms: Option<u64>,
    /// Adaptive: memory limit the RSS is compared with (0: the machine's memory).
    pub memory_limit_bytes: Option<u64>,
    /// Dictionaries: values sampled before training.
    pub dictionary_sample_records: Option<u64>,
    /// Dictionaries: largest dictionary.
    pub dictionary_max_bytes: Option<u64>,
    /// Dictionaries: least gain (percent) on the held-out sample to use one.
    pub dictionary_min_gain_percent: Option<u32>,
    /// Per-topic overrides.
    #[serde(default)]
    pub topics: BTreeMap<String, CompressionKeys>,
    /// Per-queue overrides.
    #[serde(default)]
    pub queues: BTreeMap<String, CompressionKeys>,
}

fn bad(key: &str, why: &str) -> ConfigError {
    ConfigError::Invalid {
        origin: String::new(),
        message: format!("`{key}` {why}"),
    }
}

fn apply(
    keys: &CompressionKeys,
    base: CompressionSettings,
    prefix: &str,
) -> Result<CompressionSettings, ConfigError> {
    let mut s = base;
    if let Some(a) = &keys.algorithm {
        s.algorithm = Algorithm::from_name(a).ok_or_else(|| {
            bad(
                &format!("{prefix}algorithm"),
                &format!("must be \"zstd\", \"lz4\", \"snappy\" or \"none\", got {a:?}"),
            )
        })?;
    }
    if let Some(level) = keys.level {
        if !(1..=22).contains(&level) {
            return Err(bad(&format!("{prefix}level"), "must be between 1 and 22"));
        }
        s.level = level;
    }
    if let Some(m) = &keys.mode {
        s.mode = match m.as_str() {
            "single" => CompressionMode::Single,
            "bulk" => CompressionMode::Bulk,
            _ => {
                return Err(bad(
                    &format!("{prefix}mode"),
                    &format!("must be \"single\" or \"bulk\", got {m:?}"),
                ));
            }
        };
    }
    let size = |v: Option<u64>, key: &str, min: u64, max: u64, cur: usize| match v {
        None => Ok(cur),
        Some(v) if (min..=max).contains(&v) => Ok(v as usize),
        Some(_) => Err(bad(
            &format!("{prefix}{key}"),
            &format!("must be between {min} and {max}"),
        )),
    };
    s.batch_max_messages = size(
        keys.batch_max_messages,
        "batch_max_messages",
        1,
        1 << 24,
        s.batch_max_messages,
    )?;
    s.batch_max_bytes = size(
        keys.batch_max_bytes,
        "batch_max_bytes",
        1024,
        256 << 20,
        s.batch_max_bytes,
    )?;
    s.min_size = size(keys.min_size, "min_size", 0, 256 << 20, s.min_size)?;
    s.adaptive = keys.adaptive.unwrap_or(s.adaptive);
    s.dictionary = keys.dictionary.unwrap_or(s.dictionary);
    Ok(s)
}

impl CompressionSection {
    /// The engine policy, or the first invalid key. `legacy` is the deprecated
    /// `storage.compression` at `storage.compression_level`: it is the default algorithm (and
    /// level) when `compression.algorithm` is "none".
    pub fn policy(&self, legacy: StoredCompression) -> Result<CompressionPolicy, ConfigError> {
        let mut default = apply(&self.keys, CompressionSettings::default(), "compression.")?;
        if default.algorithm == Algorithm::None && legacy != StoredCompression::None {
            default.algorithm = Algorithm::of(legacy);
            if let StoredCompression::Zstd { level } = legacy {
                default.level = level;
            }
        }
        let mut policy = CompressionPolicy {
            default,
            ..CompressionPolicy::default()
        };
        for (name, keys) in &self.topics {
            let prefix = format!("compression.topics.{name:?}.");
            policy
                .topics
                .insert(name.clone(), apply(keys, default, &prefix)?);
        }
        for (name, keys) in &self.queues {
            let prefix = format!("compression.queues.{name:?}.");
            policy
                .queues
                .insert(name.clone(), apply(keys, default, &prefix)?);
        }
        let a = &mut policy.adaptive;
        let pct = |v: Option<u32>, key: &str, cur: u32| match v {
            None => Ok(cur),
            Some(v) if (1..=100).contains(&v) => Ok(v),
            Some(_) => Err(bad(
                &format!("compression.{key}"),
                "must be between 1 and 100",
            )),
        };
        a.cpu_threshold_high_percent = pct(
            self.cpu_threshold_high_percent,
            "cpu_threshold_high_percent",
            a.cpu_threshold_high_percent,
        )?;
        a.cpu_threshold_low_percent = pct(
            self.cpu_threshold_low_percent,
            "cpu_threshold_low_percent",
            a.cpu_threshold_low_percent,
        )?;
        a.memory_threshold_high_percent = pct(
            self.memory_threshold_high_percent,
            "memory_threshold_high_percent",
            a.memory_threshold_high_percent,
        )?;
        if a.cpu_threshold_low_percent >= a.cpu_threshold_high_percent {
            return Err(bad(
                "compression.cpu_threshold_low_percent",
                "must be below cpu_threshold_high_percent",
            ));
        }
        if let Some(ms) = self.latency_threshold_high_ms {
            if ms == 0 {
                return Err(bad(
                    "compression.latency_threshold_high_ms",
                    "must be at least 1",
                ));
            }
            a.latency_threshold_high_ms = ms;
        }
        let d: &mut DictionaryConfig = &mut policy.dictionary;
        if let Some(n) = self.dictionary_sample_records {
            if !(10..=1_000_000).contains(&n) {
                return Err(bad(
                    "compression.dictionary_sample_records",
                    "must be between 10 and 1000000",
                ));
            }
            d.sample_records = n as usize;
        }
        if let Some(n) = self.dictionary_max_bytes {
            if !(256..=1 << 20).contains(&n) {
                return Err(bad(
                    "compression.dictionary_max_bytes",
                    "must be between 256 and 1048576",
                ));
            }
            d.max_size = n as usize;
        }
        if let Some(p) = self.dictionary_min_gain_percent {
            if p > 99 {
                return Err(bad(
                    "compression.dictionary_min_gain_percent",
                    "must be at most 99",
                ));
            }
            d.min_gain_percent = p;
        }
        Ok(policy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(text: &str) -> CompressionSection {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn defaults_overrides_and_errors_name_the_key() {
        let s = section(
            r#"
            algorithm = "zstd"
            level = 6
            mode = "bulk"
            min_size = 128
            [topics."logs"]
            mode = "single"
            dictionary = true
            [queues."jobs"]
            algorithm = "lz4"
            "#,
        );
        let p = s.policy(StoredCompression::None).unwrap();
        assert_eq!(p.default.stored(), StoredCompression::Zstd { level: 6 });
        let logs = p.for_topic("logs");
        assert_eq!(
            (logs.mode, logs.dictionary, logs.min_size),
            (CompressionMode::Single, true, 128)
        );
        assert_eq!(logs.stored(), StoredCompression::Zstd { level: 6 });
        assert_eq!(p.for_queue("jobs").algorithm, Algorithm::Lz4);
        for (text, key) in [
            ("algorithm = \"gzip\"", "compression.algorithm"),
            ("level = 30", "compression.level"),
            ("mode = \"both\"", "compression.mode"),
            (
                "[topics.\"x\"]\nbatch_max_messages = 0",
                "compression.topics.\"x\".batch_max_messages",
            ),
            (
                "cpu_threshold_low_percent = 90",
                "compression.cpu_threshold_low_percent",
            ),
        ] {
            let e = section(text)
                .policy(StoredCompression::None)
                .unwrap_err()
                .to_string();
            assert!(e.contains(key), "{text}: {e}");
        }
        // storage.compression still works when the section names no algorithm.
        let p = section("").policy(StoredCompression::Lz4).unwrap();
        assert_eq!(p.default.stored(), StoredCompression::Lz4);
    }
}
