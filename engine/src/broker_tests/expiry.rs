use super::*;
use crate::value::table_get;

fn dlx_setup(e: &mut Engine, args: Table) {
    exchange(e, "dlx", "fanout", vec![]);
    queue(e, "dead", vec![]);
    e.queue_bind(V, "dead", "dlx", "", vec![], 1).unwrap();
    let mut all = t(&[("x-dead-letter-exchange", Value::str("dlx"))]);
    all.extend(args);
    queue(e, "q", all);
}

fn get(e: &mut Engine, q: &str, now: u64) -> Option<std::sync::Arc<crate::Message>> {
    e.basic_get(now, 9, 9, V, q, true)
        .unwrap()
        .map(|g| g.message)
}

#[test]
fn ttl_expiry_dead_letters_with_exact_x_death() {
    let mut e = engine();
    dlx_setup(&mut e, t(&[("x-message-ttl", Value::I32(100))]));
    publish(&mut e, 10, msg("", "q", "m"));
    assert_eq!(e.poll_timeout(), Some(111));
    e.handle_timeout(111);
    let m = get(&mut e, "dead", 111).expect("dead-lettered by the timer");
    assert_eq!((m.exchange.as_str(), m.routing_key.as_str()), ("dlx", "q"));
    let h = m.props.headers.clone().unwrap();
    let death = Value::Table(t(&[
        ("count", Value::I64(1)),
        ("reason", Value::str("expired")),
        ("queue", Value::str("q")),
        ("time", Value::Timestamp(1_000)),
        ("exchange", Value::str("")),
        ("routing-keys", Value::Array(vec![Value::str("q")])),
    ]));
    assert_eq!(table_get(&h, "x-death"), Some(&Value::Array(vec![death])));
    assert_eq!(
        table_get(&h, "x-first-death-reason"),
        Some(&Value::str("expired"))
    );
    assert_eq!(table_get(&h, "x-first-death-queue"), Some(&Value::str("q")));
    assert_eq!(
        table_get(&h, "x-first-death-exchange"),
        Some(&Value::str(""))
    );
    assert_eq!(e.poll_timeout(), None);
}

#[test]
fn per_message_expiration_lower_wins_and_is_removed() {
    let mut e = engine();
    dlx_setup(&mut e, t(&[("x-message-ttl", Value::I32(1000))]));
    let props = MessageProps {
        expiration: Some("50".into()),
        ..Default::default()
    };
    publish(&mut e, 0, with_props(msg("", "q", "m"), props));
    assert!(get(&mut e, "dead", 50).is_none());
    e.handle_timeout(51);
    let m = get(&mut e, "dead", 51).unwrap();
    assert_eq!(m.props.expiration, None);
    let h = m.props.headers.clone().unwrap();
    let Some(Value::Array(d)) = table_get(&h, "x-death") else {
        panic!()
    };
    let Value::Table(d) = &d[0] else { panic!() };
    assert_eq!(table_get(d, "original-expiration"), Some(&Value::str("50")));
}

#[test]
fn ttl_zero_reaches_a_waiting_consumer_only() {
    let mut e = engine();
    queue(&mut e, "q", t(&[("x-message-ttl", Value::I32(0))]));
    publish(&mut e, 5, msg("", "q", "lost"));
    assert!(get(&mut e, "q", 6).is_none());
    consume(&mut e, 1, 1, "q", "c");
    publish(&mut e, 7, msg("", "q", "seen"));
    assert_eq!(bodies(&mut e), ["seen"]);
}

#[test]
fn max_length_drop_head_dead_letters() {
    let mut e = engine();
    dlx_setup(&mut e, t(&[("x-max-length", Value::I32(2))]));
    for b in ["1", "2", "3"] {
        assert!(publish(&mut e, 0, msg("", "q", b)).accepted);
    }
    assert_eq!(drain(&mut e, "q", 0), ["2", "3"]);
    let m = get(&mut e, "dead", 0).unwrap();
    assert_eq!(&m.body[..], b"1");
    let h = m.props.headers.clone().unwrap();
    assert_eq!(
        table_get(&h, "x-first-death-reason"),
        Some(&Value::str("maxlen"))
    );
}

