//! `portask consume`: read a topic (alone or in a consumer group) or a queue, print each
//! message as text or JSON.

use std::collections::BTreeMap;
use std::io::{self, BufWriter, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use portask_client::{ClientError, Message, PartitionOffset, code};
use serde_json::{Map, Value};

use super::args::{Parsed, Spec};
use super::format::put_bytes;
use super::{Conn, Failure, connect, write_out};

const SPEC: Spec = Spec {
    command: "consume",
    usage: "portask consume TOPIC [OPTIONS] | portask consume --queue Q [OPTIONS]",
    help: "\
Print messages from a topic or a queue, one per line.

USAGE:
    portask consume TOPIC [--from-beginning | --offset N | --latest] [--group G] [--partition N] [OPTIONS]
    portask consume --queue Q [--vhost V] [--credit N] [OPTIONS]

TOPIC OPTIONS:
    --from-beginning       start at the first message
    --offset N             start at offset N (in every partition read)
    --latest               start after the last message (the default)
    --partition N          read only partition N (default: all)
    --group G              consume as a member of group G: start at its committed offsets
                           (the options above apply when it has none) and commit progress

QUEUE OPTIONS:
    --queue Q              consume queue Q; each message is acknowledged once printed
    --vhost V              the queue's virtual host (default /)
    --credit N             deliveries allowed unacknowledged at once (default 100)

OUTPUT:
    --format text|json     text: the payload per line (default); json: one object per line with
                           key, headers, payload (or payload_base64 when not UTF-8), offset,
                           partition, timestamp
    --print-key            text: print KEY<separator> before the payload
    --print-headers        text: print name=value,... <separator> before the payload
    --key-separator S      separator for --print-key and --print-headers (default a tab)
    --max-messages N       stop after N messages
    --exit                 stop at the end of the topic (or when the queue stays empty for 1 s)
",
    values: &[
        "--offset",
        "--group",
        "--partition",
        "--queue",
        "--vhost",
        "--credit",
        "--format",
        "--key-separator",
        "--max-messages",
    ],
    switches: &[
        "--from-beginning",
        "--latest",
        "--print-key",
        "--print-headers",
        "--exit",
    ],
};

/// How messages are printed.
struct Printer {
    json: bool,
    print_key: bool,
    print_headers: bool,
    separator: Vec<u8>,
    out: BufWriter<io::StdoutLock<'static>>,
}

/// Where a message came from.
enum Origin<'a> {
    Topic {
        topic: &'a str,
        partition: i32,
        offset: i64,
    },
    Queue {
        queue: &'a str,
        delivery_tag: u64,
        redelivered: bool,
        exchange: &'a str,
        routing_key: &'a str,
    },
}

impl Printer {
    fn print(&mut self, origin: Origin<'_>, m: &Message) -> Result<(), Failure> {
        let mut line = Vec::with_capacity(m.payload.len() + 16);
        if self.json {
            let mut obj = Map::new();
            match origin {
                Origin::Topic {
                    topic,
                    partition,
                    offset,
                } => {
                    obj.insert("topic".into(), Value::from(topic));
                    obj.insert("partition".into(), Value::from(partition));
                    obj.insert("offset".into(), Value::from(offset));
                }
                Origin::Queue {
                    queue,
                    delivery_tag,
                    redelivered,
                    exchange,
                    routing_key,
                } => {
                    obj.insert("queue".into(), Value::from(queue));
                    obj.insert("delivery_tag".into(), Value::from(delivery_tag));
                    obj.insert("redelivered".into(), Value::from(redelivered));
                    obj.insert("exchange".into(), Value::from(exchange));
                    obj.insert("routing_key".into(), Value::from(routing_key));
                }
            }
            obj.insert(
                "timestamp".into(),
                m.timestamp.map_or(Value::Null, Value::from),
            );
            match &m.key {
                Some(k) => put_bytes(&mut obj, "key", k),
                None => {
                    obj.insert("key".into(), Value::Null);
                }
            }
            let headers = m
                .headers
                .iter()
                .map(|(name, value)| {
                    let mut h = Map::new();
                    h.insert("name".into(), Value::from(name.as_str()));
                    put_bytes(&mut h, "value", value);
                    Value::Object(h)
                })
                .collect();
            obj.insert("headers".into(), Value::Array(headers));
            put_bytes(&mut obj, "payload", &m.payload);
            serde_json::to_writer(&mut line, &Value::Object(obj))
                .map_err(|e| Failure::Local(e.to_string()))?;
        } else {
            if self.print_headers {
                for (i, (name, value)) in m.headers.iter().enumerate() {
                    if i > 0 {
                        line.push(b',');
                    }
                    line.extend_from_slice(name.as_bytes());
                    line.push(b'=');
                    line.extend_from_slice(value);
                }
                line.extend_from_slice(&self.separator);
            }
            if self.print_key {
                line.extend_from_slice(m.key.as_deref().unwrap_or_default());
                line.extend_from_slice(&self.separator);
            }
            line.extend_from_slice(&m.payload);
        }
        line.push(b'\n');
        write_out(&mut self.out, &line)
    }

