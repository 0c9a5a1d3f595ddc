//! Log compaction of stored batches, shared by the disk log ([`super::disk`]) and the Redis
//! backend ([`super::redis`]): which records survive, and the re-encoding of batches that
//! lose some.
//!
//! A record survives when it is the latest of its key (as found by [`note_latest`] over the
//! batches being compacted); records without a key never survive, and tombstones (null
//! values) only until they expire. Survivors keep their offsets: a batch that loses records
//! becomes one batch per run of consecutive survivors, re-encoded with their message ids,
//! producer fields, compression algorithm and mode (zstd at its default level).

use std::collections::HashMap;

use bytes::Bytes;
use portask_engine::batch::{
    ALGORITHM_MASK, BodyEncoding, CompressionMode, FLAG_SINGLE, ProducerFields, StoredCompression,
    decode_batch, encode_batch_with,
};
use portask_engine::storage::{EncodedBatch, StorageError};

/// What compacting one batch gives.
pub(super) struct CompactedBatch {
    /// The batches that replace it, in offset order (empty when no record survives), or
    /// `None` when it keeps every record and stays as it is.
    pub(super) pieces: Option<Vec<EncodedBatch>>,
    /// Tombstones survive in it.
    pub(super) tombstones: bool,
}

/// Records in `latest` the offset of every keyed record of `batch`, so that after all
/// batches in offset order it maps each key to its latest offset. A batch that cannot be
/// decoded here (a dictionary-compressed one) is skipped.
pub(super) fn note_latest(batch: &[u8], latest: &mut HashMap<Bytes, i64>) {
    let Ok(decoded) = decode_batch(batch) else {
        return;
    };
    for (offset, r) in (decoded.header.base_offset..).zip(decoded.records) {
        if let Some(key) = r.key {
            latest.insert(key, offset);
        }
    }
}

/// Compacts one stored batch: keeps the records that are the latest of their key, and
/// tombstones only while `expire` is false. A batch that cannot be decoded here is kept
/// whole.
pub(super) fn compact_batch(
    raw: &Bytes,
    latest: &HashMap<Bytes, i64>,
    expire: bool,
) -> Result<CompactedBatch, StorageError> {
    let Ok(decoded) = decode_batch(raw) else {
        return Ok(CompactedBatch {
            pieces: None,
            tombstones: false,
        });
    };
    let h = decoded.header;
    let keep: Vec<bool> = (h.base_offset..)
        .zip(&decoded.records)
        .map(|(offset, r)| {
            r.key
                .as_ref()
                .is_some_and(|k| latest.get(k) == Some(&offset))
                && !(r.value.is_none() && expire)
        })
        .collect();
    let tombstones = decoded
        .records
        .iter()
        .zip(&keep)
        .any(|(r, &k)| k && r.value.is_none());
    if keep.iter().all(|&k| k) {
        return Ok(CompactedBatch {
            pieces: None,
            tombstones,
        });
    }
    let enc = BodyEncoding {
        mode: if h.compression & FLAG_SINGLE != 0 {
            CompressionMode::Single
        } else {
            CompressionMode::Bulk
        },
        ..BodyEncoding::bulk(stored_compression(h.compression))
    };
    let mut pieces = Vec::new();
    let mut j = 0;
    while j < keep.len() {
        if !keep[j] {
            j += 1;
            continue;
        }
        let start = j;
        while j < keep.len() && keep[j] {
            j += 1;
        }
        let producer = ProducerFields {
            producer_id: h.producer_id,
            producer_epoch: h.producer_epoch,
            base_sequence: advance_sequence(h.base_sequence, start),
        };
        let base = h.base_offset + start as i64;
        let (batch, _) = encode_batch_with(
            base,
            producer,
            &decoded.records[start..j],
            &decoded.ids[start..j],
            &enc,
        )
        .map_err(|e| StorageError::Corrupt(format!("re-encoding a compacted batch: {e}")))?;
        pieces.push(batch);
    }
    Ok(CompactedBatch {
        pieces: Some(pieces),
        tombstones,
    })
}

/// The compression of a batch header's `compression` byte (its algorithm bits).
fn stored_compression(code: u8) -> StoredCompression {
    match code & ALGORITHM_MASK {
        1 => StoredCompression::Zstd { level: 3 },
        2 => StoredCompression::Lz4,
        3 => StoredCompression::Snappy,
        _ => StoredCompression::None,
    }
}

/// The sequence number `n` records after `base` (-1 stays -1), wrapping as Kafka's do.
fn advance_sequence(base: i32, n: usize) -> i32 {
    if base < 0 {
        return base;
    }
    ((i64::from(base) + n as i64) % (i64::from(i32::MAX) + 1)) as i32
}
