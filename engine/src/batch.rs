//! The engine's stored batch format.
//!
//! A batch is a fixed 56-byte header followed by a body. All integers are big-endian.
//!
//! | offset | size | field |
//! |-------:|-----:|-------|
//! | 0  | 4 | `batch_len`: bytes after this field |
//! | 4  | 4 | `crc`: CRC-32C of every byte after this field |
//! | 8  | 1 | `version` = 1 |
//! | 9  | 1 | `compression`: 0 none, 1 zstd, 2 lz4, 3 snappy |
//! | 10 | 8 | `base_offset` |
//! | 18 | 4 | `record_count` (at least 1) |
//! | 22 | 8 | `first_timestamp` (ms since the epoch) |
//! | 30 | 8 | `max_timestamp` |
//! | 38 | 8 | `producer_id` (-1: none) |
//! | 46 | 2 | `producer_epoch` |
//! | 48 | 4 | `base_sequence` (-1: none) |
//! | 52 | 4 | `body_len_uncompressed` |
//! | 56 | … | body: the records as CBOR, compressed as `compression` says |

use bytes::{Buf, BufMut, BytesMut};

/// Size of the fixed header.
pub const HEADER_LEN: usize = 56;
/// The format version this code writes and reads.
pub const FORMAT_VERSION: u8 = 1;

/// The fixed header of a stored batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// Bytes after the length field (so the whole batch is `4 + batch_len` bytes).
    pub batch_len: u32,
    /// CRC-32C of every byte after the CRC field.
    pub crc: u32,
    /// Compression of the body: 0 none, 1 zstd, 2 lz4, 3 snappy.
    pub compression: u8,
    /// Offset of the first record.
    pub base_offset: i64,
    /// Number of records.
    pub record_count: u32,
    /// Timestamp of the first record.
    pub first_timestamp: i64,
    /// Largest record timestamp.
    pub max_timestamp: i64,
    /// Idempotent producer id, or -1.
    pub producer_id: i64,
    /// Producer epoch.
    pub producer_epoch: i16,
    /// Sequence number of the first record, or -1.
    pub base_sequence: i32,
    /// Length of the body once decompressed.
    pub body_len_uncompressed: u32,
}

/// Why bytes are not a valid stored batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BatchFormatError {
    /// Fewer bytes than the header or than `batch_len` announces.
    #[error("batch is truncated")]
    Truncated,
    /// The CRC does not match the bytes.
    #[error("batch CRC mismatch")]
    CrcMismatch,
    /// A header field holds a value this version does not define.
    #[error("invalid batch header: {0}")]
    InvalidHeader(&'static str),
    /// The body cannot be decompressed or decoded.
    #[error("invalid batch body: {0}")]
    InvalidBody(&'static str),
}

impl BatchHeader {
    /// Offset of the last record.
    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.record_count) - 1
    }

    /// Total size of the batch in bytes, header included.
    pub fn total_len(&self) -> usize {
        4 + self.batch_len as usize
    }

    /// Parses the header at the start of `buf` without checking the CRC.
    pub fn parse(mut buf: &[u8]) -> Result<Self, BatchFormatError> {
        if buf.len() < HEADER_LEN {
            return Err(BatchFormatError::Truncated);
        }
        let batch_len = buf.get_u32();
        let crc = buf.get_u32();
        if buf.get_u8() != FORMAT_VERSION {
            return Err(BatchFormatError::InvalidHeader("unknown format version"));
        }
        let header = Self {
            batch_len,
            crc,
            compression: buf.get_u8(),
            base_offset: buf.get_i64(),
            record_count: buf.get_u32(),
            first_timestamp: buf.get_i64(),
            max_timestamp: buf.get_i64(),
            producer_id: buf.get_i64(),
            producer_epoch: buf.get_i16(),
            base_sequence: buf.get_i32(),
            body_len_uncompressed: buf.get_u32(),
        };
        if (batch_len as usize) < HEADER_LEN - 4 {
            return Err(BatchFormatError::InvalidHeader("batch_len shorter than the header"));
        }
        if header.record_count == 0 || header.base_offset < 0 || header.compression > 3 {
            return Err(BatchFormatError::InvalidHeader("count, offset or compression"));
        }
        Ok(header)
    }

    /// Parses the header and checks that `buf` holds the whole batch with a matching CRC.
    pub fn parse_checked(buf: &[u8]) -> Result<Self, BatchFormatError> {
        let header = Self::parse(buf)?;
        let Some(whole) = buf.get(..header.total_len()) else {
            return Err(BatchFormatError::Truncated);
        };
        if crc32c::crc32c(&whole[8..]) != header.crc {
            return Err(BatchFormatError::CrcMismatch);
        }
        Ok(header)
    }

    /// Writes the header with `batch_len` and `crc` as placeholders, to be patched by
    /// [`seal`] once the body follows.
    pub fn write_unsealed(&self, out: &mut BytesMut) {
        out.put_u32(0);
        out.put_u32(0);
        out.put_u8(FORMAT_VERSION);
        out.put_u8(self.compression);
        out.put_i64(self.base_offset);
        out.put_u32(self.record_count);
        out.put_i64(self.first_timestamp);
        out.put_i64(self.max_timestamp);
        out.put_i64(self.producer_id);
        out.put_i16(self.producer_epoch);
        out.put_i32(self.base_sequence);
        out.put_u32(self.body_len_uncompressed);
    }
}

/// Fills in `batch_len` and `crc` of a batch written with [`BatchHeader::write_unsealed`]
/// followed by its body.
pub fn seal(batch: &mut [u8]) {
    let batch_len = (batch.len() - 4) as u32;
    batch[0..4].copy_from_slice(&batch_len.to_be_bytes());
    let crc = crc32c::crc32c(&batch[8..]);
    batch[4..8].copy_from_slice(&crc.to_be_bytes());
}

/// Rewrites the base offset of a sealed batch and recomputes its CRC.
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) {
    batch[10..18].copy_from_slice(&base_offset.to_be_bytes());
    seal(batch);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> BatchHeader {
        BatchHeader {
            batch_len: 0,
            crc: 0,
            compression: 0,
            base_offset: 42,
            record_count: 3,
            first_timestamp: 1000,
            max_timestamp: 1002,
            producer_id: 7,
            producer_epoch: 1,
            base_sequence: 9,
            body_len_uncompressed: 2,
        }
    }

    #[test]
    fn header_round_trips_and_crc_is_checked() {
        let mut out = BytesMut::new();
        sample().write_unsealed(&mut out);
        out.put_slice(b"xy");
        seal(&mut out);
        let h = BatchHeader::parse_checked(&out).unwrap();
        assert_eq!(h.base_offset, 42);
        assert_eq!(h.last_offset(), 44);
        assert_eq!(h.total_len(), out.len());
        let mut bad = out.clone();
        bad[57] ^= 1;
        assert_eq!(BatchHeader::parse_checked(&bad), Err(BatchFormatError::CrcMismatch));
        assert_eq!(
            BatchHeader::parse_checked(&out[..out.len() - 1]),
            Err(BatchFormatError::Truncated)
        );
        set_base_offset(&mut out, 100);
        assert_eq!(BatchHeader::parse_checked(&out).unwrap().base_offset, 100);
    }
}