    fn flush(&mut self) -> Result<(), Failure> {
        match self.out.flush() {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => std::process::exit(0),
            r => r.map_err(Failure::from),
        }
    }
}

pub(crate) fn run(args: &[String]) -> Result<(), Failure> {
    let p = SPEC.parse(args)?;
    p.exclusive(&["--from-beginning", "--offset", "--latest"])?;
    let json = match p.value("--format").unwrap_or("text") {
        "text" => false,
        "json" => true,
        other => {
            return Err(p.usage_error(format!(
                "invalid value '{other}' for '--format': expected text or json"
            )));
        }
    };
    let max: Option<u64> = p.number("--max-messages", "a positive integer")?;
    if max == Some(0) {
        return Err(p.usage_error("'--max-messages' must be at least 1"));
    }
    let printer = Printer {
        json,
        print_key: p.switch("--print-key"),
        print_headers: p.switch("--print-headers"),
        separator: p
            .value("--key-separator")
            .unwrap_or("\t")
            .as_bytes()
            .to_vec(),
        out: BufWriter::new(io::stdout().lock()),
    };
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))?;
    }
    match p.value("--queue") {
        Some(queue) => {
            p.at_most(0)?;
            for flag in [
                "--from-beginning",
                "--latest",
                "--offset",
                "--group",
                "--partition",
            ] {
                if p.switch(flag) || p.value(flag).is_some() {
                    return Err(p.usage_error(format!("'{flag}' cannot be used with '--queue'")));
                }
            }
            consume_queue(&p, queue, max, printer, &stop)
        }
        None => {
            p.at_most(1)?;
            let topic = p.positional(0, "TOPIC")?.to_owned();
            for flag in ["--vhost", "--credit"] {
                if p.value(flag).is_some() {
                    return Err(p.usage_error(format!("'{flag}' needs '--queue'")));
                }
            }
            p.exclusive(&["--group", "--partition"])?;
            consume_topic(&p, &topic, max, printer, &stop)
        }
    }
}

