//! The real `portask` binary driven over Portask's own protocol with the protocol crate's
//! client state machine: handshake, publish to a topic and fetch back, publish through an
//! exchange into a queue and consume with credit and acks, a one-member group subscription,
//! and the admin listings. Starts the broker on free loopback ports with a temporary data
//! directory and kills it at the end.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use portask_protocol::body::*;
use portask_protocol::conn::client::{ClientConfig, ClientConn, ClientEvent};

struct Broker {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_broker() -> Broker {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let addr = |p: u16| format!("127.0.0.1:{p}");
    let child = Command::new(env!("CARGO_BIN_EXE_portask"))
        .arg("serve")
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--kafka-addr", &addr(free_port())])
        .args(["--amqp-addr", &addr(free_port())])
        .args(["--admin-addr", &addr(free_port())])
        .args(["--portask-addr", &addr(port)])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let broker = Broker {
        child,
        port,
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "broker did not listen within 30 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    broker
}

/// A blocking test client: one request at a time, deliveries collected on the side.
struct Client {
    sock: TcpStream,
    conn: ClientConn,
    rbuf: BytesMut,
    deliveries: Vec<Delivery>,
}

impl Client {
    fn connect(port: u16) -> Self {
        let sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut c = Self {
            sock,
            conn: ClientConn::new(ClientConfig::default()),
            rbuf: BytesMut::new(),
            deliveries: Vec::new(),
        };
        let mut out = BytesMut::new();
        c.conn.start(&mut out);
        c.sock.write_all(&out).unwrap();
        match c.next_event() {
            ClientEvent::Connected { .. } => c,
            other => panic!("unexpected {other:?}"),
        }
    }

    fn next_event(&mut self) -> ClientEvent {
        loop {
            if let Some(e) = self.conn.poll_event() {
                return e;
            }
            let mut buf = [0u8; 65536];
            let n = self.sock.read(&mut buf).expect("read from broker");
            assert!(n > 0, "broker closed the connection");
            self.rbuf.extend_from_slice(&buf[..n]);
            self.conn.handle_input(&mut self.rbuf).unwrap();
        }
    }

