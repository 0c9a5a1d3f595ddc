//! Wire primitives: a bounds-checked [`Reader`] over [`Bytes`] and writers into [`BytesMut`].
//!
//! Every read checks `remaining()` first and returns [`DecodeError`] instead of panicking,
//! so peer-controlled lengths never index out of bounds.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use std::collections::BTreeMap;

use crate::error::{DecodeError, EncodeError};

/// A cursor over one complete, delimited piece of input (a frame or a record batch).
#[derive(Debug, Clone)]
pub struct Reader {
    buf: Bytes,
}

macro_rules! get_int {
    ($name:ident, $ty:ty, $get:ident) => {
        #[doc = concat!("Reads a big-endian `", stringify!($ty), "`.")]
        pub fn $name(&mut self) -> Result<$ty, DecodeError> {
            self.need(size_of::<$ty>(), stringify!($ty))?;
            Ok(self.buf.$get())
        }
    };
}

impl Reader {
    /// A reader over `buf`.
    pub fn new(buf: Bytes) -> Self {
        Self { buf }
    }

    /// Bytes left to read.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// Fails with [`DecodeError::TrailingData`] if anything is left.
    pub fn finish(&self) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingData)
        }
    }

    fn need(&self, n: usize, what: &'static str) -> Result<(), DecodeError> {
        if self.buf.len() < n {
            Err(DecodeError::Truncated(what))
        } else {
            Ok(())
        }
    }

    get_int!(i8, i8, get_i8);
    get_int!(i16, i16, get_i16);
    get_int!(u16, u16, get_u16);
    get_int!(i32, i32, get_i32);
    get_int!(u32, u32, get_u32);
    get_int!(i64, i64, get_i64);
    get_int!(f64, f64, get_f64);

    /// Reads a boolean (one byte, non-zero is true).
    pub fn bool(&mut self) -> Result<bool, DecodeError> {
        Ok(self.i8()? != 0)
    }

    /// Reads a 16-byte UUID.
    pub fn uuid(&mut self) -> Result<[u8; 16], DecodeError> {
        self.need(16, "uuid")?;
        let mut out = [0u8; 16];
        self.buf.copy_to_slice(&mut out);
        Ok(out)
    }

    /// Takes the next `n` bytes without copying.
    pub fn take(&mut self, n: usize) -> Result<Bytes, DecodeError> {
        self.need(n, "bytes")?;
        Ok(self.buf.split_to(n))
    }

    /// Reads an unsigned LEB128 varint of at most 32 bits.
    pub fn uvarint(&mut self) -> Result<u32, DecodeError> {
        let v = self.uvarlong()?;
        u32::try_from(v).map_err(|_| DecodeError::Invalid("unsigned varint exceeds 32 bits"))
    }

    /// Reads an unsigned LEB128 varint of at most 64 bits.
    pub fn uvarlong(&mut self) -> Result<u64, DecodeError> {
        let mut value = 0u64;
        for shift in (0..70).step_by(7) {
            let b = self.u8()?;
            if shift == 63 && b > 1 {
                return Err(DecodeError::Invalid("varint overflows 64 bits"));
            }
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::Invalid("varint too long"))
    }

    /// Reads a zig-zag encoded signed varint of at most 32 bits.
    pub fn varint(&mut self) -> Result<i32, DecodeError> {
        let v = self.varlong()?;
        i32::try_from(v).map_err(|_| DecodeError::Invalid("varint exceeds 32 bits"))
    }

    /// Reads a zig-zag encoded signed varint of at most 64 bits.
    pub fn varlong(&mut self) -> Result<i64, DecodeError> {
        let u = self.uvarlong()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        self.need(1, "u8")?;
        Ok(self.buf.get_u8())
    }

    /// Reads a length that must fit in the remaining input, where `-1` (or compact `0`) is null.
    fn checked_len(&self, len: i64, what: &'static str) -> Result<Option<usize>, DecodeError> {
        if len < 0 {
            return if len == -1 {
                Ok(None)
            } else {
                Err(DecodeError::Invalid(what))
            };
        }
        let len = len as usize;
        if len > self.buf.len() {
            return Err(DecodeError::Truncated(what));
        }
        Ok(Some(len))
    }

    /// Reads the length prefix of a string, bytes or array: `i16`/`i32` classic or compact
    /// (unsigned varint of length + 1). `None` is null. The length is checked against the input.
    pub fn length(&mut self, kind: Len) -> Result<Option<usize>, DecodeError> {
        let len = match kind {
            Len::I16 => i64::from(self.i16()?),
            Len::I32 => i64::from(self.i32()?),
            Len::Compact => i64::from(self.uvarint()?) - 1,
        };
        self.checked_len(len, "length prefix")
    }

    /// Reads the element count of an array and checks it against the remaining input,
    /// assuming every element takes at least `min_elem_bytes`.
    pub fn array_len(
        &mut self,
        kind: Len,
        min_elem_bytes: usize,
    ) -> Result<Option<usize>, DecodeError> {
        let len = match kind {
            Len::I16 => i64::from(self.i16()?),
            Len::I32 => i64::from(self.i32()?),
            Len::Compact => i64::from(self.uvarint()?) - 1,
        };
        if len < -1 {
            return Err(DecodeError::Invalid("negative array length"));
        }
        if len == -1 {
            return Ok(None);
        }
        let len = len as usize;
        if len.saturating_mul(min_elem_bytes.max(1)) > self.buf.len() {
            return Err(DecodeError::TooLarge("array length exceeds the input"));
        }
        Ok(Some(len))
    }

    /// Reads a nullable string with the given length encoding.
    pub fn nullable_string(&mut self, kind: Len) -> Result<Option<String>, DecodeError> {
        match self.length(kind)? {
            None => Ok(None),
            Some(n) => {
                let b = self.buf.split_to(n);
                String::from_utf8(b.to_vec())
                    .map(Some)
                    .map_err(|_| DecodeError::Invalid("string is not UTF-8"))
            }
        }
    }

    /// Reads a non-null string with the given length encoding.
    pub fn string(&mut self, kind: Len) -> Result<String, DecodeError> {
        self.nullable_string(kind)?
            .ok_or(DecodeError::Invalid("null string"))
    }

    /// Reads nullable bytes with the given length encoding, without copying.
    pub fn nullable_bytes(&mut self, kind: Len) -> Result<Option<Bytes>, DecodeError> {
        Ok(self.length(kind)?.map(|n| self.buf.split_to(n)))
    }

    /// Reads non-null bytes with the given length encoding, without copying.
    pub fn bytes(&mut self, kind: Len) -> Result<Bytes, DecodeError> {
        self.nullable_bytes(kind)?
            .ok_or(DecodeError::Invalid("null bytes"))
    }
}

