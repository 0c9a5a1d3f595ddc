//! Queue paging: a durable queue keeps a small head window in memory and the rest only in
//! its store (window of 4 messages here).

use super::*;
use crate::storage::{
    CommittedOffset, EncodedBatch, RecoveredState, Storage, StorageError, TopicMeta, TopicPartition,
};

const WINDOW: usize = 4;

fn paged_engine_on(storage: Box<dyn Storage>) -> Engine {
    let cfg = EngineConfig {
        queue_window_messages: WINDOW,
        queue_window_bytes: 1 << 20,
        ..EngineConfig::default()
    };
    let mut e = Engine::open(cfg, storage, 0).unwrap();
    e.ensure_vhost(V).unwrap();
    e
}

fn paged_engine(storage: &MemStorage) -> Engine {
    paged_engine_on(Box::new(storage.clone()))
}

fn durable_queue_with(e: &mut Engine, name: &str, args: Table) {
    let d = QueueDeclare {
        name: name.into(),
        durable: true,
        arguments: args,
        ..QueueDeclare::default()
    };
    e.queue_declare(0, 1, V, d).unwrap();
}

fn persistent(q: &str, body: &str) -> Publish {
    let props = MessageProps {
        delivery_mode: Some(2),
        ..Default::default()
    };
    with_props(msg("", q, body), props)
}

fn publish_n(e: &mut Engine, q: &str, range: std::ops::Range<u32>) {
    for i in range {
        publish(e, 0, persistent(q, &format!("m{i}")));
    }
}

fn names(range: std::ops::Range<u32>) -> Vec<String> {
    range.map(|i| format!("m{i}")).collect()
}

/// (messages in memory, messages only in the store) of a queue.
fn split(e: &Engine, q: &str) -> (usize, u64) {
    let q = &e.broker.vhosts[V].queues[q];
    (q.ready.len(), q.tail.count)
}

fn count(e: &mut Engine, q: &str) -> u32 {
    let d = QueueDeclare {
        name: q.into(),
        passive: true,
        ..QueueDeclare::default()
    };
    e.queue_declare(0, 1, V, d).unwrap().message_count
}

#[test]
fn only_the_window_stays_in_memory_and_refills_in_order() {
    let storage = MemStorage::new();
    let mut e = paged_engine(&storage);
    durable_queue(&mut e, "q");
    publish_n(&mut e, "q", 0..20);
    assert_eq!(split(&e, "q"), (WINDOW, 16));
    assert_eq!(count(&mut e, "q"), 20);
    assert_eq!(e.queued_bytes(), 4 * 2, "only the window is held");
    // Taking down to half the window reads the next chunk back.
    e.basic_get(0, 9, 9, V, "q", true).unwrap().unwrap();
    e.basic_get(0, 9, 9, V, "q", true).unwrap().unwrap();
    assert_eq!(split(&e, "q"), (2, 16));
    let g = e.basic_get(0, 9, 9, V, "q", true).unwrap().unwrap();
    assert_eq!(g.message_count, 17);
    assert_eq!(split(&e, "q"), (WINDOW - 1, 14));
    let mut got = names(0..3);
    got.extend(drain(&mut e, "q", 0));
    assert_eq!(got, names(0..20));
    assert_eq!(split(&e, "q"), (0, 0));
}

#[test]
fn publishes_while_paging_go_behind_the_tail() {
    let storage = MemStorage::new();
    let mut e = paged_engine(&storage);
    durable_queue(&mut e, "q");
    publish_n(&mut e, "q", 0..6);
    // A consumer with prefetch 1 takes one at a time; publishes keep coming meanwhile.
    e.basic_qos(1, 1, 1, false);
    consume(&mut e, 1, 1, "q", "c");
    let mut got = bodies(&mut e);
    for i in 6..12 {
        publish(&mut e, 0, persistent("q", &format!("m{i}")));
        // A transient message also keeps its place while the queue pages.
        publish(&mut e, 0, msg("", "q", &format!("t{i}")));
        e.basic_ack(1, 1, 0, true).unwrap();
        got.extend(bodies(&mut e));
    }
    while count(&mut e, "q") > 0 {
        e.basic_ack(1, 1, 0, true).unwrap();
        got.extend(bodies(&mut e));
    }
    let mut want = names(0..6);
    want.extend((6..12).flat_map(|i| [format!("m{i}"), format!("t{i}")]));
    assert_eq!(got, want);
}

#[test]
fn requeued_messages_go_back_to_the_head_before_the_paged_tail() {
    let storage = MemStorage::new();
    let mut e = paged_engine(&storage);
    durable_queue(&mut e, "q");
    publish_n(&mut e, "q", 0..10);
    e.basic_qos(1, 1, 3, false);
    consume(&mut e, 1, 1, "q", "c");
    assert_eq!(bodies(&mut e), names(0..3));
    e.channel_close(0, 1, 1);
    let got: Vec<(bool, String)> =
        std::iter::from_fn(|| e.basic_get(0, 9, 9, V, "q", true).unwrap())
            .map(|g| {
                (
                    g.redelivered,
                    String::from_utf8_lossy(&g.message.body).into(),
                )
            })
            .collect();
    let want: Vec<(bool, String)> = (0..10).map(|i| (i < 3, format!("m{i}"))).collect();
    assert_eq!(got, want);
}

