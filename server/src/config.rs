//! Configuration: `configs/portask.toml` defaults, a user file on top, then `PORTASK_*`
//! environment variables, then command-line flags. Validated at start; errors name the key.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;
use toml::{Table, Value};

pub mod compression;
pub use compression::CompressionSection;

/// The defaults, compiled in so that the binary runs without the repository.
const DEFAULTS: &str = include_str!("../../configs/portask.toml");
/// Largest `storage.fsync_interval_ms`: a minute of acknowledged data at risk.
const FSYNC_INTERVAL_MS_MAX: u64 = 60_000;

/// A configuration that cannot be used, with the key at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not valid TOML, or a value has the wrong type.
    #[error("invalid config{origin}: {message}")]
    Invalid {
        /// Where the bad value came from (file or variable), with a leading space.
        origin: String,
        /// What is wrong.
        message: String,
    },
    /// A key that the configuration does not have.
    #[error("unknown config key `{key}`{origin}")]
    UnknownKey {
        /// The dotted key.
        key: String,
        /// Where it came from, with a leading space.
        origin: String,
    },
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Directory of the embedded log.
    pub data_dir: PathBuf,
    /// Kafka listener and behaviour.
    pub kafka: KafkaConfig,
    /// AMQP listener, users and limits.
    pub amqp: AmqpConfig,
    /// Portask protocol listener.
    pub portask: ListenerConfig,
    /// Admin HTTP listener.
    pub admin: ListenerConfig,
    /// Storage backend.
    pub storage: StorageConfig,
    /// Consumer group coordinator.
    pub groups: GroupsConfig,
    /// Compression of stored batches (`[compression]`).
    #[serde(default)]
    pub compression: CompressionSection,
    /// Things worth telling the operator that do not stop the start (unknown `PORTASK_*`
    /// variables, which may belong to other tools).
    #[serde(skip)]
    pub warnings: Vec<String>,
}

/// `[kafka]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// Listener address.
    pub listen: SocketAddr,
    /// Host given to clients in Metadata; empty means the listener's.
    pub advertised_host: String,
    /// Port given to clients in Metadata; 0 means the listener's.
    pub advertised_port: u16,
    /// Create unknown topics on produce and metadata requests.
    pub auto_create_topics: bool,
    /// Partitions of auto-created topics.
    pub default_partitions: i32,
    /// Largest request frame.
    pub max_frame_bytes: usize,
    /// Largest decompressed record batch.
    pub max_decompressed_batch_bytes: usize,
}

/// `[amqp]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmqpConfig {
    /// Listener address.
    pub listen: SocketAddr,
    /// Largest frame offered in connection.tune.
    pub frame_max: u32,
    /// Most channels per connection offered in connection.tune.
    pub channel_max: u16,
    /// Heartbeat interval offered, in seconds.
    pub heartbeat_s: u16,
    /// Queued body bytes above which publishers are blocked.
    pub memory_high_watermark_bytes: u64,
    /// Virtual hosts created at start.
    pub vhosts: Vec<String>,
    /// Users and their permissions.
    pub users: Vec<UserConfig>,
}

/// `[[amqp.users]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// User name.
    pub name: String,
    /// Password, compared as given.
    pub password: String,
    /// Accept this user only from loopback addresses.
    #[serde(default)]
    pub loopback_only: bool,
    /// Permissions by virtual host.
    #[serde(default)]
    pub permissions: std::collections::BTreeMap<String, PermissionConfig>,
}

/// Regular expressions over resource names, as RabbitMQ's permissions.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PermissionConfig {
    /// Resources the user may declare and delete.
    pub configure: String,
    /// Resources the user may publish to.
    pub write: String,
    /// Resources the user may consume from.
    pub read: String,
}

/// A section that only holds a listener address.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    /// Listener address.
    pub listen: SocketAddr,
}

