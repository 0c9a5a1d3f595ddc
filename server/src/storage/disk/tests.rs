//! Tests of the disk log's normal operation; recovery tests are in `tests_recovery.rs`.

use std::collections::BTreeMap;
use std::path::Path;

use bytes::{Bytes, BytesMut};
use portask_engine::batch::{BatchHeader, seal};
use portask_engine::storage::{
    CommittedOffset, EncodedBatch, ProducerSnapshot, RecoveredState, Storage, StorageError,
    TopicMeta, TopicPartition,
};

use super::{DiskOptions, DiskStorage};

/// Records per test batch.
pub(super) const COUNT: u32 = 3;

/// A sealed engine batch of `COUNT` records at `base`, with timestamp `10 * base`.
pub(super) fn batch(base: i64, producer: Option<(i64, i16, i32)>) -> EncodedBatch {
    let (producer_id, producer_epoch, base_sequence) = producer.unwrap_or((-1, -1, -1));
    let header = BatchHeader {
        batch_len: 0,
        crc: 0,
        compression: 0,
        base_offset: base,
        record_count: COUNT,
        first_timestamp: 10 * base,
        max_timestamp: 10 * base + 5,
        producer_id,
        producer_epoch,
        base_sequence,
        body_len_uncompressed: 40,
    };
    let mut out = BytesMut::new();
    header.write_unsealed(&mut out);
    out.extend(std::iter::repeat_n(base as u8, 40));
    seal(&mut out);
    EncodedBatch {
        base_offset: base,
        last_offset: base + i64::from(COUNT) - 1,
        max_timestamp: 10 * base + 5,
        bytes: out.freeze(),
    }
}

pub(super) fn tp(topic: &str, partition: i32) -> TopicPartition {
    TopicPartition {
        topic: topic.to_owned(),
        partition,
    }
}

pub(super) fn meta(name: &str, partitions: i32) -> TopicMeta {
    let configs = BTreeMap::from([("retention.ms".to_owned(), "1000".to_owned())]);
    TopicMeta {
        name: name.to_owned(),
        id: [7; 16],
        partitions,
        configs,
    }
}

/// Small segments and a dense index, so tests cross both.
pub(super) fn small() -> DiskOptions {
    DiskOptions {
        segment_bytes: 1000,
        index_interval_bytes: 200,
        ..DiskOptions::default()
    }
}

pub(super) fn open(dir: &Path, opts: DiskOptions) -> (DiskStorage, RecoveredState) {
    let mut store = DiskStorage::open(dir, opts).unwrap();
    let state = store.recover().unwrap();
    (store, state)
}

/// A store with topic `t` (2 partitions) and `n` batches in partition 0.
pub(super) fn filled(dir: &Path, n: i64) -> DiskStorage {
    let (mut store, _) = open(dir, small());
    store.put_topic(&meta("t", 2)).unwrap();
    for i in 0..n {
        store
            .append(&tp("t", 0), &batch(i * i64::from(COUNT), None))
            .unwrap();
    }
    store.sync().unwrap();
    store
}

/// Base offsets of read batches.
pub(super) fn bases(batches: &[Bytes]) -> Vec<i64> {
    batches
        .iter()
        .map(|b| BatchHeader::parse_checked(b).unwrap().base_offset)
        .collect()
}

pub(super) fn segment_count(dir: &Path, topic: &str, partition: i32) -> usize {
    let pdir = dir.join("topics").join(topic).join(partition.to_string());
    std::fs::read_dir(pdir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".log")
        })
        .count()
}

/// Checks reads at every offset of a log of `n` batches.
pub(super) fn check_reads(store: &mut DiskStorage, n: i64) {
    let end = n * i64::from(COUNT);
    let len = batch(0, None).bytes.len();
    for offset in 0..end {
        let first = offset - offset % i64::from(COUNT);
        assert_eq!(
            bases(&store.read(&tp("t", 0), offset, 0).unwrap()),
            vec![first]
        );
        let two = store.read(&tp("t", 0), offset, 2 * len + 1).unwrap();
        let want: Vec<i64> = [first, first + 3]
            .into_iter()
            .filter(|&o| o < end)
            .collect();
        assert_eq!(bases(&two), want);
    }
    let all = store.read(&tp("t", 0), 0, usize::MAX).unwrap();
    assert_eq!(
        bases(&all),
        (0..n).map(|i| i * i64::from(COUNT)).collect::<Vec<_>>()
    );
    assert!(store.read(&tp("t", 0), end, usize::MAX).unwrap().is_empty());
}

#[test]
fn append_and_read_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = filled(dir.path(), 60);
    assert!(segment_count(dir.path(), "t", 0) > 5);
    check_reads(&mut store, 60);
    assert!(store.read(&tp("t", 1), 0, 100).unwrap().is_empty());
}

