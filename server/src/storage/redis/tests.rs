//! Tests against a real `redis-server` started on a free loopback port (skipped, with a
//! message, when the binary is missing; `scripts/test` installs it). `PORTASK_REDIS_SERVER`
//! names another binary (`valkey-server`, or a Dragonfly wrapper taking the same flags).

use std::collections::BTreeMap;
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use portask_engine::MemStorage;
use portask_engine::batch::{ProducerFields, decode_batch, encode_batch};
use portask_engine::record::Record;
use portask_engine::storage::{
    CommittedOffset, EncodedBatch, RecoveredState, RetentionPolicy, Storage, StorageError,
    StoredQueue, TopicMeta, TopicPartition,
};

use super::{RedisOptions, RedisStorage, Timeouts};

fn server_bin() -> String {
    std::env::var("PORTASK_REDIS_SERVER").unwrap_or_else(|_| "redis-server".to_owned())
}

/// A redis-server process with AOF (`appendfsync always`) in a temporary directory.
struct TestServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl TestServer {
    /// Starts a server, or returns `None` (after saying why) when the binary is missing.
    fn start(test: &str) -> Option<Self> {
        let found = Command::new(server_bin())
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        if !found {
            eprintln!(
                "SKIPPED {test}: `{}` not found (install redis-server, as scripts/test does)",
                server_bin()
            );
            return None;
        }
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let mut s = Self {
            child: None,
            port,
            dir: tempfile::tempdir().unwrap(),
        };
        s.run();
        Some(s)
    }