#[test]
fn reject_publish_and_reject_publish_dlx() {
    let mut e = engine();
    let args = t(&[
        ("x-max-length-bytes", Value::I32(2)),
        ("x-overflow", Value::str("reject-publish")),
    ]);
    dlx_setup(&mut e, args);
    assert!(publish(&mut e, 0, msg("", "q", "12")).accepted);
    let o = publish(&mut e, 0, msg("", "q", "3"));
    assert!(o.routed && !o.accepted);
    assert_eq!(drain(&mut e, "q", 0), ["12"]);
    assert!(get(&mut e, "dead", 0).is_none());
    let args = t(&[
        ("x-dead-letter-exchange", Value::str("dlx")),
        ("x-max-length", Value::I32(1)),
        ("x-overflow", Value::str("reject-publish-dlx")),
    ]);
    queue(&mut e, "q2", args);
    publish(&mut e, 0, msg("", "q2", "a"));
    assert!(!publish(&mut e, 0, msg("", "q2", "b")).accepted);
    assert_eq!(drain(&mut e, "dead", 0), ["b"]);
    assert_eq!(drain(&mut e, "q2", 0), ["a"]);
}

#[test]
fn rejected_dead_letter_uses_dl_routing_key() {
    let mut e = engine();
    exchange(&mut e, "dlx", "direct", vec![]);
    queue(&mut e, "dead", vec![]);
    e.queue_bind(V, "dead", "dlx", "dl", vec![], 1).unwrap();
    let args = t(&[
        ("x-dead-letter-exchange", Value::str("dlx")),
        ("x-dead-letter-routing-key", Value::str("dl")),
    ]);
    queue(&mut e, "q", args);
    publish(&mut e, 0, msg("", "q", "m"));
    let g = e.basic_get(0, 1, 1, V, "q", false).unwrap().unwrap();
    e.basic_nack(0, 3_000, 1, 1, g.delivery_tag, false, false)
        .unwrap();
    let m = get(&mut e, "dead", 0).unwrap();
    assert_eq!(m.routing_key, "dl");
    let h = m.props.headers.clone().unwrap();
    assert_eq!(
        table_get(&h, "x-first-death-reason"),
        Some(&Value::str("rejected"))
    );
}

#[test]
fn dead_letter_cycles_are_dropped_unless_rejected() {
    let mut e = engine();
    let args = t(&[
        ("x-dead-letter-exchange", Value::str("")),
        ("x-message-ttl", Value::I32(10)),
    ]);
    queue(&mut e, "self", args);
    publish(&mut e, 0, msg("", "self", "m"));
    e.handle_timeout(11);
    assert!(
        get(&mut e, "self", 11).is_none(),
        "expired back into itself: a cycle"
    );
    let args = t(&[("x-dead-letter-exchange", Value::str(""))]);
    queue(&mut e, "rej", args);
    publish(&mut e, 0, msg("", "rej", "m"));
    let g = e.basic_get(0, 1, 1, V, "rej", false).unwrap().unwrap();
    e.basic_reject(0, 0, 1, 1, g.delivery_tag, false).unwrap();
    assert!(get(&mut e, "rej", 0).is_some(), "a rejection may cycle");
}

#[test]
fn x_expires_deletes_unused_queues() {
    let mut e = engine();
    let d = QueueDeclare {
        name: "q".into(),
        arguments: t(&[("x-expires", Value::I32(100))]),
        ..Default::default()
    };
    e.queue_declare(0, 1, V, d.clone()).unwrap();
    assert_eq!(e.poll_timeout(), Some(100));
    e.queue_declare(50, 1, V, d.clone()).unwrap();
    e.handle_timeout(100);
    consume(&mut e, 1, 1, "q", "c");
    assert_eq!(e.poll_timeout(), None);
    e.basic_cancel(1, 1, "c").unwrap();
    assert_eq!(e.poll_timeout(), Some(200), "counted from the last use");
    e.handle_timeout(199);
    assert!(e.basic_get(199, 1, 1, V, "q", true).is_ok());
    e.handle_timeout(299);
    let err = e
        .queue_declare(299, 1, V, QueueDeclare { passive: true, ..d })
        .unwrap_err();
    assert_eq!(err.to_string(), "no queue 'q' in vhost '/'");
}
