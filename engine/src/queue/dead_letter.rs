//! Dead-lettering: the copy of a message republished to a dead-letter exchange, with the
//! `x-death` header RabbitMQ writes, and cycle detection.

use crate::WallMillis;
use crate::message::Message;
use crate::value::{Table, Value, table_get, table_set};

/// Why a message was dead-lettered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason {
    /// basic.nack / basic.reject with requeue=false.
    Rejected,
    /// Its TTL passed.
    Expired,
    /// Dropped or refused by a length limit.
    MaxLen,
}

impl Reason {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Rejected => "rejected",
            Self::Expired => "expired",
            Self::MaxLen => "maxlen",
        }
    }
}

fn entry_is(v: &Value, queue: &str, reason: &str) -> bool {
    let Value::Table(t) = v else { return false };
    let s = |k| table_get(t, k).and_then(Value::as_str);
    s("queue") == Some(queue) && s("reason") == Some(reason)
}

fn new_entry(m: &Message, queue: &str, reason: Reason, wall: WallMillis) -> Value {
    let keys = vec![Value::str(&m.routing_key)];
    let mut t: Table = vec![
        ("count".into(), Value::I64(1)),
        ("reason".into(), Value::str(reason.as_str())),
        ("queue".into(), Value::str(queue)),
        ("time".into(), Value::Timestamp((wall.max(0) / 1000) as u64)),
        ("exchange".into(), Value::str(&m.exchange)),
        ("routing-keys".into(), Value::Array(keys)),
    ];
    if let Some(exp) = &m.props.expiration {
        t.push(("original-expiration".into(), Value::str(exp)));
    }
    Value::Table(t)
}

/// `x-death` with this death recorded: an entry for the same queue and reason counts up and
/// moves to the front; otherwise a new entry goes first.
fn updated_deaths(
    old: Option<&Value>,
    m: &Message,
    queue: &str,
    reason: Reason,
    wall: WallMillis,
) -> Vec<Value> {
    let mut deaths = match old {
        Some(Value::Array(a)) => a.clone(),
        _ => Vec::new(),
    };
    let found = deaths
        .iter()
        .position(|d| entry_is(d, queue, reason.as_str()));
    let entry = match found.map(|i| deaths.remove(i)) {
        Some(Value::Table(mut t)) => {
            let n = table_get(&t, "count").and_then(Value::as_int).unwrap_or(0);
            table_set(&mut t, "count", Value::I64(n + 1));
            Value::Table(t)
        }
        _ => new_entry(m, queue, reason, wall),
    };
    deaths.insert(0, entry);
    deaths
}

/// The message as republished to `dlx` after dying in `queue`.
pub(crate) fn dead_lettered(
    m: &Message,
    queue: &str,
    reason: Reason,
    wall: WallMillis,
    dlx: &str,
    dl_routing_key: Option<&str>,
) -> Message {
    let mut headers = m.props.headers.clone().unwrap_or_default();
    let deaths = updated_deaths(table_get(&headers, "x-death"), m, queue, reason, wall);
    table_set(&mut headers, "x-death", Value::Array(deaths));
    for (k, v) in [
        ("x-first-death-reason", reason.as_str()),
        ("x-first-death-queue", queue),
        ("x-first-death-exchange", &m.exchange),
    ] {
        if table_get(&headers, k).is_none() {
            headers.push((k.to_owned(), Value::str(v)));
        }
    }
    let mut props = m.props.clone();
    props.headers = Some(headers);
    props.expiration = None;
    Message {
        exchange: dlx.to_owned(),
        routing_key: dl_routing_key.unwrap_or(&m.routing_key).to_owned(),
        props,
        body: m.body.clone(),
    }
}

/// RabbitMQ drops a dead-lettered message headed for a queue it already died in, unless a
/// rejection happened on the way since (a cycle with a rejection is a client's choice).
pub(crate) fn is_cycle(target: &str, m: &Message) -> bool {
    let Some(Value::Array(deaths)) = m
        .props
        .headers
        .as_ref()
        .and_then(|h| table_get(h, "x-death"))
    else {
        return false;
    };
    let queue_of = |d: &Value| match d {
        Value::Table(t) => table_get(t, "queue")
            .and_then(Value::as_str)
            .map(str::to_owned),
        _ => None,
    };
    let Some(at) = deaths
        .iter()
        .position(|d| queue_of(d).as_deref() == Some(target))
    else {
        return false;
    };
    deaths[..=at].iter().all(|d| match d {
        Value::Table(t) => table_get(t, "reason").and_then(Value::as_str) != Some("rejected"),
        _ => true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::MessageProps;

    fn msg() -> Message {
        Message {
            exchange: "ex".into(),
            routing_key: "rk".into(),
            props: MessageProps {
                expiration: Some("500".into()),
                ..MessageProps::default()
            },
            body: "b".into(),
        }
    }

    #[test]
    fn x_death_counts_and_moves_first() {
        let m1 = dead_lettered(&msg(), "q1", Reason::Expired, 5_000, "dlx", None);
        assert_eq!(m1.props.expiration, None);
        assert_eq!(m1.exchange, "dlx");
        let m2 = dead_lettered(&m1, "q2", Reason::Rejected, 6_000, "dlx", Some("k2"));
        let m3 = dead_lettered(&m2, "q1", Reason::Expired, 7_000, "dlx", None);
        let h = m3.props.headers.unwrap();
        let Some(Value::Array(d)) = table_get(&h, "x-death") else {
            panic!()
        };
        assert_eq!(d.len(), 2);
        let Value::Table(first) = &d[0] else { panic!() };
        assert_eq!(table_get(first, "queue"), Some(&Value::str("q1")));
        assert_eq!(table_get(first, "count"), Some(&Value::I64(2)));
        assert_eq!(table_get(first, "time"), Some(&Value::Timestamp(5)));
        assert_eq!(
            table_get(first, "original-expiration"),
            Some(&Value::str("500"))
        );
        assert_eq!(
            table_get(&h, "x-first-death-queue"),
            Some(&Value::str("q1"))
        );
        assert_eq!(
            table_get(&h, "x-first-death-exchange"),
            Some(&Value::str("ex"))
        );
    }

    #[test]
    fn cycles_without_rejection() {
        let m1 = dead_lettered(&msg(), "q1", Reason::Expired, 0, "dlx", None);
        assert!(is_cycle("q1", &m1));
        assert!(!is_cycle("q2", &m1));
        let m2 = dead_lettered(&m1, "q2", Reason::Rejected, 0, "dlx", None);
        assert!(!is_cycle("q1", &m2));
    }
}
