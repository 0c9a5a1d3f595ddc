//! Record batch v2: header view, full decode and encode.

use bytes::{BufMut, Bytes, BytesMut};

use super::compression::{Compression, compress, decompress};
use super::{
    BATCH_HEADER_LEN, CONTROL_BIT, DELETE_HORIZON_BIT, LOG_OVERHEAD, MAGIC_V2, RecordsEncodeError,
    TIMESTAMP_TYPE_BIT, TRANSACTIONAL_BIT,
};
use crate::error::DecodeError;
use crate::wire::{Reader, put_varint, put_varlong, varlong_len};

/// Offsets of the header fields inside a batch.
const LENGTH_AT: usize = 8;
const LEADER_EPOCH_AT: usize = 12;
const MAGIC_AT: usize = 16;
const CRC_AT: usize = 17;
const ATTRIBUTES_AT: usize = 21;

/// The smallest `batchLength`: a header with no records.
const BATCH_LENGTH_MIN: usize = BATCH_HEADER_LEN - LOG_OVERHEAD;

/// The smallest encoded record: length, attributes, timestamp delta, offset delta, key length,
/// value length and header count, one byte each.
const RECORD_LEN_MIN: usize = 7;

/// The smallest encoded header: key length and value length, one byte each.
const HEADER_LEN_MIN: usize = 2;

/// Limits applied while decoding peer-supplied batches.
///
/// The limits hold for one [`RecordBatch::decode_all`] call as a whole, summed over its
/// batches, so that many small bombs in one request cannot add up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// The most bytes decompression may produce. Default 64 MiB.
    pub decompressed_bytes_max: usize,
    /// The most records that may be decoded. Default 1 000 000.
    pub records_max: usize,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        Self {
            decompressed_bytes_max: 64 << 20,
            records_max: 1_000_000,
        }
    }
}

/// A record header: a UTF-8 key and an optional value.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecordHeader {
    /// The header key. Kafka requires it to be a non-null UTF-8 string.
    pub key: String,
    /// The header value; `None` is null (length `-1` on the wire).
    pub value: Option<Bytes>,
}

/// One record of a batch. Offsets and timestamps are deltas from the batch's base values.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    /// Record attributes; unused by Kafka and always 0 when written by its clients.
    pub attributes: i8,
    /// Timestamp minus the batch's `base_timestamp`.
    pub timestamp_delta: i64,
    /// Offset minus the batch's `base_offset`.
    pub offset_delta: i32,
    /// The key; `None` is null. A slice of the (decompressed) batch, not a copy.
    pub key: Option<Bytes>,
    /// The value; `None` is null (a tombstone in compacted topics).
    pub value: Option<Bytes>,
    /// The headers, in wire order.
    pub headers: Vec<RecordHeader>,
}

/// What a control record (in a batch with [`RecordBatch::is_control`]) marks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlRecordKind {
    /// The transaction was aborted (type 0).
    Abort,
    /// The transaction was committed (type 1).
    Commit,
    /// Another control type, such as the KRaft leader-change and snapshot markers.
    Other(i16),
}

impl Record {
    /// For a record of a control batch: the marker kind in its key (`version i16, type i16`).
    /// `None` when the key is null or shorter than 4 bytes.
    pub fn control_kind(&self) -> Option<ControlRecordKind> {
        let key = self.key.as_ref()?;
        if key.len() < 4 {
            return None;
        }
        Some(match i16::from_be_bytes([key[2], key[3]]) {
            0 => ControlRecordKind::Abort,
            1 => ControlRecordKind::Commit,
            other => ControlRecordKind::Other(other),
        })
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let len = r.varint()?;
        let len =
            usize::try_from(len).map_err(|_| DecodeError::Invalid("negative record length"))?;
        let mut b = Reader::new(r.take(len)?);
        let attributes = b.i8()?;
        let timestamp_delta = b.varlong()?;
        let offset_delta = b.varint()?;
        let key = var_bytes(&mut b, "negative record key length")?;
        let value = var_bytes(&mut b, "negative record value length")?;
        let count = b.varint()?;
        let count =
            usize::try_from(count).map_err(|_| DecodeError::Invalid("negative header count"))?;
        if count > b.remaining() / HEADER_LEN_MIN {
            return Err(DecodeError::TooLarge("header count exceeds the record"));
        }
        let mut headers = Vec::with_capacity(count);
        for _ in 0..count {
            let key = var_bytes(&mut b, "negative header key length")?
                .ok_or(DecodeError::Invalid("null header key"))?;
            let key = std::str::from_utf8(&key)
                .map_err(|_| DecodeError::Invalid("header key is not UTF-8"))?
                .to_owned();
            let value = var_bytes(&mut b, "negative header value length")?;
            headers.push(RecordHeader { key, value });
        }
        if b.remaining() != 0 {
            return Err(DecodeError::Invalid(
                "record length does not match its fields",
            ));
        }
        Ok(Self {
            attributes,
            timestamp_delta,
            offset_delta,
            key,
            value,
            headers,
        })
    }

