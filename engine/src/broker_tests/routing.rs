use super::*;
use crate::BrokerError;

fn routes(e: &mut Engine, exchange: &str, key: &str, queues: &[&str]) -> Vec<Vec<String>> {
    publish(e, 0, msg(exchange, key, "m"));
    queues.iter().map(|q| drain(e, q, 0)).collect()
}

#[test]
fn default_exchange_routes_by_queue_name() {
    let mut e = engine();
    queue(&mut e, "q", vec![]);
    assert!(publish(&mut e, 0, msg("", "q", "a")).routed);
    assert!(!publish(&mut e, 0, msg("", "other", "b")).routed);
    assert_eq!(drain(&mut e, "q", 0), ["a"]);
    let err = e.queue_bind(V, "q", "", "q", vec![], 1).unwrap_err();
    assert!(
        matches!(err, BrokerError::AccessRefused(ref s) if s == "operation not permitted on the default exchange")
    );
}

#[test]
fn direct_fanout_topic() {
    let mut e = engine();
    for q in ["q1", "q2"] {
        queue(&mut e, q, vec![]);
    }
    e.queue_bind(V, "q1", "amq.direct", "k1", vec![], 1)
        .unwrap();
    e.queue_bind(V, "q2", "amq.direct", "k2", vec![], 1)
        .unwrap();
    assert_eq!(
        routes(&mut e, "amq.direct", "k1", &["q1", "q2"]),
        [vec!["m"], vec![]]
    );
    e.queue_bind(V, "q1", "amq.fanout", "", vec![], 1).unwrap();
    e.queue_bind(V, "q2", "amq.fanout", "zzz", vec![], 1)
        .unwrap();
    assert_eq!(
        routes(&mut e, "amq.fanout", "any", &["q1", "q2"]),
        [vec!["m"], vec!["m"]]
    );
    e.queue_bind(V, "q1", "amq.topic", "a.#.b", vec![], 1)
        .unwrap();
    e.queue_bind(V, "q2", "amq.topic", "#", vec![], 1).unwrap();
    e.queue_bind(V, "q2", "amq.topic", "a.*", vec![], 1)
        .unwrap();
    assert_eq!(
        routes(&mut e, "amq.topic", "a.x.b", &["q1", "q2"]),
        [vec!["m"], vec!["m"]]
    );
    assert_eq!(
        routes(&mut e, "amq.topic", "", &["q1", "q2"]),
        [vec![], vec!["m"]]
    );
}

#[test]
fn headers_exchange() {
    let mut e = engine();
    queue(&mut e, "q", vec![]);
    let args = t(&[
        ("x-match", Value::str("any")),
        ("a", Value::I32(1)),
        ("b", Value::Void),
    ]);
    e.queue_bind(V, "q", "amq.headers", "", args, 1).unwrap();
    let hdr = |h: Table| {
        with_props(
            msg("amq.headers", "", "m"),
            MessageProps {
                headers: Some(h),
                ..Default::default()
            },
        )
    };
    assert!(publish(&mut e, 0, hdr(t(&[("b", Value::str("x"))]))).routed);
    assert!(publish(&mut e, 0, hdr(t(&[("a", Value::I64(1))]))).routed);
    assert!(!publish(&mut e, 0, hdr(t(&[("a", Value::I64(2))]))).routed);
    assert!(!publish(&mut e, 0, msg("amq.headers", "", "m")).routed);
}

#[test]
fn exchange_to_exchange_delivers_once_and_survives_cycles() {
    let mut e = engine();
    exchange(&mut e, "x1", "fanout", vec![]);
    exchange(&mut e, "x2", "fanout", vec![]);
    queue(&mut e, "q", vec![]);
    e.exchange_bind(V, "x2", "x1", "", vec![]).unwrap();
    e.exchange_bind(V, "x1", "x2", "", vec![]).unwrap();
    e.queue_bind(V, "q", "x1", "", vec![], 1).unwrap();
    e.queue_bind(V, "q", "x2", "", vec![], 1).unwrap();
    assert_eq!(routes(&mut e, "x2", "k", &["q"]), [vec!["m"]]);
    e.exchange_unbind(V, "x2", "x1", "", &vec![]).unwrap();
    e.queue_unbind(V, "q", "x2", "", &vec![], 1).unwrap();
    assert_eq!(routes(&mut e, "x2", "k", &["q"]), [vec!["m"]]);
}

#[test]
fn alternate_exchange_and_mandatory() {
    let mut e = engine();
    exchange(&mut e, "ae", "fanout", vec![]);
    exchange(
        &mut e,
        "x",
        "direct",
        t(&[("alternate-exchange", Value::str("ae"))]),
    );
    queue(&mut e, "q", vec![]);
    queue(&mut e, "unrouted", vec![]);
    e.queue_bind(V, "q", "x", "k", vec![], 1).unwrap();
    let o = publish(&mut e, 0, msg("x", "other", "m"));
    assert!(!o.routed, "the alternate exchange has no bindings yet");
    e.queue_bind(V, "unrouted", "ae", "", vec![], 1).unwrap();
    let o = publish(&mut e, 0, msg("x", "other", "m"));
    assert!(o.routed && o.accepted);
    assert_eq!(drain(&mut e, "unrouted", 0), ["m"]);
    assert_eq!(
        routes(&mut e, "x", "k", &["q", "unrouted"]),
        [vec!["m"], vec![]]
    );
}

#[test]
fn publish_errors() {
    let mut e = engine();
    let d = ExchangeDeclare {
        name: "i".into(),
        kind: "topic".into(),
        internal: true,
        ..Default::default()
    };
    e.exchange_declare(V, d).unwrap();
    let err = e.publish(0, 0, V, msg("i", "k", "m")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot publish to internal exchange 'i' in vhost '/'"
    );
    assert!(matches!(err, BrokerError::AccessRefused(_)));
    let err = e.publish(0, 0, V, msg("nope", "k", "m")).unwrap_err();
    assert_eq!(err.to_string(), "no exchange 'nope' in vhost '/'");
    let p = with_props(
        msg("", "k", "m"),
        MessageProps {
            expiration: Some("-5".into()),
            ..Default::default()
        },
    );
    let err = e.publish(0, 0, V, p).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid expiration '-5': {value_negative,-5}"
    );
}

#[test]
fn auto_delete_exchange_goes_with_its_last_binding() {
    let mut e = engine();
    let d = ExchangeDeclare {
        name: "ad".into(),
        kind: "fanout".into(),
        auto_delete: true,
        ..Default::default()
    };
    e.exchange_declare(V, d.clone()).unwrap();
    queue(&mut e, "q1", vec![]);
    queue(&mut e, "q2", vec![]);
    e.queue_bind(V, "q1", "ad", "", vec![], 1).unwrap();
    e.queue_bind(V, "q2", "ad", "", vec![], 1).unwrap();
    e.queue_unbind(V, "q1", "ad", "", &vec![], 1).unwrap();
    assert!(
        e.exchange_declare(
            V,
            ExchangeDeclare {
                passive: true,
                ..d.clone()
            }
        )
        .is_ok()
    );
    e.queue_delete(1, V, "q2", false, false).unwrap();
    let err = e
        .exchange_declare(V, ExchangeDeclare { passive: true, ..d })
        .unwrap_err();
    assert_eq!(err.to_string(), "no exchange 'ad' in vhost '/'");
}