    fn call(&mut self, request: Request) -> Result<Response, (u16, String)> {
        let mut out = BytesMut::new();
        let id = self.conn.send_request(&request, &mut out).unwrap();
        self.sock.write_all(&out).unwrap();
        loop {
            match self.next_event() {
                ClientEvent::Response {
                    correlation_id,
                    response,
                    ..
                } if correlation_id == id => {
                    return Ok(response);
                }
                ClientEvent::Error {
                    correlation_id,
                    code,
                    message,
                } if correlation_id == id => {
                    return Err((code, message));
                }
                ClientEvent::Delivery { delivery, .. } => self.deliveries.push(delivery),
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    fn wait_deliveries(&mut self, n: usize) {
        while self.deliveries.len() < n {
            match self.next_event() {
                ClientEvent::Delivery { delivery, .. } => self.deliveries.push(delivery),
                other => panic!("unexpected {other:?}"),
            }
        }
    }
}

fn message(payload: &'static [u8], key: Option<&'static [u8]>) -> Message {
    Message {
        key: key.map(Bytes::from_static),
        headers: vec![("h".into(), Bytes::from_static(b"\x00\x01"))],
        payload: Bytes::from_static(payload),
        content_type: Some("application/octet-stream".into()),
        ..Default::default()
    }
}

#[test]
fn topics_queues_groups_and_admin_over_the_portask_protocol() {
    let broker = start_broker();
    let mut c = Client::connect(broker.port);
    assert!(matches!(
        c.call(Request::Ping(Ping {})),
        Ok(Response::Pong(_))
    ));

    // Topic: publish a batch, fetch it back intact (binary payloads and keys).
    let create = CreateTopic {
        name: "t".into(),
        partitions: 1,
        configs: vec![],
    };
    c.call(Request::CreateTopic(create)).unwrap();
    let msgs = vec![message(b"\x00one\xff", Some(b"k1")), message(b"two", None)];
    let publish = Publish {
        target: Target::Topic {
            topic: "t".into(),
            partition: Some(0),
        },
        messages: msgs.clone(),
        durable: true,
    };
    let Ok(Response::PublishOk(ok)) = c.call(Request::Publish(publish)) else {
        panic!()
    };
    assert_eq!(
        ok.results[1],
        PublishResult::Appended {
            partition: 0,
            offset: 1
        }
    );
    let fetch = Fetch {
        topic: "t".into(),
        partition: 0,
        offset: 0,
        max_messages: 10,
        max_bytes: 1 << 20,
        max_wait_ms: 0,
    };
    let Ok(Response::FetchOk(f)) = c.call(Request::Fetch(fetch)) else {
        panic!()
    };
    assert_eq!(f.high_watermark, 2);
    assert_eq!(f.messages[0].message.payload, msgs[0].payload);
    assert_eq!(f.messages[0].message.key, msgs[0].key);
    assert_eq!(f.messages[0].message.headers, msgs[0].headers);
    assert_eq!(f.messages[0].message.content_type, msgs[0].content_type);

    // Queue: declare, publish through the default exchange, consume with credit 1, ack.
    let declare = DeclareQueue {
        vhost: "/".into(),
        name: "q".into(),
        durable: true,
        ..Default::default()
    };
    c.call(Request::DeclareQueue(declare)).unwrap();
    let publish = Publish {
        target: Target::Exchange {
            vhost: "/".into(),
            exchange: String::new(),
            routing_key: "q".into(),
            mandatory: true,
        },
        messages: vec![message(b"a", Some(b"ka")), message(b"b", None)],
        durable: true,
    };
    let Ok(Response::PublishOk(ok)) = c.call(Request::Publish(publish)) else {
        panic!()
    };
    assert_eq!(ok.results, vec![PublishResult::Routed(true); 2]);
    let consume = Consume {
        vhost: "/".into(),
        queue: "q".into(),
        credit: 1,
        no_ack: false,
    };
    let Ok(Response::ConsumeOk(ok)) = c.call(Request::Consume(consume)) else {
        panic!()
    };
    c.wait_deliveries(1);
    assert_eq!(c.deliveries[0].message.payload, Bytes::from_static(b"a"));
    assert_eq!(c.deliveries[0].message.key, Some(Bytes::from_static(b"ka")));
    assert_eq!(c.deliveries[0].consumer_tag, ok.consumer_tag);
    let tag = c.deliveries[0].delivery_tag;
    c.call(Request::Ack(Ack {
        delivery_tags: vec![tag],
        multiple: false,
    }))
    .unwrap();
    c.wait_deliveries(2);
    assert_eq!(c.deliveries[1].message.payload, Bytes::from_static(b"b"));

    // Group: one member gets every partition of a 3-partition topic.
    let create = CreateTopic {
        name: "g".into(),
        partitions: 3,
        configs: vec![],
    };
    c.call(Request::CreateTopic(create)).unwrap();
    let sub = Subscribe {
        group: "grp".into(),
        topics: vec!["g".into()],
        member_id: None,
    };
    let Ok(Response::SubscribeOk(s)) = c.call(Request::Subscribe(sub)) else {
        panic!()
    };
    assert_eq!(s.assignments.len(), 3);
    assert!(s.assignments.iter().all(|a| a.offset == -1));
    let commit = Commit {
        group: "grp".into(),
        offsets: vec![PartitionOffset {
            topic: "g".into(),
            partition: 1,
            offset: 5,
        }],
        member_id: None,
        generation: None,
    };
    // From outside the group while it has a member: refused by the coordinator.
    assert!(c.call(Request::Commit(commit.clone())).is_err());
    // As the member, with its generation: accepted, and a new subscription starts there.
    let as_member = Commit {
        member_id: Some(s.member_id.clone()),
        generation: Some(s.generation),
        ..commit
    };
    c.call(Request::Commit(as_member)).unwrap();
    let describe = DescribeGroups {
        groups: vec!["grp".into()],
    };
    let Ok(Response::Groups(g)) = c.call(Request::DescribeGroups(describe)) else {
        panic!()
    };
    assert_eq!(
        (g.groups[0].state.as_str(), g.groups[0].members.len()),
        ("stable", 1)
    );
    let committed = &g.groups[0].members[0].assignments;
    assert!(
        committed.iter().any(|a| a.partition == 1 && a.offset == 5),
        "{committed:?}"
    );
    let hb = Heartbeat {
        group: "grp".into(),
        member_id: s.member_id.clone(),
        generation: s.generation,
    };
    c.call(Request::Heartbeat(hb)).unwrap();

    // Bindings: bind the queue to amq.direct, list it.
    let bind = Bind {
        vhost: "/".into(),
        queue_or_exchange: "q".into(),
        exchange: "amq.direct".into(),
        routing_key: "k".into(),
    };
    c.call(Request::Bind(bind)).unwrap();
    let Ok(Response::Bindings(b)) = c.call(Request::ListBindings(ListBindings { vhost: None }))
    else {
        panic!()
    };
    let found = b
        .bindings
        .iter()
        .find(|b| b.source == "amq.direct")
        .unwrap();
    assert_eq!(
        (found.destination.as_str(), found.destination_kind.as_str()),
        ("q", "queue")
    );
    assert_eq!(found.routing_key, "k");

    // Admin listings and errors.
    let Ok(Response::Topics(t)) = c.call(Request::ListTopics(ListTopics {})) else {
        panic!()
    };
    assert_eq!(
        t.topics.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
        ["g", "t"]
    );
    let Ok(Response::Queues(q)) = c.call(Request::ListQueues(ListQueues { vhost: None })) else {
        panic!()
    };
    assert_eq!(q.queues.len(), 1);
    let missing = Consume {
        vhost: "/".into(),
        queue: "nope".into(),
        credit: 1,
        no_ack: true,
    };
    let (code, message) = c.call(Request::Consume(missing)).unwrap_err();
    assert_eq!(code, portask_protocol::error::code::UNKNOWN_QUEUE);
    assert!(message.contains("no queue 'nope'"), "{message}");
}
