//! `portask produce`: messages from stdin or a file, one per line, to a topic or an exchange.

use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::time::Instant;

use bytes::Bytes;
use portask_client::{Message, Pending, PublishResult, Target};

use super::args::Spec;
use super::format::Progress;
use super::{Conn, Failure, connect};

const SPEC: Spec = Spec {
    command: "produce",
    usage: "portask produce TOPIC [OPTIONS] < lines",
    help: "\
Publish messages read from stdin (or --file), one message per line.

USAGE:
    portask produce TOPIC [OPTIONS]
    portask produce --exchange X --routing-key R [--vhost V] [OPTIONS]

OPTIONS:
    --partition N          send every message to partition N (default: by key, or the broker's choice)
    --key K                the key of every message
    --key-separator S      each line is KEY<S>PAYLOAD (split at the first S)
    --header NAME=VALUE    add a header to every message (repeatable)
    --file F               read F instead of stdin
    --raw                  the whole input is one message, bytes as they are (binary safe)
    --exchange X           publish to AMQP exchange X instead of a topic (\"\" is the default exchange)
    --routing-key R        routing key for --exchange (default: empty)
    --vhost V              virtual host for --exchange (default /)
    --mandatory            with --exchange: fail when a message reaches no queue
    --durable              answer only once the messages are on stable storage
    --batch N              messages per publish request (default 1000)
",
    values: &[
        "--partition",
        "--key",
        "--key-separator",
        "--header",
        "--file",
        "--exchange",
        "--routing-key",
        "--vhost",
        "--batch",
    ],
    switches: &["--raw", "--mandatory", "--durable"],
};

/// Requests in flight at once.
const INFLIGHT: usize = 8;
/// A batch is sent once its payloads reach this many bytes.
const BATCH_BYTES: usize = 1 << 20;

pub(crate) fn run(args: &[String]) -> Result<(), Failure> {
    let p = SPEC.parse(args)?;
    let exchange = p.value("--exchange");
    let topic = match exchange {
        Some(_) => {
            p.at_most(0)?;
            None
        }
        None => {
            p.at_most(1)?;
            Some(p.positional(0, "TOPIC")?.to_owned())
        }
    };
    if exchange.is_none() {
        for flag in ["--routing-key", "--vhost"] {
            if p.value(flag).is_some() {
                return Err(p.usage_error(format!("'{flag}' needs '--exchange'")));
            }
        }
        if p.switch("--mandatory") {
            return Err(p.usage_error("'--mandatory' needs '--exchange'"));
        }
    } else if p.value("--partition").is_some() {
        return Err(p.usage_error("'--partition' cannot be used with '--exchange'"));
    }
    p.exclusive(&["--key", "--key-separator"])?;
    p.exclusive(&["--raw", "--key-separator"])?;
    let partition: Option<i32> = p.number("--partition", "a partition number")?;
    let batch: usize = p.number("--batch", "a positive integer")?.unwrap_or(1000);
    if batch == 0 {
        return Err(p.usage_error("'--batch' must be at least 1"));
    }
    let mut headers = Vec::new();
    for h in p.values("--header") {
        let Some((name, value)) = h.split_once('=') else {
            return Err(p.usage_error(format!(
                "invalid value '{h}' for '--header': expected NAME=VALUE"
            )));
        };
        headers.push((name.to_owned(), Bytes::copy_from_slice(value.as_bytes())));
    }
    let separator = p.value("--key-separator").map(|s| s.as_bytes().to_vec());
    if separator.as_ref().is_some_and(Vec::is_empty) {
        return Err(p.usage_error("'--key-separator' cannot be empty"));
    }
    let key = p
        .value("--key")
        .map(|k| Bytes::copy_from_slice(k.as_bytes()));
    let input: Box<dyn Read> = match p.value("--file") {
        Some(path) => Box::new(
            File::open(path)
                .map_err(|e| p.usage_error(format!("cannot read --file '{path}': {e}")))?,
        ),
        None => Box::new(io::stdin().lock()),
    };
    let target = match (&topic, exchange) {
        (Some(t), _) => portask_client::topic_target(t, partition),
        (None, Some(x)) => portask_client::exchange_target(
            p.value("--vhost").unwrap_or("/"),
            x,
            p.value("--routing-key").unwrap_or(""),
            p.switch("--mandatory"),
        ),
        (None, None) => unreachable!("a topic or an exchange was required above"),
    };

    let mut conn = connect(&p)?;
    let make = |payload: Vec<u8>, key: Option<Bytes>| Message {
        key,
        headers: headers.clone(),
        payload: Bytes::from(payload),
        ..Message::default()
    };
    let mut sender = Sender::new(target, p.switch("--durable"));
    let mut reader = BufReader::with_capacity(256 * 1024, input);
    let mut messages = Vec::new();
    let mut bytes = 0usize;
    if p.switch("--raw") {
        let mut all = Vec::new();
        reader.read_to_end(&mut all)?;
        messages.push(make(all, key.clone()));
    } else {
        let mut line = Vec::new();
        loop {
            line.clear();
            if reader.read_until(b'\n', &mut line)? == 0 {
                break;
            }
            if line.last() == Some(&b'\n') {
                line.pop();
            }
            let (k, payload) = match &separator {
                Some(sep) => match find(&line, sep) {
                    Some(i) => (
                        Some(Bytes::copy_from_slice(&line[..i])),
                        line[i + sep.len()..].to_vec(),
                    ),
                    None => (None, line.clone()),
                },
                None => (key.clone(), line.clone()),
            };
            bytes += payload.len();
            messages.push(make(payload, k));
            // Send when the batch is full, or when no more input is ready right now (so an
            // interactive producer sees each line go out).
            if messages.len() >= batch || bytes >= BATCH_BYTES || reader.buffer().is_empty() {
                sender.send(&mut conn, std::mem::take(&mut messages))?;
                bytes = 0;
            }
        }
    }
    if !messages.is_empty() {
        sender.send(&mut conn, messages)?;
    }
    sender.finish(&mut conn)?;
    println!(
        "{}",
        sender.summary(topic.as_deref(), exchange, p.value("--routing-key"))
    );
    Ok(())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Publishes batches with a few in flight and tallies the results.
struct Sender {
    target: Target,
    durable: bool,
    inflight: VecDeque<Pending>,
    /// First and last offset by partition.
    ranges: BTreeMap<i32, (i64, i64)>,
    produced: u64,
    unroutable: u64,
    progress: Progress,
    started: Instant,
}

impl Sender {
    fn new(target: Target, durable: bool) -> Self {
        Self {
            target,
            durable,
            inflight: VecDeque::new(),
            ranges: BTreeMap::new(),
            produced: 0,
            unroutable: 0,
            progress: Progress::new(),
            started: Instant::now(),
        }
    }

    fn send(&mut self, conn: &mut Conn, messages: Vec<Message>) -> Result<(), Failure> {
        if self.inflight.len() >= INFLIGHT {
            self.complete_one(conn)?;
        }
        let p = conn
            .client
            .send_publish(self.target.clone(), messages, self.durable)
            .map_err(|e| conn.fail(e))?;
        self.inflight.push_back(p);
        // Interactive input: do not leave a request sitting in the buffer.
        conn.client.flush().map_err(|e| conn.fail(e))?;
        let produced = self.produced;
        self.progress.tick(|t| {
            format!(
                "produced {produced} messages ({:.0} msg/s)",
                produced as f64 / t.as_secs_f64()
            )
        });
        Ok(())
    }

    fn complete_one(&mut self, conn: &mut Conn) -> Result<(), Failure> {
        let Some(p) = self.inflight.pop_front() else {
            return Ok(());
        };
        let results = match conn.client.wait_publish(p) {
            Ok(r) => r,
            Err(e) => {
                self.progress.finish();
                if self.produced > 0 {
                    eprintln!(
                        "portask: {} messages were produced before the error",
                        self.produced
                    );
                }
                return Err(conn.fail(e));
            }
        };
        for r in results {
            self.produced += 1;
            match r {
                PublishResult::Appended { partition, offset } => {
                    let range = self.ranges.entry(partition).or_insert((offset, offset));
                    range.0 = range.0.min(offset);
                    range.1 = range.1.max(offset);
                }
                PublishResult::Routed(false) => self.unroutable += 1,
                PublishResult::Routed(true) => {}
            }
        }
        Ok(())
    }

    fn finish(&mut self, conn: &mut Conn) -> Result<(), Failure> {
        while !self.inflight.is_empty() {
            self.complete_one(conn)?;
        }
        self.progress.finish();
        Ok(())
    }

    fn summary(&self, topic: Option<&str>, exchange: Option<&str>, key: Option<&str>) -> String {
        let n = self.produced;
        let plural = if n == 1 { "message" } else { "messages" };
        let secs = self.started.elapsed().as_secs_f64();
        let rate = if secs > 1.0 {
            format!(" in {secs:.1} s ({:.0} msg/s)", n as f64 / secs)
        } else {
            String::new()
        };
        match topic {
            Some(t) => {
                let ranges: Vec<String> = self
                    .ranges
                    .iter()
                    .map(|(p, (first, last))| format!("partition {p} offsets {first}..{last}"))
                    .collect();
                let where_ = if ranges.is_empty() {
                    String::new()
                } else {
                    format!(": {}", ranges.join(", "))
                };
                format!("produced {n} {plural} to topic {t}{rate}{where_}")
            }
            None => {
                let routed = n - self.unroutable;
                format!(
                    "published {n} {plural} to exchange {:?} with routing key {:?}{rate}: {routed} routed, {} unroutable",
                    exchange.unwrap_or(""),
                    key.unwrap_or(""),
                    self.unroutable
                )
            }
        }
    }
}
