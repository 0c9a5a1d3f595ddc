//! The engine's stored batch format.
//!
//! A batch is a fixed 56-byte header followed by a body. All integers are big-endian.
//!
//! | offset | size | field |
//! |-------:|-----:|-------|
//! | 0  | 4 | `batch_len`: bytes after this field |
//! | 4  | 4 | `crc`: CRC-32C of every byte after this field |
//! | 8  | 1 | `version`: 2 (written), 1 (still read) |
//! | 9  | 1 | `compression`: see below |
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
//! `compression`: the low four bits name the algorithm (0 none, 1 zstd, 2 lz4, 3 snappy).
//! Version 1 uses only those. Version 2 adds two flags:
//!
//! - `0x10` single-message mode: the CBOR body itself is stored as is and the algorithm applies
//!   to each record value on its own (values carry their uncompressed length, see below);
//!   without the flag (bulk mode) the whole CBOR body is compressed with the algorithm.
//! - `0x20` dictionary: the body starts with a 4-byte zstd dictionary id (the algorithm is
//!   zstd); the dictionary is stored durably by the engine under `dict/<topic>/<id>`.
//!
//! `body_len_uncompressed` is the length of the CBOR body (before bulk compression).
//!
//! The CBOR body is an array with one entry per record. Version 1 entries are
//! `[timestamp - first_timestamp, key, value, [[header key, header value], ...]]` where keys and
//! values are byte strings or null and header keys are text. Version 2 entries append
//! `id` (the message's 16-byte ULID, or null) and `value_len` (null, or the uncompressed length
//! when the value is compressed in single-message mode).

use bytes::{Buf, BufMut, Bytes, BytesMut};
use ciborium::Value;

use ulid::Ulid;

use crate::compression::dictionary::Dictionary;
use crate::record::{Record, RecordHeader};
use crate::storage::EncodedBatch;

/// Size of the fixed header.
pub const HEADER_LEN: usize = 56;
/// The format version this code writes.
pub const FORMAT_VERSION: u8 = 2;
/// The first format version (no message ids, no flags); still read.
pub const FORMAT_VERSION_V1: u8 = 1;
/// Bits of the `compression` byte naming the algorithm.
pub const ALGORITHM_MASK: u8 = 0x0f;
/// `compression` flag: values are compressed one by one (single-message mode).
pub const FLAG_SINGLE: u8 = 0x10;
/// `compression` flag: the body starts with a zstd dictionary id.
pub const FLAG_DICTIONARY: u8 = 0x20;

/// The fixed header of a stored batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// Bytes after the length field (so the whole batch is `4 + batch_len` bytes).
    pub batch_len: u32,
    /// CRC-32C of every byte after the CRC field.
    pub crc: u32,
    /// Compression of the body: the algorithm (0 none, 1 zstd, 2 lz4, 3 snappy) in the low
    /// four bits, and in version 2 the [`FLAG_SINGLE`] and [`FLAG_DICTIONARY`] flags.
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
        let version = buf.get_u8();
        if version != FORMAT_VERSION && version != FORMAT_VERSION_V1 {
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
        let flags = if version == FORMAT_VERSION_V1 {
            0
        } else {
            FLAG_SINGLE | FLAG_DICTIONARY
        };
        let algorithm = header.compression & ALGORITHM_MASK;
        if header.record_count == 0
            || header.base_offset < 0
            || algorithm > 3
            || header.compression & !(ALGORITHM_MASK | flags) != 0
            || (header.compression & FLAG_DICTIONARY != 0 && algorithm != 1)
        {
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
    /// The message id of each record (`None` in version 1 batches), parallel to `records`.
    pub ids: Vec<Option<Ulid>>,
}

/// How the records are stored: single-message or bulk compression.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CompressionMode {
    /// Each record's value is compressed on its own (large values, random access).
    Single,
    /// The whole batch body is compressed at once.
    #[default]
    Bulk,
}

/// How [`encode_batch_with`] encodes a body.
#[derive(Debug, Clone, Copy)]
pub struct BodyEncoding<'a> {
    /// Algorithm and level.
    pub compression: StoredCompression,
    /// Single-message or bulk.
    pub mode: CompressionMode,
    /// Values (single mode) or bodies (bulk mode) shorter than this are stored uncompressed.
    pub min_size: usize,
    /// A zstd dictionary to compress with (ignored unless the algorithm is zstd).
    pub dictionary: Option<&'a Dictionary>,
}

