//! Seeded random workload against `MemStorage`: produces (plain and idempotent, with retries
//! and injected write failures), fetches, delete-records and restarts. Checks that no
//! acknowledged record is lost, offsets are dense and monotonic, and retries never duplicate.
//!
//! `PORTASK_SEED=<seed>` runs one seed; otherwise a fixed range of seeds runs.

use std::collections::BTreeMap;

use bytes::Bytes;
use portask_engine::rng::Rng;
use portask_engine::*;

const PARTITIONS: i32 = 3;
const STEPS: usize = 300;

#[derive(Default)]
struct ModelPartition {
    log_start: i64,
    records: Vec<Bytes>,
}

struct Producer {
    id: i64,
    epoch: i16,
    next_seq: BTreeMap<i32, i32>,
    last: Option<(i32, ProduceBatch, i64)>,
}

struct Sim {
    rng: Rng,
    storage: MemStorage,
    engine: Engine,
    model: Vec<ModelPartition>,
    producers: Vec<Producer>,
    cfg: EngineConfig,
    step: usize,
}

fn tp(p: i32) -> TopicPartition {
    TopicPartition {
        topic: "sim".into(),
        partition: p,
    }
}

impl Sim {
    fn new(seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let compression = match rng.below(4) {
            0 => StoredCompression::None,
            1 => StoredCompression::Zstd { level: 1 },
            2 => StoredCompression::Lz4,
            _ => StoredCompression::Snappy,
        };
        let cfg = EngineConfig {
            seed,
            compression: compression.into(),
            ..EngineConfig::default()
        };
        let storage = MemStorage::new();
        let mut engine = Engine::open(cfg.clone(), Box::new(storage.clone()), 0).unwrap();
        engine
            .create_topic("sim", PARTITIONS, BTreeMap::new())
            .unwrap();
        let model = (0..PARTITIONS).map(|_| ModelPartition::default()).collect();
        Self {
            rng,
            storage,
            engine,
            model,
            producers: Vec::new(),
            cfg,
            step: 0,
        }
    }

    fn records(&mut self) -> Vec<Record> {
        let n = 1 + self.rng.below(5) as usize;
        let ts = self.rng.below(1_000) as i64 - 1;
        (0..n)
            .map(|i| Record::with_value(ts, format!("s{}-{i}", self.step)))
            .collect()
    }

    fn expect_append(&mut self, p: i32, records: &[Record], base: i64) {
        let m = &mut self.model[p as usize];
        assert_eq!(
            base,
            m.records.len() as i64,
            "offsets must be dense and monotonic"
        );
        m.records
            .extend(records.iter().map(|r| r.value.clone().unwrap()));
    }

    fn produce_plain(&mut self) {
        let p = self.rng.below(PARTITIONS as u64) as i32;
        let records = self.records();
        let batch = ProduceBatch {
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            records: records.clone(),
        };
        let fail = self.rng.below(10) == 0;
        self.storage.set_fail_writes(fail);
        let result = self.engine.produce(1_000, &tp(p), batch);
        self.storage.set_fail_writes(false);
        match result {
            Ok(out) if !fail => self.expect_append(p, &records, out.base_offset),
            Err(EngineError::Storage(_)) if fail => {}
            other => panic!("fail={fail}: {other:?}"),
        }
    }

    fn produce_idempotent(&mut self) {
        if self.producers.is_empty() || self.rng.below(20) == 0 {
            let (id, epoch) = self.engine.init_producer_id().unwrap();
            assert!(
                self.producers.iter().all(|p| p.id != id),
                "producer id reused"
            );
            self.producers.push(Producer {
                id,
                epoch,
                next_seq: BTreeMap::new(),
                last: None,
            });
        }
        let i = self.rng.below(self.producers.len() as u64) as usize;
        let p = self.rng.below(PARTITIONS as u64) as i32;
        let records = self.records();
        let prod = &self.producers[i];
        let seq = prod.next_seq.get(&p).copied().unwrap_or(0);
        let batch = ProduceBatch {
            producer_id: prod.id,
            producer_epoch: prod.epoch,
            base_sequence: seq,
            records: records.clone(),
        };
        let out = self.engine.produce(1_000, &tp(p), batch.clone()).unwrap();
        assert!(!out.duplicate);
        self.expect_append(p, &records, out.base_offset);
        let prod = &mut self.producers[i];
        prod.next_seq.insert(p, seq + records.len() as i32);
        prod.last = Some((p, batch, out.base_offset));
    }

