//! Tests of topics, produce, fetch and producer ids.

use std::collections::BTreeMap;

use crate::*;

pub(crate) fn engine_on(storage: &MemStorage, cfg: EngineConfig) -> Engine {
    Engine::open(cfg, Box::new(storage.clone()), 0).unwrap()
}

pub(crate) fn tp(topic: &str, partition: i32) -> TopicPartition {
    TopicPartition {
        topic: topic.into(),
        partition,
    }
}

fn plain(values: &[&str], ts: i64) -> ProduceBatch {
    ProduceBatch {
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
        records: values
            .iter()
            .map(|v| Record::with_value(ts, v.to_string()))
            .collect(),
    }
}

fn idem(pid: i64, epoch: i16, seq: i32, n: usize) -> ProduceBatch {
    ProduceBatch {
        producer_id: pid,
        producer_epoch: epoch,
        base_sequence: seq,
        ..plain(&vec!["v"; n], 5)
    }
}

fn values(out: &FetchOutcome) -> Vec<(i64, String)> {
    out.batches
        .iter()
        .flat_map(|b| &b.records)
        .map(|(o, r)| {
            (
                *o,
                String::from_utf8(r.value.clone().unwrap().to_vec()).unwrap(),
            )
        })
        .collect()
}

fn setup() -> (MemStorage, Engine) {
    let s = MemStorage::new();
    let mut e = engine_on(&s, EngineConfig::default());
    e.create_topic("t", 2, BTreeMap::new()).unwrap();
    (s, e)
}

#[test]
fn topics_create_delete_grow() {
    let (s, mut e) = setup();
    assert!(matches!(
        e.create_topic("t", 1, BTreeMap::new()),
        Err(EngineError::TopicAlreadyExists)
    ));
    assert!(matches!(
        e.create_topic("a b", 1, BTreeMap::new()),
        Err(EngineError::InvalidTopic(_))
    ));
    assert!(matches!(
        e.create_topic("z", 0, BTreeMap::new()),
        Err(EngineError::InvalidPartitions(_))
    ));
    let id = e.topic("t").unwrap().id;
    assert_eq!(e.topic_by_id(&id).unwrap().name, "t");
    assert!(matches!(
        e.create_partitions("t", 1),
        Err(EngineError::InvalidPartitions(_))
    ));
    e.create_partitions("t", 3).unwrap();
    assert!(e.partition_offsets(&tp("t", 2)).is_ok());
    assert_eq!(e.ensure_topic("auto").unwrap().partitions, 1);
    assert_eq!(
        e.topics().map(|t| t.name.as_str()).collect::<Vec<_>>(),
        ["auto", "t"]
    );
    let e2 = engine_on(&s, EngineConfig::default());
    assert_eq!(e2.topic("t").unwrap().partitions, 3);
    assert_eq!(e2.topic("t").unwrap().id, id);
    e.delete_topic("t").unwrap();
    assert!(e.topic("t").is_none());
    assert!(matches!(
        e.partition_offsets(&tp("t", 0)),
        Err(EngineError::UnknownTopicOrPartition)
    ));
    let cfg = EngineConfig {
        auto_create_topics: false,
        ..EngineConfig::default()
    };
    let mut e3 = engine_on(&s, cfg);
    assert!(matches!(
        e3.ensure_topic("nope"),
        Err(EngineError::UnknownTopicOrPartition)
    ));
}

#[test]
fn produce_fetch_offsets_and_trimming() {
    let (_, mut e) = setup();
    let p = tp("t", 0);
    assert_eq!(
        e.produce(100, &p, plain(&["a", "b", "c"], 1))
            .unwrap()
            .base_offset,
        0
    );
    assert_eq!(
        e.produce(100, &p, plain(&["d", "e"], -1))
            .unwrap()
            .base_offset,
        3
    );
    assert_eq!(e.partition_offsets(&p).unwrap().high_watermark, 5);
    let all = e.fetch(&p, 0, 1 << 20).unwrap();
    assert_eq!(all.high_watermark, 5);
    assert_eq!(values(&all).len(), 5);
    assert_eq!(
        all.batches[1].records[0].1.timestamp, 100,
        "-1 is stamped with wall time"
    );
    let mid = e.fetch(&p, 1, 1).unwrap();
    assert_eq!(mid.batches.len(), 1, "max_bytes still returns one batch");
    assert_eq!(values(&mid), [(1, "b".into()), (2, "c".into())]);
    assert_eq!(mid.batches[0].base_offset, 1);
    assert!(e.fetch(&p, 5, 100).unwrap().batches.is_empty());
    assert!(matches!(
        e.fetch(&p, 6, 100),
        Err(EngineError::OffsetOutOfRange)
    ));
    assert!(matches!(
        e.fetch(&p, -1, 100),
        Err(EngineError::OffsetOutOfRange)
    ));
    assert!(matches!(
        e.fetch(&tp("t", 9), 0, 100),
        Err(EngineError::UnknownTopicOrPartition)
    ));
    assert!(matches!(
        e.produce(0, &p, plain(&[], 0)),
        Err(EngineError::InvalidRequest(_))
    ));
}

#[test]
fn every_compression_round_trips_through_the_engine() {
    for compression in [
        StoredCompression::Zstd { level: 1 },
        StoredCompression::Lz4,
        StoredCompression::Snappy,
    ] {
        let s = MemStorage::new();
        let mut e = engine_on(
            &s,
            EngineConfig {
                compression: compression.into(),
                ..EngineConfig::default()
            },
        );
        e.create_topic("t", 1, BTreeMap::new()).unwrap();
        e.produce(0, &tp("t", 0), plain(&["x", "y"], 3)).unwrap();
        assert_eq!(
            values(&e.fetch(&tp("t", 0), 0, 100).unwrap()),
            [(0, "x".into()), (1, "y".into())]
        );
    }
}

