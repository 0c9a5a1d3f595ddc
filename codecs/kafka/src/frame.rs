//! Splitting a byte stream into Kafka frames: a 4-byte big-endian size, then that many bytes.

use bytes::{Bytes, BytesMut};

use crate::limits::Limits;

/// A frame whose size prefix cannot be accepted. The stream cannot be resynchronised after it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The size prefix is negative or above [`Limits::frame_bytes_max`].
    #[error("frame size {size} is negative or above the limit")]
    TooLarge {
        /// The size announced by the prefix.
        size: i32,
    },
}

/// Splits complete frames off the front of a caller-owned buffer.
///
/// Only the size prefix of an incomplete frame is looked at, so a frame is never re-parsed
/// as more bytes arrive.
#[derive(Debug, Clone, Default)]
pub struct FrameDecoder {
    limits: Limits,
}

impl FrameDecoder {
    /// Size of the length prefix.
    pub const PREFIX_BYTES: usize = 4;

    /// A decoder enforcing `limits`.
    pub fn new(limits: Limits) -> Self {
        Self { limits }
    }

    /// Takes the next complete frame off the front of `buf`, without its size prefix and
    /// without copying. Returns `Ok(None)` and leaves `buf` untouched when the frame is not
    /// complete yet; the caller may then reserve [`FrameDecoder::missing_bytes`] more.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        let Some(size) = self.frame_size(buf)? else {
            return Ok(None);
        };
        if buf.len() < Self::PREFIX_BYTES + size {
            return Ok(None);
        }
        let mut frame = buf.split_to(Self::PREFIX_BYTES + size);
        let _ = frame.split_to(Self::PREFIX_BYTES);
        Ok(Some(frame.freeze()))
    }

    /// How many more bytes `buf` needs before the next frame is complete (0 if it is).
    pub fn missing_bytes(&self, buf: &[u8]) -> Result<usize, FrameError> {
        match self.frame_size(buf)? {
            None => Ok(Self::PREFIX_BYTES - buf.len()),
            Some(size) => Ok((Self::PREFIX_BYTES + size).saturating_sub(buf.len())),
        }
    }

    /// The checked size of the frame at the front of `buf`, if its prefix is there.
    fn frame_size(&self, buf: &[u8]) -> Result<Option<usize>, FrameError> {
        let Some(prefix) = buf.first_chunk::<4>() else {
            return Ok(None);
        };
        let size = i32::from_be_bytes(*prefix);
        match usize::try_from(size) {
            Ok(n) if n <= self.limits.frame_bytes_max => Ok(Some(n)),
            _ => Err(FrameError::TooLarge { size }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream() -> Vec<u8> {
        let mut s = Vec::new();
        for body in [&b"abc"[..], b"", b"hello world"] {
            s.extend_from_slice(&(body.len() as i32).to_be_bytes());
            s.extend_from_slice(body);
        }
        s
    }

    #[test]
    fn whole_stream_at_once() {
        let mut d = FrameDecoder::default();
        let mut buf = BytesMut::from(&stream()[..]);
        assert_eq!(d.decode(&mut buf).unwrap().unwrap(), &b"abc"[..]);
        assert_eq!(d.decode(&mut buf).unwrap().unwrap(), &b""[..]);
        assert_eq!(d.decode(&mut buf).unwrap().unwrap(), &b"hello world"[..]);
        assert_eq!(d.decode(&mut buf).unwrap(), None);
        assert!(buf.is_empty());
    }

    #[test]
    fn one_byte_at_a_time_gives_the_same_frames() {
        let mut d = FrameDecoder::default();
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        for b in stream() {
            buf.extend_from_slice(&[b]);
            let before = buf.len();
            match d.decode(&mut buf).unwrap() {
                Some(f) => frames.push(f),
                None => assert_eq!(buf.len(), before, "partial input is left untouched"),
            }
            while let Some(f) = d.decode(&mut buf).unwrap() {
                frames.push(f);
            }
        }
        assert_eq!(frames, vec![&b"abc"[..], b"", b"hello world"]);
    }

    #[test]
    fn oversized_and_negative_prefixes_fail_before_buffering() {
        let mut d = FrameDecoder::new(Limits {
            frame_bytes_max: 10,
        });
        let mut buf = BytesMut::from(&11i32.to_be_bytes()[..]);
        assert_eq!(d.decode(&mut buf), Err(FrameError::TooLarge { size: 11 }));
        let mut buf = BytesMut::from(&(-1i32).to_be_bytes()[..]);
        assert_eq!(d.decode(&mut buf), Err(FrameError::TooLarge { size: -1 }));
        let mut buf = BytesMut::from(&[0u8, 0, 0][..]);
        assert_eq!(d.decode(&mut buf), Ok(None));
        assert_eq!(d.missing_bytes(&buf).unwrap(), 1);
    }
}
