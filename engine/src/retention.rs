//! Topic retention and compaction on a timer, and the topic configs that drive them.
//!
//! Every [`RetentionDefaults::check_interval_ms`] (5 s by default) [`Engine::handle_timeout`]
//! calls [`Storage::apply_retention`](crate::storage::Storage::apply_retention) on each
//! partition of each topic that has something to clean (`cleanup.policy` with `compact`, or
//! `delete` with a finite `retention.ms` or `retention.bytes`), and moves the partition's log
//! start offset to what the backend reports. The timer is only armed while such a topic
//! exists. The wall clock is the engine's estimate from the last call that carried one (a
//! produce, a publish); until one arrives the check is skipped. [`Engine::apply_retention`]
//! runs the same pass on demand with an explicit wall clock.

use std::collections::BTreeMap;

use crate::storage::{RetentionPolicy, TopicPartition};
use crate::{Engine, EngineError, Millis, WallMillis};

/// How often retention runs by default (ms).
pub const RETENTION_CHECK_INTERVAL_MS: Millis = 5_000;

/// Broker-wide defaults of the retention configs and the timer period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionDefaults {
    /// `retention.ms` of topics that do not set it (-1: unlimited).
    pub retention_ms: i64,
    /// `retention.bytes` of topics that do not set it (-1: unlimited).
    pub retention_bytes: i64,
    /// Period of the retention timer (ms, at least 1).
    pub check_interval_ms: Millis,
}

impl Default for RetentionDefaults {
    fn default() -> Self {
        Self {
            retention_ms: -1,
            retention_bytes: -1,
            check_interval_ms: RETENTION_CHECK_INTERVAL_MS,
        }
    }
}

/// The retention timer's state, kept by the engine.
#[derive(Debug, Clone, Default)]
pub(crate) struct RetentionTimer {
    pub(crate) defaults: RetentionDefaults,
    /// When the next pass runs; `None` while no topic needs one.
    pub(crate) due: Option<Millis>,
}

/// Default `delete.retention.ms`: a day.
pub const DEFAULT_DELETE_RETENTION_MS: i64 = 86_400_000;

/// Topic configs Kafka defines. Those this broker applies are checked by
/// [`validate_topic_config`]; the others are stored as given.
pub const TOPIC_CONFIG_KEYS: &[&str] = &[
    "cleanup.policy",
    "compression.gzip.level",
    "compression.lz4.level",
    "compression.type",
    "compression.zstd.level",
    "delete.retention.ms",
    "file.delete.delay.ms",
    "flush.messages",
    "flush.ms",
    "follower.replication.throttled.replicas",
    "index.interval.bytes",
    "leader.replication.throttled.replicas",
    "local.retention.bytes",
    "local.retention.ms",
    "max.compaction.lag.ms",
    "max.message.bytes",
    "message.downconversion.enable",
    "message.format.version",
    "message.timestamp.after.max.ms",
    "message.timestamp.before.max.ms",
    "message.timestamp.difference.max.ms",
    "message.timestamp.type",
    "min.cleanable.dirty.ratio",
    "min.compaction.lag.ms",
    "min.insync.replicas",
    "preallocate",
    "remote.log.copy.disable",
    "remote.log.delete.on.disable",
    "remote.storage.enable",
    "retention.bytes",
    "retention.ms",
    "segment.bytes",
    "segment.index.bytes",
    "segment.jitter.ms",
    "segment.ms",
    "unclean.leader.election.enable",
];

