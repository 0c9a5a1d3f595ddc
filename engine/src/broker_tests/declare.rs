use super::*;
use crate::BrokerError;

fn qd(name: &str) -> QueueDeclare {
    QueueDeclare {
        name: name.into(),
        ..QueueDeclare::default()
    }
}

#[test]
fn exchange_equivalence_texts() {
    let mut e = engine();
    exchange(&mut e, "x", "direct", vec![]);
    let d = ExchangeDeclare {
        name: "x".into(),
        kind: "fanout".into(),
        ..Default::default()
    };
    let err = e.exchange_declare(V, d.clone()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "inequivalent arg 'type' for exchange 'x' in vhost '/': received 'fanout' but current is 'direct'"
    );
    let d = ExchangeDeclare {
        kind: "direct".into(),
        durable: true,
        ..d
    };
    let err = e.exchange_declare(V, d.clone()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "inequivalent arg 'durable' for exchange 'x' in vhost '/': received 'true' but current is 'false'"
    );
    let d = ExchangeDeclare {
        kind: "x-foo".into(),
        ..d
    };
    let err = e.exchange_declare(V, d).unwrap_err();
    assert_eq!(err.to_string(), "unknown exchange type 'x-foo'");
    assert!(err.is_connection_error());
}

#[test]
fn queue_equivalence_texts() {
    let mut e = engine();
    let d = QueueDeclare {
        durable: true,
        arguments: t(&[("x-max-length", Value::I32(5))]),
        ..qd("q")
    };
    e.queue_declare(0, 1, V, d.clone()).unwrap();
    let err = e
        .queue_declare(
            0,
            1,
            V,
            QueueDeclare {
                durable: false,
                ..d.clone()
            },
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "inequivalent arg 'durable' for queue 'q' in vhost '/': received 'false' but current is 'true'"
    );
    let other = QueueDeclare {
        arguments: t(&[("x-max-length", Value::I64(6))]),
        ..d.clone()
    };
    let err = e.queue_declare(0, 1, V, other).unwrap_err();
    assert_eq!(
        err.to_string(),
        "inequivalent arg 'x-max-length' for queue 'q' in vhost '/': received '6' but current is '5'"
    );
    let other = QueueDeclare {
        arguments: vec![],
        ..d.clone()
    };
    let err = e.queue_declare(0, 1, V, other).unwrap_err();
    assert!(matches!(err, BrokerError::PreconditionFailed(_)));
    assert_eq!(
        err.to_string(),
        "inequivalent arg 'x-max-length' for queue 'q' in vhost '/': received none but current \
         is the value '5' of type 'signedint'"
    );
    let same = QueueDeclare {
        arguments: t(&[("x-max-length", Value::I64(5)), ("x-other", Value::Void)]),
        ..d
    };
    assert!(
        e.queue_declare(0, 1, V, same).is_ok(),
        "other arguments are not compared"
    );
}

#[test]
fn reserved_names() {
    let mut e = engine();
    let err = e.queue_declare(0, 1, V, qd("amq.x")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "queue name 'amq.x' contains reserved prefix 'amq.*'"
    );
    assert!(matches!(err, BrokerError::AccessRefused(_)));
    let d = ExchangeDeclare {
        name: "amq.x".into(),
        kind: "direct".into(),
        ..Default::default()
    };
    let err = e.exchange_declare(V, d).unwrap_err();
    assert_eq!(
        err.to_string(),
        "exchange name 'amq.x' contains reserved prefix 'amq.*'"
    );
    let d = ExchangeDeclare {
        name: "amq.direct".into(),
        kind: "direct".into(),
        durable: true,
        ..Default::default()
    };
    assert!(
        e.exchange_declare(V, d).is_ok(),
        "an equivalent redeclare of amq.direct is fine"
    );
    let passive = ExchangeDeclare {
        name: "amq.topic".into(),
        kind: "topic".into(),
        passive: true,
        ..Default::default()
    };
    assert!(e.exchange_declare(V, passive).is_ok());
    assert!(matches!(
        e.exchange_delete(V, "amq.direct", false),
        Err(BrokerError::AccessRefused(_))
    ));
    assert!(matches!(
        e.exchange_delete(V, "", false),
        Err(BrokerError::AccessRefused(_))
    ));
    assert!(e.exchange_delete(V, "missing", false).is_ok());
}

