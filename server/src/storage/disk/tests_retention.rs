//! Tests of the time index, retention, compaction and segment roll by time.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use portask_engine::batch::{ProducerFields, StoredCompression, decode_batch, encode_batch};
use portask_engine::storage::{EncodedBatch, RetentionPolicy, Storage, TopicMeta};
use portask_engine::{EngineConfig, EngineError, ProduceBatch, Record};

use super::tests::{open, tp};
use super::{DiskOptions, DiskStorage};

const NO_PRODUCER: ProducerFields = ProducerFields {
    producer_id: -1,
    producer_epoch: -1,
    base_sequence: -1,
};

fn rec(ts: i64, key: Option<&str>, value: Option<&str>) -> Record {
    Record {
        timestamp: ts,
        key: key.map(|k| Bytes::copy_from_slice(k.as_bytes())),
        value: value.map(|v| Bytes::copy_from_slice(v.as_bytes())),
        headers: Vec::new(),
    }
}

fn enc(base: i64, records: &[Record]) -> EncodedBatch {
    encode_batch(base, NO_PRODUCER, records, StoredCompression::None).unwrap()
}

fn topic(name: &str, configs: &[(&str, &str)]) -> TopicMeta {
    TopicMeta {
        name: name.to_owned(),
        id: [3; 16],
        partitions: 1,
        configs: configs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    }
}

fn opts() -> DiskOptions {
    DiskOptions {
        segment_bytes: 600,
        index_interval_bytes: 150,
        ..DiskOptions::default()
    }
}

fn pdir(dir: &Path) -> PathBuf {
    dir.join("topics/t/0")
}

fn files(dir: &Path, suffix: &str) -> Vec<String> {
    let mut out: Vec<String> = fs::read_dir(pdir(dir))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(suffix))
        .collect();
    out.sort();
    out
}

/// Every (offset, key, value) stored from `from` on.
fn contents(store: &mut DiskStorage, from: i64) -> Vec<(i64, Option<String>, Option<String>)> {
    let s = |b: &Option<Bytes>| b.as_ref().map(|b| String::from_utf8_lossy(b).into_owned());
    let mut out = Vec::new();
    for bytes in store.read(&tp("t", 0), from, usize::MAX).unwrap() {
        let d = decode_batch(&bytes).unwrap();
        for (o, r) in (d.header.base_offset..).zip(d.records) {
            out.push((o, s(&r.key), s(&r.value)));
        }
    }
    out
}

/// A store with topic `t` and `n` one-record batches, record `i` at timestamp `1000 + 10 i`
/// (each batch about 100 bytes, so about six per segment).
fn timed(dir: &Path, n: i64, configs: &[(&str, &str)]) -> DiskStorage {
    let (mut store, _) = open(dir, opts());
    store.put_topic(&topic("t", configs)).unwrap();
    for i in 0..n {
        let r = rec(1000 + 10 * i, Some(&format!("k{i}")), Some("v"));
        store.append(&tp("t", 0), &enc(i, &[r])).unwrap();
    }
    store
}

#[test]
fn time_index_lookups_match_a_full_scan() {
    let dir = tempfile::tempdir().unwrap();
    // Timestamps go back and forth: the answer is the first batch with a max at or after.
    let (mut store, _) = open(dir.path(), opts());
    store.put_topic(&topic("t", &[])).unwrap();
    let stamps: Vec<i64> = (0..40).map(|i| 1000 + (i * 37) % 23 * 10 + i).collect();
    for (i, ts) in stamps.iter().enumerate() {
        let r = rec(*ts, Some("k"), Some("value"));
        store.append(&tp("t", 0), &enc(i as i64, &[r])).unwrap();
    }
    store.sync().unwrap();
    let expected = |t: i64| stamps.iter().position(|s| *s >= t).map(|p| p as i64);
    let check = |store: &mut DiskStorage| {
        for t in 990..1300 {
            let got = store.offset_for_timestamp(&tp("t", 0), t).unwrap();
            assert_eq!(got, expected(t), "timestamp {t}");
        }
    };
    check(&mut store);
    let timeindexes = files(dir.path(), ".timeindex");
    assert!(timeindexes.len() > 2, "{timeindexes:?}");
    let first = pdir(dir.path()).join(&timeindexes[0]);
    assert!(fs::metadata(&first).unwrap().len() > 0);
    assert_eq!(fs::metadata(&first).unwrap().len() % 12, 0);
    drop(store);

    // Missing, damaged and stale time indexes are rebuilt.
    let good = fs::read(&first).unwrap();
    fs::remove_file(&first).unwrap();
    let second = pdir(dir.path()).join(&timeindexes[1]);
    let len = fs::metadata(&second).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&second)
        .unwrap()
        .set_len(len - 5)
        .unwrap();
    let third = pdir(dir.path()).join(&timeindexes[2]);
    fs::write(&third, []).unwrap();
    let (mut store, _) = open(dir.path(), opts());
    assert_eq!(fs::read(&first).unwrap(), good);
    assert_eq!(fs::metadata(&second).unwrap().len(), len);
    assert!(fs::metadata(&third).unwrap().len() > 0);
    check(&mut store);
}