/// `[storage]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// Which backend stores the data.
    pub backend: Backend,
    /// Server of the Redis backend: `redis://[user:password@]host:port/db`.
    pub redis_url: String,
    /// Prefix of every key the Redis backend writes.
    pub redis_namespace: String,
    /// Segment size of the embedded log.
    pub segment_bytes: u64,
    /// Age at which an active segment is closed (ms; -1: never). Topics' `segment.ms` wins.
    pub segment_ms: i64,
    /// `retention.ms` of topics that do not set it (-1: keep forever).
    pub retention_ms: i64,
    /// `retention.bytes` of topics that do not set it (-1: no limit).
    pub retention_bytes: i64,
    /// How often retention and compaction run (ms).
    pub retention_check_interval_ms: u64,
    /// Compression of stored batches.
    pub compression: CompressionName,
    /// zstd level.
    pub compression_level: i32,
    /// When stored data is fsynced relative to the acknowledgements that cover it.
    pub fsync: FsyncPolicy,
    /// Interval of the periodic fsync when `fsync = "interval_ms"`.
    pub fsync_interval_ms: u64,
}

/// `storage.fsync`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FsyncPolicy {
    /// Durable acknowledgements leave only after an fsync covering their data; the requests
    /// of one event-loop turn share that fsync (group commit).
    Always,
    /// Acknowledgements leave at once; an fsync runs every `fsync_interval_ms` while
    /// anything is unsynced.
    IntervalMs,
    /// No periodic fsync: only at segment roll and at shutdown.
    Never,
}

/// `storage.backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// The embedded segmented log.
    Disk,
    /// In memory only.
    Memory,
    /// A Redis-protocol server at `storage.redis_url` (Redis, Valkey or Dragonfly).
    Redis,
}

/// `storage.compression`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CompressionName {
    /// Stored as is.
    None,
    /// zstd at `compression_level`.
    Zstd,
    /// lz4 frames.
    Lz4,
    /// snappy.
    Snappy,
}

/// `[groups]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupsConfig {
    /// group.initial.rebalance.delay.ms.
    pub initial_rebalance_delay_ms: u64,
    /// Smallest session timeout accepted.
    pub min_session_timeout_ms: u64,
    /// Largest session timeout accepted.
    pub max_session_timeout_ms: u64,
}

/// Overrides from the command line, applied last.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--kafka-addr`.
    pub kafka_addr: Option<String>,
    /// `--amqp-addr`.
    pub amqp_addr: Option<String>,
    /// `--portask-addr`.
    pub portask_addr: Option<String>,
    /// `--admin-addr`.
    pub admin_addr: Option<String>,
}