/// Checks one topic config as Kafka does for the configs this broker applies; unknown names
/// are refused. The error is the message of Kafka's INVALID_CONFIG.
pub fn validate_topic_config(name: &str, value: &str) -> Result<(), String> {
    let long_at_least = |min: i64| -> Result<(), String> {
        match value.trim().parse::<i64>() {
            Ok(v) if v >= min => Ok(()),
            Ok(_) => Err(format!(
                "Invalid value {value} for configuration {name}: Value must be at least {min}"
            )),
            Err(_) => Err(format!(
                "Invalid value {value} for configuration {name}: Not a number of type LONG"
            )),
        }
    };
    match name {
        "cleanup.policy" => {
            let items: Vec<&str> = value.split(',').map(str::trim).collect();
            let known = items.iter().all(|i| matches!(*i, "delete" | "compact"));
            let distinct = items.len() < 2 || items[0] != items[1];
            if known && distinct && items.len() <= 2 {
                Ok(())
            } else {
                Err(format!(
                    "Invalid value {value} for configuration cleanup.policy: String must be one \
                     of: delete, compact, compact,delete"
                ))
            }
        }
        "retention.ms" | "retention.bytes" => long_at_least(-1),
        "delete.retention.ms" => long_at_least(0),
        "segment.ms" => long_at_least(1),
        "segment.bytes" => {
            long_at_least(14)?;
            match value.trim().parse::<i32>() {
                Ok(_) => Ok(()),
                Err(_) => Err(format!(
                    "Invalid value {value} for configuration segment.bytes: Not a number of type \
                     INT"
                )),
            }
        }
        _ if TOPIC_CONFIG_KEYS.contains(&name) => Ok(()),
        _ => Err(format!("Unknown topic config name: {name}")),
    }
}

/// Checks every config of a topic; see [`validate_topic_config`].
pub fn validate_topic_configs(configs: &BTreeMap<String, String>) -> Result<(), String> {
    configs
        .iter()
        .try_for_each(|(k, v)| validate_topic_config(k, v))
}

/// The retention policy of a topic with `configs`, defaults filled in from `defaults`.
/// Values that do not parse count as unset.
pub fn policy_of(
    configs: &BTreeMap<String, String>,
    defaults: &RetentionDefaults,
) -> RetentionPolicy {
    let long = |k: &str| configs.get(k).and_then(|v| v.trim().parse::<i64>().ok());
    let cleanup = configs
        .get("cleanup.policy")
        .map_or("delete", String::as_str);
    let has = |p: &str| cleanup.split(',').any(|i| i.trim() == p);
    RetentionPolicy {
        delete: has("delete"),
        compact: has("compact"),
        retention_ms: long("retention.ms").unwrap_or(defaults.retention_ms),
        retention_bytes: long("retention.bytes").unwrap_or(defaults.retention_bytes),
        delete_retention_ms: long("delete.retention.ms").unwrap_or(DEFAULT_DELETE_RETENTION_MS),
    }
}

/// Whether a pass can change anything under `policy`.
fn has_work(policy: &RetentionPolicy) -> bool {
    policy.compact || (policy.delete && (policy.retention_ms >= 0 || policy.retention_bytes >= 0))
}

impl Engine {
    /// Sets the broker-wide retention defaults and the timer period.
    pub fn set_retention_defaults(&mut self, defaults: RetentionDefaults) {
        self.retention.defaults = RetentionDefaults {
            check_interval_ms: defaults.check_interval_ms.max(1),
            ..defaults
        };
        self.retention.due = None;
        self.rearm_retention();
    }

    /// The broker-wide retention defaults.
    pub fn retention_defaults(&self) -> RetentionDefaults {
        self.retention.defaults
    }

    /// The retention policy of a topic, or `None` for an unknown topic.
    pub fn retention_policy(&self, topic: &str) -> Option<RetentionPolicy> {
        let info = self.topics.get(topic)?;
        Some(policy_of(&info.configs, &self.retention.defaults))
    }

    /// Arms the timer when a topic needs retention (keeping a pending deadline), disarms it
    /// otherwise. Called when topics or their configs change.
    pub(crate) fn rearm_retention(&mut self) {
        let defaults = self.retention.defaults;
        let needed = self
            .topics
            .values()
            .any(|t| has_work(&policy_of(&t.configs, &defaults)));
        self.retention.due = if needed {
            let now = self.broker.clock.0;
            Some(
                self.retention
                    .due
                    .unwrap_or(now + defaults.check_interval_ms),
            )
        } else {
            None
        };
    }

