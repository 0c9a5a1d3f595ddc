//! Compression ratio and throughput of stored batches, per algorithm, level and mode.
//!
//! `cargo bench -p portask-engine --bench compression` prints a Markdown table.
#![allow(missing_docs)]

use std::time::Instant;

use bytes::Bytes;
use portask_engine::batch::{
    BodyEncoding, CompressionMode, ProducerFields, decode_batch_with, encode_batch_with,
};
use portask_engine::compression::dictionary::Dictionary;
use portask_engine::rng::Rng;
use portask_engine::{Record, StoredCompression};

struct Dicts(Option<Dictionary>);

impl portask_engine::batch::DictionarySource for Dicts {
    fn dictionary(&self, id: u32) -> Option<&Dictionary> {
        self.0.as_ref().filter(|d| d.id() == id)
    }
}

fn json(i: usize) -> Vec<u8> {
    format!(
        r#"{{"ts":"2026-11-23T10:{:02}:{:02}.{:03}Z","level":"{}","service":"checkout","host":"web-{}","msg":"order accepted","order_id":{},"user":"user-{}","amount_cents":{},"latency_ms":{}}}"#,
        i % 60, (i * 7) % 60, (i * 13) % 1000,
        ["info", "warn", "debug"][i % 3], i % 12, 100_000 + i, (i * 7919) % 50_000, (i * 31) % 10_000, i % 250
    )
    .into_bytes()
}

fn workloads() -> Vec<(&'static str, Vec<Vec<u8>>)> {
    let mut rng = Rng::new(42);
    let random = (0..200)
        .map(|_| (0..1024).map(|_| rng.next_u64() as u8).collect())
        .collect();
    let small = (0..2000)
        .map(|i| format!("sensor-{};temp={};ok", i % 16, 20 + i % 5).into_bytes())
        .collect();
    vec![
        ("JSON log lines (~230 B)", (0..1000).map(json).collect()),
        ("random bytes (1 KiB)", random),
        ("small repetitive (~25 B)", small),
    ]
}

fn main() {
    let producer = ProducerFields {
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
    };
    let algos = [
        ("none", StoredCompression::None),
        ("zstd 1", StoredCompression::Zstd { level: 1 }),
        ("zstd 3", StoredCompression::Zstd { level: 3 }),
        ("zstd 9", StoredCompression::Zstd { level: 9 }),
        ("zstd 19", StoredCompression::Zstd { level: 19 }),
        ("lz4", StoredCompression::Lz4),
        ("snappy", StoredCompression::Snappy),
    ];
    println!("| payload | algorithm | mode | dict | ratio | compress MB/s | decompress MB/s |");
    println!("|---|---|---|---|---:|---:|---:|");
    for (name, values) in workloads() {
        let raw: usize = values.iter().map(Vec::len).sum();
        // Trained on the first half of the values, as the engine trains on a topic's first
        // records.
        let dict = zstd::dict::from_samples(&values[..values.len() / 2], 16 << 10)
            .ok()
            .map(|d| Dictionary::new(1, 0, Bytes::from(d)));
        let dicts = Dicts(dict);
        // Batches of 50 records, as a producer with a small linger sends them.
        let records: Vec<Record> = values
            .iter()
            .map(|v| Record::with_value(0, v.clone()))
            .collect();
        for (alg, c) in algos {
            for mode in [CompressionMode::Single, CompressionMode::Bulk] {
                for with_dict in [false, true] {
                    if (with_dict
                        && (dicts.0.is_none() || !matches!(c, StoredCompression::Zstd { .. })))
                        || (c == StoredCompression::None && mode == CompressionMode::Single)
                    {
                        continue;
                    }
                    let enc = BodyEncoding {
                        compression: c,
                        mode,
                        min_size: 0,
                        dictionary: if with_dict { dicts.0.as_ref() } else { None },
                    };
                    let rounds = if matches!(c, StoredCompression::Zstd { level: 19 }) {
                        1
                    } else {
                        5
                    };
                    let start = Instant::now();
                    let mut batches = Vec::new();
                    for _ in 0..rounds {
                        batches.clear();
                        for chunk in records.chunks(50) {
                            let ids = vec![None; chunk.len()];
                            batches.push(
                                encode_batch_with(0, producer, chunk, &ids, &enc)
                                    .unwrap()
                                    .0
                                    .bytes,
                            );
                        }
                    }
                    let ct = start.elapsed().as_secs_f64() / rounds as f64;
                    let stored: usize = batches.iter().map(Bytes::len).sum();
                    let start = Instant::now();
                    for _ in 0..rounds {
                        for b in &batches {
                            std::hint::black_box(decode_batch_with(b, &dicts).unwrap());
                        }
                    }
                    let dt = start.elapsed().as_secs_f64() / rounds as f64;
                    let mb = raw as f64 / 1e6;
                    println!(
                        "| {name} | {alg} | {} | {} | {:.2} | {:.0} | {:.0} |",
                        if mode == CompressionMode::Single {
                            "single"
                        } else {
                            "bulk"
                        },
                        if with_dict { "yes" } else { "no" },
                        raw as f64 / stored as f64,
                        mb / ct,
                        mb / dt
                    );
                }
            }
        }
    }
}