impl BodyEncoding<'_> {
    /// Bulk compression with `compression`, no minimum size, no dictionary.
    pub fn bulk(compression: StoredCompression) -> BodyEncoding<'static> {
        BodyEncoding {
            compression,
            mode: CompressionMode::Bulk,
            min_size: 0,
            dictionary: None,
        }
    }
}

/// Finds the zstd dictionaries batches refer to.
pub trait DictionarySource {
    /// The dictionary with this id, if known.
    fn dictionary(&self, id: u32) -> Option<&Dictionary>;
}

/// No dictionaries at all.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoDictionaries;

impl DictionarySource for NoDictionaries {
    fn dictionary(&self, _id: u32) -> Option<&Dictionary> {
        None
    }
}

/// Sizes measured while encoding a batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EncodeStats {
    /// What the batch would take uncompressed (header and CBOR body).
    pub raw_bytes: u64,
    /// What it takes as stored.
    pub stored_bytes: u64,
}

fn opt_bytes(b: &Option<Bytes>) -> Value {
    b.as_ref().map_or(Value::Null, |b| Value::Bytes(b.to_vec()))
}

fn record_value(
    r: &Record,
    first_timestamp: i64,
    id: Option<Ulid>,
    value: (Value, Value),
) -> Value {
    let headers = r
        .headers
        .iter()
        .map(|h| Value::Array(vec![Value::Text(h.key.clone()), opt_bytes(&h.value)]))
        .collect();
    Value::Array(vec![
        Value::Integer(r.timestamp.wrapping_sub(first_timestamp).into()),
        opt_bytes(&r.key),
        value.0,
        Value::Array(headers),
        id.map_or(Value::Null, |id| Value::Bytes(id.to_bytes().to_vec())),
        value.1,
    ])
}

/// A compressor for one algorithm, reused across the values of a batch.
enum Packer<'a> {
    None,
    Zstd(zstd::bulk::Compressor<'a>),
    Lz4,
    Snappy(Box<snap::raw::Encoder>),
}

impl Packer<'_> {
    fn new(c: StoredCompression, dict: Option<&Dictionary>) -> Result<Self, BatchFormatError> {
        let failed = |_| BatchFormatError::InvalidBody("zstd compressor failed");
        Ok(match c {
            StoredCompression::None => Self::None,
            StoredCompression::Zstd { level } => Self::Zstd(match dict {
                Some(d) => {
                    zstd::bulk::Compressor::with_dictionary(level, d.bytes()).map_err(failed)?
                }
                None => zstd::bulk::Compressor::new(level).map_err(failed)?,
            }),
            StoredCompression::Lz4 => Self::Lz4,
            StoredCompression::Snappy => Self::Snappy(Box::new(snap::raw::Encoder::new())),
        })
    }

    fn pack(&mut self, data: &[u8]) -> Result<Vec<u8>, BatchFormatError> {
        Ok(match self {
            Self::None => data.to_vec(),
            Self::Zstd(c) => c
                .compress(data)
                .map_err(|_| BatchFormatError::InvalidBody("zstd compression failed"))?,
            Self::Lz4 => lz4_flex::block::compress(data),
            Self::Snappy(e) => e
                .compress_vec(data)
                .map_err(|_| BatchFormatError::InvalidBody("snappy compression failed"))?,
        })
    }
}

/// Encodes `records` (at least one) as one bulk-compressed stored batch starting at
/// `base_offset`, without message ids.
pub fn encode_batch(
    base_offset: i64,
    producer: ProducerFields,
    records: &[Record],
    compression: StoredCompression,
) -> Result<EncodedBatch, BatchFormatError> {
    let ids = vec![None; records.len()];
    let enc = BodyEncoding::bulk(compression);
    encode_batch_with(base_offset, producer, records, &ids, &enc).map(|(b, _)| b)
}

