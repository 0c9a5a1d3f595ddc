use std::time::{Duration, Instant};

use bytes::Bytes;
use portask_engine::MemStorage;
use portask_engine::storage::{EncodedBatch, Storage, StorageError, TopicMeta, TopicPartition};

use super::{Completion, OffloadedStorage, StorageEvents, start};

fn tp() -> TopicPartition {
    TopicPartition {
        topic: "t".into(),
        partition: 0,
    }
}

fn meta() -> TopicMeta {
    TopicMeta {
        name: "t".into(),
        id: [7; 16],
        partitions: 1,
        configs: Default::default(),
    }
}

fn batch(base: i64, body: &'static [u8]) -> EncodedBatch {
    EncodedBatch {
        base_offset: base,
        last_offset: base,
        max_timestamp: 1,
        bytes: Bytes::from_static(body),
    }
}

/// Waits (at most 5 s) for the next completions.
fn completions(events: &StorageEvents) -> Vec<Completion> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let got = events.take_completions();
        if !got.is_empty() {
            return got;
        }
        assert!(Instant::now() < deadline, "no completion within 5 s");
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn started(mem: &MemStorage, retry_io: bool) -> (OffloadedStorage, StorageEvents) {
    let (mut storage, events) = start(Box::new(mem.clone()), retry_io).unwrap();
    storage.recover().unwrap();
    (storage, events)
}

#[test]
fn appended_batches_are_read_back_from_the_tail_without_waiting() {
    let mem = MemStorage::default();
    let (mut storage, mut events) = started(&mem, false);
    storage.put_topic(&meta()).unwrap();
    storage.append(&tp(), &batch(0, b"zero")).unwrap();
    storage.append(&tp(), &batch(1, b"one")).unwrap();
    assert!(events.take_unsynced());
    assert_eq!(
        storage.read(&tp(), 1, 100).unwrap(),
        vec![Bytes::from("one")]
    );
    assert_eq!(
        storage.read(&tp(), 0, 1).unwrap(),
        vec![Bytes::from("zero")]
    );
    let generation = events.barrier(true);
    match completions(&events).as_slice() {
        [
            Completion::Synced {
                generation: g,
                result: Ok(()),
            },
        ] => assert_eq!(*g, generation),
        other => panic!("unexpected {other:?}"),
    }
    assert!(!events.take_unsynced());
    // The sync covered the writes queued before it: the backend has them.
    assert_eq!(mem.append_count(), 2);
}

#[test]
fn a_read_of_older_data_is_pending_then_answered_from_the_completed_read() {
    let mut mem = MemStorage::default();
    mem.put_topic(&meta()).unwrap();
    mem.append(&tp(), &batch(0, b"old")).unwrap();
    let (mut storage, events) = start(Box::new(mem.clone()), false).unwrap();
    assert!(matches!(
        storage.read(&tp(), 0, 100),
        Err(StorageError::Pending)
    ));
    // Asking again before it completes starts no second read.
    assert!(matches!(
        storage.read(&tp(), 0, 100),
        Err(StorageError::Pending)
    ));
    assert!(matches!(
        completions(&events).as_slice(),
        [Completion::ReadsDone]
    ));
    assert_eq!(
        storage.read(&tp(), 0, 100).unwrap(),
        vec![Bytes::from("old")]
    );
    assert!(matches!(
        storage.offset_for_timestamp(&tp(), 0),
        Err(StorageError::Pending)
    ));
    completions(&events);
    assert_eq!(storage.offset_for_timestamp(&tp(), 0).unwrap(), Some(0));
}

#[test]
fn a_failed_write_poisons_the_store_and_the_next_sync_fails() {
    let mem = MemStorage::default();
    let (mut storage, mut events) = started(&mem, false);
    mem.set_fail_writes(true);
    storage.put_topic(&meta()).unwrap();
    events.barrier(true);
    assert!(matches!(
        completions(&events).as_slice(),
        [Completion::Synced { result: Err(_), .. }]
    ));
    mem.set_fail_writes(false);
    assert!(matches!(
        storage.put_topic(&meta()),
        Err(StorageError::Poisoned)
    ));
}

#[test]
fn io_errors_of_a_network_store_are_retried_and_refuse_new_writes_meanwhile() {
    let mem = MemStorage::default();
    let (mut storage, mut events) = started(&mem, true);
    mem.set_fail_writes(true);
    storage.put_topic(&meta()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while storage.put_topic(&meta()).is_ok() {
        assert!(Instant::now() < deadline, "writes still accepted after 5 s");
        std::thread::sleep(Duration::from_millis(1));
    }
    let generation = events.barrier(true);
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        events.take_completions().is_empty(),
        "synced while unreachable"
    );
    mem.set_fail_writes(false);
    match completions(&events).as_slice() {
        [
            Completion::Synced {
                generation: g,
                result: Ok(()),
            },
        ] => assert_eq!(*g, generation),
        other => panic!("unexpected {other:?}"),
    }
    storage.append(&tp(), &batch(0, b"after")).unwrap();
    assert_eq!(storage.sync().map_err(|e| e.to_string()), Ok(()));
    assert_eq!(mem.append_count(), 1);
}

#[test]
fn the_newest_completed_read_stays_even_past_the_budget() {
    use super::cache::ReadCache;
    use super::command::{Read, ReadResult};
    let mut cache = ReadCache::new(4);
    let old = Read::Batches(tp(), 0);
    let big = Read::Batches(tp(), 1);
    cache.complete(
        old.clone(),
        ReadResult::Batches(Ok(vec![Bytes::from("abc")])),
    );
    cache.complete(
        big.clone(),
        ReadResult::Batches(Ok(vec![Bytes::from("0123456789")])),
    );
    assert!(cache.get(&old).is_none(), "the older read is evicted");
    assert!(
        cache.get(&big).is_some(),
        "the read a request waits for is kept"
    );
}

#[test]
fn an_append_forgets_only_timestamp_lookups_that_found_nothing() {
    use super::cache::ReadCache;
    use super::command::{Read, ReadResult};
    let mut cache = ReadCache::new(1 << 20);
    let found = Read::Timestamp(tp(), 5);
    let none = Read::Timestamp(tp(), 9);
    cache.complete(found.clone(), ReadResult::Timestamp(Ok(Some(3))));
    cache.complete(none.clone(), ReadResult::Timestamp(Ok(None)));
    cache.appended(&tp());
    assert!(matches!(
        cache.get(&found),
        Some(ReadResult::Timestamp(Ok(Some(3))))
    ));
    assert!(cache.get(&none).is_none());
}