#[test]
fn retention_by_time_deletes_only_old_closed_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = timed(dir.path(), 30, &[]);
    let logs = files(dir.path(), ".log");
    assert!(logs.len() >= 4, "{logs:?}");
    let policy = RetentionPolicy {
        retention_ms: 100,
        ..RetentionPolicy::default()
    };
    // At 1200 records up to timestamp 1099 (offsets 0..=9) are expired: only whole segments
    // whose newest record is older go.
    let start = store
        .apply_retention(&tp("t", 0), &policy, 1200)
        .unwrap()
        .unwrap();
    let left = contents(&mut store, 0);
    assert_eq!(left[0].0, start);
    assert!(start > 0 && start <= 10, "{start}");
    assert_eq!(left.last().unwrap().0, 29);
    // Far in the future every closed segment goes, never the active one.
    let start = store
        .apply_retention(&tp("t", 0), &policy, 1_000_000)
        .unwrap()
        .unwrap();
    let active_base: i64 = files(dir.path(), ".log")[0]
        .trim_end_matches(".log")
        .parse()
        .unwrap();
    assert_eq!(files(dir.path(), ".log").len(), 1);
    assert_eq!(start, active_base);
    assert_eq!(contents(&mut store, 0).last().unwrap().0, 29);
    assert!(files(dir.path(), ".timeindex").len() == 1);
    drop(store);
    let (_, state) = open(dir.path(), opts());
    let p = &state.partitions[&tp("t", 0)];
    assert_eq!((p.log_start_offset, p.next_offset), (start, 30));
}

#[test]
fn retention_by_size_keeps_at_least_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = timed(dir.path(), 30, &[]);
    let size = |dir: &Path| -> u64 {
        files(dir, ".log")
            .iter()
            .map(|n| fs::metadata(pdir(dir).join(n)).unwrap().len())
            .sum()
    };
    let total = size(dir.path());
    let policy = RetentionPolicy {
        retention_bytes: (total / 2) as i64,
        ..RetentionPolicy::default()
    };
    let start = store
        .apply_retention(&tp("t", 0), &policy, 0)
        .unwrap()
        .unwrap();
    assert!(start > 0);
    let left = size(dir.path());
    assert!(left >= total / 2 && left < total, "{left} of {total}");
    assert_eq!(contents(&mut store, 0)[0].0, start);
    // Unlimited and a policy without delete change nothing.
    for policy in [
        RetentionPolicy::default(),
        RetentionPolicy {
            delete: false,
            retention_bytes: 0,
            ..RetentionPolicy::default()
        },
    ] {
        let again = store.apply_retention(&tp("t", 0), &policy, 0).unwrap();
        assert_eq!(again, Some(start));
    }
}

#[test]
fn segments_roll_by_time() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = open(dir.path(), DiskOptions::default());
    store
        .put_topic(&topic("t", &[("segment.ms", "100")]))
        .unwrap();
    for (i, ts) in [1000, 1050, 1100, 1101, 1250].iter().enumerate() {
        let r = rec(*ts, None, Some("v"));
        store.append(&tp("t", 0), &enc(i as i64, &[r])).unwrap();
    }
    // 1101 is more than 100 past 1000; 1250 more than 100 past 1101.
    assert_eq!(files(dir.path(), ".log").len(), 3);
    let (mut store, _) = open(dir.path(), DiskOptions::default());
    assert_eq!(files(dir.path(), ".log").len(), 3);
    // The default (7 days) does not roll.
    store.put_topic(&topic("u", &[])).unwrap();
    for i in 0..3 {
        let r = rec(1000 + i * 1000, None, Some("v"));
        store.append(&tp("u", 0), &enc(i, &[r])).unwrap();
    }
    assert_eq!(
        fs::read_dir(dir.path().join("topics/u/0")).unwrap().count(),
        3
    );
}

