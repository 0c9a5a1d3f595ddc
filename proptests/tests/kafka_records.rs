//! Property tests of Kafka record batches (`portask_kafka::records`).
//!
//! Goal: encoding and decoding are inverse for every batch and every compression, and no
//! input makes the decoder panic. Method: generate arbitrary batches (all header fields,
//! null and empty keys, values and headers), encode them with each codec, decode and compare;
//! re-encoding the decoded batches gives the same bytes. For robustness, decode arbitrary
//! bytes, and valid encodings with random bytes overwritten and the CRC recomputed so that
//! the damage reaches decompression and record decoding.

use bytes::{Bytes, BytesMut};
use portask_kafka::records::{
    Compression, DecodeLimits, Record, RecordBatch, RecordHeader, batches,
};
use proptest::prelude::*;

fn opt_bytes(max: usize) -> impl Strategy<Value = Option<Bytes>> {
    proptest::option::of(proptest::collection::vec(any::<u8>(), 0..max).prop_map(Bytes::from))
}

fn header() -> impl Strategy<Value = RecordHeader> {
    (".{0,12}", opt_bytes(16)).prop_map(|(key, value)| RecordHeader { key, value })
}

fn record() -> impl Strategy<Value = Record> {
    (
        any::<i8>(),
        any::<i64>(),
        any::<i32>(),
        opt_bytes(40),
        opt_bytes(200),
        proptest::collection::vec(header(), 0..4),
    )
        .prop_map(
            |(attributes, timestamp_delta, offset_delta, key, value, headers)| Record {
                attributes,
                timestamp_delta,
                offset_delta,
                key,
                value,
                headers,
            },
        )
}

fn batch() -> impl Strategy<Value = RecordBatch> {
    (
        (
            any::<i64>(),
            any::<i32>(),
            any::<i16>(),
            any::<i32>(),
            any::<i64>(),
            any::<i64>(),
        ),
        (any::<i64>(), any::<i16>(), any::<i32>()),
        proptest::collection::vec(record(), 0..8),
    )
        .prop_map(
            |(
                (base_offset, partition_leader_epoch, attributes, last_offset_delta, bt, mt),
                (producer_id, producer_epoch, base_sequence),
                records,
            )| RecordBatch {
                base_offset,
                partition_leader_epoch,
                attributes,
                last_offset_delta,
                base_timestamp: bt,
                max_timestamp: mt,
                producer_id,
                producer_epoch,
                base_sequence,
                records,
            },
        )
}

fn compression() -> impl Strategy<Value = Compression> {
    prop::sample::select(Compression::ALL.to_vec())
}

/// What decoding an encoded `b` must give: the attributes carry the codec used.
fn expected(b: &RecordBatch, c: Compression) -> RecordBatch {
    let mut e = b.clone();
    e.attributes = (b.attributes & !Compression::ATTRIBUTE_MASK) | c.to_bits();
    e
}

fn fix_crc(v: &mut [u8]) {
    if v.len() > 21 {
        let crc = crc32c(&v[21..]);
        v[17..21].copy_from_slice(&crc.to_be_bytes());
    }
}

/// CRC-32C (Castagnoli), bitwise; the test crate does not depend on the crc32c crate.
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn decode_every_way(data: &Bytes) {
    let limits = DecodeLimits {
        decompressed_bytes_max: 1 << 20,
        records_max: 10_000,
    };
    for view in batches(data).allow_partial_tail(true) {
        match view {
            Ok(view) => {
                let _ = view.verify_crc();
                let _ = view.decode(&limits);
            }
            Err(_) => break,
        }
    }
    let _ = RecordBatch::decode_all(data, &limits, true);
    let _ = RecordBatch::decode_all(data, &limits, false);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn encode_then_decode_is_identity(b in batch(), c in compression()) {
        let mut out = BytesMut::new();
        b.encode(c, &mut out).unwrap();
        let bytes = out.freeze();
        let decoded = RecordBatch::decode_all(&bytes, &DecodeLimits::default(), false).unwrap();
        prop_assert_eq!(&decoded, &vec![expected(&b, c)]);
        // Re-encoding what was decoded gives the same bytes.
        let mut again = BytesMut::new();
        decoded[0].encode(c, &mut again).unwrap();
        prop_assert_eq!(again.freeze(), bytes.clone());
        // The header view agrees with the batch.
        let view = batches(&bytes).next().unwrap().unwrap();
        view.verify_crc().unwrap();
        prop_assert_eq!(view.record_count as usize, b.records.len());
        prop_assert_eq!(view.base_offset, b.base_offset);
        prop_assert_eq!(view.bytes.len(), bytes.len());
    }

    #[test]
    fn concatenated_batches_decode_in_order(
        parts in proptest::collection::vec((batch(), compression()), 0..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut out = BytesMut::new();
        let mut ends = Vec::new();
        for (b, c) in &parts {
            b.encode(*c, &mut out).unwrap();
            ends.push(out.len());
        }
        let bytes = out.freeze();
        let decoded = RecordBatch::decode_all(&bytes, &DecodeLimits::default(), false).unwrap();
        let want: Vec<_> = parts.iter().map(|(b, c)| expected(b, *c)).collect();
        prop_assert_eq!(&decoded, &want);
        // Cutting anywhere keeps exactly the batches that end before the cut when a partial
        // tail is allowed, and is an error otherwise unless the cut falls on a boundary.
        if !bytes.is_empty() {
            let at = cut.index(bytes.len());
            let cut_bytes = bytes.slice(..at);
            let whole = ends.iter().filter(|&&e| e <= at).count();
            let tail = RecordBatch::decode_all(&cut_bytes, &DecodeLimits::default(), true).unwrap();
            prop_assert_eq!(&tail[..], &want[..whole]);
            let strict = RecordBatch::decode_all(&cut_bytes, &DecodeLimits::default(), false);
            prop_assert_eq!(strict.is_ok(), at == 0 || ends.contains(&at));
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(v in proptest::collection::vec(any::<u8>(), 0..400)) {
        decode_every_way(&Bytes::from(v));
    }

    #[test]
    fn batch_shaped_bytes_never_panic(
        mut v in proptest::collection::vec(any::<u8>(), 61..400),
        codec in 0u8..8,
    ) {
        // A plausible header (length, magic, codec, CRC) in front of random records.
        let len = (v.len() - 12) as i32;
        v[8..12].copy_from_slice(&len.to_be_bytes());
        v[16] = 2;
        v[22] = (v[22] & !7) | codec;
        fix_crc(&mut v);
        decode_every_way(&Bytes::from(v));
    }

    #[test]
    fn damaged_encodings_never_panic(
        b in batch(),
        c in compression(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        fix in any::<bool>(),
    ) {
        let mut out = BytesMut::new();
        b.encode(c, &mut out).unwrap();
        let mut v = out.to_vec();
        for (at, byte) in edits {
            let i = at.index(v.len());
            v[i] = byte;
        }
        if fix {
            fix_crc(&mut v);
        }
        decode_every_way(&Bytes::from(v));
    }
}