/// How a string, bytes or array length is encoded on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Len {
    /// Classic `int16` length (strings).
    I16,
    /// Classic `int32` length (bytes, arrays).
    I32,
    /// Compact: unsigned varint of length + 1, `0` for null (flexible versions).
    Compact,
}

/// Writes an unsigned LEB128 varint.
pub fn put_uvarlong(w: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        w.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    w.put_u8(v as u8);
}

/// Writes an unsigned LEB128 varint of 32 bits.
pub fn put_uvarint(w: &mut BytesMut, v: u32) {
    put_uvarlong(w, u64::from(v));
}

/// Writes a zig-zag encoded signed varint.
pub fn put_varlong(w: &mut BytesMut, v: i64) {
    put_uvarlong(w, ((v << 1) ^ (v >> 63)) as u64);
}

/// Writes a zig-zag encoded signed 32-bit varint.
pub fn put_varint(w: &mut BytesMut, v: i32) {
    put_varlong(w, i64::from(v));
}

/// Number of bytes `put_uvarlong` writes for `v`.
pub fn uvarlong_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// Number of bytes `put_varlong` writes for `v`.
pub fn varlong_len(v: i64) -> usize {
    uvarlong_len(((v << 1) ^ (v >> 63)) as u64)
}

/// Writes a length prefix; `None` writes null (`-1`, or compact `0`).
pub fn put_length(w: &mut BytesMut, kind: Len, len: Option<usize>) {
    match (kind, len) {
        (Len::I16, Some(n)) => w.put_i16(n as i16),
        (Len::I16, None) => w.put_i16(-1),
        (Len::I32, Some(n)) => w.put_i32(n as i32),
        (Len::I32, None) => w.put_i32(-1),
        (Len::Compact, Some(n)) => put_uvarint(w, n as u32 + 1),
        (Len::Compact, None) => put_uvarint(w, 0),
    }
}

/// Writes a nullable string or byte string with the given length encoding.
pub fn put_nullable_bytes(w: &mut BytesMut, kind: Len, v: Option<&[u8]>) {
    put_length(w, kind, v.map(<[u8]>::len));
    if let Some(v) = v {
        w.put_slice(v);
    }
}

/// Length encoding of strings: `int16` classic, compact in flexible versions.
pub fn string_len(flexible: bool) -> Len {
    if flexible { Len::Compact } else { Len::I16 }
}

/// Length encoding of bytes and arrays: `int32` classic, compact in flexible versions.
pub fn bytes_len(flexible: bool) -> Len {
    if flexible { Len::Compact } else { Len::I32 }
}

/// Reads an array whose count is checked against the input (each element takes at least
/// `min_elem_bytes`) before anything is allocated. `None` is a null array.
pub fn read_array<T>(
    r: &mut Reader,
    kind: Len,
    min_elem_bytes: usize,
    mut elem: impl FnMut(&mut Reader) -> Result<T, DecodeError>,
) -> Result<Option<Vec<T>>, DecodeError> {
    let Some(n) = r.array_len(kind, min_elem_bytes)? else {
        return Ok(None);
    };
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(elem(r)?);
    }
    Ok(Some(out))
}