fn consume_queue(
    p: &Parsed,
    queue: &str,
    max: Option<u64>,
    mut printer: Printer,
    stop: &AtomicBool,
) -> Result<(), Failure> {
    let mut credit: u32 = p.number("--credit", "a positive integer")?.unwrap_or(100);
    if credit == 0 {
        return Err(p.usage_error("'--credit' must be at least 1"));
    }
    if let Some(max) = max {
        credit = credit.min(u32::try_from(max).unwrap_or(u32::MAX));
    }
    let vhost = p.value("--vhost").unwrap_or("/");
    let exit = p.switch("--exit");
    let mut conn = connect(p)?;
    let addr = conn.addr.clone();
    let fail = |error| Failure::Client {
        error,
        addr: addr.clone(),
    };
    let mut consumer = conn
        .client
        .consume(vhost, queue, credit, false)
        .map_err(fail)?;
    let ack_every = (credit / 2).max(1);
    let mut unacked: Option<u64> = None;
    let mut unacked_n = 0u32;
    let mut count = 0u64;
    let mut idle_since = Instant::now();
    let ack = |consumer: &mut portask_client::Consumer<'_>,
               printer: &mut Printer,
               unacked: &mut Option<u64>,
               n: &mut u32|
     -> Result<(), Failure> {
        if let Some(tag) = unacked.take() {
            printer.flush()?;
            consumer.ack(tag, true).map_err(fail)?;
            *n = 0;
        }
        Ok(())
    };
    while !stop.load(Ordering::Relaxed) && max.is_none_or(|m| count < m) {
        match consumer
            .next(Some(Duration::from_millis(200)))
            .map_err(fail)?
        {
            Some(d) => {
                idle_since = Instant::now();
                let origin = Origin::Queue {
                    queue,
                    delivery_tag: d.delivery_tag,
                    redelivered: d.redelivered,
                    exchange: &d.exchange,
                    routing_key: &d.routing_key,
                };
                printer.print(origin, &d.message)?;
                count += 1;
                unacked = Some(d.delivery_tag);
                unacked_n += 1;
                if unacked_n >= ack_every {
                    ack(&mut consumer, &mut printer, &mut unacked, &mut unacked_n)?;
                }
            }
            None => {
                ack(&mut consumer, &mut printer, &mut unacked, &mut unacked_n)?;
                if exit && idle_since.elapsed() >= Duration::from_secs(1) {
                    break;
                }
            }
        }
    }
    ack(&mut consumer, &mut printer, &mut unacked, &mut unacked_n)?;
    consumer.cancel().map_err(fail)?;
    printer.flush()
}

/// Where a topic consumer is in each partition.
struct Positions {
    next: BTreeMap<i32, i64>,
    at_end: BTreeMap<i32, bool>,
}

