//! Kafka record batches (message format v2, magic 2) and their compression.
//!
//! The `records` field of Produce requests and Fetch responses holds one or more
//! concatenated record batches. [`RecordBatch::decode_all`] decodes them fully (CRC check,
//! decompression within [`DecodeLimits`], every record); [`batches`] walks the batch headers
//! only, without decompressing, for code that passes batches through unchanged.
//! [`RecordBatch::encode`] writes one batch, computing its length and CRC.
//!
//! Layout of a batch (all integers big-endian):
//!
//! ```text
//! baseOffset i64 | batchLength i32 | partitionLeaderEpoch i32 | magic i8 = 2 | crc u32
//! attributes i16 | lastOffsetDelta i32 | baseTimestamp i64 | maxTimestamp i64
//! producerId i64 | producerEpoch i16 | baseSequence i32 | recordCount i32 | records...
//! ```
//!
//! `batchLength` counts the bytes after itself; the CRC-32C covers everything from
//! `attributes` to the end. Each record is a zig-zag varint length followed by
//! `attributes i8, timestampDelta varlong, offsetDelta varint, key, value, headers`, where key,
//! value and header values are a varint length (`-1` for null) and bytes, and header keys
//! are UTF-8 strings.
//!
//! Message formats v0 and v1 (magic 0 and 1) are not supported: Kafka 4.0 removed the
//! Produce and Fetch versions that use them. They are detected and rejected with
//! [`DecodeError::Invalid`](crate::DecodeError::Invalid).

mod batch;
mod compression;

pub use batch::{
    BatchView, Batches, ControlRecordKind, DecodeLimits, Record, RecordBatch, RecordHeader,
    batches, set_base_offset, set_partition_leader_epoch,
};
pub use compression::{Compression, XERIAL_MAGIC, compress, decompress};

/// Attribute bit 3: timestamps are the broker's log append time rather than the producer's.
pub const TIMESTAMP_TYPE_BIT: i16 = 0x08;
/// Attribute bit 4: the batch is part of a transaction.
pub const TRANSACTIONAL_BIT: i16 = 0x10;
/// Attribute bit 5: the batch holds control records (transaction markers).
pub const CONTROL_BIT: i16 = 0x20;
/// Attribute bit 6: `baseTimestamp` holds the delete horizon set by log compaction.
pub const DELETE_HORIZON_BIT: i16 = 0x40;

/// The magic byte of message format v2, the only format this module decodes.
pub const MAGIC_V2: i8 = 2;

/// Bytes before `batchLength` counts: `baseOffset` and `batchLength` themselves.
pub const LOG_OVERHEAD: usize = 12;

/// Bytes of a batch header, from `baseOffset` to `recordCount` included.
pub const BATCH_HEADER_LEN: usize = 61;

/// A record batch that cannot be encoded. A local misuse, not peer input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordsEncodeError {
    /// A length or count does not fit its field (`i32` or varint).
    #[error("value too long: {0}")]
    TooLong(&'static str),
    /// The compressor failed.
    #[error("compression failed: {0}")]
    Compression(&'static str),
}
