//! Tests of durable definitions and the message logs of durable queues.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use portask_engine::storage::{Storage, StorageError, StoredQueue};

use super::queue_log::{COMPACT_MIN_BYTES, dir_name};
use super::tests::{open, small};
use super::{DiskOptions, DiskStorage};

const Q: &str = "/\u{0}my.queue";

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// Messages `(id, "m<id>")` for each id.
fn msgs(ids: impl IntoIterator<Item = u64>) -> Vec<(u64, Bytes)> {
    ids.into_iter().map(|i| (i, b(&format!("m{i}")))).collect()
}

/// Every stored message of `queue`, read back in order.
fn read_all(store: &mut DiskStorage, queue: &str) -> Vec<(u64, Bytes)> {
    store
        .queue_read(queue, None, usize::MAX, usize::MAX)
        .unwrap()
}

fn log_path(dir: &Path, queue: &str) -> PathBuf {
    dir.join("queues")
        .join(dir_name(queue))
        .join("messages.log")
}

/// Cuts `n` bytes off the end of a file.
fn cut(path: &Path, n: u64) {
    let len = fs::metadata(path).unwrap().len();
    let file = OpenOptions::new().write(true).open(path).unwrap();
    file.set_len(len - n).unwrap();
}

#[test]
fn definitions_upsert_delete_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, state) = open(dir.path(), small());
    assert!(state.definitions.is_empty());
    store.put_definition("e/x", Some(&b("1"))).unwrap();
    store.put_definition("q/\u{0}é", Some(&b("2"))).unwrap();
    store.put_definition("e/x", Some(&b("3"))).unwrap();
    store.put_definition("b/y", Some(&b("4"))).unwrap();
    store.put_definition("b/y", None).unwrap();
    store.put_definition("never", None).unwrap();
    store.sync().unwrap();
    drop(store);
    let want = BTreeMap::from([("e/x".to_owned(), b("3")), ("q/\u{0}é".to_owned(), b("2"))]);
    let (mut store, state) = open(dir.path(), small());
    assert_eq!(state.definitions, want);
    store.put_definition("e/x", None).unwrap();
    drop(store);
    let (_, state) = open(dir.path(), small());
    assert_eq!(state.definitions.len(), 1);
}

#[test]
fn definitions_are_compacted_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = open(dir.path(), small());
    for i in 0..100 {
        store.put_definition("k", Some(&b(&i.to_string()))).unwrap();
        store
            .put_definition(&format!("gone{i}"), Some(&b("x")))
            .unwrap();
        store.put_definition(&format!("gone{i}"), None).unwrap();
    }
    drop(store);
    let path = dir.path().join("definitions.log");
    let before = fs::metadata(&path).unwrap().len();
    let (_, state) = open(dir.path(), small());
    let after = fs::metadata(&path).unwrap().len();
    assert!(after * 50 < before, "{before} -> {after}");
    assert_eq!(
        state.definitions,
        BTreeMap::from([("k".to_owned(), b("99"))])
    );
    assert_eq!(open(dir.path(), small()).1.definitions, state.definitions);
}

#[test]
fn definitions_torn_tail_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = open(dir.path(), small());
    store.put_definition("a", Some(&b("1"))).unwrap();
    store.put_definition("b", Some(&b("2"))).unwrap();
    drop(store);
    let path = dir.path().join("definitions.log");
    cut(&path, 3);
    let (mut store, state) = open(dir.path(), small());
    assert_eq!(
        state.definitions,
        BTreeMap::from([("a".to_owned(), b("1"))])
    );
    store.put_definition("c", Some(&b("3"))).unwrap();
    drop(store);
    assert_eq!(open(dir.path(), small()).1.definitions.len(), 2);
}

