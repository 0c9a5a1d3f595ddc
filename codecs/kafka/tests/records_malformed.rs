//! Malformed record batches through the public API only.
//!
//! Goal: peer bytes never panic and never make the decoder allocate beyond its limits; every
//! bad input gives a `DecodeError`. Method: start from valid batches in every compression,
//! then cut them at every length, flip every bit (with the CRC left stale and with it
//! recomputed, so that the mutation reaches the record decoder), overwrite counts and lengths
//! with huge or negative values, and feed seeded garbage.

use bytes::{BufMut, Bytes, BytesMut};
use portask_kafka::DecodeError;
use portask_kafka::records::{
    Compression, DecodeLimits, Record, RecordBatch, RecordHeader, XERIAL_MAGIC, batches,
};

fn sample_batch() -> RecordBatch {
    RecordBatch {
        base_offset: 10,
        last_offset_delta: 1,
        base_timestamp: 1_000,
        max_timestamp: 1_005,
        records: vec![
            Record {
                key: Some(Bytes::from_static(b"key")),
                value: Some(Bytes::from_static(b"value value value")),
                headers: vec![RecordHeader {
                    key: "h".into(),
                    value: Some(Bytes::from_static(b"v")),
                }],
                ..Record::default()
            },
            Record {
                offset_delta: 1,
                timestamp_delta: 5,
                ..Record::default()
            },
        ],
        ..RecordBatch::default()
    }
}

fn encode(batch: &RecordBatch, c: Compression) -> Vec<u8> {
    let mut out = BytesMut::new();
    batch.encode(c, &mut out).unwrap();
    out.to_vec()
}

/// Recomputes the CRC of the batch at the start of `v`, so that a mutation behind it is seen
/// by the record decoder rather than stopped by the CRC check.
fn fix_crc(v: &mut [u8]) {
    if v.len() > 21 {
        let crc = crc32c::crc32c(&v[21..]);
        v[17..21].copy_from_slice(&crc.to_be_bytes());
    }
}

/// Decodes `v` every way the public API allows; returns whether the full decode succeeded.
fn decode_every_way(v: &[u8]) -> bool {
    let data = Bytes::copy_from_slice(v);
    let small = DecodeLimits {
        decompressed_bytes_max: 1 << 20,
        records_max: 10_000,
    };
    for view in batches(&data).allow_partial_tail(true) {
        match view {
            Ok(view) => {
                let _ = view.verify_crc();
                let _ = view.decode(&small);
            }
            Err(_) => break,
        }
    }
    let _ = RecordBatch::decode_all(&data, &small, true);
    RecordBatch::decode_all(&data, &small, false).is_ok()
}

#[test]
fn garbage_never_panics() {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..2000 {
        let len = (next() % 300) as usize;
        let mut v: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        // Make some inputs look like batches so that they pass the first checks.
        if v.len() > 21 && next() % 2 == 0 {
            v[8..12].copy_from_slice(&((len - 12) as i32).to_be_bytes());
            v[16] = 2;
            fix_crc(&mut v);
        }
        decode_every_way(&v);
    }
}

#[test]
fn truncations_are_errors_for_every_codec() {
    let limits = DecodeLimits::default();
    for c in Compression::ALL {
        let v = encode(&sample_batch(), c);
        assert!(decode_every_way(&v));
        for n in 1..v.len() {
            assert!(!decode_every_way(&v[..n]), "{c:?} cut at {n}");
            // A batch cut short and then given a matching length and CRC must fail in the
            // record or decompression layer, not panic. The one exception is a decoder that
            // tolerates a missing end marker (lz4 frames): then nothing may be lost.
            let mut cut = v[..n].to_vec();
            if cut.len() >= 61 {
                cut[8..12].copy_from_slice(&((n - 12) as i32).to_be_bytes());
                fix_crc(&mut cut);
                if decode_every_way(&cut) {
                    let got = RecordBatch::decode_all(&Bytes::from(cut), &limits, false).unwrap();
                    assert_eq!(got[0].records, sample_batch().records, "{c:?} cut at {n}");
                }
            }
        }
    }
}

#[test]
fn flipped_bits_never_panic() {
    for c in Compression::ALL {
        let v = encode(&sample_batch(), c);
        for bit in 0..v.len() * 8 {
            let mut m = v.clone();
            m[bit / 8] ^= 1 << (bit % 8);
            let stale_crc_ok = decode_every_way(&m);
            // Outside the base offset, leader epoch and CRC fields a stale CRC catches the flip.
            if !(0..8).contains(&(bit / 8)) && !(12..16).contains(&(bit / 8)) {
                assert!(!stale_crc_ok, "{c:?} bit {bit}");
            }
            fix_crc(&mut m);
            decode_every_way(&m);
        }
    }
}

#[test]
fn huge_and_negative_header_counts_and_lengths() {
    let v = encode(&sample_batch(), Compression::None);
    for value in [i32::MAX, i32::MIN, -1, 1 << 30] {
        // Record count.
        let mut m = v.clone();
        m[57..61].copy_from_slice(&value.to_be_bytes());
        fix_crc(&mut m);
        assert!(!decode_every_way(&m), "count {value}");
        // Batch length.
        let mut m = v.clone();
        m[8..12].copy_from_slice(&value.to_be_bytes());
        assert!(!decode_every_way(&m), "length {value}");
        let data = Bytes::from(m);
        assert!(batches(&data).next().unwrap().is_err());
    }
}

