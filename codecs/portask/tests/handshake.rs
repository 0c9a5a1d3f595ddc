//! Handshake and request/response scenarios through the public API: version and compression
//! negotiation, refusals, out-of-order frames, every compression end to end, chunking.

mod common;

use bytes::{Bytes, BytesMut};
use common::Pair;
use portask_protocol::body::*;
use portask_protocol::{
    ClientConfig, ClientConn, ClientEvent, Compression, ConnError, Request, Response, ServerConfig,
    ServerConn, ServerEvent, code,
};

fn batch(n: usize) -> Publish {
    Publish {
        target: Target::Topic {
            topic: "events".into(),
            partition: None,
        },
        messages: (0..n)
            .map(|i| Message {
                key: Some(Bytes::from(format!("user-{}", i % 10))),
                payload: Bytes::from(format!("{{\"n\":{i},\"kind\":\"click\"}}")),
                ..Default::default()
            })
            .collect(),
        durable: true,
    }
}

#[test]
fn handshake_picks_highest_common_version_and_first_common_compression() {
    let client = ClientConfig {
        compression: vec![Compression::Snappy, Compression::Zstd],
        ..Default::default()
    };
    let server = ServerConfig {
        compression: vec![Compression::Zstd, Compression::Snappy],
        ..Default::default()
    };
    let p = Pair::connected(client, server);
    let n = p.client.negotiated().unwrap();
    assert_eq!((n.version, n.compression), (1, Some(Compression::Snappy)));
    assert_eq!(p.server.negotiated(), Some(n));
    assert!(matches!(
        &p.server_events[0],
        ServerEvent::Hello { version: 1, .. }
    ));
}

#[test]
fn every_compression_carries_a_batch_publish() {
    for c in Compression::ALL {
        let cfg = ClientConfig {
            compression: vec![c],
            ..Default::default()
        };
        let mut p = Pair::connected(cfg, ServerConfig::default());
        let publish = Request::Publish(batch(500));
        let before = p.client_bytes.len();
        let id = p.request(&publish);
        let sent = p.client_bytes.len() - before;
        let mut plain = BytesMut::new();
        publish.encode_body(&mut plain);
        assert!(sent * 3 < plain.len(), "{c:?}: {sent} vs {}", plain.len());
        let ev = p.server_events.last().unwrap();
        let ServerEvent::Request {
            correlation_id,
            request,
            no_reply: false,
        } = ev
        else {
            panic!("{ev:?}")
        };
        assert_eq!((*correlation_id, request), (id, &publish));
        let results = vec![
            PublishResult::Appended {
                partition: 0,
                offset: 1
            };
            500
        ];
        let ok = Response::PublishOk(PublishOk { results });
        p.server.send_response(id, &ok, &mut p.to_client);
        p.step();
        let got = p.client_events.last().unwrap();
        assert_eq!(
            got,
            &ClientEvent::Response {
                correlation_id: id,
                more: false,
                response: ok
            }
        );
    }
}

#[test]
fn deliveries_errors_and_parts_reach_the_client() {
    let mut p = Pair::connected(ClientConfig::default(), ServerConfig::default());
    let consume = Consume {
        vhost: "/".into(),
        queue: "q".into(),
        credit: 10,
        no_ack: false,
    };
    let id = p.request(&Request::Consume(consume));
    let delivery = Delivery {
        consumer_tag: "c1".into(),
        delivery_tag: 1,
        exchange: "x".into(),
        routing_key: "rk".into(),
        message: Message {
            payload: Bytes::from_static(b"hi"),
            ..Default::default()
        },
        ..Default::default()
    };
    p.server.send_delivery(id, &delivery, &mut p.to_client);
    p.server
        .send_response_part(id, &Response::Done(Done {}), true, &mut p.to_client);
    p.server
        .send_error(id, code::UNKNOWN_QUEUE, "no queue 'q'", &mut p.to_client);
    p.step();
    assert_eq!(
        &p.client_events[1..],
        &[
            ClientEvent::Delivery {
                correlation_id: id,
                delivery
            },
            ClientEvent::Response {
                correlation_id: id,
                more: true,
                response: Response::Done(Done {})
            },
            ClientEvent::Error {
                correlation_id: id,
                code: 11,
                message: "no queue 'q'".into()
            },
        ]
    );
}

#[test]
fn no_reply_is_reported() {
    let mut p = Pair::connected(ClientConfig::default(), ServerConfig::default());
    let ack = Request::Ack(Ack {
        delivery_tags: vec![1, 2],
        multiple: false,
    });
    p.client.send_no_reply(&ack, &mut p.to_server).unwrap();
    p.step();
    assert!(matches!(
        p.server_events.last(),
        Some(ServerEvent::Request { no_reply: true, .. })
    ));
}

