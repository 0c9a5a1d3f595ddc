//! Engine-level tests of the compression policy, message ids and dictionaries.

use std::collections::BTreeMap;

use bytes::{BufMut, BytesMut};

use crate::batch::{BatchHeader, FLAG_DICTIONARY, FLAG_SINGLE, seal};
use crate::compression::policy::{CompressionPolicy, CompressionSettings};
use crate::storage::{Storage, TopicPartition};
use crate::{
    CompressionMode, Engine, EngineConfig, MemStorage, ProduceBatch, Record, StoredCompression,
};

fn tp() -> TopicPartition {
    TopicPartition {
        topic: "t".into(),
        partition: 0,
    }
}

fn open(storage: &MemStorage, policy: CompressionPolicy) -> Engine {
    let cfg = EngineConfig {
        compression: policy,
        seed: 9,
        ..EngineConfig::default()
    };
    Engine::open(cfg, Box::new(storage.clone()), 0).unwrap()
}

fn produce(e: &mut Engine, values: Vec<Vec<u8>>) {
    let records = values
        .into_iter()
        .map(|v| Record::with_value(1_000, v))
        .collect();
    let batch = ProduceBatch {
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
        records,
    };
    e.produce(1_700_000_000_000, &tp(), batch).unwrap();
}

fn fetch_all(e: &mut Engine) -> Vec<(i64, Vec<u8>, Option<crate::Ulid>)> {
    let out = e.fetch(&tp(), 0, usize::MAX).unwrap();
    out.batches
        .into_iter()
        .flat_map(|b| {
            assert_eq!(b.records.len(), b.message_ids.len());
            b.records.into_iter().zip(b.message_ids)
        })
        .map(|((o, r), id)| (o, r.value.unwrap().to_vec(), id))
        .collect()
}

fn json_line(i: usize) -> Vec<u8> {
    format!(
        r#"{{"ts":"2026-11-23T10:{:02}:{:02}Z","level":"info","service":"checkout","msg":"order accepted","order_id":{},"user":"user-{}","amount_cents":{}}}"#,
        i % 60,
        (i * 7) % 60,
        100_000 + i,
        i % 97,
        (i * 31) % 10_000
    )
    .into_bytes()
}

fn random_bytes(rng: &mut crate::rng::Rng, len: usize) -> Vec<u8> {
    (0..len).map(|_| rng.next_u64() as u8).collect()
}

fn settings(c: StoredCompression, mode: CompressionMode) -> CompressionSettings {
    CompressionSettings {
        mode,
        ..CompressionSettings::from(c)
    }
}

#[test]
fn produce_is_split_by_the_limits_and_ids_are_stored() {
    let s = MemStorage::new();
    let mut policy = CompressionPolicy::from(StoredCompression::Lz4);
    policy.default.batch_max_messages = 4;
    policy.default.batch_max_bytes = 1_000;
    let mut e = open(&s, policy.clone());
    e.create_topic("t", 1, BTreeMap::new()).unwrap();
    let values: Vec<Vec<u8>> = (0..10).map(|i| vec![i as u8; 100 + i * 60]).collect();
    produce(&mut e, values.clone());
    let out = e.fetch(&tp(), 0, usize::MAX).unwrap();
    assert!(out.batches.len() >= 3, "{} batches", out.batches.len());
    assert!(out.batches.iter().all(|b| b.records.len() <= 4));
    let got = fetch_all(&mut e);
    assert_eq!(got.iter().map(|g| g.1.clone()).collect::<Vec<_>>(), values);
    let ids: Vec<_> = got.iter().map(|g| g.2.expect("an id")).collect();
    assert!(ids.windows(2).all(|w| w[0] != w[1]));
    assert!(ids.iter().all(|id| id.timestamp_ms() == 1_700_000_000_000));
    // Same seed, same calls: same ids.
    let s2 = MemStorage::new();
    let mut e2 = open(&s2, policy);
    e2.create_topic("t", 1, BTreeMap::new()).unwrap();
    produce(&mut e2, values);
    let ids2: Vec<_> = fetch_all(&mut e2).iter().map(|g| g.2.unwrap()).collect();
    assert_eq!(ids, ids2);
}

#[test]
fn single_mode_compresses_values_above_min_size_only() {
    for c in [
        StoredCompression::Zstd { level: 3 },
        StoredCompression::Lz4,
        StoredCompression::Snappy,
    ] {
        let s = MemStorage::new();
        let mut policy = CompressionPolicy::default();
        policy.topics.insert(
            "t".into(),
            CompressionSettings {
                min_size: 64,
                ..settings(c, CompressionMode::Single)
            },
        );
        let mut e = open(&s, policy);
        e.create_topic("t", 1, BTreeMap::new()).unwrap();
        let values = vec![vec![b'a'; 10], json_line(1).repeat(20), vec![b'b'; 63]];
        produce(&mut e, values.clone());
        let got: Vec<_> = fetch_all(&mut e).into_iter().map(|g| g.1).collect();
        assert_eq!(got, values, "{c:?}");
        let raw = s.clone().read(&tp(), 0, usize::MAX).unwrap();
        let h = BatchHeader::parse_checked(&raw[0]).unwrap();
        assert_eq!(h.compression, c.code() | FLAG_SINGLE, "{c:?}");
        assert!(raw[0].len() < 1_000, "{c:?}: {}", raw[0].len());
    }
}