#[test]
fn reopen_keeps_state() {
    let dir = tempfile::tempdir().unwrap();
    drop(filled(dir.path(), 60));
    let (mut store, state) = open(dir.path(), small());
    assert_eq!(state.topics, vec![meta("t", 2)]);
    assert_eq!(state.partitions[&tp("t", 0)].next_offset, 180);
    assert_eq!(state.partitions[&tp("t", 0)].log_start_offset, 0);
    assert_eq!(state.partitions[&tp("t", 1)].next_offset, 0);
    check_reads(&mut store, 60);
    store.append(&tp("t", 0), &batch(180, None)).unwrap();
    check_reads(&mut store, 61);
}

#[test]
fn bad_appends_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = filled(dir.path(), 2);
    let err = store.append(&tp("t", 0), &batch(7, None)).unwrap_err();
    assert!(matches!(err, StorageError::Corrupt(m) if m == "non-contiguous append"));
    let mut lying = batch(6, None);
    lying.last_offset = 9;
    assert!(matches!(
        store.append(&tp("t", 0), &lying),
        Err(StorageError::Corrupt(_))
    ));
    let err = store.append(&tp("u", 0), &batch(0, None)).unwrap_err();
    assert!(matches!(err, StorageError::UnknownPartition(p) if p == tp("u", 0)));
    assert!(store.put_topic(&meta("../x", 1)).is_err());
    assert!(store.delete_topic("a/b").is_err());
    store.append(&tp("t", 0), &batch(6, None)).unwrap();
}

#[test]
fn offset_for_timestamp_finds_first_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = filled(dir.path(), 30);
    let t0 = tp("t", 0);
    assert_eq!(store.offset_for_timestamp(&t0, 0).unwrap(), Some(0));
    assert_eq!(store.offset_for_timestamp(&t0, 5).unwrap(), Some(0));
    assert_eq!(store.offset_for_timestamp(&t0, 6).unwrap(), Some(3));
    assert_eq!(
        store.offset_for_timestamp(&t0, 10 * 45 + 5).unwrap(),
        Some(45)
    );
    assert_eq!(store.offset_for_timestamp(&t0, 10 * 87 + 6).unwrap(), None);
    store.delete_records(&t0, 50).unwrap();
    assert_eq!(store.offset_for_timestamp(&t0, 0).unwrap(), Some(48));
}

#[test]
fn delete_records_then_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = filled(dir.path(), 60);
    let before = segment_count(dir.path(), "t", 0);
    store.delete_records(&tp("t", 0), 100).unwrap();
    store.delete_records(&tp("t", 0), 10).unwrap();
    assert!(segment_count(dir.path(), "t", 0) < before);
    assert_eq!(bases(&store.read(&tp("t", 0), 0, 0).unwrap()), vec![99]);
    assert_eq!(bases(&store.read(&tp("t", 0), 120, 0).unwrap()), vec![120]);
    drop(store);
    let (mut store, state) = open(dir.path(), small());
    let p = &state.partitions[&tp("t", 0)];
    assert_eq!((p.log_start_offset, p.next_offset), (100, 180));
    assert_eq!(bases(&store.read(&tp("t", 0), 0, 0).unwrap()), vec![99]);
    store.delete_records(&tp("t", 0), 1000).unwrap();
    assert!(store.read(&tp("t", 0), 0, 100).unwrap().is_empty());
    assert_eq!(segment_count(dir.path(), "t", 0), 1);
    store.append(&tp("t", 0), &batch(180, None)).unwrap();
    drop(store);
    let (mut store, state) = open(dir.path(), small());
    let p = &state.partitions[&tp("t", 0)];
    assert_eq!((p.log_start_offset, p.next_offset), (180, 183));
    assert_eq!(bases(&store.read(&tp("t", 0), 0, 0).unwrap()), vec![180]);
}

fn committed(offset: i64) -> CommittedOffset {
    CommittedOffset {
        offset,
        leader_epoch: 3,
        metadata: Some(format!("m{offset}")),
        commit_timestamp: 1000 + offset,
    }
}

#[test]
fn offsets_commit_delete_and_compact() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = open(dir.path(), small());
    store
        .commit_offsets(
            "g1",
            &[(tp("a", 0), committed(1)), (tp("a", 1), committed(2))],
        )
        .unwrap();
    store
        .commit_offsets("g2", &[(tp("b", 0), committed(5))])
        .unwrap();
    store.delete_group("g2").unwrap();
    for i in 0..100 {
        store
            .commit_offsets("g1", &[(tp("a", 0), committed(10 + i))])
            .unwrap();
    }
    store.sync().unwrap();
    drop(store);
    let log = dir.path().join("groups/offsets.log");
    let grown = std::fs::metadata(&log).unwrap().len();
    let (_, state) = open(dir.path(), small());
    let want = BTreeMap::from([(
        "g1".to_owned(),
        BTreeMap::from([(tp("a", 0), committed(109)), (tp("a", 1), committed(2))]),
    )]);
    assert_eq!(state.offsets, want);
    assert!(std::fs::metadata(&log).unwrap().len() < grown / 10);
    let (mut store, state) = open(dir.path(), small());
    assert_eq!(state.offsets, want);
    store.delete_group("g1").unwrap();
    drop(store);
    assert!(open(dir.path(), small()).1.offsets.is_empty());
}

