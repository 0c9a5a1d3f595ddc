use super::*;

fn persistent(q: &str, body: &str) -> Publish {
    let props = MessageProps {
        delivery_mode: Some(2),
        ..Default::default()
    };
    with_props(msg("", q, body), props)
}

#[test]
fn durable_queue_keeps_persistent_messages_across_restart() {
    let storage = MemStorage::new();
    let mut e = engine_on(&storage);
    durable_queue(&mut e, "d");
    queue(&mut e, "t", vec![]);
    let x = ExchangeDeclare {
        name: "x".into(),
        kind: "topic".into(),
        durable: true,
        ..Default::default()
    };
    e.exchange_declare(V, x).unwrap();
    e.queue_bind(V, "d", "x", "a.#", vec![], 1).unwrap();
    e.queue_bind(V, "t", "x", "a.#", vec![], 1).unwrap();
    publish(&mut e, 0, persistent("d", "p1"));
    publish(&mut e, 0, msg("", "d", "transient"));
    publish(&mut e, 0, persistent("d", "p2"));
    publish(&mut e, 0, persistent("d", "p3"));
    let g = e.basic_get(0, 1, 1, V, "d", false).unwrap().unwrap();
    e.basic_ack(1, 1, g.delivery_tag, false).unwrap();
    e.basic_get(0, 1, 1, V, "d", false).unwrap().unwrap();
    drop(e);

    let mut e = engine_on(&storage);
    assert!(
        e.queue_declare(
            0,
            1,
            V,
            QueueDeclare {
                name: "t".into(),
                passive: true,
                ..Default::default()
            }
        )
        .is_err()
    );
    let all: Vec<(bool, String)> =
        std::iter::from_fn(|| e.basic_get(0, 1, 1, V, "d", true).unwrap())
            .map(|g| {
                (
                    g.redelivered,
                    String::from_utf8_lossy(&g.message.body).into_owned(),
                )
            })
            .collect();
    assert_eq!(all, [(true, "p2".into()), (true, "p3".into())]);
    let o = publish(&mut e, 0, msg("x", "a.b", "routed"));
    assert!(o.routed, "the durable binding came back");
    assert_eq!(drain(&mut e, "d", 0), ["routed"]);
}

#[test]
fn storage_failure_fails_the_publish() {
    let storage = MemStorage::new();
    let mut e = engine_on(&storage);
    durable_queue(&mut e, "d");
    storage.set_fail_writes(true);
    let err = e.publish(0, 0, V, persistent("d", "p")).unwrap_err();
    assert!(err.is_connection_error());
    assert!(publish(&mut e, 0, msg("", "d", "transient")).accepted);
    storage.set_fail_writes(false);
    assert_eq!(drain(&mut e, "d", 0), ["transient"]);
}

#[test]
fn deleted_and_exclusive_queues_do_not_come_back() {
    let storage = MemStorage::new();
    let mut e = engine_on(&storage);
    durable_queue(&mut e, "gone");
    publish(&mut e, 0, persistent("gone", "p"));
    e.queue_delete(1, V, "gone", false, false).unwrap();
    let d = QueueDeclare {
        name: "ex".into(),
        durable: true,
        exclusive: true,
        ..Default::default()
    };
    e.queue_declare(0, 1, V, d).unwrap();
    drop(e);
    let mut e = engine_on(&storage);
    for q in ["gone", "ex"] {
        let d = QueueDeclare {
            name: q.into(),
            passive: true,
            ..Default::default()
        };
        assert!(e.queue_declare(0, 1, V, d).is_err(), "{q}");
    }
}