#[test]
fn bulk_body_below_min_size_is_stored_uncompressed() {
    let s = MemStorage::new();
    let mut policy = CompressionPolicy::from(StoredCompression::Zstd { level: 3 });
    policy.default.min_size = 10_000;
    let mut e = open(&s, policy);
    e.create_topic("t", 1, BTreeMap::new()).unwrap();
    produce(&mut e, vec![vec![b'x'; 500]]);
    produce(&mut e, vec![vec![b'x'; 20_000]]);
    let raw = s.clone().read(&tp(), 0, usize::MAX).unwrap();
    let codes: Vec<u8> = raw
        .iter()
        .map(|b| BatchHeader::parse(b).unwrap().compression)
        .collect();
    assert_eq!(codes, vec![0, 1]);
    let stats = e.compression_stats();
    assert_eq!(stats.batches_total, 2);
    assert!(stats.bytes_out < stats.bytes_in);
}

#[test]
fn version_one_batches_stay_readable() {
    // A version 1 batch as the previous format wrote it: 4-entry records, no flags.
    let body = ciborium::Value::Array(vec![ciborium::Value::Array(vec![
        ciborium::Value::Integer(0.into()),
        ciborium::Value::Null,
        ciborium::Value::Bytes(b"old".to_vec()),
        ciborium::Value::Array(vec![]),
    ])]);
    let mut cbor = Vec::new();
    ciborium::into_writer(&body, &mut cbor).unwrap();
    let header = BatchHeader {
        batch_len: 0,
        crc: 0,
        compression: 0,
        base_offset: 0,
        record_count: 1,
        first_timestamp: 5,
        max_timestamp: 5,
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
        body_len_uncompressed: cbor.len() as u32,
    };
    let mut out = BytesMut::new();
    header.write_unsealed(&mut out);
    out.put_slice(&cbor);
    out[8] = 1;
    seal(&mut out);
    let decoded = crate::batch::decode_batch(&out).unwrap();
    assert_eq!(decoded.records, vec![Record::with_value(5, "old")]);
    assert_eq!(decoded.ids, vec![None]);
    // Flags are not defined in version 1.
    out[9] = FLAG_SINGLE;
    seal(&mut out);
    assert!(crate::batch::decode_batch(&out).is_err());
}

fn dictionary_policy(mode: CompressionMode) -> CompressionPolicy {
    let mut policy = CompressionPolicy {
        default: CompressionSettings {
            dictionary: true,
            ..settings(StoredCompression::Zstd { level: 3 }, mode)
        },
        ..CompressionPolicy::default()
    };
    policy.dictionary.sample_records = 200;
    policy.dictionary.min_sample_bytes = 4 << 10;
    policy
}

#[test]
fn repetitive_json_gets_a_dictionary_that_survives_a_restart() {
    for mode in [CompressionMode::Single, CompressionMode::Bulk] {
        let s = MemStorage::new();
        let mut e = open(&s, dictionary_policy(mode));
        e.create_topic("t", 1, BTreeMap::new()).unwrap();
        // Small batches of JSON lines, as a chatty producer sends them.
        let mut values = Vec::new();
        for chunk in 0..60 {
            let batch: Vec<Vec<u8>> = (0..5).map(|i| json_line(chunk * 5 + i)).collect();
            values.extend(batch.clone());
            produce(&mut e, batch);
        }
        let id = e.topic_dictionary("t").expect("dictionary chosen");
        assert_eq!(e.compression_stats().dictionaries_used, 1);
        let raw = s.clone().read(&tp(), 0, usize::MAX).unwrap();
        let last = raw.last().unwrap();
        let h = BatchHeader::parse(last).unwrap();
        assert_ne!(h.compression & FLAG_DICTIONARY, 0, "{mode:?}");
        // The same records compressed without the dictionary take more room.
        let mut plain = open(&MemStorage::new(), {
            let mut p = dictionary_policy(mode);
            p.default.dictionary = false;
            p
        });
        plain.create_topic("t", 1, BTreeMap::new()).unwrap();
        let tail: Vec<Vec<u8>> = values[values.len() - 5..].to_vec();
        produce(&mut plain, tail);
        let plain_storage = plain.storage.as_mut().read(&tp(), 0, usize::MAX).unwrap();
        assert!(
            last.len() < plain_storage[0].len(),
            "{mode:?}: {} vs {}",
            last.len(),
            plain_storage[0].len()
        );
        drop(e);
        let mut reopened = open(&s, dictionary_policy(mode));
        assert_eq!(reopened.topic_dictionary("t"), Some(id));
        let got: Vec<_> = fetch_all(&mut reopened).into_iter().map(|g| g.1).collect();
        assert_eq!(got, values, "{mode:?}");
    }
}

#[test]
fn random_payloads_get_no_dictionary() {
    let s = MemStorage::new();
    let mut e = open(&s, dictionary_policy(CompressionMode::Single));
    e.create_topic("t", 1, BTreeMap::new()).unwrap();
    let mut rng = crate::rng::Rng::new(1);
    for _ in 0..50 {
        let batch = (0..5).map(|_| random_bytes(&mut rng, 200)).collect();
        produce(&mut e, batch);
    }
    assert_eq!(e.topic_dictionary("t"), None);
    let stats = e.compression_stats();
    assert_eq!(
        (stats.dictionaries_used, stats.dictionaries_rejected),
        (0, 1)
    );
    assert_eq!(fetch_all(&mut e).len(), 250);
}