/// A batch whose records section is `records` exactly, with a declared count.
fn batch_with_raw_records(count: i32, compression: Compression, records: &[u8]) -> Vec<u8> {
    let mut v = encode(&RecordBatch::default(), Compression::None);
    v[22] |= compression.to_bits() as u8;
    v[57..61].copy_from_slice(&count.to_be_bytes());
    v.extend_from_slice(records);
    let len = (v.len() - 12) as i32;
    v[8..12].copy_from_slice(&len.to_be_bytes());
    fix_crc(&mut v);
    v
}

#[test]
fn huge_lengths_inside_records() {
    // Zig-zag varints: 0xfe 0xff 0xff 0xff 0x0f is i32::MAX, 0x01 is -1, 0x03 is -2.
    let huge = [0xfe, 0xff, 0xff, 0xff, 0x0f];
    let cases: Vec<Vec<u8>> = vec![
        // Record length huge.
        [&huge[..], &[0, 0, 0, 1, 1, 0]].concat(),
        // Record length negative (-2).
        vec![3, 0, 0, 0, 1, 1, 0],
        // Key length huge inside a 10-byte record.
        [&[20u8, 0, 0, 0][..], &huge, &[1, 0]].concat(),
        // Key length -2.
        vec![14, 0, 0, 0, 3, 1, 0, 0],
        // Header count huge.
        [&[20u8, 0, 0, 0, 1, 1][..], &huge].concat(),
        // Header count negative.
        vec![12, 0, 0, 0, 1, 1, 3],
        // Header key null.
        vec![16, 0, 0, 0, 1, 1, 2, 1, 1],
        // Header key not UTF-8.
        vec![18, 0, 0, 0, 1, 1, 2, 2, 0xff, 1],
        // Varint that never ends.
        vec![0xff; 12],
        // Record length shorter than its fields.
        vec![8, 0, 0, 0, 1, 1, 0],
        // Record length longer than its fields.
        vec![16, 0, 0, 0, 1, 1, 0, 0, 0],
    ];
    for (i, records) in cases.iter().enumerate() {
        for count in [1, 2, i32::MAX] {
            let v = batch_with_raw_records(count, Compression::None, records);
            assert!(!decode_every_way(&v), "case {i} count {count}");
        }
    }
    // The well-formed record used as the base of the cases above decodes.
    let ok = batch_with_raw_records(1, Compression::None, &[12, 0, 0, 0, 1, 1, 0]);
    assert!(decode_every_way(&ok));
}

#[test]
fn malformed_compressed_payloads() {
    let mut xerial_huge_chunk = XERIAL_MAGIC.to_vec();
    xerial_huge_chunk.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1]);
    xerial_huge_chunk.put_i32(i32::MAX);
    xerial_huge_chunk.extend_from_slice(b"abc");
    let mut xerial_negative_chunk = xerial_huge_chunk.clone();
    xerial_negative_chunk[16..20].copy_from_slice(&(-1i32).to_be_bytes());
    let mut xerial_big_output = XERIAL_MAGIC.to_vec();
    xerial_big_output.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1]);
    xerial_big_output.put_i32(5);
    // A raw snappy block announcing 4 GiB - 1 of output.
    xerial_big_output.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
    let cases: Vec<(Compression, Vec<u8>)> = vec![
        (Compression::Snappy, xerial_huge_chunk),
        (Compression::Snappy, xerial_negative_chunk),
        (Compression::Snappy, xerial_big_output),
        (Compression::Snappy, vec![0xff, 0xff, 0xff, 0xff, 0x0f]),
        (
            Compression::Gzip,
            vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff, 1, 2, 3],
        ),
        (
            Compression::Lz4,
            vec![
                0x04, 0x22, 0x4d, 0x18, 0x64, 0x40, 0xa7, 0xff, 0xff, 0xff, 0x7f,
            ],
        ),
        (
            Compression::Zstd,
            vec![0x28, 0xb5, 0x2f, 0xfd, 0xff, 0xff, 0xff, 0xff],
        ),
        (Compression::Zstd, Vec::new()),
    ];
    for (i, (c, payload)) in cases.iter().enumerate() {
        let v = batch_with_raw_records(1, *c, payload);
        assert!(!decode_every_way(&v), "case {i}");
    }
}

#[test]
fn compression_bomb_in_a_batch_hits_the_limit() {
    // 16 MiB of zeros as one record value, compressed with every codec, against a 1 MiB limit.
    let batch = RecordBatch {
        records: vec![Record {
            value: Some(Bytes::from(vec![0u8; 16 << 20])),
            ..Record::default()
        }],
        ..RecordBatch::default()
    };
    let limits = DecodeLimits {
        decompressed_bytes_max: 1 << 20,
        ..DecodeLimits::default()
    };
    for c in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let v = Bytes::from(encode(&batch, c));
        assert!(v.len() < 2 << 20, "{c:?} compressed to {} bytes", v.len());
        assert!(
            matches!(
                RecordBatch::decode_all(&v, &limits, false),
                Err(DecodeError::TooLarge(_))
            ),
            "{c:?}"
        );
    }
}

#[test]
fn legacy_and_unknown_magic() {
    let mut v = encode(&sample_batch(), Compression::None);
    for magic in [0u8, 1, 3, 0xff] {
        v[16] = magic;
        assert!(!decode_every_way(&v));
        assert!(!decode_every_way(&v[..20]));
    }
}
