//! Field tables and field values, with the value types RabbitMQ uses.
//!
//! Decoding is iterative with an explicit stack bounded by [`Reader::table_depth_max`], so a
//! peer cannot exhaust the stack with deeply nested tables. Decoding also accepts the 0-9-1
//! PDF's `U` (i16) and `L` (i64), read as [`FieldValue::I16`] and [`FieldValue::I64`]; short
//! strings (`s` in the PDF) are never emitted, since RabbitMQ reads `s` as i16.

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::DecodeError;
use crate::wire::{Reader, put_longstr, put_shortstr};

/// An ordered table of named values. Keys are short strings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldTable(pub Vec<(String, FieldValue)>);

/// One value of a field table or array, tagged on the wire by one octet.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    /// `t`: one octet, non-zero is true.
    Bool(bool),
    /// `b`.
    I8(i8),
    /// `B`.
    U8(u8),
    /// `s` (also `U` on decode).
    I16(i16),
    /// `u`.
    U16(u16),
    /// `I`.
    I32(i32),
    /// `i`.
    U32(u32),
    /// `l` (also `L` on decode).
    I64(i64),
    /// `f`.
    F32(f32),
    /// `d`.
    F64(f64),
    /// `D`: the value is `value / 10^scale`.
    Decimal {
        /// Number of decimal digits after the point.
        scale: u8,
        /// The unscaled value.
        value: u32,
    },
    /// `S`: a long string.
    LongString(Bytes),
    /// `x`: a byte array.
    ByteArray(Bytes),
    /// `A`: an array of values: a 32-bit byte size, then tagged values.
    Array(Vec<FieldValue>),
    /// `T`: seconds since the epoch.
    Timestamp(u64),
    /// `F`: a nested table.
    Table(FieldTable),
    /// `V`: no value.
    Void,
}

impl FieldTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// The value of the first entry named `key`.
    pub fn get(&self, key: &str) -> Option<&FieldValue> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Sets `key` to `value`, replacing an existing entry in place or appending a new one.
    pub fn insert(&mut self, key: impl Into<String>, value: FieldValue) {
        let key = key.into();
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = value,
            None => self.0.push((key, value)),
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the table has no entries.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Appends the table: a 32-bit byte size, then `name, tag, value` entries.
    pub fn encode(&self, out: &mut BytesMut) {
        let at = out.len();
        out.put_u32(0);
        self.encode_entries(out);
        patch_size(out, at);
    }

    /// Appends the entries without the size prefix (the form of an AMQPLAIN response).
    pub fn encode_entries(&self, out: &mut BytesMut) {
        for (k, v) in &self.0 {
            put_shortstr(out, k);
            v.encode(out);
        }
    }

    /// Reads a table with its size prefix.
    pub fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let end = open(r, r.remaining())?;
        decode_nested(r, Open::Table(Self::new(), end, None))
    }

    /// Reads table entries filling the whole of `r`, without a size prefix (AMQPLAIN).
    pub fn decode_entries(r: &mut Reader) -> Result<Self, DecodeError> {
        decode_nested(r, Open::Table(Self::new(), 0, None))
    }
}

impl FromIterator<(String, FieldValue)> for FieldTable {
    fn from_iter<I: IntoIterator<Item = (String, FieldValue)>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

impl FieldValue {
    /// The octet tagging this value on the wire.
    pub fn tag(&self) -> u8 {
        match self {
            Self::Bool(_) => b't',
            Self::I8(_) => b'b',
            Self::U8(_) => b'B',
            Self::I16(_) => b's',
            Self::U16(_) => b'u',
            Self::I32(_) => b'I',
            Self::U32(_) => b'i',
            Self::I64(_) => b'l',
            Self::F32(_) => b'f',
            Self::F64(_) => b'd',
            Self::Decimal { .. } => b'D',
            Self::LongString(_) => b'S',
            Self::ByteArray(_) => b'x',
            Self::Array(_) => b'A',
            Self::Timestamp(_) => b'T',
            Self::Table(_) => b'F',
            Self::Void => b'V',
        }
    }

    /// The value if it is a boolean.
    pub fn as_bool(&self) -> Option<bool> {
        if let Self::Bool(b) = self {
            Some(*b)
        } else {
            None
        }
    }

    /// The bytes if the value is a long string or byte array.
    pub fn as_bytes(&self) -> Option<&Bytes> {
        match self {
            Self::LongString(b) | Self::ByteArray(b) => Some(b),
            _ => None,
        }
    }

