//! The client against the codec's `ServerConn` in a thread, over a real loopback socket.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use portask_client::{Client, ClientError, ClientOptions, Message, code};
use portask_protocol::body::{
    ConsumeOk, Delivery, Done, FetchOk, Pong, PublishOk, PublishResult, StoredMessage, TopicInfo,
    Topics,
};
use portask_protocol::{Request, Response, ServerConfig, ServerConn, ServerEvent};

/// A one-connection fake broker; returns its address.
fn fake_broker(password: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    thread::spawn(move || {
        let (mut sock, _) = listener.accept().unwrap();
        serve(&mut sock, password);
    });
    addr
}

fn serve(sock: &mut TcpStream, password: &str) {
    let mut conn = ServerConn::new(ServerConfig::default());
    let (mut rbuf, mut out) = (BytesMut::new(), BytesMut::new());
    let mut next_offset = 0i64;
    let mut buf = [0u8; 65536];
    loop {
        let n = match sock.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        rbuf.extend_from_slice(&buf[..n]);
        loop {
            let result = conn.handle_input(&mut rbuf, &mut out);
            let mut answered_hello = false;
            while let Some(event) = conn.poll_event() {
                match event {
                    ServerEvent::Hello { password: p, .. } => {
                        if p.as_deref() == Some(password) {
                            conn.accept_hello(&mut out);
                            answered_hello = true;
                        } else {
                            conn.refuse_hello(code::AUTH_FAILED, "bad password", &mut out);
                        }
                    }
                    ServerEvent::Request {
                        correlation_id: cid,
                        no_reply,
                        request,
                    } => answer(
                        &mut conn,
                        cid,
                        no_reply,
                        request,
                        &mut next_offset,
                        &mut out,
                    ),
                    _ => {}
                }
            }
            sock.write_all(&out).unwrap();
            out.clear();
            if result.is_err() || conn.is_closed() {
                return;
            }
            if !answered_hello {
                break;
            }
        }
    }
}

fn answer(
    conn: &mut ServerConn,
    cid: u64,
    no_reply: bool,
    request: Request,
    next_offset: &mut i64,
    out: &mut BytesMut,
) {
    let reply = |conn: &mut ServerConn, r: Response, out: &mut BytesMut| {
        if !no_reply {
            conn.send_response(cid, &r, out);
        }
    };
    match request {
        Request::Ping(_) => reply(conn, Response::Pong(Pong {}), out),
        Request::Publish(p) => {
            if let portask_protocol::body::Target::Topic { topic, .. } = &p.target
                && topic == "missing"
            {
                conn.send_error(cid, code::UNKNOWN_TOPIC, "unknown topic missing", out);
                return;
            }
            let results = p
                .messages
                .iter()
                .map(|_| {
                    *next_offset += 1;
                    PublishResult::Appended {
                        partition: 0,
                        offset: *next_offset - 1,
                    }
                })
                .collect();
            reply(conn, Response::PublishOk(PublishOk { results }), out);
        }
        Request::CreateTopic(t) if t.name == "exists" => {
            conn.send_error(cid, code::ALREADY_EXISTS, "topic exists", out);
        }
        Request::CreateTopic(_) => reply(conn, Response::Done(Done {}), out),
        Request::ListTopics(_) => {
            // Two parts, to check the client merges them.
            for (i, name) in ["a", "b"].into_iter().enumerate() {
                let topics = Topics {
                    topics: vec![TopicInfo {
                        name: name.into(),
                        partitions: 1,
                        ..TopicInfo::default()
                    }],
                };
                conn.send_response_part(cid, &Response::Topics(topics), i == 0, out);
            }
        }
        Request::Fetch(f) => {
            for part in 0..2 {
                let messages = vec![StoredMessage {
                    offset: f.offset + part,
                    message: Message {
                        payload: Bytes::from(format!("m{}", f.offset + part)),
                        ..Message::default()
                    },
                }];
                let ok = FetchOk {
                    high_watermark: f.offset + 2,
                    messages,
                };
                conn.send_response_part(cid, &Response::FetchOk(ok), part == 0, out);
            }
        }
        Request::Consume(c) => {
            let tag = format!("ctag-{}", c.queue);
            let ok = ConsumeOk {
                consumer_tag: tag.clone(),
            };
            conn.send_response(cid, &Response::ConsumeOk(ok), out);
            for i in 0..3u64 {
                let d = Delivery {
                    consumer_tag: tag.clone(),
                    delivery_tag: i + 1,
                    exchange: String::new(),
                    routing_key: c.queue.clone(),
                    message: Message {
                        payload: Bytes::from(vec![i as u8; 3]),
                        ..Message::default()
                    },
                    ..Delivery::default()
                };
                conn.send_delivery(cid, &d, out);
            }
        }
        Request::Ack(a) if a.delivery_tags.contains(&99) => {
            conn.send_error(cid, code::INVALID_ARGUMENT, "unknown delivery tag 99", out);
        }
        Request::Ack(_) | Request::Credit(_) | Request::Cancel(_) => {
            reply(conn, Response::Done(Done {}), out);
        }
        _ => conn.send_error(cid, code::INTERNAL, "not in the fake", out),
    }
}