#[test]
fn length_limits_count_the_paged_tail() {
    let storage = MemStorage::new();
    let mut e = paged_engine(&storage);
    durable_queue_with(&mut e, "drop", t(&[("x-max-length", Value::I32(10))]));
    publish_n(&mut e, "drop", 0..15);
    assert_eq!(count(&mut e, "drop"), 10);
    assert_eq!(drain(&mut e, "drop", 0), names(5..15));
    let reject = t(&[
        ("x-max-length", Value::I32(10)),
        ("x-overflow", Value::str("reject-publish")),
    ]);
    durable_queue_with(&mut e, "reject", reject);
    for i in 0..15 {
        let accepted = publish(&mut e, 0, persistent("reject", &format!("m{i}"))).accepted;
        assert_eq!(accepted, i < 10, "{i}");
    }
    assert_eq!(count(&mut e, "reject"), 10);
    let bytes = t(&[("x-max-length-bytes", Value::I32(20))]);
    durable_queue_with(&mut e, "bytes", bytes);
    publish_n(&mut e, "bytes", 0..15);
    assert_eq!(
        drain(&mut e, "bytes", 0),
        names(8..15),
        "m8..m14 are 19 bytes"
    );
    assert_eq!(e.queue_purge(1, V, "drop").unwrap(), 0);
}