    fn retry(&mut self) {
        let Some(prod) = self.producers.iter().find(|p| p.last.is_some()) else {
            return;
        };
        let (p, batch, base) = prod.last.clone().unwrap();
        let out = self.engine.produce(1_000, &tp(p), batch).unwrap();
        assert!(out.duplicate, "a retried batch must not be appended twice");
        assert_eq!(out.base_offset, base);
        let mut gap = prod.last.clone().unwrap().1;
        gap.base_sequence += 1_000;
        let err = self.engine.produce(1_000, &tp(p), gap).unwrap_err();
        assert!(matches!(err, EngineError::OutOfOrderSequence), "{err:?}");
    }

    fn fetch(&mut self) {
        let p = self.rng.below(PARTITIONS as u64) as i32;
        let m = &self.model[p as usize];
        let hw = m.records.len() as i64;
        let from = m.log_start + self.rng.below((hw - m.log_start + 1) as u64) as i64;
        let max_bytes = 1 + self.rng.below(2_000) as usize;
        let out = self.engine.fetch(&tp(p), from, max_bytes).unwrap();
        assert_eq!(out.high_watermark, hw);
        assert_eq!(out.log_start_offset, m.log_start);
        let got: Vec<(i64, Record)> = out.batches.into_iter().flat_map(|b| b.records).collect();
        assert_eq!(got.is_empty(), from == hw, "data at {from} must come back");
        for (k, (offset, record)) in got.iter().enumerate() {
            assert_eq!(*offset, from + k as i64, "fetched offsets are dense");
            assert_eq!(record.value.as_ref(), Some(&m.records[*offset as usize]));
        }
    }

    fn delete_records(&mut self) {
        let p = self.rng.below(PARTITIONS as u64) as i32;
        let m = &mut self.model[p as usize];
        let hw = m.records.len() as i64;
        let before = m.log_start + self.rng.below((hw - m.log_start) as u64 / 4 + 1) as i64;
        let low = self.engine.delete_records(&tp(p), before).unwrap();
        m.log_start = m.log_start.max(before);
        assert_eq!(low, m.log_start);
    }

    fn reopen(&mut self) {
        self.engine = Engine::open(self.cfg.clone(), Box::new(self.storage.clone()), 0).unwrap();
    }

    fn check_everything(&mut self) {
        for p in 0..PARTITIONS {
            let m = &self.model[p as usize];
            let offs = self.engine.partition_offsets(&tp(p)).unwrap();
            assert_eq!(offs.high_watermark, m.records.len() as i64);
            let out = self.engine.fetch(&tp(p), m.log_start, usize::MAX).unwrap();
            let got: Vec<_> = out.batches.into_iter().flat_map(|b| b.records).collect();
            assert_eq!(
                got.len() as i64,
                offs.high_watermark - m.log_start,
                "acknowledged records lost"
            );
            for (offset, record) in got {
                assert_eq!(record.value.as_ref(), Some(&m.records[offset as usize]));
            }
        }
    }

    fn run(&mut self) {
        for step in 0..STEPS {
            self.step = step;
            match self.rng.below(100) {
                0..=29 => self.produce_plain(),
                30..=59 => self.produce_idempotent(),
                60..=69 => self.retry(),
                70..=91 => self.fetch(),
                92..=94 => self.delete_records(),
                _ => self.reopen(),
            }
        }
        self.reopen();
        self.check_everything();
    }
}

fn run_seed(seed: u64) {
    let outcome = std::panic::catch_unwind(|| Sim::new(seed).run());
    if let Err(panic) = outcome {
        eprintln!("simulation failed; reproduce with PORTASK_SEED={seed}");
        std::panic::resume_unwind(panic);
    }
}

#[test]
fn simulation() {
    match std::env::var("PORTASK_SEED") {
        Ok(seed) => run_seed(seed.parse().expect("PORTASK_SEED is a u64")),
        Err(_) => (0..50).for_each(run_seed),
    }
}
