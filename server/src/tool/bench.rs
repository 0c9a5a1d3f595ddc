//! `portask bench`: a load generator. Publishes batches with several in flight and reports
//! msg/s, MB/s and latency percentiles; with `--consume`, a second connection consumes at
//! the same time and reports end-to-end latency.

use std::collections::{BTreeMap, VecDeque};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use portask_client::{Client, ClientError, ClientOptions, Message, Target, code};

use super::args::Spec;
use super::format::Progress;
use super::{Failure, connect, connection_settings};

const SPEC: Spec = Spec {
    command: "bench",
    usage: "portask bench [--messages N] [--size B] [--topic T | --queue Q] [--batch N] [--inflight N] [--consume]",
    help: "\
Measure publish (and consume) throughput and latency against a running broker.

USAGE:
    portask bench [OPTIONS]

OPTIONS:
    --messages N           messages to publish (default 100000)
    --size B               payload bytes per message (default 100)
    --topic T              publish to topic T, created with one partition if missing
                           (default portask-bench)
    --queue Q              publish to queue Q through the default exchange (declared if missing)
    --vhost V              the queue's virtual host (default /)
    --batch N              messages per publish request (default 100)
    --inflight N           publish requests in flight at once (default 8)
    --durable              ask for answers only once messages are on stable storage
    --consume              consume the messages on a second connection at the same time and
                           report consume rate and end-to-end latency
",
    values: &[
        "--messages",
        "--size",
        "--topic",
        "--queue",
        "--vhost",
        "--batch",
        "--inflight",
    ],
    switches: &["--consume", "--durable"],
};