/// A compacted topic: keys a, b, c with several versions, a tombstone for b, keyless records.
fn compacted(dir: &Path) -> DiskStorage {
    let (mut store, _) = open(dir, opts());
    store
        .put_topic(&topic("t", &[("cleanup.policy", "compact")]))
        .unwrap();
    let mut offset = 0;
    let mut push = |store: &mut DiskStorage, records: Vec<Record>| {
        let n = records.len() as i64;
        store.append(&tp("t", 0), &enc(offset, &records)).unwrap();
        offset += n;
    };
    for round in 0..4 {
        let v = format!("v{round}");
        push(
            &mut store,
            vec![
                rec(1000, Some("a"), Some(&v)),
                rec(1000, Some("b"), Some(&v)),
                rec(1000, None, Some("nokey")),
            ],
        );
        push(&mut store, vec![rec(1000, Some("c"), Some(&v))]);
    }
    push(&mut store, vec![rec(1000, Some("b"), None)]);
    // Later records fill the active segment past the closed ones.
    for i in 0..8 {
        push(
            &mut store,
            vec![rec(1000, Some(&format!("z{i}")), Some("z"))],
        );
    }
    store
}

fn compact_policy() -> RetentionPolicy {
    RetentionPolicy {
        delete: false,
        compact: true,
        delete_retention_ms: 1000,
        ..RetentionPolicy::default()
    }
}

#[test]
fn compaction_keeps_the_latest_per_key_at_its_offset() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = compacted(dir.path());
    let before = contents(&mut store, 0);
    let closed_end: i64 = files(dir.path(), ".log")
        .last()
        .unwrap()
        .trim_end_matches(".log")
        .parse()
        .unwrap();
    assert!(closed_end > 16, "the tombstone is in a closed segment");
    let start = store
        .apply_retention(&tp("t", 0), &compact_policy(), 10_000)
        .unwrap();
    assert_eq!(start, Some(0));
    let after = contents(&mut store, 0);
    // Closed part: latest a (offset 12), c (15), the tombstone of b (16); nothing keyless.
    let closed: Vec<_> = after.iter().filter(|r| r.0 < closed_end).cloned().collect();
    let s = |x: &str| Some(x.to_owned());
    let mut expected = vec![
        (12, s("a"), s("v3")),
        (15, s("c"), s("v3")),
        (16, s("b"), None),
    ];
    expected.extend(
        before
            .iter()
            .filter(|r| r.0 > 16 && r.0 < closed_end)
            .cloned(),
    );
    assert_eq!(closed, expected);
    // The active segment is untouched.
    let active = |v: &[(i64, Option<String>, Option<String>)]| -> Vec<_> {
        v.iter().filter(|r| r.0 >= closed_end).cloned().collect()
    };
    assert_eq!(active(&after), active(&before));
    // Reads from an offset in a gap start at the next record; the state survives a restart.
    assert_eq!(contents(&mut store, 3)[0].0, 12);
    assert!(files(dir.path(), ".cleaned").len() >= 2);
    drop(store);
    let (mut store, state) = open(dir.path(), opts());
    assert_eq!(
        state.partitions[&tp("t", 0)].next_offset,
        before.last().unwrap().0 + 1
    );
    assert_eq!(contents(&mut store, 0), after);
    // The tombstone stays within delete.retention.ms of the first compaction, then goes.
    store
        .apply_retention(&tp("t", 0), &compact_policy(), 10_500)
        .unwrap();
    assert_eq!(contents(&mut store, 0), after);
    store
        .apply_retention(&tp("t", 0), &compact_policy(), 11_000)
        .unwrap();
    let last: Vec<_> = contents(&mut store, 0)
        .into_iter()
        .filter(|r| r.0 < closed_end)
        .collect();
    assert_eq!(last[..2], expected[..2]);
    assert!(last.iter().all(|r| r.2.is_some()), "{last:?}");
}

