//! Splitting a byte stream into frames, and encoding frames into a caller's buffer.
//!
//! A frame is `length u32` (big-endian, the bytes after this field), a 12-byte header
//! (`magic 0xB7, version u8, opcode u8, flags u8, correlation_id u64` big-endian), then the
//! body: CBOR, compressed when flag bit 0 is set (see [`crate::compression`]).

use bytes::{BufMut, Bytes, BytesMut};

use crate::compression::Compression;
use crate::error::{DecodeError, FrameError};
use crate::limits::Limits;

/// The first header byte of every frame.
pub const MAGIC: u8 = 0xB7;
/// The protocol version this crate speaks.
pub const VERSION: u8 = 1;
/// Bytes of header after the length field.
pub const HEADER_BYTES: u32 = 12;
/// Bytes before the body: the length field and the header.
pub const PREFIX_BYTES: usize = 4 + HEADER_BYTES as usize;

/// Bits of the header's flags byte.
pub mod flags {
    /// Bit 0: the body is compressed with the algorithm in bits 1-2.
    pub const COMPRESSED: u8 = 0x01;
    /// Bits 1-2: the compression algorithm (1 zstd, 2 lz4, 3 snappy); 0 when not compressed.
    pub const ALGORITHM_MASK: u8 = 0x06;
    /// Bit 3: the frame goes from server to client (responses, deliveries, errors).
    pub const RESPONSE: u8 = 0x08;
    /// Bit 4: the body is an `Error` (opcode 0xFF).
    pub const ERROR: u8 = 0x10;
    /// Bit 5: more response frames follow for this correlation id.
    pub const MORE: u8 = 0x20;
    /// Bit 6: the client wants no success response (errors are still sent).
    pub const NO_REPLY: u8 = 0x40;
    /// Bit 7: reserved, must be 0.
    pub const RESERVED: u8 = 0x80;
}

/// The fixed frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Header {
    /// Protocol version (1).
    pub version: u8,
    /// What the body is.
    pub opcode: u8,
    /// The [`flags`] bits.
    pub flags: u8,
    /// Chosen by the client per request; responses and deliveries repeat it.
    pub correlation_id: u64,
}

impl Header {
    /// Whether a flag bit is set.
    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }

    /// The body's compression, checking the flag bits are consistent.
    pub fn compression(&self) -> Result<Option<Compression>, DecodeError> {
        let algo = (self.flags & flags::ALGORITHM_MASK) >> 1;
        match (self.has(flags::COMPRESSED), algo) {
            (false, 0) => Ok(None),
            (true, code) => Compression::from_code(code)
                .map(Some)
                .ok_or(DecodeError::InvalidFlags(self.flags)),
            (false, _) => Err(DecodeError::InvalidFlags(self.flags)),
        }
    }
}

/// One frame as read: the header and the body as sent (maybe compressed), a zero-copy slice
/// of the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFrame {
    /// The header.
    pub header: Header,
    /// The body bytes after the header.
    pub body: Bytes,
}

impl RawFrame {
    /// The body after decompression. `allowed` is the negotiated compression: any other is
    /// an error. The decompressed size is bounded by `limits.body_bytes_max`.
    pub fn decompressed(
        &self,
        allowed: Option<Compression>,
        limits: &Limits,
    ) -> Result<Bytes, DecodeError> {
        if self.header.has(flags::RESERVED) {
            return Err(DecodeError::InvalidFlags(self.header.flags));
        }
        match self.header.compression()? {
            None => Ok(self.body.clone()),
            Some(c) if Some(c) == allowed => c
                .decompress(&self.body, limits.body_bytes_max)
                .map(Bytes::from),
            Some(c) => Err(DecodeError::CompressionNotNegotiated(c.code())),
        }
    }
}

/// Splits frames off the front of a caller-owned buffer. Only the length prefix and header
/// of an incomplete frame are looked at, and the length is checked against the limit before
/// anything is buffered, so a frame is never re-parsed as more bytes arrive.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    frame_bytes_max: u32,
    version: u8,
}

impl FrameDecoder {
    /// A decoder accepting frames up to `frame_bytes_max` (as the length prefix counts).
    pub fn new(frame_bytes_max: u32) -> Self {
        Self {
            frame_bytes_max,
            version: VERSION,
        }
    }

    /// Sets the version every following frame must carry (after the handshake).
    pub fn set_version(&mut self, version: u8) {
        self.version = version;
    }

    /// Takes the next complete frame off the front of `buf`. `Ok(None)` leaves `buf`
    /// untouched when the frame is not complete yet.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<RawFrame>, FrameError> {
        let Some(len) = buf.first_chunk::<4>() else {
            return Ok(None);
        };
        let len = u32::from_be_bytes(*len);
        if len > self.frame_bytes_max {
            return Err(FrameError::TooLarge {
                size: len,
                max: self.frame_bytes_max,
            });
        }
        if len < HEADER_BYTES {
            return Err(FrameError::TooShort(len));
        }
        if let Some(&magic) = buf.get(4)
            && magic != MAGIC
        {
            return Err(FrameError::BadMagic(magic));
        }
        if let Some(&version) = buf.get(5)
            && version != self.version
        {
            return Err(FrameError::BadVersion(version));
        }
        let total = 4 + len as usize;
        if buf.len() < total {
            return Ok(None);
        }
        let frame = buf.split_to(total).freeze();
        let header = Header {
            version: frame[5],
            opcode: frame[6],
            flags: frame[7],
            correlation_id: u64::from_be_bytes(frame[8..16].try_into().unwrap_or_default()),
        };
        Ok(Some(RawFrame {
            header,
            body: frame.slice(PREFIX_BYTES..),
        }))
    }
}