impl Config {
    /// Builds the configuration from the defaults, an optional file, `env` (pairs of
    /// variable name and value, usually `std::env::vars()`) and the command-line overrides.
    pub fn load(
        file: Option<&std::path::Path>,
        env: impl IntoIterator<Item = (String, String)>,
        flags: &Overrides,
    ) -> Result<Self, ConfigError> {
        let mut table = parse(DEFAULTS, "")?;
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_owned(),
                source,
            })?;
            let origin = format!(" in {}", path.display());
            merge(&mut table, parse(&text, &origin)?, "", &origin)?;
        }
        let mut warnings = Vec::new();
        for (name, value) in env {
            if let Some(rest) = name.strip_prefix("PORTASK_") {
                match apply_env(&mut table, rest, &value, &name) {
                    Err(ConfigError::UnknownKey { key, .. }) => warnings.push(format!(
                        "ignoring environment variable {key}: it names no config key"
                    )),
                    other => other?,
                }
            }
        }
        apply_flags(&mut table, flags);
        check_fsync_policy(&table)?;
        let mut config: Self = Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Invalid {
                origin: String::new(),
                message: e.to_string(),
            })?;
        config.validate()?;
        config.warnings = warnings;
        Ok(config)
    }

    /// The engine's compression policy (`[compression]`, with the deprecated
    /// `storage.compression` as the default algorithm when the section names none).
    pub fn compression_policy(&self) -> Result<portask_engine::CompressionPolicy, ConfigError> {
        let legacy = match self.storage.compression {
            CompressionName::None => portask_engine::StoredCompression::None,
            CompressionName::Zstd => portask_engine::StoredCompression::Zstd {
                level: self.storage.compression_level,
            },
            CompressionName::Lz4 => portask_engine::StoredCompression::Lz4,
            CompressionName::Snappy => portask_engine::StoredCompression::Snappy,
        };
        self.compression.policy(legacy)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.compression_policy()?;
        let bad = |key: &str, why: &str| ConfigError::Invalid {
            origin: String::new(),
            message: format!("`{key}` {why}"),
        };
        if !(1..=10_000).contains(&self.kafka.default_partitions) {
            return Err(bad(
                "kafka.default_partitions",
                "must be between 1 and 10000",
            ));
        }
        if self.kafka.max_frame_bytes < 1024 || self.kafka.max_frame_bytes > 1 << 30 {
            return Err(bad(
                "kafka.max_frame_bytes",
                "must be between 1024 and 1073741824",
            ));
        }
        if self.storage.segment_ms < -1 || self.storage.segment_ms == 0 {
            return Err(bad(
                "storage.segment_ms",
                "must be -1 (never) or a positive number of ms",
            ));
        }
        if self.storage.retention_ms < -1 || self.storage.retention_bytes < -1 {
            return Err(bad(
                "storage.retention_ms",
                "and retention_bytes must be -1 or more",
            ));
        }
        if self.storage.retention_check_interval_ms == 0 {
            return Err(bad(
                "storage.retention_check_interval_ms",
                "must be at least 1",
            ));
        }
        if self.storage.segment_bytes < 4096 {
            return Err(bad("storage.segment_bytes", "must be at least 4096"));
        }
        if self.groups.min_session_timeout_ms > self.groups.max_session_timeout_ms {
            return Err(bad(
                "groups.min_session_timeout_ms",
                "must not exceed max_session_timeout_ms",
            ));
        }
        if self.amqp.frame_max < 4096 {
            return Err(bad("amqp.frame_max", "must be at least 4096"));
        }
        for user in &self.amqp.users {
            for vhost in user.permissions.keys() {
                if !self.amqp.vhosts.contains(vhost) {
                    return Err(bad(
                        "amqp.users.permissions",
                        &format!(
                            "names vhost '{vhost}' of user '{}', which is not in amqp.vhosts",
                            user.name
                        ),
                    ));
                }
            }
        }
        if !(1..=FSYNC_INTERVAL_MS_MAX).contains(&self.storage.fsync_interval_ms) {
            return Err(bad(
                "storage.fsync_interval_ms",
                &format!("must be between 1 and {FSYNC_INTERVAL_MS_MAX}"),
            ));
        }
        if self.storage.backend == Backend::Redis {
            use redis::IntoConnectionInfo;
            if let Err(e) = self.storage.redis_url.as_str().into_connection_info() {
                return Err(bad(
                    "storage.redis_url",
                    &format!("is not a redis:// URL ({e})"),
                ));
            }
            let ns = &self.storage.redis_namespace;
            if ns.is_empty() || ns.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(bad(
                    "storage.redis_namespace",
                    "must be non-empty, without spaces or control characters",
                ));
            }
        }
        if !(1..=22).contains(&self.storage.compression_level) {
            return Err(bad("storage.compression_level", "must be between 1 and 22"));
        }
        Ok(())
    }

    /// The host and port clients are told to connect to for Kafka.
    pub fn kafka_advertised(&self) -> (String, i32) {
        let host = if self.kafka.advertised_host.is_empty() {
            self.kafka.listen.ip().to_string()
        } else {
            self.kafka.advertised_host.clone()
        };
        let port = match self.kafka.advertised_port {
            0 => self.kafka.listen.port(),
            p => p,
        };
        (host, i32::from(port))
    }
}

/// Checks `storage.fsync` before deserializing, so that a bad value is reported with its key
/// and the accepted values.
fn check_fsync_policy(table: &Table) -> Result<(), ConfigError> {
    const ACCEPTED: [&str; 3] = ["always", "interval_ms", "never"];
    let value = table.get("storage").and_then(|s| s.get("fsync"));
    match value {
        Some(Value::String(s)) if ACCEPTED.contains(&s.as_str()) => Ok(()),
        None => Ok(()),
        Some(other) => Err(ConfigError::Invalid {
            origin: String::new(),
            message: format!(
                "`storage.fsync` must be \"always\", \"interval_ms\" or \"never\", got {other}"
            ),
        }),
    }
}

fn parse(text: &str, origin: &str) -> Result<Table, ConfigError> {
    text.parse::<Table>().map_err(|e| ConfigError::Invalid {
        origin: origin.to_owned(),
        message: e.to_string(),
    })
}