    /// The nested table if the value is one.
    pub fn as_table(&self) -> Option<&FieldTable> {
        if let Self::Table(t) = self {
            Some(t)
        } else {
            None
        }
    }

    /// Appends the tag and the value.
    pub fn encode(&self, out: &mut BytesMut) {
        out.put_u8(self.tag());
        match self {
            Self::Bool(v) => out.put_u8(u8::from(*v)),
            Self::I8(v) => out.put_i8(*v),
            Self::U8(v) => out.put_u8(*v),
            Self::I16(v) => out.put_i16(*v),
            Self::U16(v) => out.put_u16(*v),
            Self::I32(v) => out.put_i32(*v),
            Self::U32(v) => out.put_u32(*v),
            Self::I64(v) => out.put_i64(*v),
            Self::F32(v) => out.put_f32(*v),
            Self::F64(v) => out.put_f64(*v),
            Self::Decimal { scale, value } => {
                out.put_u8(*scale);
                out.put_u32(*value);
            }
            Self::LongString(b) | Self::ByteArray(b) => put_longstr(out, b),
            Self::Array(items) => {
                let at = out.len();
                out.put_u32(0);
                for v in items {
                    v.encode(out);
                }
                patch_size(out, at);
            }
            Self::Timestamp(v) => out.put_u64(*v),
            Self::Table(t) => t.encode(out),
            Self::Void => {}
        }
    }

    /// Reads the value of a non-container `tag`.
    fn decode_scalar(tag: u8, r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(match tag {
            b't' => Self::Bool(r.u8()? != 0),
            b'b' => Self::I8(r.i8()?),
            b'B' => Self::U8(r.u8()?),
            b's' | b'U' => Self::I16(r.i16()?),
            b'u' => Self::U16(r.u16()?),
            b'I' => Self::I32(r.i32()?),
            b'i' => Self::U32(r.u32()?),
            b'l' | b'L' => Self::I64(r.i64()?),
            b'f' => Self::F32(r.f32()?),
            b'd' => Self::F64(r.f64()?),
            b'D' => Self::Decimal {
                scale: r.u8()?,
                value: r.u32()?,
            },
            b'S' => Self::LongString(r.longstr()?),
            b'x' => Self::ByteArray(r.longstr()?),
            b'T' => Self::Timestamp(r.u64()?),
            b'V' => Self::Void,
            _ => return Err(DecodeError::Invalid("unknown field value type")),
        })
    }
}

/// Writes the byte size of what follows the 4-byte prefix at `at`.
fn patch_size(out: &mut BytesMut, at: usize) {
    let size = u32::try_from(out.len() - at - 4).expect("table under 4 GiB");
    out[at..at + 4].copy_from_slice(&size.to_be_bytes());
}

/// A table or array being decoded: its contents so far, the `remaining()` at which it ends,
/// and the key it will be stored under in its parent table.
enum Open {
    Table(FieldTable, usize, Option<String>),
    Array(Vec<FieldValue>, usize, Option<String>),
}

impl Open {
    fn end(&self) -> usize {
        match self {
            Self::Table(_, end, _) | Self::Array(_, end, _) => *end,
        }
    }

    fn push(&mut self, key: Option<String>, value: FieldValue) {
        match self {
            Self::Table(t, ..) => t.0.push((key.unwrap_or_default(), value)),
            Self::Array(items, ..) => items.push(value),
        }
    }

