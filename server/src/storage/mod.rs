//! Storage drivers behind the engine's [`portask_engine::storage::Storage`] trait.
//!
//! [`disk`] is the embedded default: a segmented append-only log on local disk; [`redis`]
//! keeps everything on a Redis-protocol server. Both compact topics with [`compaction`].

mod compaction;
pub mod disk;
pub mod offload;
pub mod redis;

pub use disk::{DiskOptions, DiskStorage};
