//! The admin HTTP listener: `/healthz`, `/readyz` and `/metrics` (Prometheus text format).

use std::fmt::Write as _;

use crate::broker::Broker;
use crate::conn::Conn;

/// Largest HTTP request accepted; admin requests are a request line and a few headers.
pub const REQUEST_BYTES_MAX: usize = 8 * 1024;

/// Answers one HTTP/1.x request once its header is complete, then closes.
pub fn drive(conn: &mut Conn, broker: &Broker) {
    if conn.close_after_flush {
        return;
    }
    let Some(end) = conn.rbuf.windows(4).position(|w| w == b"\r\n\r\n") else {
        if conn.rbuf.len() >= REQUEST_BYTES_MAX {
            reply(
                conn,
                "431 Request Header Fields Too Large",
                "text/plain",
                "too large\n",
            );
        }
        return;
    };
    let head = String::from_utf8_lossy(&conn.rbuf[..end]).into_owned();
    let mut words = head.lines().next().unwrap_or_default().split_whitespace();
    let (method, path) = (
        words.next().unwrap_or_default(),
        words.next().unwrap_or_default(),
    );
    match (method, path) {
        ("GET", "/healthz" | "/readyz") => reply(conn, "200 OK", "text/plain", "ok\n"),
        ("GET", "/metrics") => {
            let body = metrics(broker);
            reply(conn, "200 OK", "text/plain; version=0.0.4", &body);
        }
        ("GET", _) => reply(conn, "404 Not Found", "text/plain", "not found\n"),
        _ => reply(
            conn,
            "405 Method Not Allowed",
            "text/plain",
            "method not allowed\n",
        ),
    }
}

fn reply(conn: &mut Conn, status: &str, content_type: &str, body: &str) {
    let head = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n",
        body.len()
    );
    conn.wbuf.extend_from_slice(head.as_bytes());
    conn.wbuf.extend_from_slice(body.as_bytes());
    conn.close_after_flush = true;
}

fn metrics(broker: &Broker) -> String {
    let mut out = String::new();
    let topics = broker.engine.topics().count();
    let partitions: i64 = broker
        .engine
        .topics()
        .map(|t| i64::from(t.partitions))
        .sum();
    let _ = writeln!(out, "# HELP portask_requests_total Kafka requests served.");
    let _ = writeln!(out, "# TYPE portask_requests_total counter");
    let _ = writeln!(out, "portask_requests_total {}", broker.requests_total);
    let _ = writeln!(out, "# HELP portask_topics Topics.");
    let _ = writeln!(out, "# TYPE portask_topics gauge");
    let _ = writeln!(out, "portask_topics {topics}");
    let _ = writeln!(out, "# HELP portask_partitions Partitions of all topics.");
    let _ = writeln!(out, "# TYPE portask_partitions gauge");
    let _ = writeln!(out, "portask_partitions {partitions}");
    compression_metrics(&mut out, &broker.engine.compression_stats());
    out
}

fn compression_metrics(out: &mut String, s: &portask_engine::CompressionStats) {
    use portask_engine::{Algorithm, StoredCompression};
    let current = Algorithm::of(s.current);
    let level = match s.current {
        StoredCompression::Zstd { level } => level,
        _ => 0,
    };
    let _ = writeln!(
        out,
        "# HELP portask_compression_algorithm Algorithm of stored batches without an override (1: in use)."
    );
    let _ = writeln!(out, "# TYPE portask_compression_algorithm gauge");
    for a in Algorithm::ALL {
        let v = u8::from(a == current);
        let _ = writeln!(
            out,
            "portask_compression_algorithm{{algorithm=\"{}\"}} {v}",
            a.name()
        );
    }
    let gauges = [
        (
            "portask_compression_level",
            "zstd level in use (0: not zstd).",
            "gauge",
            level as u64,
        ),
        (
            "portask_compression_decisions_total",
            "Changes made by the adaptive compression controller.",
            "counter",
            s.decisions_total,
        ),
        (
            "portask_compression_batches_total",
            "Stored batches written.",
            "counter",
            s.batches_total,
        ),
        (
            "portask_compression_bytes_in_total",
            "Uncompressed bytes of the stored batches written.",
            "counter",
            s.bytes_in,
        ),
        (
            "portask_compression_bytes_out_total",
            "Stored bytes of those batches.",
            "counter",
            s.bytes_out,
        ),
        (
            "portask_compression_dictionaries_used_total",
            "Topic dictionaries trained and used.",
            "counter",
            s.dictionaries_used,
        ),
        (
            "portask_compression_dictionaries_rejected_total",
            "Topic dictionaries trained and dropped (too little gain).",
            "counter",
            s.dictionaries_rejected,
        ),
    ];
    for (name, help, kind, value) in gauges {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        let _ = writeln!(out, "{name} {value}");
    }
}