/// Encodes `records` (at least one) with their message ids (`ids[i]` belongs to `records[i]`)
/// as one stored batch starting at `base_offset`, compressed as `enc` says.
pub fn encode_batch_with(
    base_offset: i64,
    producer: ProducerFields,
    records: &[Record],
    ids: &[Option<Ulid>],
    enc: &BodyEncoding<'_>,
) -> Result<(EncodedBatch, EncodeStats), BatchFormatError> {
    assert!(
        !records.is_empty(),
        "a stored batch holds at least one record"
    );
    assert_eq!(records.len(), ids.len(), "one id per record");
    let first_timestamp = records[0].timestamp;
    let max_timestamp = records
        .iter()
        .map(|r| r.timestamp)
        .max()
        .unwrap_or(first_timestamp);
    let dictionary = match enc.compression {
        StoredCompression::Zstd { .. } => enc.dictionary,
        _ => None,
    };
    let mut packer = Packer::new(enc.compression, dictionary)?;
    let single = enc.mode == CompressionMode::Single && enc.compression != StoredCompression::None;
    let mut saved = 0u64;
    let mut entries = Vec::with_capacity(records.len());
    for (r, id) in records.iter().zip(ids) {
        let value = match &r.value {
            Some(v) if single && v.len() >= enc.min_size.max(1) => {
                let packed = packer.pack(v)?;
                if packed.len() < v.len() {
                    saved += (v.len() - packed.len()) as u64;
                    (Value::Bytes(packed), Value::Integer(v.len().into()))
                } else {
                    (Value::Bytes(v.to_vec()), Value::Null)
                }
            }
            v => (opt_bytes(v), Value::Null),
        };
        entries.push(record_value(r, first_timestamp, *id, value));
    }
    let mut body = Vec::new();
    ciborium::into_writer(&Value::Array(entries), &mut body)
        .map_err(|_| BatchFormatError::InvalidBody("CBOR encoding failed"))?;
    if body.len() > MAX_BODY_LEN || records.len() > i32::MAX as usize {
        return Err(BatchFormatError::InvalidBody("batch too large"));
    }
    let (mut code, stored) = if single {
        (enc.compression.code() | FLAG_SINGLE, body.clone())
    } else if enc.compression != StoredCompression::None && body.len() >= enc.min_size {
        let packed = packer.pack(&body)?;
        if packed.len() < body.len() {
            (enc.compression.code(), packed)
        } else {
            (0, body.clone())
        }
    } else {
        (0, body.clone())
    };
    let uses_dict = dictionary.is_some() && (code & ALGORITHM_MASK) == 1 && (!single || saved > 0);
    if uses_dict {
        code |= FLAG_DICTIONARY;
    }
    let header = BatchHeader {
        batch_len: 0,
        crc: 0,
        compression: code,
        base_offset,
        record_count: records.len() as u32,
        first_timestamp,
        max_timestamp,
        producer_id: producer.producer_id,
        producer_epoch: producer.producer_epoch,
        base_sequence: producer.base_sequence,
        body_len_uncompressed: body.len() as u32,
    };
    let mut out = BytesMut::with_capacity(HEADER_LEN + 4 + stored.len());
    header.write_unsealed(&mut out);
    if let (true, Some(d)) = (uses_dict, dictionary) {
        out.put_u32(d.id());
    }
    out.put_slice(&stored);
    seal(&mut out);
    let stats = EncodeStats {
        raw_bytes: (HEADER_LEN + body.len()) as u64 + saved,
        stored_bytes: out.len() as u64,
    };
    Ok((
        EncodedBatch {
            base_offset,
            last_offset: header.last_offset(),
            max_timestamp,
            bytes: out.freeze(),
        },
        stats,
    ))
}

/// A decompressor for one algorithm, reused across the values of a batch.
enum Unpacker<'a> {
    None,
    Zstd(zstd::bulk::Decompressor<'a>),
    Lz4,
    Snappy(snap::raw::Decoder),
}

impl<'a> Unpacker<'a> {
    fn new(algorithm: u8, dict: Option<&'a Dictionary>) -> Result<Self, BatchFormatError> {
        let failed = |_| BatchFormatError::InvalidBody("zstd decompressor failed");
        Ok(match algorithm {
            0 => Self::None,
            1 => Self::Zstd(match dict {
                Some(d) => zstd::bulk::Decompressor::with_prepared_dictionary(d.decoder())
                    .map_err(failed)?,
                None => zstd::bulk::Decompressor::new().map_err(failed)?,
            }),
            2 => Self::Lz4,
            3 => Self::Snappy(snap::raw::Decoder::new()),
            _ => return Err(BatchFormatError::InvalidHeader("unknown compression")),
        })
    }

