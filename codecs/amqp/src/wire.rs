//! Wire primitives: a bounds-checked [`Reader`] over [`Bytes`] and writers into [`BytesMut`].
//!
//! Every read checks `remaining()` first and returns [`DecodeError`] instead of panicking, so
//! peer-controlled lengths never index out of bounds. Integers are big-endian (spec 4.2.5).

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::error::DecodeError;
use crate::limits::Limits;

/// A cursor over the payload of one complete frame.
#[derive(Debug, Clone)]
pub struct Reader {
    buf: Bytes,
    table_depth_max: usize,
}

macro_rules! get_num {
    ($name:ident, $ty:ty, $get:ident) => {
        #[doc = concat!("Reads a big-endian `", stringify!($ty), "`.")]
        pub fn $name(&mut self) -> Result<$ty, DecodeError> {
            self.need(size_of::<$ty>(), stringify!($ty))?;
            Ok(self.buf.$get())
        }
    };
}

impl Reader {
    /// A reader over `buf` with the default table depth limit.
    pub fn new(buf: Bytes) -> Self {
        Self::with_table_depth(buf, Limits::TABLE_DEPTH_MAX_DEFAULT)
    }

    /// A reader over `buf` that accepts field tables nested at most `table_depth_max` deep.
    pub fn with_table_depth(buf: Bytes, table_depth_max: usize) -> Self {
        Self {
            buf,
            table_depth_max,
        }
    }

    /// The deepest nesting of tables and arrays accepted.
    pub fn table_depth_max(&self) -> usize {
        self.table_depth_max
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

    get_num!(u8, u8, get_u8);
    get_num!(i8, i8, get_i8);
    get_num!(u16, u16, get_u16);
    get_num!(i16, i16, get_i16);
    get_num!(u32, u32, get_u32);
    get_num!(i32, i32, get_i32);
    get_num!(u64, u64, get_u64);
    get_num!(i64, i64, get_i64);
    get_num!(f32, f32, get_f32);
    get_num!(f64, f64, get_f64);

    /// Takes the next `n` bytes without copying.
    pub fn take(&mut self, n: usize) -> Result<Bytes, DecodeError> {
        self.need(n, "bytes")?;
        Ok(self.buf.split_to(n))
    }

    /// Reads a short string: a length octet, then that many bytes of UTF-8.
    pub fn shortstr(&mut self) -> Result<String, DecodeError> {
        let n = usize::from(self.u8()?);
        self.need(n, "short string")?;
        let s = std::str::from_utf8(&self.buf[..n])
            .map_err(|_| DecodeError::Invalid("short string is not UTF-8"))?
            .to_owned();
        self.buf.advance(n);
        Ok(s)
    }

    /// Reads a long string: a 32-bit length, then that many bytes, without copying.
    pub fn longstr(&mut self) -> Result<Bytes, DecodeError> {
        let n = self.u32()? as usize;
        self.need(n, "long string")?;
        Ok(self.buf.split_to(n))
    }
}

/// The longest prefix of `s` that fits `max` bytes and ends on a char boundary.
pub fn truncate_str(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Appends a short string. Strings longer than 255 bytes are cut at the last char boundary
/// that fits, as RabbitMQ cuts reply texts; names received from peers always fit.
pub fn put_shortstr(out: &mut BytesMut, s: &str) {
    let s = truncate_str(s, 255);
    out.put_u8(s.len() as u8);
    out.put_slice(s.as_bytes());
}

/// Appends a long string: a 32-bit length, then the bytes.
pub fn put_longstr(out: &mut BytesMut, b: &[u8]) {
    out.put_u32(u32::try_from(b.len()).expect("long string under 4 GiB"));
    out.put_slice(b);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_string_round_trip_and_truncation() {
        let mut out = BytesMut::new();
        put_shortstr(&mut out, "héllo");
        let mut r = Reader::new(out.freeze());
        assert_eq!(r.shortstr().unwrap(), "héllo");
        r.finish().unwrap();
        let long = "é".repeat(200);
        let mut out = BytesMut::new();
        put_shortstr(&mut out, &long);
        assert_eq!(out[0], 254);
        assert_eq!(Reader::new(out.freeze()).shortstr().unwrap().len(), 254);
    }

    #[test]
    fn truncated_reads_fail() {
        let mut r = Reader::new(Bytes::from_static(&[5, b'a']));
        assert_eq!(r.shortstr(), Err(DecodeError::Truncated("short string")));
        let mut r = Reader::new(Bytes::from_static(&[0xff, 0xff, 0xff, 0xff]));
        assert_eq!(r.longstr(), Err(DecodeError::Truncated("long string")));
        let mut r = Reader::new(Bytes::from_static(&[1]));
        assert_eq!(r.u16(), Err(DecodeError::Truncated("u16")));
        let mut r = Reader::new(Bytes::from_static(&[1, 0xff]));
        assert_eq!(
            r.shortstr(),
            Err(DecodeError::Invalid("short string is not UTF-8"))
        );
    }
}