#[test]
fn compaction_rewrite_is_crash_safe() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = compacted(dir.path());
    let before = contents(&mut store, 0);
    store.sync().unwrap();
    drop(store);
    let logs = files(dir.path(), ".log");
    let first = pdir(dir.path()).join(&logs[0]);
    let old = fs::read(&first).unwrap();

    // Crash after the cleaned copy was written, before it replaced the log: the copy is
    // dropped and the old segment is read as before.
    let tmp = pdir(dir.path()).join(format!("{}.tmp", logs[0]));
    fs::write(&tmp, b"partial cleaned copy").unwrap();
    let (mut store, _) = open(dir.path(), opts());
    assert!(!tmp.exists());
    assert_eq!(contents(&mut store, 0), before);
    store
        .apply_retention(&tp("t", 0), &compact_policy(), 10_000)
        .unwrap();
    let after = contents(&mut store, 0);
    assert_ne!(after, before);
    let new = fs::read(&first).unwrap();
    assert!(new.len() < old.len());
    drop(store);

    // Crash after the rename, before the indexes were rebuilt: the new segment is read with
    // rebuilt indexes and compacted again to the same result.
    for suffix in [".index", ".timeindex"] {
        for f in files(dir.path(), suffix) {
            fs::remove_file(pdir(dir.path()).join(f)).unwrap();
        }
    }
    let (mut store, _) = open(dir.path(), opts());
    assert_eq!(contents(&mut store, 0), after);
    store
        .apply_retention(&tp("t", 0), &compact_policy(), 10_000)
        .unwrap();
    assert_eq!(contents(&mut store, 0), after);

    // And with the old log put back and its note not yet written (a crash before the
    // rename), compaction gives the same.
    drop(store);
    fs::write(&first, &old).unwrap();
    fs::remove_file(pdir(dir.path()).join(logs[0].replace(".log", ".cleaned"))).unwrap();
    for suffix in [".index", ".timeindex"] {
        fs::remove_file(pdir(dir.path()).join(logs[0].replace(".log", suffix))).unwrap();
    }
    let (mut store, _) = open(dir.path(), opts());
    store
        .apply_retention(&tp("t", 0), &compact_policy(), 10_000)
        .unwrap();
    assert_eq!(contents(&mut store, 0), after);
}

fn engine_on(dir: &Path) -> portask_engine::Engine {
    let (store, _) = open(dir, opts());
    portask_engine::Engine::open(EngineConfig::default(), Box::new(store), 0).unwrap()
}

fn produce(engine: &mut portask_engine::Engine, wall: i64, n: usize) {
    let records = (0..n)
        .map(|_| rec(wall, Some("k"), Some("value")))
        .collect();
    let batch = ProduceBatch {
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
        records,
    };
    engine.produce(wall, &tp("t", 0), batch).unwrap();
}

#[test]
fn the_engine_runs_retention_on_its_timer() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = engine_on(dir.path());
    let configs = BTreeMap::from([("retention.ms".to_owned(), "60000".to_owned())]);
    engine.create_topic("t", 1, configs).unwrap();
    for i in 0..20 {
        produce(&mut engine, 1_000_000 + i, 1);
    }
    let tp0 = tp("t", 0);
    assert_eq!(engine.partition_offsets(&tp0).unwrap().log_start_offset, 0);
    let due = engine
        .poll_timeout()
        .expect("armed for a topic with retention.ms");
    engine.handle_timeout(due);
    // The wall clock is estimated from the produce: a few ms later, nothing expired.
    assert_eq!(engine.partition_offsets(&tp0).unwrap().log_start_offset, 0);
    let later = due + 120_000;
    engine.handle_timeout(later);
    let offsets = engine.partition_offsets(&tp0).unwrap();
    assert!(offsets.log_start_offset > 0, "{offsets:?}");
    assert_eq!(offsets.high_watermark, 20);
    let start = offsets.log_start_offset;
    assert!(matches!(
        engine.fetch(&tp0, start - 1, 1 << 20),
        Err(EngineError::OffsetOutOfRange)
    ));
    let fetched = engine.fetch(&tp0, start, 1 << 20).unwrap();
    assert_eq!(fetched.batches[0].base_offset, start);
    assert!(engine.poll_timeout().unwrap() > later);
    // A topic without retention disarms the timer once the other goes.
    engine.delete_topic("t").unwrap();
    engine.create_topic("u", 1, BTreeMap::new()).unwrap();
    assert_eq!(engine.poll_timeout(), None);
}

#[test]
fn the_engine_learns_the_log_start_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = engine_on(dir.path());
    let configs = BTreeMap::from([("retention.bytes".to_owned(), "0".to_owned())]);
    engine.create_topic("t", 1, configs).unwrap();
    for i in 0..20 {
        produce(&mut engine, 1_000_000 + i, 1);
    }
    engine.apply_retention(1_000_100).unwrap();
    let start = engine
        .partition_offsets(&tp("t", 0))
        .unwrap()
        .log_start_offset;
    assert!(start > 0);
    drop(engine);
    let engine = engine_on(dir.path());
    let offsets = engine.partition_offsets(&tp("t", 0)).unwrap();
    assert_eq!(
        (offsets.log_start_offset, offsets.high_watermark),
        (start, 20)
    );
}