#[test]
fn exclusivity_is_checked_first() {
    let mut e = engine();
    let d = QueueDeclare {
        exclusive: true,
        ..qd("ex")
    };
    e.queue_declare(0, 1, V, d.clone()).unwrap();
    // Another connection, with a durable flag that differs too: locked wins.
    let err = e
        .queue_declare(
            0,
            2,
            V,
            QueueDeclare {
                durable: true,
                ..d.clone()
            },
        )
        .unwrap_err();
    assert!(matches!(err, BrokerError::ResourceLocked(_)));
    assert!(
        err.to_string()
            .starts_with("cannot obtain exclusive access to locked queue 'ex' in vhost '/'.")
    );
    let passive = QueueDeclare {
        passive: true,
        ..qd("ex")
    };
    assert!(matches!(
        e.queue_declare(0, 2, V, passive.clone()),
        Err(BrokerError::ResourceLocked(_))
    ));
    assert!(e.queue_declare(0, 1, V, passive).is_ok());
    let c = Consume {
        queue: "ex".into(),
        ..Consume::default()
    };
    assert!(matches!(
        e.basic_consume(0, 2, 1, V, c),
        Err(BrokerError::ResourceLocked(_))
    ));
    e.connection_closed(1);
    let err = e
        .queue_declare(
            0,
            2,
            V,
            QueueDeclare {
                passive: true,
                ..qd("ex")
            },
        )
        .unwrap_err();
    assert_eq!(err.to_string(), "no queue 'ex' in vhost '/'");
}

#[test]
fn server_named_queues_are_deterministic() {
    let names = |seed| {
        let cfg = EngineConfig {
            seed,
            ..EngineConfig::default()
        };
        let mut e = Engine::open(cfg, Box::new(MemStorage::new()), 0).unwrap();
        e.ensure_vhost(V).unwrap();
        let a = e.queue_declare(0, 1, V, qd("")).unwrap().name;
        let b = e.queue_declare(0, 1, V, qd("")).unwrap().name;
        (a, b)
    };
    let (a, b) = names(1);
    assert!(a.starts_with("amq.gen-") && a.len() == 30, "{a}");
    assert_ne!(a, b);
    assert_eq!(names(1), (a, b));
    assert_ne!(names(2).0, names(1).0);
}

#[test]
fn delete_and_purge_preconditions() {
    let mut e = engine();
    queue(&mut e, "q", vec![]);
    publish(&mut e, 0, msg("", "q", "a"));
    let err = e.queue_delete(1, V, "q", false, true).unwrap_err();
    assert_eq!(err.to_string(), "queue 'q' in vhost '/' not empty");
    consume(&mut e, 1, 1, "q", "c");
    let err = e.queue_delete(1, V, "q", true, false).unwrap_err();
    assert_eq!(err.to_string(), "queue 'q' in vhost '/' in use");
    publish(&mut e, 0, msg("", "q", "b"));
    publish(&mut e, 0, msg("", "q", "c"));
    e.basic_cancel(1, 1, "c").unwrap();
    assert_eq!(e.queue_purge(1, V, "q").unwrap(), 0, "consumer took all");
    assert_eq!(e.queue_delete(1, V, "missing", true, true).unwrap(), 0);
}

#[test]
fn consumer_tags_and_exclusive_consumers() {
    let mut e = engine();
    queue(&mut e, "q", vec![]);
    let tag = consume(&mut e, 1, 1, "q", "");
    assert!(tag.starts_with("amq.ctag-") && tag.len() == 31);
    let c = Consume {
        queue: "q".into(),
        consumer_tag: tag.clone(),
        ..Consume::default()
    };
    let err = e.basic_consume(0, 1, 1, V, c).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("attempt to reuse consumer tag '{tag}'")
    );
    assert!(err.is_connection_error());
    let c = Consume {
        queue: "q".into(),
        exclusive: true,
        ..Consume::default()
    };
    let err = e.basic_consume(0, 1, 2, V, c.clone()).unwrap_err();
    assert_eq!(err.to_string(), "queue 'q' in vhost '/' in exclusive use");
    e.basic_cancel(1, 1, &tag).unwrap();
    e.basic_consume(0, 1, 2, V, c).unwrap();
    let err = e.basic_consume(
        0,
        2,
        1,
        V,
        Consume {
            queue: "q".into(),
            ..Consume::default()
        },
    );
    assert!(matches!(err, Err(BrokerError::AccessRefused(_))));
}

#[test]
fn invalid_arguments_and_types() {
    let mut e = engine();
    let d = QueueDeclare {
        arguments: t(&[("x-overflow", Value::str("nope"))]),
        ..qd("q")
    };
    let err = e.queue_declare(0, 1, V, d).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid arg 'x-overflow' for queue 'q' in vhost '/': {invalid_overflow,<<\"nope\">>}"
    );
    let d = QueueDeclare {
        arguments: t(&[("x-queue-type", Value::str("classic"))]),
        ..qd("q")
    };
    assert!(e.queue_declare(0, 1, V, d).is_ok());
    assert!(
        e.queue_declare(0, 1, V, qd("q")).is_ok(),
        "absent x-queue-type is classic"
    );
    let d = QueueDeclare {
        arguments: t(&[("x-queue-type", Value::str("quorum"))]),
        ..qd("q2")
    };
    assert!(matches!(
        e.queue_declare(0, 1, V, d),
        Err(BrokerError::InvalidArgument(_))
    ));
}