#[test]
fn paged_messages_expire_from_their_publish_time() {
    let storage = MemStorage::new();
    let mut e = paged_engine(&storage);
    durable_queue_with(&mut e, "q", t(&[("x-message-ttl", Value::I32(100))]));
    for i in 0..10 {
        publish(&mut e, 0, persistent("q", &format!("m{i}")));
    }
    assert_eq!(split(&e, "q"), (WINDOW, 6));
    // Messages read back at 50 still expire at 100, counted from their publish.
    for _ in 0..3 {
        e.basic_get(50, 9, 9, V, "q", true).unwrap().unwrap();
    }
    assert_eq!(split(&e, "q"), (3, 4));
    e.handle_timeout(101);
    assert_eq!(split(&e, "q"), (0, 0));
    for i in 10..12 {
        publish(&mut e, 150, persistent("q", &format!("m{i}")));
    }
    assert_eq!(drain(&mut e, "q", 160), names(10..12));
    assert!(
        storage
            .clone()
            .queue_read("%2F/q", None, 100, 1 << 20)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn purge_and_delete_remove_the_paged_tail_from_the_store() {
    let storage = MemStorage::new();
    let mut e = paged_engine(&storage);
    durable_queue(&mut e, "q");
    publish_n(&mut e, "q", 0..10);
    let g = e.basic_get(0, 1, 1, V, "q", false).unwrap().unwrap();
    assert_eq!(e.queue_purge(1, V, "q").unwrap(), 9);
    let mut s = storage.clone();
    let stored = s.queue_read("%2F/q", None, 100, 1 << 20).unwrap();
    assert_eq!(stored.len(), 1, "the unacknowledged message stays stored");
    publish_n(&mut e, "q", 10..20);
    assert_eq!(count(&mut e, "q"), 10);
    e.basic_ack(1, 1, g.delivery_tag, false).unwrap();
    assert_eq!(drain(&mut e, "q", 0), names(10..20));
    publish_n(&mut e, "q", 20..30);
    assert_eq!(e.queue_delete(1, V, "q", false, false).unwrap(), 10);
    assert!(
        s.queue_read("%2F/q", None, 100, 1 << 20)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_recovered_queue_reads_its_messages_only_when_needed() {
    let storage = MemStorage::new();
    let mut e = paged_engine(&storage);
    durable_queue(&mut e, "q");
    publish_n(&mut e, "q", 0..8);
    publish(&mut e, 0, msg("", "q", "transient"));
    publish_n(&mut e, "q", 8..12);
    e.basic_get(0, 1, 1, V, "q", false).unwrap().unwrap();
    drop(e);

    let mut e = paged_engine(&storage);
    assert_eq!(split(&e, "q"), (0, 13), "nothing read at start");
    assert_eq!(e.queued_bytes(), 0);
    let got: Vec<(bool, String)> =
        std::iter::from_fn(|| e.basic_get(0, 9, 9, V, "q", true).unwrap())
            .map(|g| {
                (
                    g.redelivered,
                    String::from_utf8_lossy(&g.message.body).into(),
                )
            })
            .collect();
    let want: Vec<(bool, String)> = (0..12).map(|i| (true, format!("m{i}"))).collect();
    assert_eq!(
        got, want,
        "the transient message stored while paging is dropped"
    );
    publish_n(&mut e, "q", 12..14);
    assert_eq!(drain(&mut e, "q", 0), names(12..14));
    assert!(
        storage
            .clone()
            .queue_read("%2F/q", None, 100, 1 << 20)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_recovered_priority_queue_reads_everything_back() {
    let storage = MemStorage::new();
    let mut e = paged_engine(&storage);
    durable_queue_with(&mut e, "p", t(&[("x-max-priority", Value::I32(5))]));
    for i in 0..10u8 {
        let props = MessageProps {
            delivery_mode: Some(2),
            priority: Some(i % 3),
            ..Default::default()
        };
        publish(&mut e, 0, with_props(msg("", "p", &format!("m{i}")), props));
    }
    assert_eq!(split(&e, "p"), (10, 0), "priority queues do not page");
    drop(e);
    let mut e = paged_engine(&storage);
    let got = drain(&mut e, "p", 0);
    assert_eq!(
        got,
        ["m2", "m5", "m8", "m1", "m4", "m7", "m0", "m3", "m6", "m9"]
    );
}

/// A store whose queue reads answer [`StorageError::Pending`] every other time, as a store
/// reading in the background answers first.
struct SlowReads {
    inner: MemStorage,
    pending: bool,
}

impl Storage for SlowReads {
    fn queue_read(
        &mut self,
        queue: &str,
        after: Option<u64>,
        max_messages: usize,
        max_bytes: usize,
    ) -> Result<Vec<(u64, Bytes)>, StorageError> {
        self.pending = !self.pending;
        if self.pending {
            return Err(StorageError::Pending);
        }
        self.inner.queue_read(queue, after, max_messages, max_bytes)
    }
    fn recover(&mut self) -> Result<RecoveredState, StorageError> {
        self.inner.recover()
    }
    fn put_topic(&mut self, meta: &TopicMeta) -> Result<(), StorageError> {
        self.inner.put_topic(meta)
    }
    fn delete_topic(&mut self, name: &str) -> Result<(), StorageError> {
        self.inner.delete_topic(name)
    }
    fn append(&mut self, tp: &TopicPartition, batch: &EncodedBatch) -> Result<(), StorageError> {
        self.inner.append(tp, batch)
    }
    fn read(
        &mut self,
        tp: &TopicPartition,
        offset: i64,
        max_bytes: usize,
    ) -> Result<Vec<Bytes>, StorageError> {
        self.inner.read(tp, offset, max_bytes)
    }
    fn offset_for_timestamp(
        &mut self,
        tp: &TopicPartition,
        timestamp: i64,
    ) -> Result<Option<i64>, StorageError> {
        self.inner.offset_for_timestamp(tp, timestamp)
    }
    fn delete_records(&mut self, tp: &TopicPartition, before: i64) -> Result<(), StorageError> {
        self.inner.delete_records(tp, before)
    }
    fn commit_offsets(
        &mut self,
        group: &str,
        offsets: &[(TopicPartition, CommittedOffset)],
    ) -> Result<(), StorageError> {
        self.inner.commit_offsets(group, offsets)
    }
    fn delete_group(&mut self, group: &str) -> Result<(), StorageError> {
        self.inner.delete_group(group)
    }
    fn set_next_producer_id(&mut self, next: i64) -> Result<(), StorageError> {
        self.inner.set_next_producer_id(next)
    }
    fn put_definition(&mut self, key: &str, value: Option<&Bytes>) -> Result<(), StorageError> {
        self.inner.put_definition(key, value)
    }
    fn queue_append(&mut self, queue: &str, messages: &[(u64, Bytes)]) -> Result<(), StorageError> {
        self.inner.queue_append(queue, messages)
    }
    fn queue_remove(&mut self, queue: &str, ids: &[u64]) -> Result<(), StorageError> {
        self.inner.queue_remove(queue, ids)
    }
    fn queue_remove_from(&mut self, queue: &str, from: u64) -> Result<(), StorageError> {
        self.inner.queue_remove_from(queue, from)
    }
    fn queue_delete(&mut self, queue: &str) -> Result<(), StorageError> {
        self.inner.queue_delete(queue)
    }
    fn sync(&mut self) -> Result<(), StorageError> {
        self.inner.sync()
    }
}

#[test]
fn a_pending_read_parks_the_queue_until_storage_progress() {
    let slow = SlowReads {
        inner: MemStorage::new(),
        pending: false,
    };
    let mut e = paged_engine_on(Box::new(slow));
    durable_queue(&mut e, "q");
    publish_n(&mut e, "q", 0..10);
    let c = Consume {
        queue: "q".into(),
        consumer_tag: "c".into(),
        no_ack: true,
        ..Consume::default()
    };
    e.basic_consume(0, 1, 1, V, c).unwrap();
    // The window goes out; the read of the tail is pending, and nothing is lost meanwhile.
    assert_eq!(bodies(&mut e), names(0..WINDOW as u32));
    let key = (V.to_owned(), "q".to_owned());
    assert!(e.broker.waiting_for_storage.contains(&key));
    assert_eq!(count(&mut e, "q"), 6);
    publish(&mut e, 0, persistent("q", "m10"));
    let mut got = bodies(&mut e);
    for _ in 0..10 {
        e.storage_progress(0);
        got.extend(bodies(&mut e));
    }
    assert_eq!(got, names(4..11));
    assert!(e.broker.waiting_for_storage.is_empty());
    assert_eq!(count(&mut e, "q"), 0);
}
