//! Compression codecs of record batches: gzip, snappy, lz4 and zstd.
//!
//! Every decompressor stops at a caller-given limit and fails instead of allocating more, so a
//! small compressed batch ("decompression bomb") cannot make the broker allocate gigabytes.
//! Output is read through `Read::take(limit + 1)`, so at most `limit + 1` bytes are produced
//! before the error. Besides its output, a decoder holds at most its working buffers: lz4
//! blocks of at most 4 MiB, and a zstd window of at most 128 MiB (zstd's default
//! `windowLogMax` of 27, which Kafka clients stay within).

use std::io::{Read, Write};

use bytes::{BufMut, Bytes, BytesMut};

use super::RecordsEncodeError;
use crate::error::DecodeError;

/// The compression codec of a record batch, in bits 0–2 of the batch attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Compression {
    /// No compression (attribute value 0).
    #[default]
    None,
    /// gzip (attribute value 1).
    Gzip,
    /// Snappy (attribute value 2); written with the xerial framing Java clients use.
    Snappy,
    /// LZ4 frame format (attribute value 3).
    Lz4,
    /// Zstandard (attribute value 4). Produce requests below version 7 may not use it.
    Zstd,
}

impl Compression {
    /// The bits of the batch attributes that hold the codec.
    pub const ATTRIBUTE_MASK: i16 = 0x07;

    /// Every codec, in attribute order.
    pub const ALL: [Compression; 5] = [Self::None, Self::Gzip, Self::Snappy, Self::Lz4, Self::Zstd];

    /// The codec named by bits 0–2 of a batch's `attributes`; values 5–7 are an error.
    pub fn from_attributes(attributes: i16) -> Result<Self, DecodeError> {
        match attributes & Self::ATTRIBUTE_MASK {
            0 => Ok(Self::None),
            1 => Ok(Self::Gzip),
            2 => Ok(Self::Snappy),
            3 => Ok(Self::Lz4),
            4 => Ok(Self::Zstd),
            _ => Err(DecodeError::Compression("unknown compression codec")),
        }
    }

    /// The codec's value in bits 0–2 of the batch attributes.
    pub fn to_bits(self) -> i16 {
        match self {
            Self::None => 0,
            Self::Gzip => 1,
            Self::Snappy => 2,
            Self::Lz4 => 3,
            Self::Zstd => 4,
        }
    }
}

/// The 8-byte magic that starts snappy-java's (xerial) stream framing.
pub const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];

/// The header length of the xerial framing: magic, version and compatible version.
const XERIAL_HEADER_LEN: usize = 16;

/// Uncompressed bytes per xerial chunk, as in snappy-java's default block size.
const XERIAL_CHUNK_LEN: usize = 32 * 1024;

/// zstd level used when encoding; the library default, and what Kafka clients use by default.
const ZSTD_LEVEL: i32 = 3;

/// Appends `data` compressed with `codec` to `out`. [`Compression::None`] copies it.
pub fn compress(
    codec: Compression,
    data: &[u8],
    out: &mut BytesMut,
) -> Result<(), RecordsEncodeError> {
    match codec {
        Compression::None => out.put_slice(data),
        Compression::Gzip => {
            let mut enc =
                flate2::write::GzEncoder::new(out.writer(), flate2::Compression::default());
            enc.write_all(data)
                .map_err(|_| RecordsEncodeError::Compression("gzip"))?;
            enc.finish()
                .map_err(|_| RecordsEncodeError::Compression("gzip"))?;
        }
        Compression::Snappy => compress_xerial(data, out)?,
        Compression::Lz4 => {
            // Independent 64 KiB blocks without checksums beyond the header checksum: the
            // frame shape Kafka's Java client writes and every client reads.
            let info = lz4_flex::frame::FrameInfo::new()
                .block_size(lz4_flex::frame::BlockSize::Max64KB)
                .block_mode(lz4_flex::frame::BlockMode::Independent);
            let mut enc = lz4_flex::frame::FrameEncoder::with_frame_info(info, out.writer());
            enc.write_all(data)
                .map_err(|_| RecordsEncodeError::Compression("lz4"))?;
            enc.finish()
                .map_err(|_| RecordsEncodeError::Compression("lz4"))?;
        }
        Compression::Zstd => {
            let mut enc = zstd::stream::write::Encoder::new(out.writer(), ZSTD_LEVEL)
                .map_err(|_| RecordsEncodeError::Compression("zstd"))?;
            enc.set_pledged_src_size(Some(data.len() as u64))
                .map_err(|_| RecordsEncodeError::Compression("zstd"))?;
            enc.include_contentsize(true)
                .map_err(|_| RecordsEncodeError::Compression("zstd"))?;
            enc.write_all(data)
                .map_err(|_| RecordsEncodeError::Compression("zstd"))?;
            enc.finish()
                .map_err(|_| RecordsEncodeError::Compression("zstd"))?;
        }
    }
    Ok(())
}