    /// Bytes of the record body, after its length prefix.
    fn body_len(&self) -> Result<usize, RecordsEncodeError> {
        let mut n = 1 + varlong_len(self.timestamp_delta) + varlong_len(self.offset_delta.into());
        n += var_bytes_len(self.key.as_deref())?;
        n += var_bytes_len(self.value.as_deref())?;
        n += varlong_len(len_i32(self.headers.len(), "header count")?.into());
        for h in &self.headers {
            n += var_bytes_len(Some(h.key.as_bytes()))?;
            n += var_bytes_len(h.value.as_deref())?;
        }
        Ok(n)
    }

    fn encode(&self, out: &mut BytesMut) -> Result<(), RecordsEncodeError> {
        put_varint(out, len_i32(self.body_len()?, "record")?);
        out.put_i8(self.attributes);
        put_varlong(out, self.timestamp_delta);
        put_varint(out, self.offset_delta);
        put_var_bytes(out, self.key.as_deref());
        put_var_bytes(out, self.value.as_deref());
        put_varint(out, self.headers.len() as i32);
        for h in &self.headers {
            put_var_bytes(out, Some(h.key.as_bytes()));
            put_var_bytes(out, h.value.as_deref());
        }
        Ok(())
    }
}

/// Reads a varint length (`-1` null) and that many bytes, without copying.
fn var_bytes(r: &mut Reader, negative: &'static str) -> Result<Option<Bytes>, DecodeError> {
    match r.varint()? {
        -1 => Ok(None),
        n if n < 0 => Err(DecodeError::Invalid(negative)),
        n => Ok(Some(r.take(n as usize)?)),
    }
}

fn len_i32(n: usize, what: &'static str) -> Result<i32, RecordsEncodeError> {
    i32::try_from(n).map_err(|_| RecordsEncodeError::TooLong(what))
}

fn var_bytes_len(v: Option<&[u8]>) -> Result<usize, RecordsEncodeError> {
    Ok(match v {
        None => 1,
        Some(v) => varlong_len(len_i32(v.len(), "record key, value or header")?.into()) + v.len(),
    })
}

/// Writes a varint length (`-1` null) and the bytes. Lengths were checked by `body_len`.
fn put_var_bytes(out: &mut BytesMut, v: Option<&[u8]>) {
    match v {
        None => put_varint(out, -1),
        Some(v) => {
            put_varint(out, v.len() as i32);
            out.put_slice(v);
        }
    }
}

/// A decoded record batch (message format v2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordBatch {
    /// Offset of the first record.
    pub base_offset: i64,
    /// Leader epoch of the broker that appended the batch; `-1` from producers.
    pub partition_leader_epoch: i32,
    /// Batch attributes: compression in bits 0–2, then [`TIMESTAMP_TYPE_BIT`],
    /// [`TRANSACTIONAL_BIT`], [`CONTROL_BIT`] and [`DELETE_HORIZON_BIT`]. When encoding, the
    /// compression bits are replaced by the codec passed to [`RecordBatch::encode`].
    pub attributes: i16,
    /// Offset delta of the last record; compaction may leave it beyond the last record kept.
    pub last_offset_delta: i32,
    /// Timestamp of the first record (or the delete horizon, see [`DELETE_HORIZON_BIT`]).
    pub base_timestamp: i64,
    /// The largest timestamp in the batch.
    pub max_timestamp: i64,
    /// Producer id for idempotence and transactions; `-1` if none.
    pub producer_id: i64,
    /// Producer epoch; `-1` if none.
    pub producer_epoch: i16,
    /// Sequence number of the first record; `-1` if none.
    pub base_sequence: i32,
    /// The records. Their number is written as the batch's record count.
    pub records: Vec<Record>,
}

impl Default for RecordBatch {
    fn default() -> Self {
        Self {
            base_offset: 0,
            partition_leader_epoch: -1,
            attributes: 0,
            last_offset_delta: 0,
            base_timestamp: 0,
            max_timestamp: 0,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            records: Vec::new(),
        }
    }
}

/// Decoding budget left over the batches of one call.
struct Budget {
    decompressed_bytes: usize,
    records: usize,
}

