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
//!
//! The body is a CBOR array with one entry per record, each an array
//! `[timestamp - first_timestamp, key, value, [[header key, header value], ...]]` where keys and
//! values are byte strings or null and header keys are text.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use ciborium::Value;

use crate::record::{Record, RecordHeader};
use crate::storage::EncodedBatch;

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
            return Err(BatchFormatError::InvalidHeader(
                "batch_len shorter than the header",
            ));
        }
        if header.record_count == 0 || header.base_offset < 0 || header.compression > 3 {
            return Err(BatchFormatError::InvalidHeader(
                "count, offset or compression",
            ));
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

/// Largest body (uncompressed) the engine writes or agrees to decompress.
pub const MAX_BODY_LEN: usize = 256 << 20;

/// How stored batch bodies are compressed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StoredCompression {
    /// No compression.
    #[default]
    None,
    /// Zstandard at the given level.
    Zstd {
        /// Compression level (1..=22; 0 means zstd's default).
        level: i32,
    },
    /// LZ4 block format.
    Lz4,
    /// Snappy raw format.
    Snappy,
}

impl StoredCompression {
    /// The header code of this compression.
    pub fn code(self) -> u8 {
        match self {
            Self::None => 0,
            Self::Zstd { .. } => 1,
            Self::Lz4 => 2,
            Self::Snappy => 3,
        }
    }
}

/// Producer fields stored in a batch header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerFields {
    /// Idempotent producer id, or -1.
    pub producer_id: i64,
    /// Producer epoch.
    pub producer_epoch: i16,
    /// Sequence number of the first record, or -1.
    pub base_sequence: i32,
}

/// A stored batch read back: its header and its records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedBatch {
    /// The checked header.
    pub header: BatchHeader,
    /// The records, the first at `header.base_offset`.
    pub records: Vec<Record>,
}

fn opt_bytes(b: &Option<Bytes>) -> Value {
    b.as_ref().map_or(Value::Null, |b| Value::Bytes(b.to_vec()))
}

fn record_value(r: &Record, first_timestamp: i64) -> Value {
    let headers = r
        .headers
        .iter()
        .map(|h| Value::Array(vec![Value::Text(h.key.clone()), opt_bytes(&h.value)]))
        .collect();
    Value::Array(vec![
        Value::Integer(r.timestamp.wrapping_sub(first_timestamp).into()),
        opt_bytes(&r.key),
        opt_bytes(&r.value),
        Value::Array(headers),
    ])
}

fn compress(body: &[u8], compression: StoredCompression) -> Result<Vec<u8>, BatchFormatError> {
    Ok(match compression {
        StoredCompression::None => body.to_vec(),
        StoredCompression::Zstd { level } => zstd::bulk::compress(body, level)
            .map_err(|_| BatchFormatError::InvalidBody("zstd compression failed"))?,
        StoredCompression::Lz4 => lz4_flex::block::compress(body),
        StoredCompression::Snappy => snap::raw::Encoder::new()
            .compress_vec(body)
            .map_err(|_| BatchFormatError::InvalidBody("snappy compression failed"))?,
    })
}

/// Encodes `records` (at least one) as one stored batch starting at `base_offset`.
pub fn encode_batch(
    base_offset: i64,
    producer: ProducerFields,
    records: &[Record],
    compression: StoredCompression,
) -> Result<EncodedBatch, BatchFormatError> {
    assert!(
        !records.is_empty(),
        "a stored batch holds at least one record"
    );
    let first_timestamp = records[0].timestamp;
    let max_timestamp = records
        .iter()
        .map(|r| r.timestamp)
        .max()
        .unwrap_or(first_timestamp);
    let value = Value::Array(
        records
            .iter()
            .map(|r| record_value(r, first_timestamp))
            .collect(),
    );
    let mut body = Vec::new();
    ciborium::into_writer(&value, &mut body)
        .map_err(|_| BatchFormatError::InvalidBody("CBOR encoding failed"))?;
    if body.len() > MAX_BODY_LEN || records.len() > i32::MAX as usize {
        return Err(BatchFormatError::InvalidBody("batch too large"));
    }
    let compressed = compress(&body, compression)?;
    let header = BatchHeader {
        batch_len: 0,
        crc: 0,
        compression: compression.code(),
        base_offset,
        record_count: records.len() as u32,
        first_timestamp,
        max_timestamp,
        producer_id: producer.producer_id,
        producer_epoch: producer.producer_epoch,
        base_sequence: producer.base_sequence,
        body_len_uncompressed: body.len() as u32,
    };
    let mut out = BytesMut::with_capacity(HEADER_LEN + compressed.len());
    header.write_unsealed(&mut out);
    out.put_slice(&compressed);
    seal(&mut out);
    Ok(EncodedBatch {
        base_offset,
        last_offset: header.last_offset(),
        max_timestamp,
        bytes: out.freeze(),
    })
}

fn decompress(header: &BatchHeader, data: &[u8]) -> Result<Vec<u8>, BatchFormatError> {
    let len = header.body_len_uncompressed as usize;
    if len > MAX_BODY_LEN {
        return Err(BatchFormatError::InvalidHeader(
            "body_len_uncompressed too large",
        ));
    }
    let body = match header.compression {
        0 => data.to_vec(),
        1 => {
            zstd::bulk::decompress(data, len).map_err(|_| BatchFormatError::InvalidBody("zstd"))?
        }
        2 => lz4_flex::block::decompress(data, len)
            .map_err(|_| BatchFormatError::InvalidBody("lz4"))?,
        3 => {
            if snap::raw::decompress_len(data)
                .map_err(|_| BatchFormatError::InvalidBody("snappy"))?
                != len
            {
                return Err(BatchFormatError::InvalidBody("snappy length mismatch"));
            }
            snap::raw::Decoder::new()
                .decompress_vec(data)
                .map_err(|_| BatchFormatError::InvalidBody("snappy"))?
        }
        _ => return Err(BatchFormatError::InvalidHeader("unknown compression")),
    };
    if body.len() != len {
        return Err(BatchFormatError::InvalidBody(
            "uncompressed length mismatch",
        ));
    }
    Ok(body)
}