    fn run(&mut self) {
        assert!(self.child.is_none());
        let child = Command::new(server_bin())
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .args(["--protected-mode", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let ping = redis::Client::open(self.url())
                .and_then(|c| c.get_connection())
                .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
            if ping.is_ok() {
                return;
            }
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        // The port is closed once the process is gone.
        assert!(TcpStream::connect(("127.0.0.1", self.port)).is_err());
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    fn open(&self, ns: &str) -> RedisStorage {
        let mut s = RedisStorage::open(&RedisOptions::new(&self.url(), ns)).unwrap();
        s.recover().unwrap();
        s
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A namespace unique within this test run.
fn ns(test: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "t{}-{test}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn tp(topic: &str, partition: i32) -> TopicPartition {
    TopicPartition {
        topic: topic.to_owned(),
        partition,
    }
}

fn meta(name: &str, partitions: i32) -> TopicMeta {
    TopicMeta {
        name: name.to_owned(),
        id: [7; 16],
        partitions,
        configs: BTreeMap::from([("retention.ms".to_owned(), "1000".to_owned())]),
    }
}

/// A batch of `count` records at `base` with timestamps `10 * base ..`.
fn batch(base: i64, count: usize, producer: Option<(i64, i16, i32)>) -> EncodedBatch {
    let (producer_id, producer_epoch, base_sequence) = producer.unwrap_or((-1, -1, -1));
    let records: Vec<Record> = (0..count)
        .map(|i| Record::with_value(10 * base + i as i64, format!("v{base}-{i}")))
        .collect();
    let producer = ProducerFields {
        producer_id,
        producer_epoch,
        base_sequence,
    };
    encode_batch(base, producer, &records, Default::default()).unwrap()
}

fn offset(o: i64) -> CommittedOffset {
    CommittedOffset {
        offset: o,
        leader_epoch: 3,
        metadata: Some(format!("m{o}")),
        commit_timestamp: 1000 + o,
    }
}

/// Applies the same writes to both stores.
fn both(a: &mut dyn Storage, b: &mut dyn Storage, f: impl Fn(&mut dyn Storage)) {
    f(a);
    f(b);
}

fn workload(s: &mut dyn Storage) {
    let p0 = tp("orders", 0);
    let p1 = tp("orders", 1);
    s.put_topic(&meta("orders", 2)).unwrap();
    s.put_topic(&meta("gone", 1)).unwrap();
    s.append(&p0, &batch(0, 3, None)).unwrap();
    s.append(&p0, &batch(3, 2, Some((5, 1, 0)))).unwrap();
    s.append(&p0, &batch(5, 4, Some((6, 0, 10)))).unwrap();
    s.append(&p0, &batch(9, 1, Some((5, 1, 2)))).unwrap();
    s.append(&p1, &batch(0, 1, None)).unwrap();
    s.append(&tp("gone", 0), &batch(0, 1, None)).unwrap();
    s.delete_topic("gone").unwrap();
    s.delete_records(&p1, 1).unwrap();
    s.commit_offsets("g1", &[(p0.clone(), offset(4)), (p1.clone(), offset(1))])
        .unwrap();
    s.commit_offsets("g1", &[(p0.clone(), offset(7))]).unwrap();
    s.commit_offsets("g2", &[(p0.clone(), offset(2))]).unwrap();
    s.delete_group("g2").unwrap();
    s.set_next_producer_id(7).unwrap();
    s.set_next_producer_id(3).unwrap();
    s.put_definition("q/a", Some(&Bytes::from_static(b"queue a")))
        .unwrap();
    s.put_definition("x/b", Some(&Bytes::from_static(b"exchange b")))
        .unwrap();
    s.put_definition("x/b", None).unwrap();
    let msgs: Vec<(u64, Bytes)> = (0..12u64)
        .map(|i| (i, Bytes::from(format!("m{i}"))))
        .collect();
    s.queue_append("%2F/a", &msgs[..10]).unwrap();
    s.queue_append("%2F/a", &msgs[10..]).unwrap();
    s.queue_remove("%2F/a", &[1, 3, 99]).unwrap();
    s.queue_append("%2F/b", &msgs[..2]).unwrap();
    s.queue_delete("%2F/b").unwrap();
}

fn sorted(mut r: RecoveredState) -> RecoveredState {
    r.topics.sort_by(|a, b| a.name.cmp(&b.name));
    for p in r.partitions.values_mut() {
        p.producers.sort_by_key(|s| s.producer_id);
    }
    r
}

#[test]
fn recovers_what_the_memory_store_recovers() {
    let Some(server) = TestServer::start("recovers_what_the_memory_store_recovers") else {
        return;
    };
    let ns = ns("recover");
    let mut redis = server.open(&ns);
    let mut mem = MemStorage::new();
    both(&mut redis, &mut mem, workload);
    drop(redis);
    let mut reopened = server.open(&ns);
    let got = sorted(reopened.recover().unwrap());
    let want = sorted(mem.recover().unwrap());
    assert_eq!(got, want);
    let p0 = &got.partitions[&tp("orders", 0)];
    assert_eq!(p0.next_offset, 10);
    // Producer 5's two batches (oldest first), then producer 6's.
    assert_eq!(p0.producers.len(), 3);
    assert_eq!(p0.producers[1].base_offset, 9);
    assert_eq!(got.partitions[&tp("orders", 1)].log_start_offset, 1);
    assert_eq!(got.next_producer_id, 7);
    let ids = |s: &mut dyn Storage| -> Vec<u64> {
        let read = s.queue_read("%2F/a", None, 100, 1 << 20).unwrap();
        read.iter().map(|m| m.0).collect()
    };
    assert_eq!(ids(&mut reopened), [0, 2, 4, 5, 6, 7, 8, 9, 10, 11]);
    assert_eq!(ids(&mut reopened), ids(&mut mem));
    assert!(!got.partitions.contains_key(&tp("gone", 0)));
}

#[test]
fn reads_and_timestamp_lookups_match_the_memory_store() {
    let Some(server) = TestServer::start("reads_match") else {
        return;
    };
    let ns = ns("reads");
    let mut redis = server.open(&ns);
    let mut mem = MemStorage::new();
    let p = tp("t", 0);
    both(&mut redis, &mut mem, |s| {
        s.put_topic(&meta("t", 1)).unwrap();
        let mut base = 0;
        for n in 1..=20usize {
            s.append(&p, &batch(base, n % 4 + 1, None)).unwrap();
            base += (n % 4 + 1) as i64;
        }
    });
    let next = 50;
    let sizes = [0usize, 1, 100, 300, 1000, 1 << 20];
    for offset in 0..=next + 1 {
        for &max in &sizes {
            assert_eq!(
                redis.read(&p, offset, max).unwrap(),
                mem.read(&p, offset, max).unwrap(),
                "read at {offset} max {max}"
            );
        }
    }
    for ts in [-5, 0, 5, 11, 100, 255, 300, 10_000] {
        assert_eq!(
            redis.offset_for_timestamp(&p, ts).unwrap(),
            mem.offset_for_timestamp(&p, ts).unwrap(),
            "timestamp {ts}"
        );
    }
    both(&mut redis, &mut mem, |s| s.delete_records(&p, 12).unwrap());
    for offset in 0..=next {
        assert_eq!(
            redis.read(&p, offset, 1).unwrap(),
            mem.read(&p, offset, 1).unwrap()
        );
    }
    for ts in [0, 100, 10_000] {
        assert_eq!(
            redis.offset_for_timestamp(&p, ts).unwrap(),
            mem.offset_for_timestamp(&p, ts).unwrap()
        );
    }
    assert!(matches!(
        redis.read(&tp("t", 9), 0, 10),
        Err(StorageError::UnknownPartition(_))
    ));
    assert!(matches!(
        redis.append(&p, &batch(3, 1, None)),
        Err(StorageError::Corrupt(_))
    ));
}

#[test]
fn namespaces_are_separate() {
    let Some(server) = TestServer::start("namespaces_are_separate") else {
        return;
    };
    let (a, b) = (ns("a"), ns("b"));
    let mut sa = server.open(&a);
    sa.put_topic(&meta("t", 1)).unwrap();
    sa.append(&tp("t", 0), &batch(0, 2, None)).unwrap();
    sa.put_definition("d", Some(&Bytes::from_static(b"x")))
        .unwrap();
    let rb = server.open(&b).recover().unwrap();
    assert_eq!(rb, RecoveredState::default());
    let ra = server.open(&a).recover().unwrap();
    assert_eq!(ra.partitions[&tp("t", 0)].next_offset, 2);
}

fn is_io(r: Result<(), StorageError>) -> bool {
    matches!(r, Err(StorageError::Io(_)))
}

#[test]
fn fails_fast_while_down_and_reconnects_after_a_restart() {
    let Some(mut server) = TestServer::start("reconnects") else {
        return;
    };
    let ns = ns("down");
    let mut s = server.open(&ns);
    let p = tp("t", 0);
    s.put_topic(&meta("t", 1)).unwrap();
    s.append(&p, &batch(0, 2, None)).unwrap();
    s.queue_append("q", &[(0, Bytes::from_static(b"m0"))])
        .unwrap();

    server.stop();
    let started = Instant::now();
    for _ in 0..50 {
        assert!(is_io(s.append(&p, &batch(2, 1, None))));
        assert!(is_io(s.commit_offsets("g", &[(p.clone(), offset(1))])));
        assert!(is_io(
            s.queue_append("q", &[(1, Bytes::from_static(b"m1"))])
        ));
        assert!(matches!(s.read(&p, 0, 100), Err(StorageError::Io(_))));
    }
    // 200 failed calls: each either skipped by the back-off or bounded by the connect
    // timeout, never stalling for long.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(!s.conn.is_connected());

    server.run();
    // The failed append left the next offset where it was: the same batch goes in now,
    // once the back-off has passed.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match s.append(&p, &batch(2, 1, None)) {
            Ok(()) => break,
            Err(StorageError::Io(_)) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("no reconnect: {e}"),
        }
    }
    assert_eq!(s.read(&p, 0, 1 << 20).unwrap().len(), 2);
    s.queue_append("q", &[(1, Bytes::from_static(b"m1"))])
        .unwrap();

    // Everything acknowledged before and after the outage survived the server's restart
    // (AOF with appendfsync always), and nothing of the failed calls is there.
    let r = server.open(&ns).recover().unwrap();
    assert_eq!(r.partitions[&p].next_offset, 3);
    assert_eq!(r.queues["q"].count, 2);
    assert!(r.offsets.is_empty());
}

#[test]
fn a_stalled_server_costs_at_most_the_io_timeout() {
    let Some(server) = TestServer::start("stalled") else {
        return;
    };
    let mut opts = RedisOptions::new(&server.url(), &ns("stalled"));
    opts.timeouts = Timeouts {
        io: Duration::from_millis(200),
        ..Timeouts::default()
    };
    let mut s = RedisStorage::open(&opts).unwrap();
    s.recover().unwrap();
    s.put_topic(&meta("t", 1)).unwrap();
    let pid = server.child.as_ref().unwrap().id().to_string();
    let signal = |sig: &str| {
        Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap()
            .success()
    };
    assert!(signal("-STOP"));
    let started = Instant::now();
    let r = s.append(&tp("t", 0), &batch(0, 1, None));
    let took = started.elapsed();
    assert!(signal("-CONT"));
    assert!(matches!(r, Err(StorageError::Io(_))), "{r:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    // The append may or may not have reached the server; the engine retries it at the same
    // offset, which replaces whatever landed.
    let deadline = Instant::now() + Duration::from_secs(5);
    while s.append(&tp("t", 0), &batch(0, 1, None)).is_err() {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(50));
    }
    s.append(&tp("t", 0), &batch(1, 1, None)).unwrap();
    assert_eq!(s.read(&tp("t", 0), 0, 1 << 20).unwrap().len(), 2);
}

#[test]
fn an_append_retried_after_a_lost_reply_replaces_the_first() {
    let Some(server) = TestServer::start("retried_append") else {
        return;
    };
    let ns = ns("retry");
    let mut s = server.open(&ns);
    let p = tp("t", 0);
    s.put_topic(&meta("t", 1)).unwrap();
    s.append(&p, &batch(0, 5, None)).unwrap();
    // As if the reply to this append was lost: the store has it, the engine does not.
    s.append(&p, &batch(5, 4, Some((1, 0, 0)))).unwrap();
    s.partitions.get_mut(&p).unwrap().next_offset = 5;
    s.append(&p, &batch(5, 2, None)).unwrap();
    let r = server.open(&ns).recover().unwrap();
    assert_eq!(r.partitions[&p].next_offset, 7);
    assert!(r.partitions[&p].producers.is_empty());
    let read = s.read(&p, 5, 1 << 20).unwrap();
    assert_eq!(read, vec![batch(5, 2, None).bytes]);
}

#[test]
fn queue_reads_go_in_id_order_and_stores_without_an_id_set_are_upgraded() {
    let Some(server) = TestServer::start("queue_reads") else {
        return;
    };
    let ns = ns("qread");
    let mut s = server.open(&ns);
    let msgs: Vec<(u64, Bytes)> = (0..30u64)
        .map(|i| (i, Bytes::from(format!("message {i:02}"))))
        .collect();
    s.queue_append("q", &msgs[..20]).unwrap();
    s.queue_append("q", &msgs[20..]).unwrap();
    s.queue_remove("q", &[3, 4]).unwrap();
    let read = s.queue_read("q", Some(1), 3, 1 << 20).unwrap();
    assert_eq!(read, [msgs[2].clone(), msgs[5].clone(), msgs[6].clone()]);
    assert_eq!(
        s.queue_read("q", Some(6), 10, 15).unwrap(),
        [msgs[7].clone()]
    );
    assert!(s.queue_read("q", Some(29), 10, 100).unwrap().is_empty());
    assert!(s.queue_read("none", None, 10, 100).unwrap().is_empty());
    s.queue_remove_from("q", 25).unwrap();
    assert_eq!(
        s.queue_read("q", Some(23), 10, 1 << 20).unwrap(),
        [msgs[24].clone()]
    );
    // A store written before the id set existed: recovery rebuilds it.
    let mut conn = redis::Client::open(server.url())
        .unwrap()
        .get_connection()
        .unwrap();
    redis::cmd("DEL")
        .arg(format!("{ns}:qids:q"))
        .query::<()>(&mut conn)
        .unwrap();
    let mut s = RedisStorage::open(&RedisOptions::new(&server.url(), &ns)).unwrap();
    let r = s.recover().unwrap();
    let want = StoredQueue {
        count: 23,
        bytes: 23 * 10,
        next_id: 25,
    };
    assert_eq!(r.queues["q"], want);
    let all = s.queue_read("q", None, 100, 1 << 20).unwrap();
    assert_eq!(all.len(), 23);
    assert_eq!(all[3], msgs[5]);
    s.queue_delete("q").unwrap();
    assert!(s.queue_read("q", None, 100, 1 << 20).unwrap().is_empty());
}

#[test]
fn bad_options_are_refused() {
    assert!(RedisStorage::open(&RedisOptions::new("http://x", "p")).is_err());
    assert!(RedisStorage::open(&RedisOptions::new("redis://127.0.0.1/0", "")).is_err());
}

const NO_PRODUCER: ProducerFields = ProducerFields {
    producer_id: -1,
    producer_epoch: -1,
    base_sequence: -1,
};

fn keyed(ts: i64, key: Option<&str>, value: Option<&str>) -> Record {
    Record {
        timestamp: ts,
        key: key.map(|k| Bytes::copy_from_slice(k.as_bytes())),
        value: value.map(|v| Bytes::copy_from_slice(v.as_bytes())),
        headers: Vec::new(),
    }
}

/// Every (offset, key, value) stored in partition 0 of `t` from `from` on.
fn contents(s: &mut dyn Storage, from: i64) -> Vec<(i64, Option<String>, Option<String>)> {
    let text = |b: &Option<Bytes>| b.as_ref().map(|b| String::from_utf8_lossy(b).into_owned());
    let mut out = Vec::new();
    for bytes in s.read(&tp("t", 0), from, usize::MAX).unwrap() {
        let d = decode_batch(&bytes).unwrap();
        for (o, r) in (d.header.base_offset..).zip(d.records) {
            out.push((o, text(&r.key), text(&r.value)));
        }
    }
    out
}

fn delete_policy(retention_ms: i64, retention_bytes: i64) -> RetentionPolicy {
    RetentionPolicy {
        retention_ms,
        retention_bytes,
        ..RetentionPolicy::default()
    }
}

#[test]
fn retention_deletes_old_batches_but_never_the_active_one() {
    let Some(server) = TestServer::start("retention_deletes") else {
        return;
    };
    let ns = ns("retention");
    let mut s = server.open(&ns);
    let p = tp("t", 0);
    s.put_topic(&meta("t", 1)).unwrap();
    // Ten one-record batches, record i at 1000 + 10 i, all of the same size.
    let mut len = 0;
    for i in 0..10 {
        let b = encode_batch(
            i,
            NO_PRODUCER,
            &[keyed(1000 + 10 * i, None, Some("v"))],
            Default::default(),
        )
        .unwrap();
        len = b.bytes.len() as i64;
        s.append(&p, &b).unwrap();
    }
    // As if the reply to an eleventh append was lost: the engine does not know that batch,
    // so the tenth stays the active one.
    let lost = batch(10, 1, None);
    s.append(&p, &lost).unwrap();
    s.partitions.get_mut(&p).unwrap().next_offset = 10;

    let unlimited = delete_policy(-1, -1);
    assert_eq!(s.apply_retention(&p, &unlimited, 5000).unwrap(), Some(0));
    // Records 0..=5 are older than 1100 - 45.
    assert_eq!(
        s.apply_retention(&p, &delete_policy(45, -1), 1100).unwrap(),
        Some(6)
    );
    // The three newest hold 3 len bytes; with one byte more the fourth stays too.
    assert_eq!(
        s.apply_retention(&p, &delete_policy(-1, 4 * len + 1), 0)
            .unwrap(),
        Some(6)
    );
    assert_eq!(
        s.apply_retention(&p, &delete_policy(-1, 3 * len), 0)
            .unwrap(),
        Some(7)
    );
    // Everything expired or a zero size limit: the active batch stays.
    assert_eq!(
        s.apply_retention(&p, &delete_policy(0, -1), 1 << 40)
            .unwrap(),
        Some(9)
    );
    assert_eq!(
        s.apply_retention(&p, &delete_policy(-1, 0), 0).unwrap(),
        Some(9)
    );
    assert_eq!(contents(&mut s, 0)[0].0, 9);
    assert_eq!(s.read(&p, 10, 1 << 20).unwrap(), vec![lost.bytes]);
    // The log start survives a restart.
    let r = server.open(&ns).recover().unwrap();
    assert_eq!(r.partitions[&p].log_start_offset, 9);
}

/// Topic `t` with `cleanup.policy=compact`: four rounds of [a, b, keyless] + [c], a tombstone
/// of b at 16, then z0..z7 at 17..=24, one batch each (z7 is the active batch).
fn compacted(s: &mut RedisStorage) -> i64 {
    let mut configs = meta("t", 1);
    configs.configs = BTreeMap::from([("cleanup.policy".to_owned(), "compact".to_owned())]);
    s.put_topic(&configs).unwrap();
    let mut offset = 0;
    let mut push = |s: &mut RedisStorage, records: Vec<Record>| {
        let n = records.len() as i64;
        let b = encode_batch(offset, NO_PRODUCER, &records, Default::default()).unwrap();
        s.append(&tp("t", 0), &b).unwrap();
        offset += n;
    };
    for round in 0..4 {
        let v = format!("v{round}");
        push(
            s,
            vec![
                keyed(1000, Some("a"), Some(&v)),
                keyed(1000, Some("b"), Some(&v)),
                keyed(1000, None, Some("nokey")),
            ],
        );
        push(s, vec![keyed(1000, Some("c"), Some(&v))]);
    }
    push(s, vec![keyed(1000, Some("b"), None)]);
    for i in 0..8 {
        push(s, vec![keyed(1000, Some(&format!("z{i}")), Some("z"))]);
    }
    offset
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
fn compaction_keeps_the_latest_per_key_and_tombstones_for_a_while() {
    let Some(server) = TestServer::start("compaction") else {
        return;
    };
    let ns = ns("compact");
    let mut s = server.open(&ns);
    let p = tp("t", 0);
    let next = compacted(&mut s);
    let before = contents(&mut s, 0);
    assert_eq!(
        s.apply_retention(&p, &compact_policy(), 10_000).unwrap(),
        Some(0)
    );
    let after = contents(&mut s, 0);
    let text = |x: &str| Some(x.to_owned());
    let mut expected = vec![
        (12, text("a"), text("v3")),
        (15, text("c"), text("v3")),
        (16, text("b"), None),
    ];
    expected.extend(before.iter().filter(|r| r.0 > 16).cloned());
    assert_eq!(after, expected);
    // Reads from an offset in a gap start at the next record; timestamps still resolve.
    assert_eq!(contents(&mut s, 3)[0].0, 12);
    assert_eq!(s.offset_for_timestamp(&p, 0).unwrap(), Some(12));
    let tomb_notes = |s: &mut RedisStorage| -> usize {
        let key = s.keys.tombstones(&p);
        s.conn
            .run(|c| redis::cmd("HLEN").arg(&key).query(c))
            .unwrap()
    };
    assert_eq!(tomb_notes(&mut s), 1);

    // A restart recovers the same log; within delete.retention.ms the tombstone stays.
    let mut s = server.open(&ns);
    assert_eq!(s.recover().unwrap().partitions[&p].next_offset, next);
    assert_eq!(contents(&mut s, 0), after);
    s.apply_retention(&p, &compact_policy(), 10_500).unwrap();
    assert_eq!(contents(&mut s, 0), after);
    // Then it goes, and so does its note.
    s.apply_retention(&p, &compact_policy(), 11_000).unwrap();
    let last = contents(&mut s, 0);
    assert_eq!(last[..2], expected[..2]);
    assert!(last.iter().all(|r| r.2.is_some()), "{last:?}");
    assert_eq!(tomb_notes(&mut s), 0);

    // Deleting the topic removes every key of it.
    s.delete_topic("t").unwrap();
    let keys: Vec<String> = s
        .conn
        .run(|c| redis::cmd("KEYS").arg(format!("{ns}:*")).query(c))
        .unwrap();
    assert!(keys.is_empty(), "{keys:?}");
}

#[test]
fn compaction_keeps_each_producers_last_batch_whole() {
    let Some(server) = TestServer::start("compaction_producers") else {
        return;
    };
    let ns = ns("compact-producers");
    let mut s = server.open(&ns);
    let p = tp("t", 0);
    let mut topic = meta("t", 1);
    topic.configs = BTreeMap::from([("cleanup.policy".to_owned(), "compact".to_owned())]);
    s.put_topic(&topic).unwrap();
    let producer = |producer_id, base_sequence| ProducerFields {
        producer_id,
        producer_epoch: 0,
        base_sequence,
    };
    let r = |k: &str, v: &str| keyed(1000, Some(k), Some(v));
    for (base, fields, records) in [
        (0, producer(7, 0), vec![r("a", "v1"), r("a", "v2")]),
        (2, producer(7, 2), vec![r("c", "v1"), r("b", "v1")]),
        (4, producer(8, 0), vec![r("b", "v2")]),
        (5, NO_PRODUCER, vec![r("z", "z")]),
    ] {
        let b = encode_batch(base, fields, &records, Default::default()).unwrap();
        s.append(&p, &b).unwrap();
    }
    s.apply_retention(&p, &compact_policy(), 10_000).unwrap();
    // Offset 0 goes; the superseded b at 3 stays, in producer 7's last batch.
    let text = |x: &str| Some(x.to_owned());
    assert_eq!(
        contents(&mut s, 0),
        vec![
            (1, text("a"), text("v2")),
            (2, text("c"), text("v1")),
            (3, text("b"), text("v1")),
            (4, text("b"), text("v2")),
            (5, text("z"), text("z")),
        ]
    );
    let r = server.open(&ns).recover().unwrap();
    let last: Vec<(i64, i32, i32)> = r.partitions[&p]
        .producers
        .iter()
        .map(|s| (s.producer_id, s.first_sequence, s.last_sequence))
        .collect();
    // Producer 7's first batch was compacted to its last record (sequence 1).
    assert_eq!(last, vec![(7, 1, 1), (7, 2, 3), (8, 0, 0)]);
}
