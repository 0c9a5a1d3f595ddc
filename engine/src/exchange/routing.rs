//! Routing: which bindings of an exchange match a message, following exchange-to-exchange
//! bindings and alternate exchanges.

use std::collections::{BTreeMap, BTreeSet};

use super::{Binding, Destination, Exchange, ExchangeKind};
use crate::value::{Table, Value, table_get};

/// Splits a routing key into words as RabbitMQ does: `""` has no words, `"a."` has two.
fn words(key: &str) -> Vec<&str> {
    if key.is_empty() {
        Vec::new()
    } else {
        key.split('.').collect()
    }
}

/// Whether a topic binding key matches a routing key (`*` one word, `#` zero or more).
pub(crate) fn topic_matches(pattern: &str, key: &str) -> bool {
    let p = words(pattern);
    let k = words(key);
    // m[j] = the first i pattern words match the first j key words.
    let mut m = vec![false; k.len() + 1];
    m[0] = true;
    for word in &p {
        let mut next = vec![false; k.len() + 1];
        for j in 0..=k.len() {
            next[j] = if *word == "#" {
                m[j] || (j > 0 && next[j - 1])
            } else {
                j > 0 && m[j - 1] && (*word == "*" || *word == k[j - 1])
            };
        }
        m = next;
    }
    m[k.len()]
}

/// Whether a headers binding matches the message headers (`x-match` all/any, with or
/// without `-with-x`).
pub(crate) fn headers_match(binding: &Table, headers: &Table) -> bool {
    let mode = table_get(binding, "x-match")
        .and_then(Value::as_str)
        .unwrap_or("all");
    let (any, with_x) = match mode {
        "any" => (true, false),
        "any-with-x" => (true, true),
        "all-with-x" => (false, true),
        _ => (false, false),
    };
    let mut considered = binding
        .iter()
        .filter(|(k, _)| k != "x-match" && (with_x || !k.starts_with("x-")));
    let one = |(k, v): &(String, Value)| match table_get(headers, k) {
        None => false,
        Some(h) => *v == Value::Void || v.equivalent(h),
    };
    if any {
        considered.any(one)
    } else {
        considered.all(one)
    }
}

fn binding_matches(kind: ExchangeKind, b: &Binding, key: &str, headers: &Table) -> bool {
    match kind {
        ExchangeKind::Direct => b.routing_key == key,
        ExchangeKind::Fanout => true,
        ExchangeKind::Topic => topic_matches(&b.routing_key, key),
        ExchangeKind::Headers => headers_match(&b.arguments, headers),
    }
}

/// Queues a message published to `start` reaches, in name order. Each exchange is visited
/// once (cycles end there); an exchange that routes nowhere hands the message to its
/// alternate exchange. The default exchange (`""`) routes to the queue named by the key.
pub(crate) fn route(
    exchanges: &BTreeMap<String, Exchange>,
    queue_exists: impl Fn(&str) -> bool,
    start: &str,
    key: &str,
    headers: &Table,
) -> BTreeSet<String> {
    let mut queues = BTreeSet::new();
    if start.is_empty() {
        if queue_exists(key) {
            queues.insert(key.to_owned());
        }
        return queues;
    }
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    let mut work = vec![start];
    while let Some(name) = work.pop() {
        if !seen.insert(name) {
            continue;
        }
        let Some(x) = exchanges.get(name) else {
            continue;
        };
        let mut matched = false;
        for b in x
            .bindings
            .iter()
            .filter(|b| binding_matches(x.kind, b, key, headers))
        {
            matched = true;
            match &b.destination {
                Destination::Queue(q) => {
                    queues.insert(q.clone());
                }
                Destination::Exchange(e) => work.push(e),
            }
        }
        if let (false, Some(ae)) = (matched, x.alternate()) {
            work.push(ae);
        }
    }
    queues
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_patterns() {
        assert!(topic_matches("#", ""));
        assert!(topic_matches("#", "a.b.c"));
        assert!(topic_matches("a.#.b", "a.b"));
        assert!(topic_matches("a.#.b", "a.x.y.b"));
        assert!(!topic_matches("a.#.b", "a.x.c"));
        assert!(topic_matches("*.b", "a.b"));
        assert!(!topic_matches("*", ""));
        assert!(topic_matches("*", "a"));
        assert!(!topic_matches("*", "a.b"));
        assert!(topic_matches("a.*", "a."));
        assert!(topic_matches("*.a", ".a"));
        assert!(topic_matches("", ""));
        assert!(!topic_matches("", "a"));
        assert!(topic_matches("#.#", "a"));
        assert!(topic_matches("a.#", "a"));
        assert!(!topic_matches("a.*.#", "a"));
        assert!(topic_matches("a.*.#", "a.b.c.d"));
    }

    fn t(kv: &[(&str, Value)]) -> Table {
        kv.iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    #[test]
    fn headers_all_and_any() {
        let h = t(&[
            ("a", Value::I32(1)),
            ("b", Value::str("x")),
            ("x-k", Value::I8(1)),
        ]);
        let all = t(&[
            ("x-match", Value::str("all")),
            ("a", Value::I64(1)),
            ("b", Value::str("x")),
        ]);
        assert!(headers_match(&all, &h));
        let all_miss = t(&[("a", Value::I64(1)), ("c", Value::Void)]);
        assert!(!headers_match(&all_miss, &h));
        let any = t(&[
            ("x-match", Value::str("any")),
            ("a", Value::I64(2)),
            ("b", Value::Void),
        ]);
        assert!(headers_match(&any, &h));
        let any_none = t(&[("x-match", Value::str("any")), ("c", Value::I64(2))]);
        assert!(!headers_match(&any_none, &h));
        assert!(headers_match(&t(&[]), &h));
        assert!(!headers_match(&t(&[("x-match", Value::str("any"))]), &h));
    }

    #[test]
    fn headers_x_arguments() {
        let h = t(&[("x-k", Value::I8(1))]);
        let plain = t(&[("x-match", Value::str("all")), ("x-k", Value::I8(2))]);
        assert!(
            headers_match(&plain, &h),
            "x- keys are ignored without -with-x"
        );
        let with_x = t(&[("x-match", Value::str("all-with-x")), ("x-k", Value::I8(2))]);
        assert!(!headers_match(&with_x, &h));
        let any_x = t(&[("x-match", Value::str("any-with-x")), ("x-k", Value::I8(1))]);
        assert!(headers_match(&any_x, &h));
    }
}