/// Appends a frame to `out`: `header`, then the body `write_body` appends, compressed with
/// `compress` when the body is at least `compress_min` bytes long and compression shrinks
/// it. The compression flags of `header` are set here. Returns the frame's length field.
pub fn encode_frame(
    header: Header,
    compress: Option<Compression>,
    compress_min: usize,
    out: &mut BytesMut,
    write_body: impl FnOnce(&mut BytesMut),
) -> usize {
    let start = out.len();
    out.put_u32(0);
    out.put_u8(MAGIC);
    out.put_u8(header.version);
    out.put_u8(header.opcode);
    out.put_u8(header.flags & !(flags::COMPRESSED | flags::ALGORITHM_MASK));
    out.put_u64(header.correlation_id);
    let body_start = out.len();
    write_body(out);
    if let Some(c) = compress
        && out.len() - body_start >= compress_min
    {
        let mut packed = Vec::new();
        c.compress(&out[body_start..], &mut packed);
        if packed.len() < out.len() - body_start {
            out.truncate(body_start);
            out.extend_from_slice(&packed);
            out[start + 7] |= flags::COMPRESSED | (c.code() << 1);
        }
    }
    let len = out.len() - start - 4;
    out[start..start + 4].copy_from_slice(&(len as u32).to_be_bytes());
    len
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(opcode: u8, cid: u64, body: &[u8]) -> BytesMut {
        let mut out = BytesMut::new();
        let h = Header {
            version: 1,
            opcode,
            flags: 0,
            correlation_id: cid,
        };
        encode_frame(h, None, 0, &mut out, |o| o.extend_from_slice(body));
        out
    }

    #[test]
    fn frames_split_under_any_chunking() {
        let mut stream = frame(2, 7, b"\xa0");
        stream.extend_from_slice(&frame(0x10, 8, &[9; 300]));
        for chunk in [1, 2, 5, 16, 17, 1000] {
            let (mut d, mut buf, mut got) = (FrameDecoder::new(1024), BytesMut::new(), vec![]);
            for part in stream.chunks(chunk) {
                buf.extend_from_slice(part);
                while let Some(f) = d.decode(&mut buf).unwrap() {
                    got.push(f);
                }
            }
            assert!(buf.is_empty());
            assert_eq!(got.len(), 2, "chunk {chunk}");
            assert_eq!(got[0].header.correlation_id, 7);
            assert_eq!(&got[0].body[..], b"\xa0");
            assert_eq!((got[1].header.opcode, got[1].body.len()), (0x10, 300));
        }
    }

    #[test]
    fn length_is_checked_before_buffering() {
        let mut d = FrameDecoder::new(1024);
        let mut buf = BytesMut::from(&[0x00, 0x00, 0x04, 0x01][..]);
        let e = d.decode(&mut buf).unwrap_err();
        assert_eq!(
            e,
            FrameError::TooLarge {
                size: 1025,
                max: 1024
            }
        );
        let mut buf = BytesMut::from(&[0, 0, 0, 11, 0xB7][..]);
        assert_eq!(d.decode(&mut buf), Err(FrameError::TooShort(11)));
        let mut buf = BytesMut::from(&[0, 0, 0, 12, 0xB6][..]);
        assert_eq!(d.decode(&mut buf), Err(FrameError::BadMagic(0xB6)));
        let mut buf = BytesMut::from(&[0, 0, 0, 12, 0xB7, 9][..]);
        assert_eq!(d.decode(&mut buf), Err(FrameError::BadVersion(9)));
        let mut buf = BytesMut::from(&[0, 0, 0, 12, 0xB7][..]);
        assert_eq!(d.decode(&mut buf), Ok(None));
        assert_eq!(buf.len(), 5);
    }

    #[test]
    fn compression_flags_are_checked() {
        let limits = Limits::default();
        let body = vec![b'a'; 4000];
        let mut out = BytesMut::new();
        let h = Header {
            version: 1,
            opcode: 0x10,
            ..Default::default()
        };
        encode_frame(h, Some(Compression::Lz4), 100, &mut out, |o| {
            o.extend_from_slice(&body)
        });
        assert!(out.len() < 200);
        let f = FrameDecoder::new(1 << 20)
            .decode(&mut out)
            .unwrap()
            .unwrap();
        assert_eq!(f.header.flags, 0x05);
        let plain = f.decompressed(Some(Compression::Lz4), &limits).unwrap();
        assert_eq!(&plain[..], &body[..]);
        let e = f.decompressed(Some(Compression::Zstd), &limits);
        assert_eq!(e, Err(DecodeError::CompressionNotNegotiated(2)));
        for bad in [0x02, 0x80] {
            let mut g = f.clone();
            g.header.flags = bad;
            assert_eq!(
                g.decompressed(None, &limits),
                Err(DecodeError::InvalidFlags(bad))
            );
        }
    }
}