/// Merges `over` into `base`; every key of `over` must exist in `base` (the defaults).
fn merge(base: &mut Table, over: Table, prefix: &str, origin: &str) -> Result<(), ConfigError> {
    for (key, value) in over {
        let path = format!("{prefix}{key}");
        match (base.get_mut(&key), value) {
            (Some(Value::Table(b)), Value::Table(o)) => merge(b, o, &format!("{path}."), origin)?,
            (Some(slot), value) => *slot = value,
            // Per-topic and per-queue compression tables are named by the operator.
            (None, value) if prefix == "compression.topics." || prefix == "compression.queues." => {
                base.insert(key, value);
            }
            (None, _) => {
                return Err(ConfigError::UnknownKey {
                    key: path,
                    origin: origin.into(),
                });
            }
        }
    }
    Ok(())
}

/// Applies `PORTASK_<SECTION>_<KEY>=value` (or `PORTASK_<KEY>` for top-level keys), typed
/// like the default value it replaces.
fn apply_env(table: &mut Table, rest: &str, value: &str, var: &str) -> Result<(), ConfigError> {
    let lower = rest.to_ascii_lowercase();
    let origin = format!(" from environment variable {var}");
    let slot = if let Some(slot) = table.get_mut(&lower).filter(|v| !v.is_table()) {
        slot
    } else {
        let found = table.iter_mut().find_map(|(section, v)| {
            let key = lower.strip_prefix(section.as_str())?.strip_prefix('_')?;
            v.as_table_mut()?.get_mut(key)
        });
        found.ok_or_else(|| ConfigError::UnknownKey {
            key: var.to_owned(),
            origin: origin.clone(),
        })?
    };
    let invalid = |what: &str| ConfigError::Invalid {
        origin: origin.clone(),
        message: format!("expected {what}, got `{value}`"),
    };
    *slot = match slot {
        Value::Integer(_) => Value::Integer(value.parse().map_err(|_| invalid("an integer"))?),
        Value::Boolean(_) => Value::Boolean(value.parse().map_err(|_| invalid("true or false"))?),
        _ => Value::String(value.to_owned()),
    };
    Ok(())
}