#[test]
fn queue_append_remove_reopen_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = open(dir.path(), small());
    store.queue_append(Q, &msgs(1..=3)).unwrap();
    store.queue_append(Q, &msgs(4..=6)).unwrap();
    store.queue_append("other", &msgs([10])).unwrap();
    store.queue_remove(Q, &[2, 5, 77, 2]).unwrap();
    store.queue_remove(Q, &[]).unwrap();
    store.queue_remove("unknown queue", &[1]).unwrap();
    store.sync().unwrap();
    drop(store);
    let (mut store, state) = open(dir.path(), small());
    let summary = StoredQueue {
        count: 4,
        bytes: 8,
        next_id: 7,
    };
    assert_eq!(state.queues[Q], summary);
    assert_eq!(read_all(&mut store, Q), msgs([1, 3, 4, 6]));
    assert_eq!(read_all(&mut store, "other"), msgs([10]));
    assert_eq!(state.queues.len(), 2);
    assert_eq!(store.queue_read(Q, Some(1), 2, 100).unwrap(), msgs([3, 4]));
    assert_eq!(store.queue_read(Q, Some(3), 9, 1).unwrap(), msgs([4]));
    assert_eq!(store.queue_read(Q, Some(6), 9, 100).unwrap(), msgs([]));
    store.queue_remove_from(Q, 4).unwrap();
    assert_eq!(read_all(&mut store, Q), msgs([1, 3]));
    store.queue_remove(Q, &[1, 3]).unwrap();
    store.queue_append(Q, &msgs([7])).unwrap();
    drop(store);
    let (mut store, _) = open(dir.path(), small());
    assert_eq!(read_all(&mut store, Q), msgs([7]));
}

#[test]
fn queue_torn_tail_is_cut_and_the_rest_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = open(dir.path(), small());
    store.queue_append(Q, &msgs([1, 2])).unwrap();
    store.queue_append(Q, &msgs([3])).unwrap();
    drop(store);
    let path = log_path(dir.path(), Q);
    cut(&path, 2);
    let (mut store, _) = open(dir.path(), small());
    assert_eq!(read_all(&mut store, Q), msgs([1, 2]));
    store.queue_append(Q, &msgs([4])).unwrap();
    store.queue_remove(Q, &[1]).unwrap();
    drop(store);
    assert_eq!(read_all(&mut open(dir.path(), small()).0, Q), msgs([2, 4]));
}

#[test]
fn queue_corruption_in_the_middle_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = open(dir.path(), small());
    store.queue_append(Q, &msgs(1..=3)).unwrap();
    drop(store);
    let path = log_path(dir.path(), Q);
    let mut bytes = fs::read(&path).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0xff;
    fs::write(&path, bytes).unwrap();
    let mut store = DiskStorage::open(dir.path(), small()).unwrap();
    assert!(matches!(store.recover(), Err(StorageError::Corrupt(_))));
}

#[test]
fn queue_log_is_compacted_as_messages_go() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = open(dir.path(), small());
    let body = Bytes::from(vec![7u8; 64 << 10]);
    let all: Vec<(u64, Bytes)> = (0..40).map(|i| (i, body.clone())).collect();
    for chunk in all.chunks(4) {
        store.queue_append(Q, chunk).unwrap();
    }
    let path = log_path(dir.path(), Q);
    let full = fs::metadata(&path).unwrap().len();
    assert!(full > 2 * COMPACT_MIN_BYTES);
    for i in (0..40).filter(|i| i % 8 != 0) {
        store.queue_remove(Q, &[i]).unwrap();
    }
    let after = fs::metadata(&path).unwrap().len();
    assert!(after < full / 2, "{full} -> {after}");
    assert!(!path.with_file_name("messages.log.tmp").exists());
    store.queue_append(Q, &[(40, b("last"))]).unwrap();
    store.queue_remove(Q, &[8]).unwrap();
    drop(store);
    let (mut store, _) = open(dir.path(), small());
    let read = read_all(&mut store, Q);
    let ids: Vec<u64> = read.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, vec![0, 16, 24, 32, 40]);
    assert_eq!(read[0].1, body);
    assert_eq!(read[4].1, b("last"));
}