impl RecordBatch {
    /// Decodes every batch in a Produce or Fetch `records` field (one or more concatenated
    /// batches). Checks each CRC-32C, decompresses within `limits` and decodes every record.
    ///
    /// A batch with magic 0 or 1 gives `DecodeError::Invalid("message format v0/v1 is not
    /// supported")`, other magics `DecodeError::Invalid` too; the caller answers
    /// `UNSUPPORTED_FOR_MESSAGE_FORMAT` or `CORRUPT_MESSAGE`. A trailing partial batch, as a
    /// Fetch response cut by `max_bytes` may end with, is ignored when `allow_partial_tail` is
    /// set and is [`DecodeError::Truncated`] otherwise. Empty input gives no batches.
    pub fn decode_all(
        data: &Bytes,
        limits: &DecodeLimits,
        allow_partial_tail: bool,
    ) -> Result<Vec<RecordBatch>, DecodeError> {
        let mut budget = Budget {
            decompressed_bytes: limits.decompressed_bytes_max,
            records: limits.records_max,
        };
        let mut out = Vec::new();
        for view in batches(data).allow_partial_tail(allow_partial_tail) {
            out.push(view?.decode_with(&mut budget)?);
        }
        Ok(out)
    }

    /// Encodes this batch, with its records compressed by `compression`, and appends it to
    /// `out`. Writes magic 2, the record count, `batchLength` and the CRC-32C; all other header
    /// fields are written as they are. On error `out` is left as it was.
    pub fn encode(
        &self,
        compression: Compression,
        out: &mut BytesMut,
    ) -> Result<(), RecordsEncodeError> {
        let start = out.len();
        let res = self.encode_inner(compression, out, start);
        if res.is_err() {
            out.truncate(start);
        }
        res
    }

    fn encode_inner(
        &self,
        compression: Compression,
        out: &mut BytesMut,
        start: usize,
    ) -> Result<(), RecordsEncodeError> {
        let count = len_i32(self.records.len(), "record count")?;
        out.put_i64(self.base_offset);
        out.put_i32(0); // batchLength, patched below
        out.put_i32(self.partition_leader_epoch);
        out.put_i8(MAGIC_V2);
        out.put_u32(0); // crc, patched below
        out.put_i16((self.attributes & !Compression::ATTRIBUTE_MASK) | compression.to_bits());
        out.put_i32(self.last_offset_delta);
        out.put_i64(self.base_timestamp);
        out.put_i64(self.max_timestamp);
        out.put_i64(self.producer_id);
        out.put_i16(self.producer_epoch);
        out.put_i32(self.base_sequence);
        out.put_i32(count);
        if compression == Compression::None {
            for r in &self.records {
                r.encode(out)?;
            }
        } else {
            let mut plain = BytesMut::new();
            for r in &self.records {
                r.encode(&mut plain)?;
            }
            compress(compression, &plain, out)?;
        }
        let batch_length = len_i32(out.len() - start - LOG_OVERHEAD, "record batch")?;
        out[start + LENGTH_AT..start + LEADER_EPOCH_AT]
            .copy_from_slice(&batch_length.to_be_bytes());
        let crc = crc32c::crc32c(&out[start + ATTRIBUTES_AT..]);
        out[start + CRC_AT..start + ATTRIBUTES_AT].copy_from_slice(&crc.to_be_bytes());
        Ok(())
    }

    /// The compression codec in the attributes.
    pub fn compression(&self) -> Result<Compression, DecodeError> {
        Compression::from_attributes(self.attributes)
    }

    /// Whether timestamps are the broker's log append time (attribute bit 3).
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & TIMESTAMP_TYPE_BIT != 0
    }

    /// Whether the batch is part of a transaction (attribute bit 4).
    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_BIT != 0
    }

    /// Whether the batch holds control records, i.e. transaction markers (attribute bit 5).
    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_BIT != 0
    }

    /// Whether `base_timestamp` holds a delete horizon (attribute bit 6).
    pub fn has_delete_horizon(&self) -> bool {
        self.attributes & DELETE_HORIZON_BIT != 0
    }

    /// Offset of the last record: `base_offset + last_offset_delta`.
    pub fn last_offset(&self) -> i64 {
        self.base_offset.wrapping_add(self.last_offset_delta.into())
    }
}

