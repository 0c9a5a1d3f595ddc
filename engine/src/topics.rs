//! Topic metadata and naming rules.

use std::collections::BTreeMap;

use crate::error::EngineError;
use crate::storage::TopicMeta;

/// Largest partition count the engine accepts for one topic.
pub const MAX_PARTITIONS: i32 = 100_000;

/// A topic as the engine knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    /// Topic name.
    pub name: String,
    /// Topic id (a random version-4 UUID).
    pub id: [u8; 16],
    /// Number of partitions.
    pub partitions: i32,
    /// Topic-level configs, as given at creation.
    pub configs: BTreeMap<String, String>,
}

impl TopicInfo {
    /// The storage form of this topic.
    pub fn meta(&self) -> TopicMeta {
        TopicMeta {
            name: self.name.clone(),
            id: self.id,
            partitions: self.partitions,
            configs: self.configs.clone(),
        }
    }
}

impl From<TopicMeta> for TopicInfo {
    fn from(m: TopicMeta) -> Self {
        Self {
            name: m.name,
            id: m.id,
            partitions: m.partitions,
            configs: m.configs,
        }
    }
}

/// Checks Kafka's topic name rules: 1 to 249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), EngineError> {
    if name.is_empty() {
        return Err(EngineError::InvalidTopic("topic name is empty"));
    }
    if name == "." || name == ".." {
        return Err(EngineError::InvalidTopic(
            "topic name cannot be '.' or '..'",
        ));
    }
    if name.len() > 249 {
        return Err(EngineError::InvalidTopic(
            "topic name is longer than 249 characters",
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(EngineError::InvalidTopic(
            "topic name has characters outside [a-zA-Z0-9._-]",
        ));
    }
    Ok(())
}

/// Checks a partition count for a new topic or a new total.
pub fn validate_partitions(count: i32) -> Result<(), EngineError> {
    if count <= 0 {
        return Err(EngineError::InvalidPartitions(
            "partition count must be positive",
        ));
    }
    if count > MAX_PARTITIONS {
        return Err(EngineError::InvalidPartitions(
            "partition count is too large",
        ));
    }
    Ok(())
}

/// Turns 16 random bytes into a version-4 UUID (never all zeros).
pub fn uuid_v4(mut bytes: [u8; 16]) -> [u8; 16] {
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate_topic_name("a.b_c-D9").is_ok());
        for bad in ["", ".", "..", "a b", "é", &"x".repeat(250)] {
            assert!(validate_topic_name(bad).is_err(), "{bad}");
        }
        assert!(validate_topic_name(&"x".repeat(249)).is_ok());
    }
}
