//! Portask's deterministic broker core.
//!
//! The engine never reads a clock, never spawns a thread and never touches a socket: time is
//! passed in, storage is a trait object the caller provides.
//!
//! - Topics and partitions: [`Engine::create_topic`], [`Engine::produce`], [`Engine::fetch`].
//!   A produce is stored as one batch in the format of [`batch`]; the engine keeps only offsets
//!   and idempotent-producer state in memory and reads data back through [`Storage`].
//! - Consumer groups follow Kafka's classic coordinator. Joins and syncs may complete later:
//!   their answers are taken with [`Engine::poll_output`]. Deadlines (sessions, rebalances) are
//!   reported by [`Engine::poll_timeout`] and processed by [`Engine::handle_timeout`].
//! - The queue model (RabbitMQ's): vhosts with exchanges, bindings and queues;
//!   [`Engine::publish`] routes, consumers get [`Output::Deliver`] as their credit allows,
//!   acknowledgements, dead-lettering, TTLs and length limits follow RabbitMQ, and error texts
//!   are RabbitMQ's ([`BrokerError`]). Durable definitions and persistent messages go through
//!   [`Storage`] and come back at [`Engine::open`].
//! - Randomness (member ids, topic ids, generated queue names and consumer tags) comes from [`rng::Rng`] seeded by
//!   [`EngineConfig::seed`], so the same calls give the same results.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod batch;
mod broker_ops;
mod broker_recovery;
mod channel_ops;
pub mod compression;
pub mod config;
pub mod crossing;
pub mod data;
pub mod deliver;
pub mod engine;
pub mod error;
pub mod exchange;
pub mod group;
pub mod listing;
pub mod mem_storage;
pub mod message;
mod paging;
pub mod partition;
pub mod producer;
pub mod queue;
mod queue_ops;
pub mod record;
pub mod retention;
pub mod rng;
pub mod storage;
mod stream;
pub mod topic_ops;
pub mod topics;
pub mod value;
mod vhost;

#[cfg(test)]
mod broker_tests;
#[cfg(test)]
mod crossing_tests;
#[cfg(test)]
mod data_tests;

/// Monotonic milliseconds; drives deadlines.
pub type Millis = u64;
/// Milliseconds since the Unix epoch; stamps records and commits.
pub type WallMillis = i64;

pub use batch::{BatchFormatError, CompressionMode, StoredCompression};
pub use compression::adaptive::{CompressionDecision, LoadSample};
pub use compression::policy::{
    AdaptiveConfig, Algorithm, CompressionPolicy, CompressionSettings, DictionaryConfig,
};
pub use compression::{CompressionStats, DictionaryEvent};
pub use config::EngineConfig;
pub use data::{
    AppendOutcome, EARLIEST_TIMESTAMP, FetchOutcome, FetchedBatch, LATEST_TIMESTAMP, ProduceBatch,
};
pub use engine::Engine;
pub use error::{BrokerError, EngineError};
pub use exchange::{Binding, Destination, Exchange, ExchangeKind};
pub use group::offsets::{CommitResults, OffsetToCommit};
pub use group::types::{
    GroupDescription, GroupListing, GroupState, JoinGroup, JoinResult, JoinedMember,
    MemberDescription, Output, SyncGroup, SyncResult, Waiter,
};
pub use listing::{BindingListing, ExchangeListing, QueueListing};
pub use mem_storage::MemStorage;
pub use message::{
    ConnId, Consume, ExchangeDeclare, GetOk, Message, MessageProps, Publish, PublishOutcome,
    QueueDeclare, QueueDeclareOk,
};
pub use partition::PartitionOffsets;
pub use record::{Record, RecordHeader};
pub use storage::*;
pub use topics::TopicInfo;
pub use ulid::Ulid;
pub use value::{Table, Value};