/// The header of one record batch and its bytes, without decompressing or decoding records.
///
/// Made by [`batches`]; the magic is always 2 and the length always matches `bytes`, but the
/// CRC is only checked by [`BatchView::verify_crc`] (or [`BatchView::decode`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchView {
    /// Offset of the first record.
    pub base_offset: i64,
    /// Bytes after the `batchLength` field; `bytes.len() - 12`.
    pub batch_length: i32,
    /// Leader epoch of the broker that appended the batch.
    pub partition_leader_epoch: i32,
    /// Message format; always 2.
    pub magic: i8,
    /// The CRC-32C as written in the batch.
    pub crc: u32,
    /// Batch attributes; see [`RecordBatch::attributes`].
    pub attributes: i16,
    /// Offset delta of the last record.
    pub last_offset_delta: i32,
    /// Timestamp of the first record (or delete horizon).
    pub base_timestamp: i64,
    /// The largest timestamp in the batch.
    pub max_timestamp: i64,
    /// Producer id; `-1` if none.
    pub producer_id: i64,
    /// Producer epoch; `-1` if none.
    pub producer_epoch: i16,
    /// Sequence number of the first record; `-1` if none.
    pub base_sequence: i32,
    /// Declared number of records; not checked until the batch is decoded.
    pub record_count: i32,
    /// The whole batch, from `baseOffset` to its end; a slice of the input, not a copy.
    pub bytes: Bytes,
}

impl BatchView {
    /// Parses the header of exactly one batch. `batch` must hold the whole batch and nothing
    /// more.
    pub fn new(batch: Bytes) -> Result<Self, DecodeError> {
        if batch.len() > MAGIC_AT {
            check_magic(batch[MAGIC_AT] as i8)?;
        }
        if batch.len() < BATCH_HEADER_LEN {
            return Err(DecodeError::Truncated("record batch header"));
        }
        let mut r = Reader::new(batch.slice(..BATCH_HEADER_LEN));
        let base_offset = r.i64()?;
        let batch_length = r.i32()?;
        if usize::try_from(batch_length).ok() != Some(batch.len() - LOG_OVERHEAD) {
            return Err(DecodeError::Invalid(
                "record batch length does not match its bytes",
            ));
        }
        Ok(Self {
            base_offset,
            batch_length,
            partition_leader_epoch: r.i32()?,
            magic: r.i8()?,
            crc: r.u32()?,
            attributes: r.i16()?,
            last_offset_delta: r.i32()?,
            base_timestamp: r.i64()?,
            max_timestamp: r.i64()?,
            producer_id: r.i64()?,
            producer_epoch: r.i16()?,
            base_sequence: r.i32()?,
            record_count: r.i32()?,
            bytes: batch,
        })
    }

    /// Checks the CRC-32C over the bytes from `attributes` to the end.
    pub fn verify_crc(&self) -> Result<(), DecodeError> {
        if crc32c::crc32c(&self.bytes[ATTRIBUTES_AT..]) == self.crc {
            Ok(())
        } else {
            Err(DecodeError::CrcMismatch)
        }
    }

    /// The compression codec in the attributes.
    pub fn compression(&self) -> Result<Compression, DecodeError> {
        Compression::from_attributes(self.attributes)
    }

    /// Whether the batch is part of a transaction (attribute bit 4).
    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_BIT != 0
    }

    /// Whether the batch holds control records (attribute bit 5).
    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_BIT != 0
    }

    /// Offset of the last record: `base_offset + last_offset_delta`.
    pub fn last_offset(&self) -> i64 {
        self.base_offset.wrapping_add(self.last_offset_delta.into())
    }

    /// The records section as stored (compressed if the attributes say so), zero-copy.
    pub fn records_bytes(&self) -> Bytes {
        self.bytes.slice(BATCH_HEADER_LEN..)
    }

    /// Fully decodes this batch: checks the CRC, decompresses within `limits` and decodes the
    /// records.
    pub fn decode(&self, limits: &DecodeLimits) -> Result<RecordBatch, DecodeError> {
        let mut budget = Budget {
            decompressed_bytes: limits.decompressed_bytes_max,
            records: limits.records_max,
        };
        self.decode_with(&mut budget)
    }

    fn decode_with(&self, budget: &mut Budget) -> Result<RecordBatch, DecodeError> {
        self.verify_crc()?;
        let compression = self.compression()?;
        let count = usize::try_from(self.record_count)
            .map_err(|_| DecodeError::Invalid("negative record count"))?;
        if count > budget.records {
            return Err(DecodeError::TooLarge("record count exceeds the limit"));
        }
        budget.records -= count;
        let stored = self.records_bytes();
        let plain = if compression == Compression::None {
            stored
        } else {
            let plain = decompress(compression, &stored, budget.decompressed_bytes)?;
            budget.decompressed_bytes -= plain.len();
            plain
        };
        if count > plain.len() / RECORD_LEN_MIN {
            return Err(DecodeError::TooLarge(
                "record count exceeds the records' bytes",
            ));
        }
        let mut r = Reader::new(plain);
        let mut records = Vec::with_capacity(count);
        for _ in 0..count {
            records.push(Record::decode(&mut r)?);
        }
        if r.remaining() != 0 {
            return Err(DecodeError::Invalid(
                "bytes left after the declared record count",
            ));
        }
        Ok(RecordBatch {
            base_offset: self.base_offset,
            partition_leader_epoch: self.partition_leader_epoch,
            attributes: self.attributes,
            last_offset_delta: self.last_offset_delta,
            base_timestamp: self.base_timestamp,
            max_timestamp: self.max_timestamp,
            producer_id: self.producer_id,
            producer_epoch: self.producer_epoch,
            base_sequence: self.base_sequence,
            records,
        })
    }
}

