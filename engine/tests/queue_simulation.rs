//! Seeded random workload on the queue model against `MemStorage`: persistent publishes,
//! consumers with prefetch, basic.get, acks, nacks (requeue or drop), channel closes and
//! restarts, with injected storage failures on publish. Checks that no message is delivered to two consumers at once, that acknowledged
//! messages never come back, and that no accepted persistent message is lost across restarts.
//!
//! `PORTASK_SEED=<seed>` runs one seed; otherwise a fixed range of seeds runs.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use portask_engine::rng::Rng;
use portask_engine::*;

const STEPS: usize = 400;
const V: &str = "/";
const CHANNELS: [(u64, u16); 4] = [(1, 1), (1, 2), (2, 1), (2, 2)];

struct Sim {
    rng: Rng,
    storage: MemStorage,
    engine: Engine,
    next_body: u64,
    /// Accepted, not yet acknowledged or dropped.
    pending: BTreeSet<String>,
    acked: BTreeSet<String>,
    /// Body → the channel holding it unacknowledged.
    outstanding: BTreeMap<String, (u64, u16)>,
    /// (conn, channel) → delivery tag → body.
    tags: BTreeMap<(u64, u16), BTreeMap<u64, String>>,
    consumers: BTreeMap<(u64, u16), u32>,
    now: u64,
}

fn open(storage: &MemStorage, seed: u64) -> Engine {
    let cfg = EngineConfig {
        seed,
        ..EngineConfig::default()
    };
    let mut e = Engine::open(cfg, Box::new(storage.clone()), 0).unwrap();
    e.ensure_vhost(V).unwrap();
    let d = QueueDeclare {
        name: "d".into(),
        durable: true,
        ..QueueDeclare::default()
    };
    e.queue_declare(0, 0, V, d).unwrap();
    e
}

impl Sim {
    fn new(seed: u64) -> Self {
        let storage = MemStorage::new();
        let engine = open(&storage, seed);
        Sim {
            rng: Rng::new(seed),
            storage,
            engine,
            next_body: 0,
            pending: BTreeSet::new(),
            acked: BTreeSet::new(),
            outstanding: BTreeMap::new(),
            tags: BTreeMap::new(),
            consumers: BTreeMap::new(),
            now: 0,
        }
    }

    fn take_outputs(&mut self) {
        while let Some(out) = self.engine.poll_output() {
            if let Output::Deliver {
                conn,
                channel,
                delivery_tag,
                message,
                ..
            } = out
            {
                let body = String::from_utf8_lossy(&message.body).into_owned();
                self.delivered(conn, channel, delivery_tag, body);
            }
        }
    }

    fn delivered(&mut self, conn: u64, channel: u16, tag: u64, body: String) {
        assert!(!self.acked.contains(&body), "acknowledged {body} came back");
        if let Some(holder) = self.outstanding.insert(body.clone(), (conn, channel)) {
            panic!("{body} delivered to {conn}/{channel} while held by {holder:?}");
        }
        if std::env::var("PORTASK_TRACE").is_ok() {
            eprintln!("  deliver {body} to {conn}/{channel} tag {tag}");
        }
        self.tags
            .entry((conn, channel))
            .or_default()
            .insert(tag, body);
    }

    fn publish(&mut self) {
        self.next_body += 1;
        let body = format!("m{}", self.next_body);
        let p = Publish {
            routing_key: "d".into(),
            props: MessageProps {
                delivery_mode: Some(2),
                ..MessageProps::default()
            },
            body: Bytes::from(body.clone()),
            ..Publish::default()
        };
        let fail = self.rng.below(10) == 0;
        self.storage.set_fail_writes(fail);
        let result = self.engine.publish(self.now, self.now as i64, V, p);
        self.storage.set_fail_writes(false);
        match result {
            Err(BrokerError::Storage(_)) if fail => {}
            Ok(o) if !fail => {
                assert!(o.routed && o.accepted);
                self.pending.insert(body);
            }
            other => panic!("publish with fail={fail}: {other:?}"),
        }
    }

    fn pick_channel(&mut self) -> (u64, u16) {
        CHANNELS[self.rng.below(CHANNELS.len() as u64) as usize]
    }

    fn consume(&mut self) {
        let (conn, ch) = self.pick_channel();
        let prefetch = self.rng.below(4) as u16;
        self.engine
            .basic_qos(conn, ch, prefetch, self.rng.below(2) == 0);
        let n = self.consumers.entry((conn, ch)).or_default();
        *n += 1;
        let c = Consume {
            queue: "d".into(),
            consumer_tag: format!("c{n}"),
            ..Consume::default()
        };
        trace(format!("consume {conn}/{ch} prefetch {prefetch}"));
        self.engine.basic_consume(self.now, conn, ch, V, c).unwrap();
    }