/// Writes snappy-java's framing: magic, version 1, compatible version 1, then chunks of
/// big-endian `i32` length + raw snappy block.
fn compress_xerial(data: &[u8], out: &mut BytesMut) -> Result<(), RecordsEncodeError> {
    out.put_slice(&XERIAL_MAGIC);
    out.put_i32(1);
    out.put_i32(1);
    let mut enc = snap::raw::Encoder::new();
    let mut block = vec![0u8; snap::raw::max_compress_len(XERIAL_CHUNK_LEN.min(data.len()))];
    for chunk in data.chunks(XERIAL_CHUNK_LEN) {
        let n = enc
            .compress(chunk, &mut block)
            .map_err(|_| RecordsEncodeError::Compression("snappy"))?;
        out.put_i32(n as i32);
        out.put_slice(&block[..n]);
    }
    Ok(())
}

/// Decompresses `data` compressed with `codec`, failing with [`DecodeError::TooLarge`] as soon
/// as the output would exceed `limit` bytes. [`Compression::None`] returns `data` itself.
pub fn decompress(codec: Compression, data: &Bytes, limit: usize) -> Result<Bytes, DecodeError> {
    let out = match codec {
        Compression::None => {
            if data.len() > limit {
                return Err(too_large());
            }
            return Ok(data.clone());
        }
        Compression::Gzip => {
            // Java's GZIPInputStream reads concatenated members, so accept them too.
            read_limited(
                flate2::read::MultiGzDecoder::new(&data[..]),
                limit,
                "corrupt gzip data",
            )?
        }
        Compression::Snappy => decompress_snappy(data, limit)?,
        Compression::Lz4 => read_limited(
            lz4_flex::frame::FrameDecoder::new(&data[..]),
            limit,
            "corrupt lz4 data",
        )?,
        Compression::Zstd => {
            let dec = zstd::stream::read::Decoder::with_buffer(&data[..])
                .map_err(|_| DecodeError::Compression("zstd decoder"))?;
            read_limited(dec, limit, "corrupt zstd data")?
        }
    };
    Ok(Bytes::from(out))
}

fn too_large() -> DecodeError {
    DecodeError::TooLarge("decompressed records exceed the limit")
}

/// Reads `reader` to its end, reading at most `limit + 1` bytes so that an oversized output is
/// detected without ever holding more than that.
fn read_limited<R: Read>(
    reader: R,
    limit: usize,
    corrupt: &'static str,
) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::new();
    let cap = (limit as u64).saturating_add(1);
    reader
        .take(cap)
        .read_to_end(&mut out)
        .map_err(|_| DecodeError::Compression(corrupt))?;
    if out.len() > limit {
        return Err(too_large());
    }
    Ok(out)
}

