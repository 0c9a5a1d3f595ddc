//! Engine configuration.

use crate::compression::policy::CompressionPolicy;

/// How the engine behaves; the server fills it from its config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// Create unknown topics on produce or metadata requests (default true).
    pub auto_create_topics: bool,
    /// Partitions of a topic created without a count (default 1).
    pub default_partitions: i32,
    /// Compression of stored batches: algorithm, mode and limits by topic, adaptive
    /// controller, dictionaries (default: no compression, bulk mode). A
    /// [`crate::StoredCompression`] converts into a policy with `.into()`.
    pub compression: CompressionPolicy,
    /// How long a group that was empty waits for more members before its first rebalance
    /// completes (default 0).
    pub group_initial_rebalance_delay_ms: u64,
    /// Smallest session timeout a member may ask for (default 6000).
    pub group_min_session_timeout_ms: u64,
    /// Largest session timeout a member may ask for (default 1_800_000).
    pub group_max_session_timeout_ms: u64,
    /// Seed of the engine's random numbers (member ids, topic ids).
    pub seed: u64,
    /// Ready messages a durable queue keeps in memory (default 2048). Messages beyond its
    /// window stay only in the queue's store and are read back in chunks once the window is
    /// down to half of both limits; see docs/ARCHITECTURE.md ("Queue paging").
    pub queue_window_messages: usize,
    /// Body bytes of ready messages a durable queue keeps in memory (default 4 MiB); the
    /// window ends at whichever of the two limits comes first.
    pub queue_window_bytes: u64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            auto_create_topics: true,
            default_partitions: 1,
            compression: CompressionPolicy::default(),
            group_initial_rebalance_delay_ms: 0,
            group_min_session_timeout_ms: 6_000,
            group_max_session_timeout_ms: 1_800_000,
            seed: 0,
            queue_window_messages: 2048,
            queue_window_bytes: 4 << 20,
        }
    }
}