fn check_magic(magic: i8) -> Result<(), DecodeError> {
    match magic {
        MAGIC_V2 => Ok(()),
        0 | 1 => Err(DecodeError::Invalid(
            "message format v0/v1 is not supported",
        )),
        _ => Err(DecodeError::Invalid("unknown record batch magic")),
    }
}

/// Iterates over the batches of a `records` field, parsing headers only. See [`batches`].
#[derive(Debug, Clone)]
pub struct Batches {
    rest: Bytes,
    allow_partial_tail: bool,
    done: bool,
}

/// Iterates over the concatenated batches in `data` without decompressing them.
///
/// Each item is a [`BatchView`] whose `bytes` is a zero-copy slice of `data`. After the first
/// error the iterator ends. A trailing partial batch gives [`DecodeError::Truncated`] unless
/// [`Batches::allow_partial_tail`] is set, in which case iteration just stops before it and
/// [`Batches::remainder`] holds it.
pub fn batches(data: &Bytes) -> Batches {
    Batches {
        rest: data.clone(),
        allow_partial_tail: false,
        done: false,
    }
}

impl Batches {
    /// Ends iteration silently at a trailing partial batch, as Fetch responses may end with.
    pub fn allow_partial_tail(mut self, allow: bool) -> Self {
        self.allow_partial_tail = allow;
        self
    }

    /// The input not yet consumed: after iteration, the partial tail if there was one.
    pub fn remainder(&self) -> &Bytes {
        &self.rest
    }

    fn partial_tail(&mut self) -> Option<Result<BatchView, DecodeError>> {
        self.done = true;
        if self.allow_partial_tail {
            None
        } else {
            Some(Err(DecodeError::Truncated("partial record batch")))
        }
    }
}

impl Iterator for Batches {
    type Item = Result<BatchView, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.rest.is_empty() {
            return None;
        }
        let rest = &self.rest;
        if rest.len() < LOG_OVERHEAD {
            return self.partial_tail();
        }
        let batch_length = i32::from_be_bytes([rest[8], rest[9], rest[10], rest[11]]);
        // The magic is at the same place in every message format, so check it as soon as it
        // is there: a v0/v1 message set gets its own error even if it is cut short.
        if let Some(Err(e)) = rest.get(MAGIC_AT).map(|&m| check_magic(m as i8)) {
            self.done = true;
            return Some(Err(e));
        }
        let len = match usize::try_from(batch_length) {
            Ok(n) if n >= BATCH_LENGTH_MIN => n + LOG_OVERHEAD,
            _ => {
                self.done = true;
                return Some(Err(DecodeError::Invalid("record batch length too small")));
            }
        };
        if rest.len() < len {
            return self.partial_tail();
        }
        let batch = self.rest.split_to(len);
        let view = BatchView::new(batch);
        if view.is_err() {
            self.done = true;
        }
        Some(view)
    }
}

impl std::iter::FusedIterator for Batches {}

/// Rewrites the base offset of the batch at the start of `batch`, as a broker does when it
/// assigns offsets. The base offset is not covered by the CRC, so no other byte changes.
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) -> Result<(), DecodeError> {
    let field = batch
        .get_mut(..LENGTH_AT)
        .ok_or(DecodeError::Truncated("record batch header"))?;
    field.copy_from_slice(&base_offset.to_be_bytes());
    Ok(())
}

