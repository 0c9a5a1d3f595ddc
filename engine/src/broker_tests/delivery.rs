use super::*;
use crate::BrokerError;

fn fill(e: &mut Engine, q: &str, bodies: &[&str]) {
    for b in bodies {
        publish(e, 0, msg("", q, b));
    }
}

#[test]
fn round_robin_with_per_consumer_prefetch() {
    let mut e = engine();
    queue(&mut e, "q", vec![]);
    e.basic_qos(1, 1, 2, false);
    consume(&mut e, 1, 1, "q", "a");
    consume(&mut e, 1, 1, "q", "b");
    fill(&mut e, "q", &["1", "2", "3", "4", "5", "6"]);
    let d = deliveries(&mut e);
    let got: Vec<(&str, u64, &str)> = d.iter().map(|d| (&*d.2, d.3, &*d.5)).collect();
    assert_eq!(
        got,
        [("a", 1, "1"), ("b", 2, "2"), ("a", 3, "3"), ("b", 4, "4")]
    );
    e.basic_ack(1, 1, 3, true).unwrap();
    let got: Vec<(String, String)> = deliveries(&mut e).into_iter().map(|d| (d.2, d.5)).collect();
    assert_eq!(got, [("a".into(), "5".into()), ("b".into(), "6".into())]);
}

#[test]
fn global_prefetch_limits_the_channel() {
    let mut e = engine();
    queue(&mut e, "q", vec![]);
    e.basic_qos(1, 1, 3, true);
    consume(&mut e, 1, 1, "q", "a");
    consume(&mut e, 1, 1, "q", "b");
    fill(&mut e, "q", &["1", "2", "3", "4", "5"]);
    assert_eq!(bodies(&mut e), ["1", "2", "3"]);
    e.basic_ack(1, 1, 1, false).unwrap();
    assert_eq!(bodies(&mut e), ["4"]);
    e.basic_qos(1, 1, 0, true);
    assert_eq!(bodies(&mut e), ["5"]);
}

#[test]
fn nack_requeue_and_reject_with_redelivered_flags() {
    let mut e = engine();
    queue(&mut e, "q", vec![]);
    e.basic_qos(1, 1, 3, false);
    consume(&mut e, 1, 1, "q", "c");
    fill(&mut e, "q", &["1", "2", "3"]);
    assert_eq!(deliveries(&mut e).len(), 3);
    e.basic_nack(0, 0, 1, 1, 2, true, true).unwrap();
    let d = deliveries(&mut e);
    let got: Vec<(u64, bool, &str)> = d.iter().map(|d| (d.3, d.4, &*d.5)).collect();
    assert_eq!(got, [(4, true, "1"), (5, true, "2")]);
    e.basic_reject(0, 0, 1, 1, 3, false).unwrap();
    assert_eq!(deliveries(&mut e), []);
    let err = e.basic_ack(1, 1, 3, false).unwrap_err();
    assert_eq!(err.to_string(), "unknown delivery tag 3");
    assert!(matches!(err, BrokerError::PreconditionFailed(_)));
    e.basic_ack(1, 1, 0, true).unwrap();
    assert_eq!(e.queued_bytes(), 0);
}

#[test]
fn basic_get_counts_and_shares_tags() {
    let mut e = engine();
    queue(&mut e, "q", vec![]);
    fill(&mut e, "q", &["1", "2"]);
    let g = e.basic_get(0, 1, 1, V, "q", false).unwrap().unwrap();
    assert_eq!(
        (g.delivery_tag, g.message_count, g.redelivered),
        (1, 1, false)
    );
    e.basic_reject(0, 0, 1, 1, 1, true).unwrap();
    let g = e.basic_get(0, 1, 1, V, "q", false).unwrap().unwrap();
    assert_eq!(
        (g.delivery_tag, g.message_count, g.redelivered),
        (2, 1, true)
    );
    assert_eq!(&g.message.body[..], b"1");
    let g = e.basic_get(0, 1, 1, V, "q", true).unwrap().unwrap();
    assert_eq!((g.delivery_tag, g.message_count), (3, 0));
    assert!(e.basic_get(0, 1, 1, V, "q", true).unwrap().is_none());
    let err = e.basic_get(0, 1, 1, V, "nope", true).unwrap_err();
    assert_eq!(err.to_string(), "no queue 'nope' in vhost '/'");
}

#[test]
fn channel_close_requeues_in_original_order() {
    let mut e = engine();
    queue(&mut e, "q", vec![]);
    fill(&mut e, "q", &["1", "2", "3", "4"]);
    for _ in 0..3 {
        e.basic_get(0, 1, 1, V, "q", false).unwrap();
    }
    e.basic_ack(1, 1, 2, false).unwrap();
    e.channel_close(0, 1, 1);
    let got: Vec<(bool, String)> =
        std::iter::from_fn(|| e.basic_get(0, 2, 1, V, "q", true).unwrap())
            .map(|g| {
                (
                    g.redelivered,
                    String::from_utf8_lossy(&g.message.body).into_owned(),
                )
            })
            .collect();
    assert_eq!(
        got,
        [(true, "1".into()), (true, "3".into()), (false, "4".into())]
    );
}

