//! Body compression: zstd, LZ4 (block format) and Snappy (raw format).
//!
//! A compressed body is `u32` big-endian decompressed length, then the compressed bytes.
//! The length is checked against [`crate::Limits::body_bytes_max`] before anything is
//! allocated, and the decompressed bytes must be exactly that long.

use crate::error::DecodeError;

/// zstd compression level used when sending. Any level decodes.
pub const ZSTD_LEVEL: i32 = 3;

/// A body compression algorithm, as encoded in flag bits 1-2 and named in the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    /// zstd (RFC 8878), one frame. Handshake name `"zstd"`, flag code 1.
    Zstd,
    /// LZ4 block format, without the LZ4 frame format. Handshake name `"lz4"`, flag code 2.
    Lz4,
    /// Snappy raw format, without the framing format. Handshake name `"snappy"`, flag code 3.
    Snappy,
}

impl Compression {
    /// Every algorithm, in the order a server prefers them by default.
    pub const ALL: [Self; 3] = [Self::Zstd, Self::Lz4, Self::Snappy];

    /// The name used in `Hello.compression` and `HelloOk.compression`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Zstd => "zstd",
            Self::Lz4 => "lz4",
            Self::Snappy => "snappy",
        }
    }

    /// The algorithm with this handshake name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }

    /// The 2-bit code in the frame flags (bits 1-2).
    pub fn code(self) -> u8 {
        match self {
            Self::Zstd => 1,
            Self::Lz4 => 2,
            Self::Snappy => 3,
        }
    }

    /// The algorithm with this flag code; 0 (none) and others give `None`.
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.code() == code)
    }

    /// Appends `u32` length then the compressed `data` to `out`.
    pub fn compress(self, data: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        match self {
            Self::Zstd => {
                // Compressing an in-memory slice into a Vec cannot fail.
                let c = zstd::bulk::compress(data, ZSTD_LEVEL).unwrap_or_default();
                out.extend_from_slice(&c);
            }
            Self::Lz4 => out.extend_from_slice(&lz4_flex::block::compress(data)),
            Self::Snappy => {
                let c = snap::raw::Encoder::new()
                    .compress_vec(data)
                    .unwrap_or_default();
                out.extend_from_slice(&c);
            }
        }
    }

    /// Decompresses a body written by [`Compression::compress`], refusing to produce more
    /// than `max` bytes.
    pub fn decompress(self, body: &[u8], max: u64) -> Result<Vec<u8>, DecodeError> {
        let Some((len, data)) = body.split_first_chunk::<4>() else {
            return Err(DecodeError::Compression("missing decompressed length"));
        };
        let size = u32::from_be_bytes(*len);
        if u64::from(size) > max {
            return Err(DecodeError::BodyTooLarge {
                size: size.into(),
                max,
            });
        }
        let size = size as usize;
        let out = match self {
            Self::Zstd => zstd::bulk::Decompressor::new()
                .and_then(|mut d| d.decompress(data, size))
                .map_err(|_| DecodeError::Compression("zstd"))?,
            Self::Lz4 => lz4_flex::block::decompress(data, size)
                .map_err(|_| DecodeError::Compression("lz4"))?,
            Self::Snappy => {
                if snap::raw::decompress_len(data).ok() != Some(size) {
                    return Err(DecodeError::Compression("snappy length"));
                }
                snap::raw::Decoder::new()
                    .decompress_vec(data)
                    .map_err(|_| DecodeError::Compression("snappy"))?
            }
        };
        if out.len() != size {
            return Err(DecodeError::Compression("decompressed length differs"));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_algorithm_round_trips() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        for c in Compression::ALL {
            let mut out = Vec::new();
            c.compress(&data, &mut out);
            assert!(out.len() < data.len(), "{c:?}");
            assert_eq!(c.decompress(&out, 1 << 20).unwrap(), data, "{c:?}");
            assert_eq!(Compression::from_name(c.name()), Some(c));
            assert_eq!(Compression::from_code(c.code()), Some(c));
        }
    }

    #[test]
    fn bombs_are_refused_before_allocating() {
        let data = vec![0u8; 1 << 20];
        for c in Compression::ALL {
            let mut out = Vec::new();
            c.compress(&data, &mut out);
            assert!(out.len() < 60_000, "{c:?} {}", out.len());
            let e = c.decompress(&out, 1000).unwrap_err();
            assert!(matches!(
                e,
                DecodeError::BodyTooLarge {
                    size: 1_048_576,
                    max: 1000
                }
            ));
        }
    }

    #[test]
    fn lying_lengths_and_garbage_are_errors() {
        let data = vec![7u8; 5000];
        for c in Compression::ALL {
            let mut out = Vec::new();
            c.compress(&data, &mut out);
            // Announce fewer bytes than the data expands to.
            out[0..4].copy_from_slice(&100u32.to_be_bytes());
            assert!(c.decompress(&out, 1 << 20).is_err(), "{c:?}");
            out[0..4].copy_from_slice(&6000u32.to_be_bytes());
            assert!(c.decompress(&out, 1 << 20).is_err(), "{c:?}");
            assert!(
                c.decompress(&[0, 0, 0, 9, 1, 2, 3], 1 << 20).is_err(),
                "{c:?}"
            );
            assert!(c.decompress(&[0, 0], 1 << 20).is_err(), "{c:?}");
        }
    }
}