    /// The retention timer's deadline, if armed.
    pub(crate) fn retention_deadline(&self) -> Option<Millis> {
        self.retention.due
    }

    /// Runs the retention pass when its deadline has passed and re-arms the timer. Storage
    /// errors are left for the next pass.
    pub(crate) fn retention_timeout(&mut self, now: Millis) {
        let Some(due) = self.retention.due else {
            return;
        };
        if due > now {
            return;
        }
        self.retention.due = Some(now + self.retention.defaults.check_interval_ms);
        if self.broker.clock.1 <= 0 {
            // No wall clock seen yet: nothing can be judged old.
            return;
        }
        let wall = self.broker.observe(now, None);
        let _ = self.apply_retention(wall);
    }

    /// Applies every topic's retention policy at wall-clock time `wall` (ms since the epoch)
    /// and moves log start offsets forward as the storage reports.
    pub fn apply_retention(&mut self, wall: WallMillis) -> Result<(), EngineError> {
        let defaults = self.retention.defaults;
        let work: Vec<(TopicPartition, RetentionPolicy)> = self
            .topics
            .values()
            .map(|t| (t, policy_of(&t.configs, &defaults)))
            .filter(|(_, p)| has_work(p))
            .flat_map(|(t, p)| {
                (0..t.partitions).map(move |partition| {
                    let tp = TopicPartition {
                        topic: t.name.clone(),
                        partition,
                    };
                    (tp, p)
                })
            })
            .collect();
        for (tp, policy) in work {
            if let Some(start) = self.storage.apply_retention(&tp, &policy, wall)? {
                self.retention_applied(&tp, start);
            }
        }
        Ok(())
    }

    /// Moves a partition's log start offset forward to `start`, the first offset the storage
    /// still holds after applying retention (for backends that report it later than
    /// [`crate::Storage::apply_retention`] returns).
    pub fn retention_applied(&mut self, tp: &TopicPartition, start: i64) {
        if let Some(part) = self.partitions.get_mut(tp) {
            part.log_start_offset = part.log_start_offset.max(start.min(part.next_offset));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn configs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn validation() {
        for (k, v) in [
            ("cleanup.policy", "delete"),
            ("cleanup.policy", "compact"),
            ("cleanup.policy", "compact,delete"),
            ("cleanup.policy", "delete,compact"),
            ("retention.ms", "-1"),
            ("retention.ms", "1000"),
            ("retention.bytes", "-1"),
            ("segment.bytes", "1024"),
            ("segment.ms", "1"),
            ("delete.retention.ms", "0"),
            ("min.insync.replicas", "1"),
        ] {
            assert_eq!(validate_topic_config(k, v), Ok(()), "{k}={v}");
        }
        for (k, v) in [
            ("cleanup.policy", "remove"),
            ("cleanup.policy", "compact,compact"),
            ("cleanup.policy", ""),
            ("retention.ms", "-2"),
            ("retention.ms", "soon"),
            ("retention.bytes", "-5"),
            ("segment.bytes", "13"),
            ("segment.bytes", "4294967296"),
            ("segment.ms", "0"),
            ("delete.retention.ms", "-1"),
            ("no.such.config", "1"),
        ] {
            let e = validate_topic_config(k, v).unwrap_err();
            assert!(e.contains(k), "{k}={v}: {e}");
        }
    }

    #[test]
    fn policies() {
        let d = RetentionDefaults::default();
        let p = policy_of(&configs(&[]), &d);
        assert_eq!(p, RetentionPolicy::default());
        assert!(!has_work(&p));
        let p = policy_of(
            &configs(&[("cleanup.policy", "compact,delete"), ("retention.ms", "10")]),
            &d,
        );
        assert!(p.compact && p.delete && p.retention_ms == 10 && has_work(&p));
        let d = RetentionDefaults {
            retention_bytes: 100,
            ..d
        };
        let p = policy_of(&configs(&[("cleanup.policy", "compact")]), &d);
        assert!(p.compact && !p.delete && p.retention_bytes == 100);
        assert!(has_work(&policy_of(&configs(&[]), &d)));
    }
}