/// Rewrites the partition leader epoch of the batch at the start of `batch`, as a broker does
/// when it appends it. The field is not covered by the CRC.
pub fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) -> Result<(), DecodeError> {
    let field = batch
        .get_mut(LEADER_EPOCH_AT..MAGIC_AT)
        .ok_or(DecodeError::Truncated("record batch header"))?;
    field.copy_from_slice(&epoch.to_be_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> DecodeLimits {
        DecodeLimits::default()
    }

    fn sample_batch() -> RecordBatch {
        RecordBatch {
            base_offset: 100,
            partition_leader_epoch: 3,
            attributes: 0,
            last_offset_delta: 2,
            base_timestamp: 1_700_000_000_000,
            max_timestamp: 1_700_000_000_050,
            producer_id: 42,
            producer_epoch: 1,
            base_sequence: 7,
            records: vec![
                Record {
                    offset_delta: 0,
                    key: Some(Bytes::from_static(b"k0")),
                    value: Some(Bytes::from_static(b"hello")),
                    ..Record::default()
                },
                Record {
                    offset_delta: 1,
                    timestamp_delta: 25,
                    key: None,
                    value: None,
                    headers: vec![
                        RecordHeader {
                            key: "trace".into(),
                            value: Some(Bytes::from_static(b"x")),
                        },
                        RecordHeader {
                            key: String::new(),
                            value: None,
                        },
                    ],
                    ..Record::default()
                },
                Record {
                    offset_delta: 2,
                    timestamp_delta: 50,
                    key: Some(Bytes::new()),
                    value: Some(Bytes::from(vec![9u8; 300])),
                    ..Record::default()
                },
            ],
        }
    }

    fn encode(b: &RecordBatch, c: Compression) -> Bytes {
        let mut out = BytesMut::new();
        b.encode(c, &mut out).unwrap();
        out.freeze()
    }

    /// One batch with one record, written byte by byte from the format description.
    fn hand_built() -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&5i64.to_be_bytes()); // baseOffset
        v.extend_from_slice(&0i32.to_be_bytes()); // batchLength, set below
        v.extend_from_slice(&(-1i32).to_be_bytes()); // partitionLeaderEpoch
        v.push(2); // magic
        v.extend_from_slice(&0u32.to_be_bytes()); // crc, set below
        v.extend_from_slice(&0x0010i16.to_be_bytes()); // attributes: transactional
        v.extend_from_slice(&0i32.to_be_bytes()); // lastOffsetDelta
        v.extend_from_slice(&1000i64.to_be_bytes()); // baseTimestamp
        v.extend_from_slice(&1001i64.to_be_bytes()); // maxTimestamp
        v.extend_from_slice(&77i64.to_be_bytes()); // producerId
        v.extend_from_slice(&2i16.to_be_bytes()); // producerEpoch
        v.extend_from_slice(&9i32.to_be_bytes()); // baseSequence
        v.extend_from_slice(&1i32.to_be_bytes()); // record count
        // Record: attributes 0, timestampDelta 1 (zig-zag 2), offsetDelta 0, key "k" (length
        // 1 → 2), value "vv" (2 → 4), one header "h" → null (-1 → 1).
        let body = [0u8, 2, 0, 2, b'k', 4, b'v', b'v', 2, 2, b'h', 1];
        v.push((body.len() * 2) as u8); // record length, zig-zag
        v.extend_from_slice(&body);
        let len = (v.len() - 12) as i32;
        v[8..12].copy_from_slice(&len.to_be_bytes());
        let crc = crc32c::crc32c(&v[21..]);
        v[17..21].copy_from_slice(&crc.to_be_bytes());
        v
    }

    #[test]
    fn hand_built_batch_decodes_and_encodes_to_the_same_bytes() {
        let bytes = Bytes::from(hand_built());
        // CRC-32C (Castagnoli) of the bytes from attributes on, computed independently of
        // the crc32c crate by a bitwise implementation.
        let mut crc = !0u32;
        for &b in &bytes[21..] {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0x82F6_3B78
                } else {
                    crc >> 1
                };
            }
        }
        assert_eq!(u32::from_be_bytes(bytes[17..21].try_into().unwrap()), !crc);

        let batches = RecordBatch::decode_all(&bytes, &limits(), false).unwrap();
        assert_eq!(batches.len(), 1);
        let b = &batches[0];
        assert_eq!(b.base_offset, 5);
        assert_eq!(b.partition_leader_epoch, -1);
        assert!(b.is_transactional());
        assert!(!b.is_control());
        assert_eq!(b.compression().unwrap(), Compression::None);
        assert_eq!((b.base_timestamp, b.max_timestamp), (1000, 1001));
        assert_eq!(
            (b.producer_id, b.producer_epoch, b.base_sequence),
            (77, 2, 9)
        );
        assert_eq!(
            b.records,
            vec![Record {
                attributes: 0,
                timestamp_delta: 1,
                offset_delta: 0,
                key: Some(Bytes::from_static(b"k")),
                value: Some(Bytes::from_static(b"vv")),
                headers: vec![RecordHeader {
                    key: "h".into(),
                    value: None
                }],
            }]
        );
        assert_eq!(encode(b, Compression::None), bytes);
    }

    #[test]
    fn uncompressed_records_are_slices_of_the_input() {
        let bytes = encode(&sample_batch(), Compression::None);
        let b = RecordBatch::decode_all(&bytes, &limits(), false)
            .unwrap()
            .remove(0);
        let value = b.records[2].value.as_ref().unwrap();
        let range = bytes.as_ptr() as usize..bytes.as_ptr() as usize + bytes.len();
        assert!(range.contains(&(value.as_ptr() as usize)));
    }

    #[test]
    fn every_compression_round_trips() {
        let batch = sample_batch();
        for c in Compression::ALL {
            let bytes = encode(&batch, c);
            let view = batches(&bytes).next().unwrap().unwrap();
            assert_eq!(view.compression().unwrap(), c);
            view.verify_crc().unwrap();
            let back = RecordBatch::decode_all(&bytes, &limits(), false).unwrap();
            let mut expected = batch.clone();
            expected.attributes = c.to_bits();
            assert_eq!(back, vec![expected], "{c:?}");
        }
    }

    #[test]
    fn several_batches_and_views() {
        let mut out = BytesMut::new();
        let mut a = sample_batch();
        a.encode(Compression::Zstd, &mut out).unwrap();
        a.base_offset = 103;
        a.attributes = CONTROL_BIT | TRANSACTIONAL_BIT;
        a.records = vec![Record {
            key: Some(Bytes::from_static(&[0, 0, 0, 1])),
            value: Some(Bytes::from_static(&[0, 0, 0, 0, 0, 0])),
            ..Record::default()
        }];
        a.last_offset_delta = 0;
        a.encode(Compression::None, &mut out).unwrap();
        let bytes = out.freeze();
        let views: Vec<_> = batches(&bytes).collect::<Result<_, _>>().unwrap();
        assert_eq!(views.len(), 2);
        assert_eq!(views[0].record_count, 3);
        assert_eq!(views[0].last_offset(), 102);
        assert_eq!(views[1].base_offset, 103);
        assert!(views[1].is_control() && views[1].is_transactional());
        assert_eq!(views[0].bytes.len() + views[1].bytes.len(), bytes.len());
        let decoded = RecordBatch::decode_all(&bytes, &limits(), false).unwrap();
        assert_eq!(decoded.len(), 2);
        assert!(decoded[1].is_control());
        assert_eq!(
            decoded[1].records[0].control_kind(),
            Some(ControlRecordKind::Commit)
        );
    }

    #[test]
    fn bad_crc_is_a_crc_mismatch() {
        let mut bytes = hand_built();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert_eq!(
            RecordBatch::decode_all(&Bytes::from(bytes.clone()), &limits(), false),
            Err(DecodeError::CrcMismatch)
        );
        // The CRC field itself.
        let mut bytes = hand_built();
        bytes[17] ^= 0x80;
        assert_eq!(
            RecordBatch::decode_all(&Bytes::from(bytes), &limits(), false),
            Err(DecodeError::CrcMismatch)
        );
    }

    #[test]
    fn truncated_input_is_an_error_at_every_length() {
        let bytes = encode(&sample_batch(), Compression::Gzip);
        for n in 1..bytes.len() {
            let cut = bytes.slice(..n);
            assert!(
                RecordBatch::decode_all(&cut, &limits(), false).is_err(),
                "{n}"
            );
            assert_eq!(
                RecordBatch::decode_all(&cut, &limits(), true),
                Ok(vec![]),
                "{n}"
            );
        }
    }

    #[test]
    fn partial_tail_after_complete_batches() {
        let mut out = BytesMut::new();
        sample_batch()
            .encode(Compression::Snappy, &mut out)
            .unwrap();
        let full = out.len();
        sample_batch().encode(Compression::Lz4, &mut out).unwrap();
        let bytes = out.freeze().slice(..full + 30);
        assert_eq!(
            RecordBatch::decode_all(&bytes, &limits(), true)
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            RecordBatch::decode_all(&bytes, &limits(), false),
            Err(DecodeError::Truncated("partial record batch"))
        );
        let mut it = batches(&bytes).allow_partial_tail(true);
        assert!(it.next().unwrap().is_ok());
        assert!(it.next().is_none());
        assert_eq!(it.remainder().len(), 30);
    }

    #[test]
    fn legacy_message_sets_are_rejected() {
        // offset, message size, crc, magic 1, attributes, timestamp, key -1, value -1.
        let mut v = Vec::new();
        v.extend_from_slice(&0i64.to_be_bytes());
        v.extend_from_slice(&22i32.to_be_bytes());
        v.extend_from_slice(&0u32.to_be_bytes());
        v.push(1);
        v.push(0);
        v.extend_from_slice(&0i64.to_be_bytes());
        v.extend_from_slice(&(-1i32).to_be_bytes());
        v.extend_from_slice(&(-1i32).to_be_bytes());
        for magic in [0, 1] {
            v[16] = magic;
            assert_eq!(
                RecordBatch::decode_all(&Bytes::from(v.clone()), &limits(), true),
                Err(DecodeError::Invalid(
                    "message format v0/v1 is not supported"
                ))
            );
        }
        v[16] = 3;
        assert_eq!(
            RecordBatch::decode_all(&Bytes::from(v), &limits(), false),
            Err(DecodeError::Invalid("unknown record batch magic"))
        );
    }

    #[test]
    fn record_count_must_match() {
        for delta in [-1i32, 1] {
            let mut bytes = BytesMut::from(&encode(&sample_batch(), Compression::None)[..]);
            let count = 3 + delta;
            bytes[57..61].copy_from_slice(&count.to_be_bytes());
            let crc = crc32c::crc32c(&bytes[21..]);
            bytes[17..21].copy_from_slice(&crc.to_be_bytes());
            assert!(RecordBatch::decode_all(&bytes.freeze(), &limits(), false).is_err());
        }
    }

    #[test]
    fn huge_record_count_is_rejected_before_allocating() {
        for count in [i32::MAX, -5] {
            let mut bytes = BytesMut::from(&encode(&sample_batch(), Compression::Zstd)[..]);
            bytes[57..61].copy_from_slice(&count.to_be_bytes());
            let crc = crc32c::crc32c(&bytes[21..]);
            bytes[17..21].copy_from_slice(&crc.to_be_bytes());
            let big = DecodeLimits {
                records_max: usize::MAX,
                ..limits()
            };
            assert!(RecordBatch::decode_all(&bytes.freeze(), &big, false).is_err());
        }
    }

    #[test]
    fn limits_hold_across_batches() {
        let mut out = BytesMut::new();
        for _ in 0..3 {
            sample_batch().encode(Compression::Gzip, &mut out).unwrap();
        }
        let bytes = out.freeze();
        let small = DecodeLimits {
            records_max: 8,
            ..limits()
        };
        assert_eq!(
            RecordBatch::decode_all(&bytes, &small, false),
            Err(DecodeError::TooLarge("record count exceeds the limit"))
        );
        let one = batches(&bytes).next().unwrap().unwrap();
        let plain_len = decompress(Compression::Gzip, &one.records_bytes(), usize::MAX)
            .unwrap()
            .len();
        let small = DecodeLimits {
            decompressed_bytes_max: plain_len * 2,
            ..limits()
        };
        assert!(matches!(
            RecordBatch::decode_all(&bytes, &small, false),
            Err(DecodeError::TooLarge(_))
        ));
        let enough = DecodeLimits {
            decompressed_bytes_max: plain_len * 3,
            ..limits()
        };
        assert_eq!(
            RecordBatch::decode_all(&bytes, &enough, false)
                .unwrap()
                .len(),
            3
        );
    }

    #[test]
    fn bad_compression_bits() {
        let mut bytes = BytesMut::from(&encode(&sample_batch(), Compression::None)[..]);
        bytes[22] |= 0x07;
        let crc = crc32c::crc32c(&bytes[21..]);
        bytes[17..21].copy_from_slice(&crc.to_be_bytes());
        assert_eq!(
            RecordBatch::decode_all(&bytes.freeze(), &limits(), false),
            Err(DecodeError::Compression("unknown compression codec"))
        );
    }

    #[test]
    fn rewriting_offset_and_epoch_keeps_the_crc_valid() {
        let mut bytes = BytesMut::from(&encode(&sample_batch(), Compression::Lz4)[..]);
        set_base_offset(&mut bytes, 1 << 40).unwrap();
        set_partition_leader_epoch(&mut bytes, 12).unwrap();
        let view = batches(&bytes.freeze()).next().unwrap().unwrap();
        view.verify_crc().unwrap();
        assert_eq!(
            (view.base_offset, view.partition_leader_epoch),
            (1 << 40, 12)
        );
        assert!(set_base_offset(&mut [0u8; 7], 0).is_err());
        assert!(set_partition_leader_epoch(&mut [0u8; 15], 0).is_err());
    }

    #[test]
    fn empty_input_and_empty_batch() {
        assert_eq!(
            RecordBatch::decode_all(&Bytes::new(), &limits(), false),
            Ok(vec![])
        );
        let empty = RecordBatch::default();
        for c in Compression::ALL {
            let bytes = encode(&empty, c);
            let back = RecordBatch::decode_all(&bytes, &limits(), false).unwrap();
            assert_eq!(back[0].records, vec![]);
        }
    }

    #[test]
    fn encode_leaves_out_unchanged_on_error_and_appends_otherwise() {
        let mut out = BytesMut::from(&b"prefix"[..]);
        sample_batch().encode(Compression::None, &mut out).unwrap();
        assert_eq!(&out[..6], b"prefix");
        let view = BatchView::new(out.freeze().slice(6..)).unwrap();
        view.verify_crc().unwrap();
    }
}