#[test]
fn topics_create_grow_delete() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = filled(dir.path(), 5);
    store.put_topic(&meta("other", 1)).unwrap();
    store.append(&tp("t", 1), &batch(0, None)).unwrap();
    let mut grown = meta("t", 3);
    grown
        .configs
        .insert("cleanup.policy".into(), "delete".into());
    store.put_topic(&grown).unwrap();
    drop(store);
    let (mut store, state) = open(dir.path(), small());
    assert_eq!(state.topics, vec![meta("other", 1), grown]);
    assert_eq!(state.partitions.len(), 4);
    assert_eq!(state.partitions[&tp("t", 0)].next_offset, 15);
    assert_eq!(state.partitions[&tp("t", 1)].next_offset, 3);
    store.delete_topic("t").unwrap();
    assert!(store.read(&tp("t", 0), 0, 10).is_err());
    assert!(!dir.path().join("topics/t").exists());
    drop(store);
    let (mut store, state) = open(dir.path(), small());
    assert_eq!(state.topics, vec![meta("other", 1)]);
    assert_eq!(state.partitions.len(), 1);
    store.put_topic(&meta("t", 1)).unwrap();
    assert!(store.read(&tp("t", 0), 0, 10).unwrap().is_empty());
    store.append(&tp("t", 0), &batch(0, None)).unwrap();
}

#[test]
fn producers_are_recovered() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = open(dir.path(), DiskOptions::default());
    store.put_topic(&meta("t", 1)).unwrap();
    let t0 = tp("t", 0);
    store.append(&t0, &batch(0, Some((5, 0, 0)))).unwrap();
    store.append(&t0, &batch(3, Some((9, 2, 0)))).unwrap();
    store.append(&t0, &batch(6, None)).unwrap();
    store.append(&t0, &batch(9, Some((5, 1, 0)))).unwrap();
    store.append(&t0, &batch(12, Some((5, 1, 3)))).unwrap();
    drop(store);
    let (_, state) = open(dir.path(), DiskOptions::default());
    let snap = |producer_id, producer_epoch, first_sequence, base_offset| ProducerSnapshot {
        producer_id,
        producer_epoch,
        first_sequence,
        last_sequence: first_sequence + 2,
        base_offset,
    };
    assert_eq!(
        state.partitions[&t0].producers,
        vec![snap(5, 1, 0, 9), snap(5, 1, 3, 12), snap(9, 2, 0, 3)]
    );
}

#[test]
fn producer_id_persists() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, state) = open(dir.path(), DiskOptions::default());
    assert_eq!(state.next_producer_id, 0);
    store.set_next_producer_id(1000).unwrap();
    store.set_next_producer_id(2000).unwrap();
    drop(store);
    assert_eq!(
        open(dir.path(), DiskOptions::default()).1.next_producer_id,
        2000
    );
}

#[test]
fn poisoned_store_refuses_writes() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = filled(dir.path(), 2);
    store.poisoned = true;
    let t0 = tp("t", 0);
    assert!(matches!(
        store.append(&t0, &batch(6, None)),
        Err(StorageError::Poisoned)
    ));
    assert!(matches!(store.sync(), Err(StorageError::Poisoned)));
    assert!(matches!(
        store.delete_group("g"),
        Err(StorageError::Poisoned)
    ));
    assert!(matches!(
        store.put_topic(&meta("x", 1)),
        Err(StorageError::Poisoned)
    ));
    assert_eq!(bases(&store.read(&t0, 0, 0).unwrap()), vec![0]);
}

#[test]
fn sync_on_append_writes_through() {
    let dir = tempfile::tempdir().unwrap();
    let opts = DiskOptions {
        sync_on_append: true,
        ..small()
    };
    let (mut store, _) = open(dir.path(), opts.clone());
    store.put_topic(&meta("t", 1)).unwrap();
    for i in 0..20 {
        store.append(&tp("t", 0), &batch(3 * i, None)).unwrap();
    }
    drop(store);
    let (mut store, state) = open(dir.path(), opts);
    assert_eq!(state.partitions[&tp("t", 0)].next_offset, 60);
    check_reads(&mut store, 20);
}

#[test]
fn one_batch_per_segment_and_index_entry_per_batch() {
    let dir = tempfile::tempdir().unwrap();
    let opts = DiskOptions {
        segment_bytes: 1,
        index_interval_bytes: 0,
        ..DiskOptions::default()
    };
    let (mut store, _) = open(dir.path(), opts.clone());
    store.put_topic(&meta("t", 1)).unwrap();
    for i in 0..12 {
        store.append(&tp("t", 0), &batch(3 * i, None)).unwrap();
    }
    assert_eq!(segment_count(dir.path(), "t", 0), 12);
    check_reads(&mut store, 12);
    drop(store);
    check_reads(&mut open(dir.path(), opts).0, 12);
}