fn options() -> ClientOptions {
    ClientOptions {
        user: Some("guest".into()),
        password: Some("guest".into()),
        timeout: Some(Duration::from_secs(10)),
        ..ClientOptions::default()
    }
}

#[test]
fn requests_and_errors() {
    let mut c = Client::connect(&fake_broker("guest"), options()).unwrap();
    assert!(c.server().starts_with("portask"));
    assert!(c.negotiated().compression.is_some());
    c.ping().unwrap();

    let msgs = (0..3)
        .map(|i| Message {
            key: Some(Bytes::from(format!("k{i}"))),
            payload: Bytes::from(format!("v{i}")),
            ..Message::default()
        })
        .collect();
    assert_eq!(
        c.publish_topic("t", None, msgs, true).unwrap(),
        vec![(0, 0), (0, 1), (0, 2)]
    );

    let e = c.create_topic("exists", 1, Vec::new()).unwrap_err();
    assert_eq!(e.code(), Some(code::ALREADY_EXISTS));
    assert!(!e.is_retriable());
    assert!(e.to_string().contains("ALREADY_EXISTS"), "{e}");
    c.create_topic("new", 3, Vec::new()).unwrap();

    let names: Vec<_> = c
        .list_topics()
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["a", "b"]);

    let f = c.fetch("t", 0, 5, 10, 1 << 20, 0).unwrap();
    assert_eq!(f.high_watermark, 7);
    let payloads: Vec<_> = f
        .messages
        .iter()
        .map(|m| m.message.payload.clone())
        .collect();
    assert_eq!(payloads, [Bytes::from("m5"), Bytes::from("m6")]);

    // The unknown request gets INTERNAL, and the connection goes on.
    let e = c.stats().unwrap_err();
    assert_eq!(e.code(), Some(code::INTERNAL));
    c.ping().unwrap();
}

#[test]
fn pipelined_and_nowait_publishes() {
    let mut c = Client::connect(&fake_broker("guest"), options()).unwrap();
    let target = portask_client::topic_target("t", Some(0));
    let msg = || Message {
        payload: Bytes::from_static(b"x"),
        ..Message::default()
    };
    let pending: Vec<_> = (0..50)
        .map(|_| {
            c.send_publish(target.clone(), vec![msg(), msg()], false)
                .unwrap()
        })
        .collect();
    let mut offsets = Vec::new();
    for p in pending {
        for r in c.wait_publish(p).unwrap() {
            let PublishResult::Appended { offset, .. } = r else {
                panic!("{r:?}")
            };
            offsets.push(offset);
        }
    }
    assert_eq!(offsets, (0..100).collect::<Vec<_>>());

    // Fire and forget: no answer on success; the failure comes back as an async error.
    c.publish_topic_nowait("t", None, vec![msg()], false)
        .unwrap();
    let bad = c
        .publish_topic_nowait("missing", None, vec![msg()], false)
        .unwrap();
    c.ping().unwrap();
    let errors = c.take_async_errors();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].0, bad);
    assert_eq!(errors[0].1.code(), Some(code::UNKNOWN_TOPIC));
    // The nowait publish that succeeded took offset 100.
    assert_eq!(
        c.publish_topic("t", None, vec![msg()], false).unwrap(),
        [(0, 101)]
    );
}

#[test]
fn consumer_receives_deliveries() {
    let mut c = Client::connect(&fake_broker("guest"), options()).unwrap();
    let mut consumer = c.consume("/", "jobs", 10, false).unwrap();
    assert_eq!(consumer.tag(), "ctag-jobs");
    for i in 0..3u8 {
        let d = consumer
            .next(Some(Duration::from_secs(5)))
            .unwrap()
            .expect("a delivery");
        assert_eq!(d.delivery_tag, u64::from(i) + 1);
        assert_eq!(&d.message.payload[..], &[i; 3]);
        consumer.ack(d.delivery_tag, false).unwrap();
    }
    assert!(
        consumer
            .next(Some(Duration::from_millis(100)))
            .unwrap()
            .is_none()
    );
    consumer.credit(5).unwrap();
    consumer.cancel().unwrap();
    c.ping().unwrap();
}

#[test]
fn refused_handshake_and_closed_port() {
    let e = Client::connect(&fake_broker("secret"), options()).unwrap_err();
    assert_eq!(e.code(), Some(code::AUTH_FAILED), "{e}");

    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let addr = format!("127.0.0.1:{port}");
    match Client::connect(&addr, options()).unwrap_err() {
        ClientError::Connect { addr: a, .. } => assert_eq!(a, addr),
        other => panic!("{other:?}"),
    }

    let bad = ClientOptions {
        compression: vec!["gzip".into()],
        ..options()
    };
    let e = Client::connect(&fake_broker("guest"), bad).unwrap_err();
    assert!(matches!(e, ClientError::InvalidArgument(_)), "{e:?}");
}
