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
    out
}