/// Decodes xerial-framed snappy (several chunks allowed) or a single raw snappy block.
fn decompress_snappy(data: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
    let mut dec = snap::raw::Decoder::new();
    if data.len() < XERIAL_HEADER_LEN || data[..8] != XERIAL_MAGIC {
        let n = snap::raw::decompress_len(data)
            .map_err(|_| DecodeError::Compression("corrupt snappy data"))?;
        if n > limit {
            return Err(too_large());
        }
        let mut out = vec![0u8; n];
        let written = dec
            .decompress(data, &mut out)
            .map_err(|_| DecodeError::Compression("corrupt snappy data"))?;
        out.truncate(written);
        return Ok(out);
    }
    // The two version fields are not checked: snappy-java itself only writes 1 and 1 and
    // readers in the wild accept any value.
    let mut rest = &data[XERIAL_HEADER_LEN..];
    let mut out = Vec::new();
    while !rest.is_empty() {
        if rest.len() < 4 {
            return Err(DecodeError::Compression("truncated snappy chunk length"));
        }
        let len = i32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
        rest = &rest[4..];
        let len = usize::try_from(len)
            .map_err(|_| DecodeError::Compression("negative snappy chunk length"))?;
        if len > rest.len() {
            return Err(DecodeError::Compression("truncated snappy chunk"));
        }
        let (chunk, tail) = rest.split_at(len);
        rest = tail;
        let n = snap::raw::decompress_len(chunk)
            .map_err(|_| DecodeError::Compression("corrupt snappy data"))?;
        if n > limit - out.len() {
            return Err(too_large());
        }
        let start = out.len();
        out.resize(start + n, 0);
        let written = dec
            .decompress(chunk, &mut out[start..])
            .map_err(|_| DecodeError::Compression("corrupt snappy data"))?;
        out.truncate(start + written);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i % 251) as u8 ^ (i / 1000) as u8).collect()
    }

    #[test]
    fn attribute_bits_round_trip() {
        for c in Compression::ALL {
            assert_eq!(Compression::from_attributes(c.to_bits() | 0x70).unwrap(), c);
        }
        for bits in 5..8 {
            assert!(matches!(
                Compression::from_attributes(bits),
                Err(DecodeError::Compression(_))
            ));
        }
    }

    #[test]
    fn every_codec_round_trips() {
        for n in [0, 1, 100, 70_000, 200_000] {
            let data = sample(n);
            for c in Compression::ALL {
                let mut out = BytesMut::new();
                compress(c, &data, &mut out).unwrap();
                let back = decompress(c, &out.freeze(), usize::MAX).unwrap();
                assert_eq!(back, data, "{c:?} with {n} bytes");
            }
        }
    }

    #[test]
    fn xerial_snappy_with_several_chunks() {
        let data = sample(100_000);
        let mut out = BytesMut::new();
        compress(Compression::Snappy, &data, &mut out).unwrap();
        assert_eq!(out[..8], XERIAL_MAGIC);
        assert_eq!(out[8..16], [0, 0, 0, 1, 0, 0, 0, 1]);
        // 100 000 bytes in 32 KiB chunks make four chunks; walk them to be sure.
        let mut rest = &out[16..];
        let mut chunks = 0;
        while !rest.is_empty() {
            let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
            rest = &rest[4 + len..];
            chunks += 1;
        }
        assert_eq!(chunks, 4);
        assert_eq!(
            decompress(Compression::Snappy, &out.freeze(), 100_000).unwrap(),
            data
        );
    }

    #[test]
    fn hand_built_xerial_chunks_of_any_size() {
        // Chunks of uneven sizes, as other writers (librdkafka) may produce.
        let data = sample(5000);
        let mut framed = BytesMut::new();
        framed.put_slice(&XERIAL_MAGIC);
        framed.put_i32(1);
        framed.put_i32(1);
        for part in [&data[..10], &data[10..3000], &data[3000..]] {
            let block = snap::raw::Encoder::new().compress_vec(part).unwrap();
            framed.put_i32(block.len() as i32);
            framed.put_slice(&block);
        }
        let framed = framed.freeze();
        assert_eq!(
            decompress(Compression::Snappy, &framed, 5000).unwrap(),
            data
        );
        assert_eq!(
            decompress(Compression::Snappy, &framed, 4999),
            Err(too_large())
        );
        let cut = framed.slice(..framed.len() - 1);
        assert!(matches!(
            decompress(Compression::Snappy, &cut, 5000),
            Err(DecodeError::Compression(_))
        ));
    }

    #[test]
    fn raw_snappy_block() {
        let data = sample(3000);
        let block = Bytes::from(snap::raw::Encoder::new().compress_vec(&data).unwrap());
        assert_eq!(decompress(Compression::Snappy, &block, 3000).unwrap(), data);
        assert_eq!(
            decompress(Compression::Snappy, &block, 2999),
            Err(too_large())
        );
    }

    #[test]
    fn raw_snappy_announcing_a_huge_length_is_rejected_before_allocating() {
        // A varint announcing 4 GiB - 1, followed by nothing.
        let block = Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert_eq!(
            decompress(Compression::Snappy, &block, 64 << 20),
            Err(too_large())
        );
    }

    #[test]
    fn lz4_frames_with_optional_fields() {
        // librdkafka writes the content size; other writers add block and content checksums or
        // use linked blocks. All are valid LZ4 frames.
        use lz4_flex::frame::{BlockMode, BlockSize, FrameEncoder, FrameInfo};
        let data = sample(150_000);
        let infos = [
            FrameInfo::new().content_size(Some(data.len() as u64)),
            FrameInfo::new()
                .block_checksums(true)
                .content_checksum(true),
            FrameInfo::new()
                .block_mode(BlockMode::Linked)
                .block_size(BlockSize::Max256KB),
        ];
        for info in infos {
            let mut enc = FrameEncoder::with_frame_info(info, Vec::new());
            enc.write_all(&data).unwrap();
            let framed = Bytes::from(enc.finish().unwrap());
            assert_eq!(
                decompress(Compression::Lz4, &framed, data.len()).unwrap(),
                data
            );
            assert_eq!(
                decompress(Compression::Lz4, &framed, data.len() - 1),
                Err(too_large())
            );
        }
    }

    #[test]
    fn lz4_header_checksum_is_checked() {
        let mut out = BytesMut::new();
        compress(Compression::Lz4, b"hello hello hello", &mut out).unwrap();
        // Byte 6 is the header checksum after magic (4), FLG and BD.
        out[6] ^= 0xff;
        assert!(matches!(
            decompress(Compression::Lz4, &out.freeze(), 1000),
            Err(DecodeError::Compression(_))
        ));
    }

    #[test]
    fn corrupt_input_is_an_error_for_every_codec() {
        let junk = Bytes::from_static(b"\x00\x01\x02 definitely not compressed \xff\xfe");
        for c in [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            assert!(decompress(c, &junk, 1 << 20).is_err(), "{c:?}");
        }
    }

    #[test]
    fn each_codec_stops_at_the_limit() {
        let data = vec![7u8; 1 << 20];
        for c in Compression::ALL {
            let mut out = BytesMut::new();
            compress(c, &data, &mut out).unwrap();
            let out = out.freeze();
            assert_eq!(decompress(c, &out, data.len()).unwrap().len(), data.len());
            assert_eq!(
                decompress(c, &out, data.len() - 1),
                Err(too_large()),
                "{c:?}"
            );
        }
    }

    #[test]
    fn zstd_bomb_fails_fast_with_bounded_output() {
        // 256 MiB of zeros compress to a few KiB. Decoding must stop right after the limit
        // rather than produce the whole output.
        let total = 256usize << 20;
        let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..total / zeros.len() {
            enc.write_all(&zeros).unwrap();
        }
        let bomb = Bytes::from(enc.finish().unwrap());
        assert!(bomb.len() < 64 * 1024, "bomb is {} bytes", bomb.len());
        assert_eq!(
            decompress(Compression::Zstd, &bomb, 4 << 20),
            Err(too_large())
        );
    }
}
