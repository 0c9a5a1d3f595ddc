//! Recovery tests: damaged indexes, torn tails, corruption.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use portask_engine::storage::{CommittedOffset, Storage, StorageError};

use super::DiskStorage;
use super::tests::{batch, check_reads, filled, open, small, tp};

fn partition_files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir.join("topics/t/0"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    files.sort();
    files
}

fn recover_err(dir: &Path) -> StorageError {
    let mut store = DiskStorage::open(dir, small()).unwrap();
    store.recover().unwrap_err()
}

#[test]
fn missing_or_damaged_index_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    drop(filled(dir.path(), 60));
    let indexes = partition_files(dir.path(), "index");
    let originals: Vec<Vec<u8>> = indexes.iter().map(|p| fs::read(p).unwrap()).collect();
    assert!(
        originals.iter().any(|i| i.len() >= 16),
        "test needs indexes with entries"
    );
    fs::remove_file(&indexes[0]).unwrap();
    let mut partial = originals[1].clone();
    partial.pop();
    fs::write(&indexes[1], partial).unwrap();
    fs::write(&indexes[2], &originals[2][..8]).unwrap();
    fs::write(&indexes[3], [0xff; 16]).unwrap();
    let last = indexes.len() - 1;
    fs::write(&indexes[last], [0, 0, 0, 1, 0, 0, 0, 40]).unwrap();
    let (mut store, state) = open(dir.path(), small());
    assert_eq!(state.partitions[&tp("t", 0)].next_offset, 180);
    check_reads(&mut store, 60);
    for (path, original) in indexes.iter().zip(&originals) {
        assert_eq!(&fs::read(path).unwrap(), original, "{}", path.display());
    }
}

#[test]
fn torn_tail_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    drop(filled(dir.path(), 60));
    let logs = partition_files(dir.path(), "log");
    let last = logs.last().unwrap();
    let len = fs::metadata(last).unwrap().len();
    let half = batch(0, None).bytes.len() as u64 / 2;
    OpenOptions::new()
        .write(true)
        .open(last)
        .unwrap()
        .set_len(len - half)
        .unwrap();
    let (mut store, state) = open(dir.path(), small());
    assert_eq!(state.partitions[&tp("t", 0)].next_offset, 177);
    assert_eq!(fs::metadata(last).unwrap().len(), len - 2 * half);
    check_reads(&mut store, 59);
    store.append(&tp("t", 0), &batch(177, None)).unwrap();
    check_reads(&mut store, 60);
    drop(store);
    let (mut store, _) = open(dir.path(), small());
    check_reads(&mut store, 60);
}

#[test]
fn trailing_garbage_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    drop(filled(dir.path(), 60));
    let logs = partition_files(dir.path(), "log");
    let last = logs.last().unwrap();
    let len = fs::metadata(last).unwrap().len();
    let mut file = OpenOptions::new().append(true).open(last).unwrap();
    file.write_all(&[0u8; 300]).unwrap();
    drop(file);
    let (mut store, state) = open(dir.path(), small());
    assert_eq!(state.partitions[&tp("t", 0)].next_offset, 180);
    assert_eq!(fs::metadata(last).unwrap().len(), len);
    store.append(&tp("t", 0), &batch(180, None)).unwrap();
    check_reads(&mut store, 61);
}

#[test]
fn bad_crc_in_last_segment_tail_cuts_from_there() {
    let dir = tempfile::tempdir().unwrap();
    drop(filled(dir.path(), 60));
    let logs = partition_files(dir.path(), "log");
    let last = logs.last().unwrap();
    let mut bytes = fs::read(last).unwrap();
    let at = bytes.len() - 10;
    bytes[at] ^= 1;
    fs::write(last, &bytes).unwrap();
    let blen = batch(0, None).bytes.len();
    let (mut store, state) = open(dir.path(), small());
    assert_eq!(state.partitions[&tp("t", 0)].next_offset, 177);
    assert_eq!(
        fs::metadata(last).unwrap().len(),
        (bytes.len() - blen) as u64
    );
    check_reads(&mut store, 59);
}

#[test]
fn bad_crc_in_older_segment_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    drop(filled(dir.path(), 60));
    let logs = partition_files(dir.path(), "log");
    let mut bytes = fs::read(&logs[1]).unwrap();
    let at = bytes.len() - 10;
    bytes[at] ^= 0x40;
    fs::write(&logs[1], &bytes).unwrap();
    let before = fs::metadata(&logs[1]).unwrap().len();
    assert!(matches!(recover_err(dir.path()), StorageError::Corrupt(_)));
    assert_eq!(fs::metadata(&logs[1]).unwrap().len(), before);
}

#[test]
fn missing_middle_segment_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    drop(filled(dir.path(), 60));
    let logs = partition_files(dir.path(), "log");
    fs::remove_file(&logs[2]).unwrap();
    assert!(matches!(recover_err(dir.path()), StorageError::Corrupt(_)));
}

#[test]
fn torn_offsets_log_keeps_earlier_commits() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = open(dir.path(), small());
    let c = |offset| CommittedOffset {
        offset,
        leader_epoch: -1,
        metadata: None,
        commit_timestamp: 1,
    };
    store.commit_offsets("g", &[(tp("a", 0), c(1))]).unwrap();
    store.commit_offsets("g", &[(tp("a", 0), c(2))]).unwrap();
    drop(store);
    let log = dir.path().join("groups/offsets.log");
    let len = fs::metadata(&log).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(len - 3)
        .unwrap();
    let (mut store, state) = open(dir.path(), small());
    assert_eq!(state.offsets["g"][&tp("a", 0)], c(1));
    store.commit_offsets("g", &[(tp("a", 1), c(3))]).unwrap();
    drop(store);
    let (_, state) = open(dir.path(), small());
    assert_eq!(state.offsets["g"].len(), 2);
    let mut bytes = fs::read(&log).unwrap();
    bytes[10] ^= 1;
    fs::write(&log, &bytes).unwrap();
    assert!(matches!(recover_err(dir.path()), StorageError::Corrupt(_)));
}

#[test]
fn interrupted_topic_delete_is_finished() {
    let dir = tempfile::tempdir().unwrap();
    drop(filled(dir.path(), 3));
    let topics = dir.path().join("topics");
    fs::rename(topics.join("t"), topics.join("t~00.deleted")).unwrap();
    let (mut store, state) = open(dir.path(), small());
    assert!(state.topics.is_empty());
    assert!(!topics.join("t~00.deleted").exists());
    assert!(store.read(&tp("t", 0), 0, 1).is_err());
}