    fn get(&mut self) {
        let (conn, ch) = self.pick_channel();
        if let Some(g) = self
            .engine
            .basic_get(self.now, conn, ch, V, "d", false)
            .unwrap()
        {
            let body = String::from_utf8_lossy(&g.message.body).into_owned();
            self.delivered(conn, ch, g.delivery_tag, body);
        }
    }

    /// Acks, nacks or rejects one outstanding delivery (sometimes with `multiple`).
    fn settle_one(&mut self) {
        let (conn, ch) = self.pick_channel();
        let Some(tags) = self.tags.get(&(conn, ch)).filter(|t| !t.is_empty()) else {
            return;
        };
        let keys: Vec<u64> = tags.keys().copied().collect();
        let tag = keys[self.rng.below(keys.len() as u64) as usize];
        let multiple = self.rng.below(3) == 0;
        let taken: Vec<String> = {
            let tags = self.tags.get_mut(&(conn, ch)).unwrap();
            let picked: Vec<u64> = if multiple {
                tags.range(..=tag).map(|(t, _)| *t).collect()
            } else {
                vec![tag]
            };
            picked.iter().filter_map(|t| tags.remove(t)).collect()
        };
        for b in &taken {
            self.outstanding.remove(b);
        }
        let how = self.rng.below(4);
        trace(format!(
            "settle {how} {conn}/{ch} tag {tag} multiple {multiple} {taken:?}"
        ));
        match how {
            0 | 1 => {
                self.engine.basic_ack(conn, ch, tag, multiple).unwrap();
                for b in taken {
                    self.pending.remove(&b);
                    self.acked.insert(b);
                }
            }
            2 => self
                .engine
                .basic_nack(self.now, 0, conn, ch, tag, multiple, true)
                .unwrap(),
            _ => {
                self.engine
                    .basic_nack(self.now, 0, conn, ch, tag, multiple, false)
                    .unwrap();
                for b in taken {
                    self.pending.remove(&b);
                    self.acked.insert(b);
                }
            }
        }
    }

    fn close_channel(&mut self) {
        let (conn, ch) = self.pick_channel();
        trace(format!("close {conn}/{ch}"));
        self.engine.channel_close(self.now, conn, ch);
        if let Some(tags) = self.tags.remove(&(conn, ch)) {
            for b in tags.values() {
                self.outstanding.remove(b);
            }
        }
    }

    fn restart(&mut self) {
        self.engine.sync().unwrap();
        self.engine = open(&self.storage, self.next_body);
        self.tags.clear();
        self.outstanding.clear();
        self.consumers.clear();
    }

    fn step(&mut self) {
        self.now += 1 + self.rng.below(10);
        let action = self.rng.below(20);
        if std::env::var("PORTASK_TRACE").is_ok() {
            eprintln!("step {action} outstanding {:?}", self.outstanding);
        }
        match action {
            0..=6 => self.publish(),
            7..=8 => self.consume(),
            9..=10 => self.get(),
            11..=15 => self.settle_one(),
            16..=17 => self.close_channel(),
            18 => self
                .engine
                .set_conn_writable(1 + self.rng.below(2), self.rng.below(2) == 0),
            _ => self.restart(),
        }
        self.take_outputs();
    }

    fn finish(mut self) {
        for (conn, ch) in CHANNELS {
            self.engine.channel_close(self.now, conn, ch);
            if let Some(tags) = self.tags.remove(&(conn, ch)) {
                for b in tags.values() {
                    self.outstanding.remove(b);
                }
            }
            self.take_outputs();
        }
        let mut left = BTreeSet::new();
        while let Some(g) = self.engine.basic_get(self.now, 9, 9, V, "d", true).unwrap() {
            let body = String::from_utf8_lossy(&g.message.body).into_owned();
            assert!(!self.acked.contains(&body), "acknowledged {body} came back");
            left.insert(body);
        }
        let lost: Vec<&String> = self.pending.difference(&left).collect();
        assert!(lost.is_empty(), "lost {lost:?}");
    }
}

fn trace(s: String) {
    if std::env::var("PORTASK_TRACE").is_ok() {
        eprintln!("  {s}");
    }
}

fn run(seed: u64) {
    let mut sim = Sim::new(seed);
    for _ in 0..STEPS {
        sim.step();
    }
    sim.finish();
}

#[test]
fn seeded_queue_workloads() {
    if let Some(seed) = std::env::var("PORTASK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        run(seed);
        return;
    }
    for seed in 0..60 {
        run(seed);
    }
}