    fn into_value(self) -> (Option<String>, FieldValue) {
        match self {
            Self::Table(t, _, key) => (key, FieldValue::Table(t)),
            Self::Array(items, _, key) => (key, FieldValue::Array(items)),
        }
    }
}

/// Reads a 32-bit size that must fit in the `room` bytes left in the enclosing container,
/// and returns the `remaining()` at which the new container ends.
fn open(r: &mut Reader, room: usize) -> Result<usize, DecodeError> {
    let size = r.u32()? as usize;
    let room = room.min(r.remaining());
    if size > room {
        return Err(DecodeError::TooLarge(
            "table or array larger than its container",
        ));
    }
    Ok(r.remaining() - size)
}

fn decode_nested(r: &mut Reader, root: Open) -> Result<FieldTable, DecodeError> {
    let depth_max = r.table_depth_max().max(1);
    let mut stack = vec![root];
    while let Some(top) = stack.last_mut() {
        let end = top.end();
        if r.remaining() == end {
            let (key, value) = stack.pop().expect("stack is not empty").into_value();
            match stack.last_mut() {
                Some(parent) => parent.push(key, value),
                None => match value {
                    FieldValue::Table(t) => return Ok(t),
                    _ => unreachable!("the root is a table"),
                },
            }
            continue;
        }
        let key = match top {
            Open::Table(..) => Some(r.shortstr()?),
            Open::Array(..) => None,
        };
        let tag = r.u8()?;
        if matches!(tag, b'F' | b'A') {
            if stack.len() >= depth_max {
                return Err(DecodeError::TooLarge("field tables nested too deep"));
            }
            let child_end = open(r, r.remaining().saturating_sub(end))?;
            let child = if tag == b'F' {
                Open::Table(FieldTable::new(), child_end, key)
            } else {
                Open::Array(Vec::new(), child_end, key)
            };
            stack.push(child);
        } else {
            let value = FieldValue::decode_scalar(tag, r)?;
            top.push(key, value);
        }
        if r.remaining() < end {
            return Err(DecodeError::Invalid("field value overruns its table"));
        }
    }
    unreachable!("the loop returns when the root table is complete")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(t: &FieldTable) -> FieldTable {
        let mut out = BytesMut::new();
        t.encode(&mut out);
        let mut r = Reader::new(out.freeze());
        let back = FieldTable::decode(&mut r).unwrap();
        r.finish().unwrap();
        back
    }

    #[test]
    fn every_type_round_trips() {
        let mut inner = FieldTable::new();
        inner.insert("x", FieldValue::Bool(true));
        let t: FieldTable = [
            FieldValue::Bool(false),
            FieldValue::I8(-1),
            FieldValue::U8(200),
            FieldValue::I16(-300),
            FieldValue::U16(60000),
            FieldValue::I32(-5),
            FieldValue::U32(5),
            FieldValue::I64(-7),
            FieldValue::F32(1.5),
            FieldValue::F64(-2.25),
            FieldValue::Decimal {
                scale: 2,
                value: 12345,
            },
            FieldValue::LongString(Bytes::from_static(b"hello")),
            FieldValue::ByteArray(Bytes::from_static(&[0, 1, 2])),
            FieldValue::Array(vec![FieldValue::Void, FieldValue::Table(inner.clone())]),
            FieldValue::Timestamp(1_700_000_000),
            FieldValue::Table(inner),
            FieldValue::Void,
        ]
        .into_iter()
        .enumerate()
        .map(|(i, v)| (format!("k{i}"), v))
        .collect();
        assert_eq!(round_trip(&t), t);
    }

    #[test]
    fn pdf_tags_decode_as_rabbitmq_types() {
        let bytes = [
            0, 0, 0, 16, 1, b'a', b'U', 0xff, 0xfe, 1, b'b', b'L', 0, 0, 0, 0, 0, 0, 0, 9,
        ];
        let t = FieldTable::decode(&mut Reader::new(Bytes::copy_from_slice(&bytes))).unwrap();
        assert_eq!(t.get("a"), Some(&FieldValue::I16(-2)));
        assert_eq!(t.get("b"), Some(&FieldValue::I64(9)));
    }

    #[test]
    fn nesting_beyond_the_limit_fails() {
        let mut v = FieldValue::Void;
        for _ in 0..20 {
            v = FieldValue::Table(FieldTable(vec![("n".into(), v)]));
        }
        let t = FieldTable(vec![("n".into(), v)]);
        let mut out = BytesMut::new();
        t.encode(&mut out);
        let mut r = Reader::with_table_depth(out.clone().freeze(), 16);
        assert!(matches!(
            FieldTable::decode(&mut r),
            Err(DecodeError::TooLarge(_))
        ));
        let mut r = Reader::with_table_depth(out.freeze(), 32);
        assert_eq!(FieldTable::decode(&mut r).unwrap(), t);
    }

    #[test]
    fn sizes_that_overrun_fail() {
        for bytes in [
            &[0, 0, 0, 9, 1, b'a', b'F', 0, 0, 0, 9, 0, 0][..],
            &[0, 0, 0, 4, 1, b'a', b'I', 0, 0, 0, 1][..],
            &[0, 0, 0, 3, 1, b'a', b'?'][..],
            &[0xff, 0xff, 0xff, 0xff][..],
        ] {
            let r = &mut Reader::new(Bytes::copy_from_slice(bytes));
            assert!(FieldTable::decode(r).is_err(), "{bytes:?}");
        }
    }
}