#[test]
fn delete_records_moves_log_start() {
    let (_, mut e) = setup();
    let p = tp("t", 1);
    e.produce(0, &p, plain(&["a", "b"], 1)).unwrap();
    e.produce(0, &p, plain(&["c", "d"], 1)).unwrap();
    assert_eq!(e.delete_records(&p, 3).unwrap(), 3);
    assert_eq!(e.delete_records(&p, 1).unwrap(), 3, "never moves back");
    assert!(matches!(
        e.delete_records(&p, 5),
        Err(EngineError::OffsetOutOfRange)
    ));
    assert!(matches!(
        e.fetch(&p, 2, 100),
        Err(EngineError::OffsetOutOfRange)
    ));
    assert_eq!(values(&e.fetch(&p, 3, 100).unwrap()), [(3, "d".into())]);
    assert_eq!(
        e.produce(0, &p, plain(&["e"], 1)).unwrap().log_start_offset,
        3
    );
    assert_eq!(e.delete_records(&p, -1).unwrap(), 5);
    assert!(e.fetch(&p, 5, 100).unwrap().batches.is_empty());
}

#[test]
fn offset_for_timestamp_finds_first_record_at_or_after() {
    let (_, mut e) = setup();
    let p = tp("t", 0);
    assert_eq!(e.offset_for_timestamp(&p, 0).unwrap(), None);
    e.produce(0, &p, plain(&["a", "b"], 10)).unwrap();
    let mut b = plain(&["c", "d", "e"], 20);
    b.records[1].timestamp = 30;
    b.records[2].timestamp = 25;
    e.produce(0, &p, b).unwrap();
    assert_eq!(e.offset_for_timestamp(&p, 5).unwrap(), Some((0, 10)));
    assert_eq!(e.offset_for_timestamp(&p, 11).unwrap(), Some((2, 20)));
    assert_eq!(e.offset_for_timestamp(&p, 21).unwrap(), Some((3, 30)));
    assert_eq!(e.offset_for_timestamp(&p, 31).unwrap(), None);
    assert_eq!(
        e.offset_for_timestamp(&p, LATEST_TIMESTAMP).unwrap(),
        Some((5, -1))
    );
    assert_eq!(
        e.offset_for_timestamp(&p, EARLIEST_TIMESTAMP).unwrap(),
        Some((0, -1))
    );
    e.delete_records(&p, 4).unwrap();
    assert_eq!(e.offset_for_timestamp(&p, 11).unwrap(), Some((4, 25)));
}

#[test]
fn idempotent_produce() {
    let (s, mut e) = setup();
    let p = tp("t", 0);
    let (pid, epoch) = e.init_producer_id().unwrap();
    assert_eq!(
        e.produce(0, &p, idem(pid, epoch, 0, 2))
            .unwrap()
            .base_offset,
        0
    );
    e.produce(0, &p, plain(&["x"], 1)).unwrap();
    let appends = s.append_count();
    let dup = e.produce(0, &p, idem(pid, epoch, 0, 2)).unwrap();
    assert_eq!((dup.base_offset, dup.duplicate), (0, true));
    assert_eq!(s.append_count(), appends, "a duplicate is not appended");
    assert!(matches!(
        e.produce(0, &p, idem(pid, epoch, 3, 1)),
        Err(EngineError::OutOfOrderSequence)
    ));
    assert_eq!(
        e.produce(0, &p, idem(pid, epoch, 2, 1))
            .unwrap()
            .base_offset,
        3
    );
    assert_eq!(e.produce(0, &p, idem(pid, 1, 0, 1)).unwrap().base_offset, 4);
    assert!(matches!(
        e.produce(0, &p, idem(pid, 0, 3, 1)),
        Err(EngineError::InvalidProducerEpoch)
    ));
    // Producer state survives a restart.
    let mut e2 = engine_on(&s, EngineConfig::default());
    assert!(e2.produce(0, &p, idem(pid, 1, 0, 1)).unwrap().duplicate);
    assert!(matches!(
        e2.produce(0, &p, idem(pid, 1, 5, 1)),
        Err(EngineError::OutOfOrderSequence)
    ));
    assert_eq!(
        e2.produce(0, &p, idem(pid, 1, 1, 1)).unwrap().base_offset,
        5
    );
}

#[test]
fn producer_ids_survive_reopen() {
    let s = MemStorage::new();
    let mut e = engine_on(&s, EngineConfig::default());
    let ids: Vec<i64> = (0..3).map(|_| e.init_producer_id().unwrap().0).collect();
    assert_eq!(ids, [0, 1, 2]);
    let mut e2 = engine_on(&s, EngineConfig::default());
    let next = e2.init_producer_id().unwrap().0;
    assert!(next > 2, "{next}");
}

#[test]
fn storage_failure_acknowledges_nothing() {
    let (s, mut e) = setup();
    let p = tp("t", 0);
    s.set_fail_writes(true);
    assert!(matches!(
        e.produce(0, &p, plain(&["a"], 1)),
        Err(EngineError::Storage(_))
    ));
    assert!(e.init_producer_id().is_err());
    s.set_fail_writes(false);
    assert_eq!(e.partition_offsets(&p).unwrap().high_watermark, 0);
    assert_eq!(e.produce(0, &p, plain(&["a"], 1)).unwrap().base_offset, 0);
}
