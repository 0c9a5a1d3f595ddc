//! Every generated Kafka message in every valid version: a random value holding only the
//! fields of that version encodes, decodes to the same value, and re-encodes to the same bytes.
//! Also whole request/response frames through the dispatch functions, and chunking
//! invariance of the frame decoder.

#[path = "kafka_messages/strategies.rs"]
mod strategies;

use bytes::{Bytes, BytesMut};
use portask_kafka::api::{
    ApiKey, SUPPORTED, decode_request, decode_response, encode_request, encode_response,
};
use portask_kafka::frame::FrameDecoder;
use portask_kafka::generated::RequestHeader;
use proptest::prelude::*;

/// A small deterministic generator of field values (splitmix64), seeded by proptest.
pub(crate) struct Gen(u64);

impl Gen {
    /// A generator for `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// An integer biased towards edge values.
    fn int(&mut self) -> i64 {
        match self.below(6) {
            0 => 0,
            1 => -1,
            2 => i64::MAX,
            3 => i64::MIN,
            _ => self.next() as i64,
        }
    }

    pub(crate) fn i8(&mut self) -> i8 {
        self.int() as i8
    }
    pub(crate) fn i16(&mut self) -> i16 {
        self.int() as i16
    }
    pub(crate) fn i32(&mut self) -> i32 {
        self.int() as i32
    }
    pub(crate) fn i64(&mut self) -> i64 {
        self.int()
    }
    #[allow(dead_code)] // no generated message has a uint16 field yet
    pub(crate) fn u16(&mut self) -> u16 {
        self.int() as u16
    }
    #[allow(dead_code)] // no generated message has a float64 field yet
    pub(crate) fn f64(&mut self) -> f64 {
        (self.int() as f64) / 7.0
    }
    pub(crate) fn bool(&mut self) -> bool {
        self.below(2) == 1
    }
    pub(crate) fn uuid(&mut self) -> [u8; 16] {
        let mut u = [0u8; 16];
        u[..8].copy_from_slice(&self.next().to_be_bytes());
        u[8..].copy_from_slice(&self.next().to_be_bytes());
        u
    }
    pub(crate) fn string(&mut self) -> String {
        let n = self.below(8);
        (0..n)
            .map(|_| ['a', 'Z', '0', '-', 'é', '✓'][self.below(6) as usize])
            .collect()
    }
    pub(crate) fn bytes(&mut self) -> Bytes {
        let n = self.below(12);
        (0..n)
            .map(|_| self.next() as u8)
            .collect::<Vec<u8>>()
            .into()
    }
    /// `None` one time in four.
    pub(crate) fn maybe<T>(&mut self, f: impl FnOnce(&mut Self) -> T) -> Option<T> {
        if self.below(4) == 0 {
            None
        } else {
            Some(f(self))
        }
    }
    pub(crate) fn vec<T>(&mut self, mut f: impl FnMut(&mut Self) -> T) -> Vec<T> {
        let n = self.below(4);
        (0..n).map(|_| f(self)).collect()
    }
    /// Unknown tagged fields (tags far above the known ones), only in flexible versions.
    pub(crate) fn unknown_tags(
        &mut self,
        flexible: bool,
    ) -> std::collections::BTreeMap<i32, Bytes> {
        if !flexible || self.below(3) != 0 {
            return Default::default();
        }
        (0..self.below(3))
            .map(|_| (10_000 + self.below(1000) as i32, self.bytes()))
            .collect()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn every_message_every_version_round_trips(seed in any::<u64>()) {
        for &(_, lo, hi, check) in strategies::ALL {
            for version in lo..=hi {
                check(seed, version);
            }
        }
    }

    #[test]
    fn request_and_response_frames_round_trip(seed in any::<u64>()) {
        for &(key, lo, hi) in SUPPORTED {
            for version in lo..=hi {
                frames_round_trip(seed, key, version);
            }
        }
    }

    #[test]
    fn any_chunking_gives_the_same_requests(seed in any::<u64>(), cuts in prop::collection::vec(any::<usize>(), 0..8)) {
        let mut g = Gen::new(seed);
        let mut stream = BytesMut::new();
        for (i, &(key, lo, hi)) in SUPPORTED.iter().enumerate() {
            let version = lo + (g.below((hi - lo + 1) as u64) as i16);
            let header = RequestHeader {
                request_api_key: key.as_i16(),
                request_api_version: version,
                correlation_id: i as i32,
                client_id: Some("c".into()),
                ..Default::default()
            };
            let body = strategies::request_body(&mut g, key, version);
            encode_request(&header, &body, &mut stream).unwrap();
        }
        let whole = stream.freeze();
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (whole.len() + 1)).collect();
        cuts.push(whole.len());
        cuts.sort_unstable();
        let mut decoder = FrameDecoder::default();
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        let mut at = 0;
        for cut in cuts {
            buf.extend_from_slice(&whole[at..cut]);
            at = cut;
            while let Some(f) = decoder.decode(&mut buf).unwrap() {
                frames.push(decode_request(f).unwrap());
            }
        }
        prop_assert!(buf.is_empty());
        prop_assert_eq!(frames.len(), SUPPORTED.len());
        for (i, req) in frames.iter().enumerate() {
            prop_assert_eq!(req.header.correlation_id, i as i32);
        }
    }
}

fn frames_round_trip(seed: u64, key: ApiKey, version: i16) {
    let mut g = Gen::new(seed);
    let header = RequestHeader {
        request_api_key: key.as_i16(),
        request_api_version: version,
        correlation_id: g.i32(),
        client_id: g.maybe(Gen::string),
        ..Default::default()
    };
    let body = strategies::request_body(&mut g, key, version);
    let mut out = BytesMut::new();
    encode_request(&header, &body, &mut out).unwrap();
    let frame = out.freeze().slice(4..);
    let req = decode_request(frame).unwrap_or_else(|e| panic!("{key} v{version}: {e}"));
    assert_eq!(req.header, header, "{key} v{version}");
    assert_eq!(req.body, body, "{key} v{version}");

    let resp = strategies::response_body(&mut g, key, version);
    let mut out = BytesMut::new();
    encode_response(
        header.correlation_id,
        key.as_i16(),
        version,
        &resp,
        &mut out,
    )
    .unwrap();
    let (h, back) = decode_response(key.as_i16(), version, out.freeze().slice(4..))
        .unwrap_or_else(|e| panic!("{key} v{version} response: {e}"));
    assert_eq!(h.correlation_id, header.correlation_id);
    assert_eq!(back, resp, "{key} v{version} response");
}

/// Writes the fuzz seed corpus: a few random valid request frames per API and version.
/// Run with `cargo test -p portask-proptests --test kafka_messages -- --ignored`.
#[test]
#[ignore = "writes fuzz/corpus/kafka_request"]
fn write_fuzz_corpus() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/kafka_request");
    std::fs::create_dir_all(&dir).unwrap();
    let mut g = Gen::new(0x5eed);
    for &(key, lo, hi) in SUPPORTED {
        for version in [lo, (lo + hi) / 2, hi] {
            let header = RequestHeader {
                request_api_key: key.as_i16(),
                request_api_version: version,
                correlation_id: g.i32(),
                client_id: Some("rdkafka".into()),
                ..Default::default()
            };
            let body = strategies::request_body(&mut g, key, version);
            let mut out = BytesMut::new();
            encode_request(&header, &body, &mut out).unwrap();
            let name = format!("{}-v{version}", key.name());
            std::fs::write(dir.join(name), &out).unwrap();
        }
    }
}