#[test]
fn queue_delete_then_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = open(dir.path(), small());
    store.queue_append(Q, &msgs(1..=3)).unwrap();
    store.queue_append("keep", &msgs([1])).unwrap();
    store.queue_delete(Q).unwrap();
    store.queue_delete("never existed").unwrap();
    assert!(!log_path(dir.path(), Q).parent().unwrap().exists());
    drop(store);
    let (mut store, state) = open(dir.path(), small());
    assert_eq!(state.queues.keys().collect::<Vec<_>>(), ["keep"]);
    store.queue_append(Q, &msgs([9])).unwrap();
    drop(store);
    assert_eq!(read_all(&mut open(dir.path(), small()).0, Q), msgs([9]));
}

#[test]
fn leftovers_of_interrupted_deletes_and_creations_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = open(dir.path(), small());
    store.queue_append(Q, &msgs([1])).unwrap();
    drop(store);
    let queues = dir.path().join("queues");
    let trash = queues.join(format!("{}.deleted", dir_name("x")));
    fs::create_dir_all(&trash).unwrap();
    fs::write(trash.join("messages.log"), b"junk").unwrap();
    let empty = queues.join(dir_name("y"));
    fs::create_dir_all(&empty).unwrap();
    fs::write(empty.join("messages.log"), b"").unwrap();
    let (_, state) = open(dir.path(), small());
    assert_eq!(state.queues.len(), 1);
    assert!(!trash.exists() && !empty.exists());
}

#[test]
fn queue_keys_with_slashes_nul_and_unicode() {
    let dir = tempfile::tempdir().unwrap();
    let long = "v/".to_owned() + &"ü".repeat(200);
    let keys = ["a/b", "/\u{0}q", "ünïcødé ✓/..", "..", "", long.as_str()];
    let (mut store, _) = open(dir.path(), small());
    for (i, key) in keys.iter().enumerate() {
        store.queue_append(key, &msgs([i as u64])).unwrap();
        let name = dir_name(key);
        assert!(name.len() <= 200 && !name.contains(['/', '.']), "{name}");
    }
    assert_eq!(dir_name("a/b"), "612f62");
    drop(store);
    let (mut store, _) = open(dir.path(), small());
    for (i, key) in keys.iter().enumerate() {
        assert_eq!(read_all(&mut store, key), msgs([i as u64]), "{key:?}");
        store.queue_delete(key).unwrap();
    }
    drop(store);
    assert!(open(dir.path(), small()).1.queues.is_empty());
}

#[test]
fn poisoned_store_refuses_durable_writes() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = open(dir.path(), small());
    store.queue_append(Q, &msgs([1])).unwrap();
    store.poisoned = true;
    let poisoned = |r| matches!(r, Err(StorageError::Poisoned));
    assert!(poisoned(store.put_definition("k", Some(&b("v")))));
    assert!(poisoned(store.queue_append(Q, &msgs([2]))));
    assert!(poisoned(store.queue_remove(Q, &[1])));
    assert!(poisoned(store.queue_remove_from(Q, 0)));
    assert!(poisoned(store.queue_delete(Q)));
    assert!(poisoned(store.sync()));
}

#[test]
fn sync_on_append_covers_queues_and_definitions() {
    let dir = tempfile::tempdir().unwrap();
    let opts = DiskOptions {
        sync_on_append: true,
        ..small()
    };
    let (mut store, _) = open(dir.path(), opts.clone());
    store.put_definition("k", Some(&b("v"))).unwrap();
    store.queue_append(Q, &msgs(1..=2)).unwrap();
    assert!(store.dirty_queues.is_empty());
    store.sync().unwrap();
    drop(store);
    let (mut store, state) = open(dir.path(), opts);
    assert_eq!(state.definitions["k"], b("v"));
    assert_eq!(read_all(&mut store, Q), msgs(1..=2));
}