/// How long the consumer waits for a message before giving up on the rest.
const CONSUME_IDLE: Duration = Duration::from_secs(10);

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// The p-th percentile of sorted values.
fn percentile(sorted: &[Duration], p: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn rates(what: &str, n: u64, size: usize, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64().max(1e-9);
    format!(
        "{what}: {n} messages of {size} bytes in {secs:.2} s: {:.0} msg/s, {:.2} MB/s",
        n as f64 / secs,
        (n as f64 * size as f64) / secs / 1e6
    )
}

fn latencies(what: &str, mut v: Vec<Duration>) -> String {
    v.sort_unstable();
    format!(
        "{what}: p50 {}, p99 {}, max {} ({} samples)",
        ms(percentile(&v, 50)),
        ms(percentile(&v, 99)),
        ms(v.last().copied().unwrap_or_default()),
        v.len()
    )
}

/// Where the benchmark publishes and consumes.
#[derive(Clone)]
enum Dest {
    Topic(String),
    Queue { vhost: String, queue: String },
}

pub(crate) fn run(args: &[String]) -> Result<(), Failure> {
    let p = SPEC.parse(args)?;
    p.at_most(0)?;
    p.exclusive(&["--topic", "--queue"])?;
    let n: u64 = p
        .number("--messages", "a positive integer")?
        .unwrap_or(100_000);
    let size: usize = p.number("--size", "a number of bytes")?.unwrap_or(100);
    let batch: usize = p.number("--batch", "a positive integer")?.unwrap_or(100);
    let inflight: usize = p.number("--inflight", "a positive integer")?.unwrap_or(8);
    if n == 0 || batch == 0 || inflight == 0 {
        return Err(p.usage_error("'--messages', '--batch' and '--inflight' must be at least 1"));
    }
    let dest = match p.value("--queue") {
        Some(q) => Dest::Queue {
            vhost: p.value("--vhost").unwrap_or("/").to_owned(),
            queue: q.to_owned(),
        },
        None => Dest::Topic(p.value("--topic").unwrap_or("portask-bench").to_owned()),
    };
    let (addr, options) = connection_settings(&p)?;
    let mut conn = connect(&p)?;
    let client = &mut conn.client;
    let fail = |error| Failure::Client {
        error,
        addr: addr.clone(),
    };
    // Set up the destination; for a topic, note where the new messages will start.
    let (target, starts) = match &dest {
        Dest::Topic(t) => {
            match client.create_topic(t, 1, Vec::new()) {
                Err(e) if e.code() != Some(code::ALREADY_EXISTS) => return Err(fail(e)),
                _ => {}
            }
            let info = client.list_topics().map_err(fail)?;
            let info = info.into_iter().find(|i| &i.name == t);
            let starts: BTreeMap<i32, i64> = info
                .map(|i| {
                    (0..i.partitions)
                        .map(|p| (p, i.high_watermarks.get(p as usize).copied().unwrap_or(0)))
                        .collect()
                })
                .unwrap_or_default();
            (portask_client::topic_target(t, None), starts)
        }
        Dest::Queue { vhost, queue } => {
            client
                .declare_queue(vhost, queue, false, false, Vec::new())
                .map_err(fail)?;
            (
                portask_client::exchange_target(vhost, "", queue, false),
                BTreeMap::new(),
            )
        }
    };
    let consumer = p.switch("--consume").then(|| {
        let (addr, options, dest) = (addr.clone(), options.clone(), dest.clone());
        thread::spawn(move || consume(&addr, options, &dest, starts, n))
    });

    let published = publish(
        client,
        &target,
        n,
        size,
        batch,
        inflight,
        p.switch("--durable"),
    )
    .map_err(fail)?;
    println!("{}", rates("publish", n, size, published.elapsed));
    println!(
        "{}",
        latencies(
            &format!("publish latency (per request of up to {batch} messages)"),
            published.latencies
        )
    );
    if published.unroutable > 0 {
        println!(
            "warning: {} messages reached no queue",
            published.unroutable
        );
    }
    if let Some(handle) = consumer {
        let consumed = match handle.join() {
            Ok(r) => r.map_err(fail)?,
            Err(_) => return Err(Failure::Local("the consumer thread panicked".into())),
        };
        println!(
            "{}",
            rates("consume", consumed.count, size, consumed.elapsed)
        );
        if size >= 8 {
            println!("{}", latencies("end-to-end latency", consumed.latencies));
        }
        if consumed.count < n {
            return Err(Failure::Local(format!(
                "only {} of {n} messages were consumed ({} s without a message)",
                consumed.count,
                CONSUME_IDLE.as_secs()
            )));
        }
    }
    Ok(())
}

struct Published {
    elapsed: Duration,
    latencies: Vec<Duration>,
    unroutable: u64,
}

fn publish(
    client: &mut Client,
    target: &Target,
    n: u64,
    size: usize,
    batch: usize,
    inflight: usize,
    durable: bool,
) -> Result<Published, ClientError> {
    let filler = Bytes::from(vec![b'x'; size]);
    let mut pending = VecDeque::with_capacity(inflight);
    let mut latencies = Vec::with_capacity((n as usize).div_ceil(batch));
    let mut unroutable = 0u64;
    let mut progress = Progress::new();
    let start = Instant::now();
    let (mut sent, mut acked) = (0u64, 0u64);
    let mut complete = |client: &mut Client,
                        pending: &mut VecDeque<portask_client::Pending>,
                        acked: &mut u64|
     -> Result<(), ClientError> {
        if let Some(p) = pending.pop_front() {
            let sent_at = p.sent_at();
            let results = client.wait_publish(p)?;
            latencies.push(sent_at.elapsed());
            *acked += results.len() as u64;
            unroutable += results
                .iter()
                .filter(|r| matches!(r, portask_client::PublishResult::Routed(false)))
                .count() as u64;
        }
        Ok(())
    };
    while sent < n {
        if pending.len() >= inflight {
            complete(client, &mut pending, &mut acked)?;
        }
        let count = (n - sent).min(batch as u64);
        let stamp = now_micros().to_be_bytes();
        let messages = (0..count)
            .map(|_| {
                let payload = if size >= 8 {
                    let mut v = Vec::with_capacity(size);
                    v.extend_from_slice(&stamp);
                    v.extend_from_slice(&filler[8..]);
                    Bytes::from(v)
                } else {
                    filler.clone()
                };
                Message {
                    payload,
                    ..Message::default()
                }
            })
            .collect();
        pending.push_back(client.send_publish(target.clone(), messages, durable)?);
        if pending.len() >= inflight {
            client.flush()?;
        }
        sent += count;
        progress.tick(|t| {
            format!(
                "published {acked}/{n} ({:.0} msg/s)",
                acked as f64 / t.as_secs_f64()
            )
        });
    }
    while !pending.is_empty() {
        complete(client, &mut pending, &mut acked)?;
    }
    progress.finish();
    Ok(Published {
        elapsed: start.elapsed(),
        latencies,
        unroutable,
    })
}

struct Consumed {
    count: u64,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

fn latency_of(payload: &[u8]) -> Option<Duration> {
    let stamp = u64::from_be_bytes(payload.get(..8)?.try_into().ok()?);
    Some(Duration::from_micros(now_micros().saturating_sub(stamp)))
}

fn consume(
    addr: &str,
    options: ClientOptions,
    dest: &Dest,
    mut starts: BTreeMap<i32, i64>,
    n: u64,
) -> Result<Consumed, ClientError> {
    let mut client = Client::connect(addr, options)?;
    let start = Instant::now();
    let mut latencies = Vec::with_capacity(n as usize);
    let mut count = 0u64;
    let mut last = Instant::now();
    match dest {
        Dest::Topic(topic) => {
            while count < n && last.elapsed() < CONSUME_IDLE {
                let parts: Vec<(i32, i64)> = starts.iter().map(|(&p, &o)| (p, o)).collect();
                for (p, from) in parts {
                    let f = client.fetch(topic, p, from, 10_000, 4 << 20, 100)?;
                    if let Some(m) = f.messages.last() {
                        starts.insert(p, m.offset + 1);
                        last = Instant::now();
                    }
                    for m in &f.messages {
                        latencies.extend(latency_of(&m.message.payload));
                    }
                    count += f.messages.len() as u64;
                }
            }
        }
        Dest::Queue { vhost, queue } => {
            let mut consumer = client.consume(vhost, queue, 2000, false)?;
            let mut unacked = 0;
            while count < n && last.elapsed() < CONSUME_IDLE {
                if let Some(d) = consumer.next(Some(Duration::from_millis(100)))? {
                    last = Instant::now();
                    count += 1;
                    latencies.extend(latency_of(&d.message.payload));
                    unacked += 1;
                    if unacked >= 500 || count == n {
                        consumer.ack(d.delivery_tag, true)?;
                        unacked = 0;
                    }
                }
            }
            consumer.cancel()?;
        }
    }
    Ok(Consumed {
        count,
        elapsed: start.elapsed(),
        latencies,
    })
}