fn value_opt_bytes(v: Value) -> Result<Option<Bytes>, BatchFormatError> {
    match v {
        Value::Null => Ok(None),
        Value::Bytes(b) => Ok(Some(Bytes::from(b))),
        _ => Err(BatchFormatError::InvalidBody("expected bytes or null")),
    }
}

fn value_header(v: Value) -> Result<RecordHeader, BatchFormatError> {
    let bad = BatchFormatError::InvalidBody("bad record header");
    let Value::Array(items) = v else {
        return Err(bad);
    };
    let Ok([key, value]) = <[Value; 2]>::try_from(items) else {
        return Err(bad);
    };
    let Value::Text(key) = key else {
        return Err(bad);
    };
    Ok(RecordHeader {
        key,
        value: value_opt_bytes(value)?,
    })
}

fn value_record(v: Value, first_timestamp: i64) -> Result<Record, BatchFormatError> {
    let bad = BatchFormatError::InvalidBody("bad record");
    let Value::Array(items) = v else {
        return Err(bad);
    };
    let Ok([delta, key, value, headers]) = <[Value; 4]>::try_from(items) else {
        return Err(bad);
    };
    let Value::Integer(delta) = delta else {
        return Err(bad);
    };
    let delta = i64::try_from(delta).map_err(|_| bad)?;
    let Value::Array(headers) = headers else {
        return Err(bad);
    };
    Ok(Record {
        timestamp: first_timestamp.wrapping_add(delta),
        key: value_opt_bytes(key)?,
        value: value_opt_bytes(value)?,
        headers: headers
            .into_iter()
            .map(value_header)
            .collect::<Result<_, _>>()?,
    })
}

/// Decodes a stored batch at the start of `buf`, checking its CRC and record count.
pub fn decode_batch(buf: &[u8]) -> Result<DecodedBatch, BatchFormatError> {
    let header = BatchHeader::parse_checked(buf)?;
    let body = decompress(&header, &buf[HEADER_LEN..header.total_len()])?;
    let value: Value = ciborium::from_reader(body.as_slice())
        .map_err(|_| BatchFormatError::InvalidBody("CBOR decoding failed"))?;
    let Value::Array(items) = value else {
        return Err(BatchFormatError::InvalidBody("body is not an array"));
    };
    if items.len() != header.record_count as usize {
        return Err(BatchFormatError::InvalidBody("record count mismatch"));
    }
    let records = items
        .into_iter()
        .map(|v| value_record(v, header.first_timestamp))
        .collect::<Result<_, _>>()?;
    Ok(DecodedBatch { header, records })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records() -> Vec<Record> {
        vec![
            Record {
                timestamp: 1_000,
                key: Some(Bytes::from_static(b"k")),
                value: Some(Bytes::from(vec![7u8; 300])),
                headers: vec![
                    RecordHeader {
                        key: "h".into(),
                        value: Some(Bytes::from_static(b"v")),
                    },
                    RecordHeader {
                        key: "n".into(),
                        value: None,
                    },
                ],
            },
            Record {
                timestamp: 990,
                key: None,
                value: None,
                headers: vec![],
            },
            Record::with_value(1_500, "x"),
        ]
    }

    #[test]
    fn body_round_trips_for_every_compression() {
        let producer = ProducerFields {
            producer_id: 3,
            producer_epoch: 2,
            base_sequence: 10,
        };
        for c in [
            StoredCompression::None,
            StoredCompression::Zstd { level: 3 },
            StoredCompression::Lz4,
            StoredCompression::Snappy,
        ] {
            let enc = encode_batch(5, producer, &records(), c).unwrap();
            assert_eq!(
                (enc.base_offset, enc.last_offset, enc.max_timestamp),
                (5, 7, 1_500)
            );
            let dec = decode_batch(&enc.bytes).unwrap();
            assert_eq!(dec.records, records(), "{c:?}");
            assert_eq!(dec.header.compression, c.code());
            assert_eq!(dec.header.producer_id, 3);
            assert_eq!(dec.header.base_sequence, 10);
            let mut bad = enc.bytes.to_vec();
            let last = bad.len() - 1;
            bad[last] ^= 0x55;
            assert_eq!(decode_batch(&bad), Err(BatchFormatError::CrcMismatch));
        }
    }

    #[test]
    fn absurd_uncompressed_length_is_rejected() {
        let p = ProducerFields {
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
        };
        let enc = encode_batch(0, p, &records(), StoredCompression::Lz4).unwrap();
        let mut bad = enc.bytes.to_vec();
        bad[52..56].copy_from_slice(&u32::MAX.to_be_bytes());
        seal(&mut bad);
        assert!(decode_batch(&bad).is_err());
        let mut short = enc.bytes.to_vec();
        short[52..56].copy_from_slice(&10u32.to_be_bytes());
        seal(&mut short);
        assert!(decode_batch(&short).is_err());
    }

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
        assert_eq!(
            BatchHeader::parse_checked(&bad),
            Err(BatchFormatError::CrcMismatch)
        );
        assert_eq!(
            BatchHeader::parse_checked(&out[..out.len() - 1]),
            Err(BatchFormatError::Truncated)
        );
        set_base_offset(&mut out, 100);
        assert_eq!(BatchHeader::parse_checked(&out).unwrap().base_offset, 100);
    }
}