    fn unpack(&mut self, data: &[u8], len: usize) -> Result<Vec<u8>, BatchFormatError> {
        if len > MAX_BODY_LEN {
            return Err(BatchFormatError::InvalidHeader(
                "uncompressed length too large",
            ));
        }
        let out = match self {
            Self::None => data.to_vec(),
            Self::Zstd(d) => d
                .decompress(data, len)
                .map_err(|_| BatchFormatError::InvalidBody("zstd"))?,
            Self::Lz4 => lz4_flex::block::decompress(data, len)
                .map_err(|_| BatchFormatError::InvalidBody("lz4"))?,
            Self::Snappy(d) => {
                if snap::raw::decompress_len(data)
                    .map_err(|_| BatchFormatError::InvalidBody("snappy"))?
                    != len
                {
                    return Err(BatchFormatError::InvalidBody("snappy length mismatch"));
                }
                d.decompress_vec(data)
                    .map_err(|_| BatchFormatError::InvalidBody("snappy"))?
            }
        };
        if out.len() != len {
            return Err(BatchFormatError::InvalidBody(
                "uncompressed length mismatch",
            ));
        }
        Ok(out)
    }
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

fn value_record(
    v: Value,
    first_timestamp: i64,
    version: u8,
    unpacker: &mut Unpacker<'_>,
) -> Result<(Record, Option<Ulid>), BatchFormatError> {
    let bad = BatchFormatError::InvalidBody("bad record");
    let Value::Array(mut items) = v else {
        return Err(bad);
    };
    let (id, value_len) = match (version, items.len()) {
        (FORMAT_VERSION_V1, 4) => (Value::Null, Value::Null),
        (FORMAT_VERSION, 6) => {
            let value_len = items.pop().expect("6 items");
            (items.pop().expect("5 items"), value_len)
        }
        _ => return Err(bad),
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
    let id = match id {
        Value::Null => None,
        Value::Bytes(b) => Some(Ulid::from_bytes(
            <[u8; 16]>::try_from(b.as_slice()).map_err(|_| bad)?,
        )),
        _ => return Err(bad),
    };
    let value = match (value_len, value) {
        (Value::Null, v) => value_opt_bytes(v)?,
        (Value::Integer(len), Value::Bytes(packed)) => {
            let len = usize::try_from(len).map_err(|_| bad)?;
            Some(Bytes::from(unpacker.unpack(&packed, len)?))
        }
        _ => return Err(bad),
    };
    let record = Record {
        timestamp: first_timestamp.wrapping_add(delta),
        key: value_opt_bytes(key)?,
        value,
        headers: headers
            .into_iter()
            .map(value_header)
            .collect::<Result<_, _>>()?,
    };
    Ok((record, id))
}

/// Decodes a stored batch at the start of `buf`, checking its CRC and record count. Batches
/// compressed with a dictionary fail; see [`decode_batch_with`].
pub fn decode_batch(buf: &[u8]) -> Result<DecodedBatch, BatchFormatError> {
    decode_batch_with(buf, &NoDictionaries)
}

/// Decodes a stored batch at the start of `buf`, looking up dictionaries in `dicts`.
pub fn decode_batch_with(
    buf: &[u8],
    dicts: &dyn DictionarySource,
) -> Result<DecodedBatch, BatchFormatError> {
    let header = BatchHeader::parse_checked(buf)?;
    let version = buf[8];
    let mut data = &buf[HEADER_LEN..header.total_len()];
    let dict = if header.compression & FLAG_DICTIONARY != 0 {
        if data.len() < 4 {
            return Err(BatchFormatError::Truncated);
        }
        let id = data.get_u32();
        Some(dicts.dictionary(id).ok_or(BatchFormatError::InvalidBody(
            "unknown compression dictionary",
        ))?)
    } else {
        None
    };
    let algorithm = header.compression & ALGORITHM_MASK;
    let mut unpacker = Unpacker::new(algorithm, dict)?;
    let len = header.body_len_uncompressed as usize;
    let body = if header.compression & FLAG_SINGLE != 0 {
        if data.len() != len {
            return Err(BatchFormatError::InvalidBody(
                "uncompressed length mismatch",
            ));
        }
        data.to_vec()
    } else {
        unpacker.unpack(data, len)?
    };
    let value: Value = ciborium::from_reader(body.as_slice())
        .map_err(|_| BatchFormatError::InvalidBody("CBOR decoding failed"))?;
    let Value::Array(items) = value else {
        return Err(BatchFormatError::InvalidBody("body is not an array"));
    };
    if items.len() != header.record_count as usize {
        return Err(BatchFormatError::InvalidBody("record count mismatch"));
    }
    let mut records = Vec::with_capacity(items.len());
    let mut ids = Vec::with_capacity(items.len());
    let mut total = 0usize;
    for v in items {
        let (r, id) = value_record(v, header.first_timestamp, version, &mut unpacker)?;
        total += r.value.as_ref().map_or(0, Bytes::len);
        if total > MAX_BODY_LEN {
            return Err(BatchFormatError::InvalidBody("values too large"));
        }
        records.push(r);
        ids.push(id);
    }
    Ok(DecodedBatch {
        header,
        records,
        ids,
    })
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
