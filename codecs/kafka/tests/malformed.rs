//! Malformed input through the public decoding entry points: errors, never panics.

use bytes::{Bytes, BytesMut};
use portask_kafka::api::{ApiKey, SUPPORTED, decode_response};
use portask_kafka::frame::{FrameDecoder, FrameError};
use portask_kafka::limits::Limits;
use portask_kafka::{RequestError, decode_request};

/// A tiny deterministic generator for garbage.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn garbage_never_panics() {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    for len in 0..200 {
        for _ in 0..50 {
            let data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            let _ = decode_request(Bytes::from(data.clone()));
            let _ = decode_response(ApiKey::Metadata.as_i16(), 12, Bytes::from(data));
        }
    }
}

#[test]
fn garbage_bodies_behind_valid_headers_never_panic() {
    let mut rng = Rng(7);
    for &(key, lo, hi) in SUPPORTED {
        for version in lo..=hi {
            for len in [0usize, 1, 2, 5, 17, 64, 300] {
                let mut f = Vec::new();
                f.extend_from_slice(&key.as_i16().to_be_bytes());
                f.extend_from_slice(&version.to_be_bytes());
                f.extend_from_slice(&1i32.to_be_bytes());
                f.extend((0..len).map(|_| rng.next() as u8));
                match decode_request(Bytes::from(f)) {
                    Ok(_) => {}
                    Err(e) => assert_eq!(e.correlation_id(), Some(1), "{key} v{version}: {e}"),
                }
                let body: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
                let _ = decode_response(key.as_i16(), version, Bytes::from(body));
            }
        }
    }
}

#[test]
fn huge_counts_are_rejected_before_allocating() {
    // Metadata v12 (flexible), then a topics array claiming 2^31 entries.
    let mut f = vec![0, 3, 0, 12, 0, 0, 0, 1, 0xff, 0xff, 0];
    f.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x07]);
    let err = decode_request(Bytes::from(f)).unwrap_err();
    assert!(matches!(err, RequestError::Malformed { .. }), "{err:?}");
    // Produce v8 (classic): transactional id null, acks, timeout, topics count i32::MAX.
    let mut f = vec![
        0, 0, 0, 8, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0, 1, 0, 0, 0, 1,
    ];
    f.extend_from_slice(&i32::MAX.to_be_bytes());
    assert!(decode_request(Bytes::from(f)).is_err());
}

#[test]
fn truncations_of_corpus_frames_are_errors() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/kafka_request");
    for entry in std::fs::read_dir(dir).unwrap() {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        let frame = Bytes::from(data[4..].to_vec());
        assert!(decode_request(frame.clone()).is_ok());
        for cut in 0..frame.len() {
            let err = decode_request(frame.slice(..cut));
            assert!(
                err.is_err(),
                "a frame cut at {cut} of {} decoded",
                frame.len()
            );
        }
        // And through the frame decoder: a truncated stream is only ever partial.
        let mut d = FrameDecoder::default();
        for cut in 0..data.len() {
            let mut buf = BytesMut::from(&data[..cut]);
            assert_eq!(d.decode(&mut buf), Ok(None));
            assert_eq!(buf.len(), cut);
        }
    }
}

#[test]
fn huge_and_negative_length_prefixes() {
    let mut d = FrameDecoder::new(Limits::default());
    for size in [i32::MIN, -1, (100 << 20) + 1, i32::MAX] {
        let mut buf = BytesMut::from(&size.to_be_bytes()[..]);
        assert_eq!(d.decode(&mut buf), Err(FrameError::TooLarge { size }));
    }
    let mut buf = BytesMut::from(&(100i32 << 20).to_be_bytes()[..]);
    assert_eq!(d.decode(&mut buf), Ok(None));
    assert_eq!(d.missing_bytes(&buf), Ok(100 << 20));
}

#[test]
fn frames_that_are_too_short_for_a_header() {
    for data in [&[][..], &[0], &[0, 18, 0], &[0, 18, 0, 3, 0, 0, 0]] {
        let err = decode_request(Bytes::copy_from_slice(data)).unwrap_err();
        assert!(matches!(err, RequestError::Header(_)));
        assert_eq!(err.correlation_id(), None);
    }
}