#[test]
fn refused_hello_closes_both_sides() {
    let mut client = ClientConn::new(ClientConfig::default());
    let mut server = ServerConn::new(ServerConfig::default());
    let (mut to_server, mut to_client) = (BytesMut::new(), BytesMut::new());
    client.start(&mut to_server);
    server.handle_input(&mut to_server, &mut to_client).unwrap();
    let Some(ServerEvent::Hello { user: None, .. }) = server.poll_event() else {
        panic!("no Hello event")
    };
    server.refuse_hello(code::AUTH_FAILED, "bad credentials", &mut to_client);
    assert!(server.is_closed());
    let e = client.handle_input(&mut to_client).unwrap_err();
    assert!(matches!(e, ConnError::Refused { code: 2, .. }), "{e:?}");
    assert!(client.is_closed());
}

#[test]
fn no_common_version_is_refused_with_code_1() {
    let cfg = ClientConfig {
        versions: vec![7, 9],
        ..Default::default()
    };
    let mut client = ClientConn::new(cfg);
    let mut server = ServerConn::new(ServerConfig::default());
    let (mut to_server, mut to_client) = (BytesMut::new(), BytesMut::new());
    client.start(&mut to_server);
    let e = server
        .handle_input(&mut to_server, &mut to_client)
        .unwrap_err();
    assert!(matches!(e, ConnError::Refused { code: 1, .. }));
    assert!(server.poll_event().is_none());
    let e = client.handle_input(&mut to_client).unwrap_err();
    assert!(matches!(e, ConnError::Refused { code: 1, .. }));
}

#[test]
fn request_before_hello_gets_error_3_and_close() {
    // A client that skips Hello: connect a pair, then replay its Ping on a fresh server.
    let mut p = Pair::connected(ClientConfig::default(), ServerConfig::default());
    let mut ping = BytesMut::new();
    p.client
        .send_request(&Request::Ping(Ping {}), &mut ping)
        .unwrap();
    let mut server = ServerConn::new(ServerConfig::default());
    let mut out = BytesMut::new();
    let e = server.handle_input(&mut ping, &mut out).unwrap_err();
    assert!(matches!(e, ConnError::Handshake(_)));
    assert!(server.is_closed());
    assert_eq!(out[6], 0xFF, "an Error frame");
    assert!(out.ends_with(b"expected Hello"));
    let mut client = ClientConn::new(ClientConfig::default());
    client.start(&mut BytesMut::new());
    assert!(matches!(
        client.handle_input(&mut out),
        Err(ConnError::Refused { code: 3, .. })
    ));
}

#[test]
fn second_hello_closes() {
    let mut p = Pair::connected(ClientConfig::default(), ServerConfig::default());
    let mut hello = BytesMut::new();
    ClientConn::new(ClientConfig::default()).start(&mut hello);
    let e = p
        .server
        .handle_input(&mut hello, &mut p.to_client)
        .unwrap_err();
    assert!(matches!(e, ConnError::Handshake(_)));
}

#[test]
fn one_byte_at_a_time_gives_the_same_events() {
    let mut p = Pair::connected(ClientConfig::default(), ServerConfig::default());
    p.request(&Request::Publish(batch(50)));
    p.request(&Request::Ping(Ping {}));
    p.request(&Request::Stats(Stats {}));
    let mut server = ServerConn::new(ServerConfig::default());
    let (mut rbuf, mut out) = (BytesMut::new(), BytesMut::new());
    let mut events = Vec::new();
    for b in &p.client_bytes {
        rbuf.extend_from_slice(&[*b]);
        server.handle_input(&mut rbuf, &mut out).unwrap();
        while let Some(ev) = server.poll_event() {
            if matches!(ev, ServerEvent::Hello { .. }) {
                server.accept_hello(&mut out);
            }
            events.push(ev);
        }
    }
    assert_eq!(events, p.server_events);
}

#[test]
fn oversized_requests_are_refused_locally() {
    let server = ServerConfig {
        limits: portask_protocol::Limits {
            frame_bytes_max: 4096,
            ..Default::default()
        },
        ..Default::default()
    };
    let client = ClientConfig {
        compression: vec![],
        ..Default::default()
    };
    let mut p = Pair::connected(client, server);
    let mut out = BytesMut::new();
    let e = p
        .client
        .send_request(&Request::Publish(batch(200)), &mut out);
    assert!(matches!(
        e,
        Err(portask_protocol::EncodeError::FrameTooLarge { max: 4096, .. })
    ));
    assert!(out.is_empty());
}