#[test]
fn recover_requeues_unacked() {
    let mut e = engine();
    queue(&mut e, "q", vec![]);
    consume(&mut e, 1, 1, "q", "c");
    fill(&mut e, "q", &["1"]);
    assert!(!deliveries(&mut e)[0].4);
    e.basic_recover(0, 1, 1).unwrap();
    let d = deliveries(&mut e);
    assert_eq!((d[0].3, d[0].4, &*d[0].5), (2, true, "1"));
}

#[test]
fn priorities_deliver_highest_first() {
    let mut e = engine();
    queue(&mut e, "q", t(&[("x-max-priority", Value::I32(5))]));
    for (b, p) in [("a", 1), ("b", 9), ("c", 0), ("d", 5), ("e", 1)] {
        let props = MessageProps {
            priority: Some(p),
            ..Default::default()
        };
        publish(&mut e, 0, with_props(msg("", "q", b), props));
    }
    assert_eq!(drain(&mut e, "q", 0), ["b", "d", "a", "e", "c"]);
}

#[test]
fn single_active_consumer_fails_over() {
    let mut e = engine();
    queue(
        &mut e,
        "q",
        t(&[("x-single-active-consumer", Value::Bool(true))]),
    );
    consume(&mut e, 1, 1, "q", "a");
    consume(&mut e, 2, 1, "q", "b");
    fill(&mut e, "q", &["1", "2"]);
    let d = deliveries(&mut e);
    assert!(d.iter().all(|d| d.2 == "a"), "{d:?}");
    e.basic_cancel(1, 1, "a").unwrap();
    fill(&mut e, "q", &["3"]);
    let d = deliveries(&mut e);
    assert_eq!((d[0].0, &*d[0].2, &*d[0].5), (2, "b", "3"));
    e.channel_close(0, 1, 1);
    let d = deliveries(&mut e);
    assert_eq!(d.iter().map(|d| &*d.5).collect::<Vec<_>>(), ["1", "2"]);
    assert!(d.iter().all(|d| d.2 == "b" && d.4));
}

#[test]
fn back_pressure_holds_deliveries() {
    let mut e = engine();
    queue(&mut e, "q", vec![]);
    consume(&mut e, 1, 1, "q", "c");
    e.set_conn_writable(1, false);
    fill(&mut e, "q", &["1", "2"]);
    assert_eq!(deliveries(&mut e), []);
    assert_eq!(e.queued_bytes(), 2);
    e.set_conn_writable(1, true);
    assert_eq!(bodies(&mut e), ["1", "2"]);
    assert_eq!(e.queued_bytes(), 2, "unacked bytes count too");
    e.basic_ack(1, 1, 2, true).unwrap();
    assert_eq!(e.queued_bytes(), 0);
}

#[test]
fn dispatch_is_capped_per_call_and_continues_on_timeout() {
    let mut e = engine();
    queue(&mut e, "q", vec![]);
    for i in 0..1500 {
        publish(&mut e, 0, msg("", "q", &i.to_string()));
    }
    let c = Consume {
        queue: "q".into(),
        consumer_tag: "c".into(),
        no_ack: true,
        ..Consume::default()
    };
    e.basic_consume(0, 1, 1, V, c).unwrap();
    assert_eq!(deliveries(&mut e).len(), 1000);
    let due = e.poll_timeout().unwrap();
    e.handle_timeout(due);
    assert_eq!(deliveries(&mut e).len(), 500);
    assert_eq!(e.poll_timeout(), None);
}

#[test]
fn auto_delete_queue_and_cancel_notifications() {
    let mut e = engine();
    let d = QueueDeclare {
        name: "ad".into(),
        auto_delete: true,
        ..QueueDeclare::default()
    };
    e.queue_declare(0, 1, V, d).unwrap();
    consume(&mut e, 1, 1, "ad", "a");
    consume(&mut e, 1, 1, "ad", "b");
    e.basic_cancel(1, 1, "a").unwrap();
    assert!(e.basic_get(0, 1, 1, V, "ad", true).is_ok());
    e.basic_cancel(1, 1, "b").unwrap();
    assert!(matches!(
        e.basic_get(0, 1, 1, V, "ad", true),
        Err(BrokerError::NotFound(_))
    ));
    queue(&mut e, "q", vec![]);
    consume(&mut e, 3, 2, "q", "z");
    e.queue_delete(1, V, "q", false, false).unwrap();
    let out: Vec<_> = std::iter::from_fn(|| e.poll_output()).collect();
    assert!(
        matches!(&out[..], [Output::ConsumerCancelled { conn: 3, channel: 2, consumer_tag }] if consumer_tag == "z")
    );
}