fn apply_flags(table: &mut Table, flags: &Overrides) {
    if let Some(dir) = &flags.data_dir {
        table.insert("data_dir".into(), Value::String(dir.display().to_string()));
    }
    let listeners = [
        ("kafka", &flags.kafka_addr),
        ("amqp", &flags.amqp_addr),
        ("portask", &flags.portask_addr),
        ("admin", &flags.admin_addr),
    ];
    for (section, addr) in listeners {
        if let (Some(addr), Some(Value::Table(t))) = (addr, table.get_mut(section)) {
            t.insert("listen".into(), Value::String(addr.clone()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults_load() {
        let c = Config::load(None, [], &Overrides::default()).unwrap();
        assert_eq!(c.kafka.listen.to_string(), "127.0.0.1:9092");
        assert_eq!(c.kafka_advertised(), ("127.0.0.1".to_owned(), 9092));
        assert_eq!(c.storage.backend, Backend::Disk);
    }

    #[test]
    fn env_and_flags_override() {
        let flags = Overrides {
            kafka_addr: Some("127.0.0.1:19092".into()),
            ..Default::default()
        };
        let vars = env(&[
            ("PORTASK_KAFKA_DEFAULT_PARTITIONS", "4"),
            ("PORTASK_DATA_DIR", "/tmp/x"),
            ("PORTASK_STORAGE_BACKEND", "memory"),
            ("HOME", "/root"),
        ]);
        let c = Config::load(None, vars, &flags).unwrap();
        assert_eq!(c.kafka.default_partitions, 4);
        assert_eq!(c.kafka.listen.port(), 19092);
        assert_eq!(c.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(c.storage.backend, Backend::Memory);
    }

    #[test]
    fn errors_name_the_key() {
        let c = Config::load(
            None,
            env(&[("PORTASK_KAFKA_NOPE", "1")]),
            &Overrides::default(),
        );
        assert!(c.unwrap().warnings[0].contains("PORTASK_KAFKA_NOPE"));
        let e = Config::load(
            None,
            env(&[("PORTASK_KAFKA_DEFAULT_PARTITIONS", "x")]),
            &Overrides::default(),
        );
        assert!(e.unwrap_err().to_string().contains("expected an integer"));
        let e = Config::load(
            None,
            env(&[("PORTASK_KAFKA_DEFAULT_PARTITIONS", "0")]),
            &Overrides::default(),
        );
        assert!(
            e.unwrap_err()
                .to_string()
                .contains("kafka.default_partitions")
        );
        let flags = Overrides {
            admin_addr: Some("nonsense".into()),
            ..Default::default()
        };
        assert!(Config::load(None, [], &flags).is_err());
        let e = Config::load(
            None,
            env(&[("PORTASK_STORAGE_BACKEND", "tape")]),
            &Overrides::default(),
        );
        assert!(e.unwrap_err().to_string().contains("tape"));
    }

    #[test]
    fn fsync_policy_keys() {
        let c = Config::load(None, [], &Overrides::default()).unwrap();
        assert_eq!(c.storage.fsync, FsyncPolicy::Always);
        assert_eq!(c.storage.fsync_interval_ms, 100);
        let vars = env(&[
            ("PORTASK_STORAGE_FSYNC", "interval_ms"),
            ("PORTASK_STORAGE_FSYNC_INTERVAL_MS", "250"),
        ]);
        let c = Config::load(None, vars, &Overrides::default()).unwrap();
        assert_eq!(c.storage.fsync, FsyncPolicy::IntervalMs);
        assert_eq!(c.storage.fsync_interval_ms, 250);
        let c = Config::load(
            None,
            env(&[("PORTASK_STORAGE_FSYNC", "never")]),
            &Overrides::default(),
        );
        assert_eq!(c.unwrap().storage.fsync, FsyncPolicy::Never);
        let e = Config::load(
            None,
            env(&[("PORTASK_STORAGE_FSYNC", "sometimes")]),
            &Overrides::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("storage.fsync") && e.contains("sometimes"),
            "{e}"
        );
        for bad in ["0", "60001"] {
            let e = Config::load(
                None,
                env(&[("PORTASK_STORAGE_FSYNC_INTERVAL_MS", bad)]),
                &Overrides::default(),
            )
            .unwrap_err()
            .to_string();
            assert!(e.contains("storage.fsync_interval_ms"), "{e}");
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        std::fs::write(&path, "[storage]\nfsync = true\n").unwrap();
        let e = Config::load(Some(&path), [], &Overrides::default()).unwrap_err();
        assert!(e.to_string().contains("storage.fsync"), "{e}");
        std::fs::write(&path, "[storage]\nsync_on_append = true\n").unwrap();
        let e = Config::load(Some(&path), [], &Overrides::default()).unwrap_err();
        assert!(e.to_string().contains("storage.sync_on_append"), "{e}");
    }

    #[test]
    fn redis_backend_keys() {
        let vars = env(&[
            ("PORTASK_STORAGE_BACKEND", "redis"),
            ("PORTASK_STORAGE_REDIS_URL", "redis://127.0.0.1:6390/2"),
            ("PORTASK_STORAGE_REDIS_NAMESPACE", "it-1"),
        ]);
        let c = Config::load(None, vars, &Overrides::default()).unwrap();
        assert_eq!(c.storage.backend, Backend::Redis);
        assert_eq!(c.storage.redis_url, "redis://127.0.0.1:6390/2");
        assert_eq!(c.storage.redis_namespace, "it-1");
        let bad_url = env(&[
            ("PORTASK_STORAGE_BACKEND", "redis"),
            ("PORTASK_STORAGE_REDIS_URL", "http://x"),
        ]);
        let e = Config::load(None, bad_url, &Overrides::default()).unwrap_err();
        assert!(e.to_string().contains("storage.redis_url"), "{e}");
        let bad_ns = env(&[
            ("PORTASK_STORAGE_BACKEND", "redis"),
            ("PORTASK_STORAGE_REDIS_NAMESPACE", ""),
        ]);
        let e = Config::load(None, bad_ns, &Overrides::default()).unwrap_err();
        assert!(e.to_string().contains("storage.redis_namespace"), "{e}");
    }

    #[test]
    fn file_keys_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        std::fs::write(&path, "[kafka]\ndefault_partitions = 3\n").unwrap();
        let c = Config::load(Some(&path), [], &Overrides::default()).unwrap();
        assert_eq!(c.kafka.default_partitions, 3);
        std::fs::write(&path, "[kafka]\nlisten_port = 3\n").unwrap();
        let e = Config::load(Some(&path), [], &Overrides::default()).unwrap_err();
        assert!(e.to_string().contains("kafka.listen_port"), "{e}");
    }
}
