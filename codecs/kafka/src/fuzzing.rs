//! Entry points for the fuzz targets. Compiled with `cfg(fuzzing)` or the `fuzzing` feature,
//! so stable builds type-check them and replay the seed corpus.

use bytes::BytesMut;

use crate::api::{self, Request};
use crate::frame::FrameDecoder;

/// Splits `data` into frames and decodes each as a request. Every request that decodes is
/// re-encoded and decoded again, and must come back equal, with identical re-encodings.
pub fn decode_request(data: &[u8]) {
    let mut frames = FrameDecoder::default();
    let mut buf = BytesMut::from(data);
    while let Ok(Some(frame)) = frames.decode(&mut buf) {
        if let Ok(req) = api::decode_request(frame) {
            check_round_trip(&req);
        }
    }
}

fn check_round_trip(req: &Request) {
    let mut out = BytesMut::new();
    api::encode_request(&req.header, &req.body, &mut out).expect("decoded request re-encodes");
    let bytes = out.freeze();
    let again = api::decode_request(bytes.slice(4..)).expect("re-encoded request decodes");
    assert_eq!(&again, req);
    let mut out2 = BytesMut::new();
    api::encode_request(&again.header, &again.body, &mut out2).expect("re-encodes");
    assert_eq!(out2.freeze(), bytes);
}