fn consume_topic(
    p: &Parsed,
    topic: &str,
    max: Option<u64>,
    mut printer: Printer,
    stop: &AtomicBool,
) -> Result<(), Failure> {
    let offset: Option<i64> = p.number("--offset", "an offset")?;
    if offset.is_some_and(|o| o < 0) {
        return Err(p.usage_error("'--offset' must be 0 or more"));
    }
    let partition: Option<i32> = p.number("--partition", "a partition number")?;
    let from_beginning = p.switch("--from-beginning");
    let exit = p.switch("--exit");
    let group = p.value("--group").map(str::to_owned);
    let mut conn = connect(p)?;
    let info = conn.client.list_topics().map_err(|e| conn.fail(e))?;
    let Some(info) = info.into_iter().find(|t| t.name == topic) else {
        return Err(conn.fail(ClientError::Broker {
            code: code::UNKNOWN_TOPIC,
            message: format!("no topic named {topic}"),
        }));
    };
    let hw = |p: i32| info.high_watermarks.get(p as usize).copied().unwrap_or(0);
    // Where to start in a partition that has no committed offset.
    let start = |p: i32| match offset {
        Some(o) => o,
        None if from_beginning => 0,
        None => hw(p),
    };
    let mut member: Option<(String, i32)> = None;
    let mut pos = Positions {
        next: BTreeMap::new(),
        at_end: BTreeMap::new(),
    };
    match (&group, partition) {
        (Some(g), _) => {
            let ok = conn
                .client
                .subscribe(g, &[topic.to_owned()], None)
                .map_err(|e| conn.fail(e))?;
            assign(&mut pos, &ok.assignments, topic, start);
            member = Some((ok.member_id, ok.generation));
        }
        (None, Some(n)) => {
            if n < 0 || n >= info.partitions {
                return Err(conn.fail(ClientError::Broker {
                    code: code::UNKNOWN_PARTITION,
                    message: format!(
                        "topic {topic} has partitions 0..{} but --partition {n} was asked for",
                        info.partitions - 1
                    ),
                }));
            }
            pos.next.insert(n, start(n));
        }
        (None, None) => {
            for n in 0..info.partitions {
                pos.next.insert(n, start(n));
            }
        }
    }
    let mut count = 0u64;
    let mut last_empty = false;
    let mut last_heartbeat = Instant::now();
    let mut committed: BTreeMap<i32, i64> = pos.next.clone();
    let mut commit_live = true;
    'outer: while !stop.load(Ordering::Relaxed) {
        let parts: Vec<(i32, i64)> = pos.next.iter().map(|(&p, &o)| (p, o)).collect();
        let mut got_any = false;
        for &(n, from) in &parts {
            if exit && pos.at_end.get(&n).copied().unwrap_or(false) {
                continue;
            }
            let want = max.map_or(500, |m| (m - count).min(500)) as u32;
            let wait = if last_empty {
                (400 / parts.len().max(1)).max(20) as u32
            } else {
                0
            };
            let f = conn
                .client
                .fetch(topic, n, from, want, 1 << 20, wait)
                .map_err(|e| conn.fail(e))?;
            let mut next = from;
            for m in &f.messages {
                if m.offset < next {
                    continue;
                }
                let origin = Origin::Topic {
                    topic,
                    partition: n,
                    offset: m.offset,
                };
                printer.print(origin, &m.message)?;
                next = m.offset + 1;
                count += 1;
                got_any = true;
                if max.is_some_and(|m| count >= m) {
                    pos.next.insert(n, next);
                    break 'outer;
                }
            }
            pos.next.insert(n, next);
            pos.at_end.insert(n, next >= f.high_watermark);
        }
        printer.flush()?;
        if exit
            && pos
                .next
                .keys()
                .all(|n| pos.at_end.get(n).copied().unwrap_or(false))
        {
            break;
        }
        last_empty = !got_any;
        if let (Some(g), Some((member_id, generation))) = (&group, &mut member) {
            if commit_live && pos.next != committed {
                let me = Some((member_id.as_str(), *generation));
                match commit(&mut conn, g, topic, &pos, me) {
                    Ok(()) => committed = pos.next.clone(),
                    // A rebalance took the partitions away: the next heartbeat rejoins, and
                    // what is not committed now is committed after leaving, at the end.
                    Err(e)
                        if matches!(
                            e.code(),
                            Some(
                                code::UNKNOWN_MEMBER
                                    | code::ILLEGAL_GENERATION
                                    | code::REBALANCE_IN_PROGRESS
                            )
                        ) =>
                    {
                        commit_live = false;
                    }
                    Err(e) => return Err(conn.fail(e)),
                }
            }
            if last_heartbeat.elapsed() >= Duration::from_secs(2) {
                last_heartbeat = Instant::now();
                match conn.client.heartbeat(g, member_id, *generation) {
                    Ok(()) => {}
                    Err(e) if e.code() == Some(code::REBALANCE_IN_PROGRESS) => {
                        let ok = conn
                            .client
                            .subscribe(g, &[topic.to_owned()], Some(member_id))
                            .map_err(|e| conn.fail(e))?;
                        pos.next.clear();
                        pos.at_end.clear();
                        assign(&mut pos, &ok.assignments, topic, start);
                        committed = pos.next.clone();
                        *member_id = ok.member_id;
                        *generation = ok.generation;
                    }
                    Err(e) => return Err(conn.fail(e)),
                }
            }
        }
    }
    printer.flush()?;
    if let (Some(g), Some((member_id, generation))) = (&group, &member) {
        let mut done = pos.next == committed;
        if !done && commit_live {
            let me = Some((member_id.as_str(), *generation));
            done = commit(&mut conn, g, topic, &pos, me).is_ok();
        }
        conn.client.leave(g, member_id).map_err(|e| conn.fail(e))?;
        if !done {
            commit(&mut conn, g, topic, &pos, None).map_err(|e| conn.fail(e))?;
        }
    }
    Ok(())
}

fn assign(
    pos: &mut Positions,
    assignments: &[PartitionOffset],
    topic: &str,
    start: impl Fn(i32) -> i64,
) {
    for a in assignments.iter().filter(|a| a.topic == topic) {
        let from = if a.offset >= 0 {
            a.offset
        } else {
            start(a.partition)
        };
        pos.next.insert(a.partition, from);
    }
}

fn commit(
    conn: &mut Conn,
    group: &str,
    topic: &str,
    pos: &Positions,
    member: Option<(&str, i32)>,
) -> Result<(), ClientError> {
    let offsets = pos
        .next
        .iter()
        .map(|(&partition, &offset)| PartitionOffset {
            topic: topic.to_owned(),
            partition,
            offset,
        })
        .collect();
    conn.client.commit(group, offsets, member)
}
