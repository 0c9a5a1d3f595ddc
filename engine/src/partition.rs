//! In-memory state of one partition: offsets and producer state. The data is in storage.

use crate::producer::Producers;
use crate::storage::{PartitionState, StorageError};

/// Offsets of one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionOffsets {
    /// First offset still stored.
    pub log_start_offset: i64,
    /// Offset the next record gets.
    pub high_watermark: i64,
    /// Equal to the high watermark (no transactions).
    pub last_stable_offset: i64,
}

/// One partition's in-memory state.
#[derive(Debug, Clone, Default)]
pub struct Partition {
    /// First offset still stored.
    pub log_start_offset: i64,
    /// Offset the next appended record gets.
    pub next_offset: i64,
    /// Idempotent producers seen in this partition.
    pub producers: Producers,
}

impl Partition {
    /// Rebuilds a partition from what storage recovered.
    pub fn recovered(state: &PartitionState) -> Result<Self, StorageError> {
        if state.log_start_offset < 0 || state.log_start_offset > state.next_offset {
            return Err(StorageError::Corrupt(format!(
                "recovered partition offsets out of order: {} > {}",
                state.log_start_offset, state.next_offset
            )));
        }
        Ok(Self {
            log_start_offset: state.log_start_offset,
            next_offset: state.next_offset,
            producers: Producers::from_snapshots(&state.producers),
        })
    }

    /// The partition's offsets.
    pub fn offsets(&self) -> PartitionOffsets {
        PartitionOffsets {
            log_start_offset: self.log_start_offset,
            high_watermark: self.next_offset,
            last_stable_offset: self.next_offset,
        }
    }
}