/// Reads a tagged-field section. `known(tag, reader)` decodes a tag it knows from a reader
/// holding exactly that field and returns `true`, or returns `false` to keep the field in
/// `unknown`. Tags must be strictly increasing.
pub fn read_tagged_fields(
    r: &mut Reader,
    unknown: &mut BTreeMap<i32, Bytes>,
    mut known: impl FnMut(i32, &mut Reader) -> Result<bool, DecodeError>,
) -> Result<(), DecodeError> {
    let count = r.uvarint()?;
    let mut last: i64 = -1;
    for _ in 0..count {
        let tag = r.uvarint()?;
        if i64::from(tag) <= last {
            return Err(DecodeError::Invalid("tagged fields out of order"));
        }
        last = i64::from(tag);
        let tag = i32::try_from(tag).map_err(|_| DecodeError::Invalid("tag exceeds i32"))?;
        let size = r.uvarint()? as usize;
        let mut field = Reader::new(r.take(size)?);
        if known(tag, &mut field)? {
            field.finish()?;
        } else {
            let rest = field.remaining();
            unknown.insert(tag, field.take(rest)?);
        }
    }
    Ok(())
}

/// Writes a tagged-field section: the `known` fields (already encoded, in ascending tag
/// order) merged with `unknown` ones; a known tag wins over an unknown one with the same tag.
pub fn put_tagged_fields(
    w: &mut BytesMut,
    known: Vec<(i32, BytesMut)>,
    unknown: &BTreeMap<i32, Bytes>,
) {
    let known_tags: Vec<i32> = known.iter().map(|(k, _)| *k).collect();
    let dup = |t: &i32| known_tags.contains(t);
    let unknown_count = unknown.keys().filter(|t| !dup(t)).count();
    put_uvarint(w, (known.len() + unknown_count) as u32);
    let mut known = known.into_iter().peekable();
    let mut unknown = unknown.iter().filter(|(t, _)| !dup(t)).peekable();
    loop {
        let take_known = match (known.peek(), unknown.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some((k, _)), Some((u, _))) => k < *u,
        };
        let (tag, data): (i32, &[u8]) = if take_known {
            let (tag, data) = known.next().expect("peeked");
            put_tagged(w, tag, &data);
            continue;
        } else {
            let (tag, data) = unknown.next().expect("peeked");
            (*tag, data)
        };
        put_tagged(w, tag, data);
    }
}

fn put_tagged(w: &mut BytesMut, tag: i32, data: &[u8]) {
    put_uvarint(w, tag as u32);
    put_uvarint(w, data.len() as u32);
    w.put_slice(data);
}

fn check_len(kind: Len, len: usize, field: &'static str) -> Result<(), EncodeError> {
    let max = match kind {
        Len::I16 => i16::MAX as usize,
        Len::I32 | Len::Compact => i32::MAX as usize - 1,
    };
    if len > max {
        Err(EncodeError::TooLong(field))
    } else {
        Ok(())
    }
}

/// Writes a nullable string or byte string, failing if it is too long for `kind`.
pub fn put_bytes_checked(
    w: &mut BytesMut,
    kind: Len,
    v: Option<&[u8]>,
    field: &'static str,
) -> Result<(), EncodeError> {
    if let Some(v) = v {
        check_len(kind, v.len(), field)?;
    }
    put_nullable_bytes(w, kind, v);
    Ok(())
}

/// Writes an array length (`None` is null), failing if it is too long for `kind`.
pub fn put_array_len(
    w: &mut BytesMut,
    kind: Len,
    len: Option<usize>,
    field: &'static str,
) -> Result<(), EncodeError> {
    if let Some(n) = len {
        check_len(kind, n, field)?;
    }
    put_length(w, kind, len);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip() {
        for v in [
            0i64,
            1,
            -1,
            63,
            -64,
            64,
            300,
            i64::from(i32::MAX),
            i64::MIN,
            i64::MAX,
        ] {
            let mut w = BytesMut::new();
            put_varlong(&mut w, v);
            assert_eq!(w.len(), varlong_len(v));
            let mut r = Reader::new(w.freeze());
            assert_eq!(r.varlong().unwrap(), v);
            r.finish().unwrap();
        }
    }

    #[test]
    fn lengths_are_checked_against_input() {
        let mut r = Reader::new(Bytes::from_static(&[0x7f, 0xff, 0xff, 0xff, 1]));
        assert!(r.bytes(Len::I32).is_err());
        let mut r = Reader::new(Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0x0f]));
        assert!(r.array_len(Len::Compact, 1).is_err());
        let mut r = Reader::new(Bytes::from_static(&[]));
        assert_eq!(r.i16(), Err(DecodeError::Truncated("i16")));
    }

    #[test]
    fn compact_null_and_empty() {
        let mut r = Reader::new(Bytes::from_static(&[0, 1]));
        assert_eq!(r.nullable_string(Len::Compact).unwrap(), None);
        assert_eq!(
            r.nullable_string(Len::Compact).unwrap(),
            Some(String::new())
        );
    }
}
