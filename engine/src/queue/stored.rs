//! How a persistent message of a durable queue is stored: the message as CBOR, compressed
//! per the queue's compression settings when that makes it smaller.
//!
//! A compressed entry starts with `0xFF` — a CBOR "break" byte, which never starts a CBOR
//! item, so an uncompressed entry is told apart by its first byte — then the algorithm
//! (1 zstd, 2 lz4, 3 snappy), the uncompressed length (u32, big-endian) and the compressed
//! CBOR.

use bytes::{BufMut, Bytes, BytesMut};

use crate::compression::policy::{Algorithm, CompressionSettings};
use crate::message::Message;
use crate::storage::StorageError;

const COMPRESSED: u8 = 0xFF;
const HEADER_LEN: usize = 6;
/// Largest message accepted back from storage once decompressed.
const DECOMPRESSED_BYTES_MAX: usize = 256 << 20;

/// Encodes a message for `Storage::queue_append`.
pub(crate) fn encode_message(m: &Message, settings: &CompressionSettings) -> Bytes {
    let mut cbor = Vec::new();
    ciborium::into_writer(m, &mut cbor).expect("CBOR into a Vec cannot fail");
    if settings.algorithm == Algorithm::None || cbor.len() < settings.min_size.max(1) {
        return Bytes::from(cbor);
    }
    let (tag, packed) = match settings.algorithm {
        Algorithm::Zstd => (1, zstd::bulk::compress(&cbor, settings.level).ok()),
        Algorithm::Lz4 => (2, Some(lz4_flex::block::compress(&cbor))),
        Algorithm::Snappy => (3, snap::raw::Encoder::new().compress_vec(&cbor).ok()),
        Algorithm::None => (0, None),
    };
    match packed.filter(|p| p.len() + HEADER_LEN < cbor.len()) {
        Some(p) => {
            let mut out = BytesMut::with_capacity(HEADER_LEN + p.len());
            out.put_u8(COMPRESSED);
            out.put_u8(tag);
            out.put_u32(cbor.len() as u32);
            out.put_slice(&p);
            out.freeze()
        }
        None => Bytes::from(cbor),
    }
}

/// Decodes what [`encode_message`] wrote (and entries stored before compression existed).
pub(crate) fn decode_message(bytes: &[u8]) -> Result<Message, StorageError> {
    let corrupt = |what: &str| StorageError::Corrupt(format!("message: {what}"));
    if bytes.first() != Some(&COMPRESSED) {
        return ciborium::from_reader(bytes).map_err(|e| corrupt(&e.to_string()));
    }
    if bytes.len() < HEADER_LEN {
        return Err(corrupt("truncated compressed entry"));
    }
    let len = u32::from_be_bytes([bytes[2], bytes[3], bytes[4], bytes[5]]) as usize;
    if len > DECOMPRESSED_BYTES_MAX {
        return Err(corrupt("decompressed size above the limit"));
    }
    let packed = &bytes[HEADER_LEN..];
    let cbor = match bytes[1] {
        1 => zstd::bulk::decompress(packed, len).map_err(|e| corrupt(&e.to_string()))?,
        2 => lz4_flex::block::decompress(packed, len).map_err(|e| corrupt(&e.to_string()))?,
        3 => snap::raw::Decoder::new()
            .decompress_vec(packed)
            .map_err(|e| corrupt(&e.to_string()))?,
        _ => return Err(corrupt("unknown compression")),
    };
    if cbor.len() != len {
        return Err(corrupt("decompressed length differs from the header"));
    }
    ciborium::from_reader(cbor.as_slice()).map_err(|e| corrupt(&e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(body: &'static [u8]) -> Message {
        Message {
            exchange: "x".into(),
            routing_key: "k".into(),
            props: Default::default(),
            body: Bytes::from_static(body),
        }
    }

    #[test]
    fn round_trips_with_every_algorithm_and_compresses_repetitive_bodies() {
        let body: &'static [u8] = &[b'a'; 4000];
        for algorithm in Algorithm::ALL {
            let settings = CompressionSettings {
                algorithm,
                level: 3,
                ..Default::default()
            };
            let stored = encode_message(&message(body), &settings);
            if algorithm != Algorithm::None {
                assert_eq!(stored[0], COMPRESSED, "{algorithm:?}");
                assert!(stored.len() < 1000, "{algorithm:?}: {}", stored.len());
            }
            assert_eq!(decode_message(&stored).unwrap(), message(body));
        }
    }

    #[test]
    fn small_or_incompressible_messages_stay_plain_and_bad_entries_are_errors() {
        let settings = CompressionSettings {
            algorithm: Algorithm::Zstd,
            level: 3,
            min_size: 10_000,
            ..Default::default()
        };
        let stored = encode_message(&message(b"tiny"), &settings);
        assert_ne!(stored[0], COMPRESSED);
        assert_eq!(decode_message(&stored).unwrap(), message(b"tiny"));
        assert!(decode_message(&[COMPRESSED, 1, 0, 0]).is_err());
        assert!(decode_message(&[COMPRESSED, 9, 0, 0, 0, 1, 0]).is_err());
        assert!(decode_message(&[COMPRESSED, 1, 0xff, 0xff, 0xff, 0xff, 0]).is_err());
    }
}
