//! Interop: the real `portask` binary driven by lapin, a Rust AMQP 0-9-1 client written by
//! others. Starts the broker on free loopback ports with a temporary data directory, then
//! publishes 10,000 messages with publisher confirms, consumes them with manual acks and
//! checks order and count, and checks that a nack with requeue comes back redelivered.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions,
    ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};

/// The broker process, killed and reaped when dropped.
struct Broker {
    child: Child,
    amqp_port: u16,
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
    let amqp_port = free_port();
    let addr = |p: u16| format!("127.0.0.1:{p}");
    let child = Command::new(env!("CARGO_BIN_EXE_portask"))
        .arg("serve")
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--kafka-addr", &addr(free_port())])
        .args(["--amqp-addr", &addr(amqp_port)])
        .args(["--admin-addr", &addr(free_port())])
        .args(["--portask-addr", &addr(free_port())])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let broker = Broker {
        child,
        amqp_port,
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", amqp_port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "broker did not listen within 30 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    broker
}

#[tokio::test(flavor = "current_thread")]
async fn lapin_publishes_with_confirms_and_consumes_with_acks() {
    let broker = start_broker();
    let uri = format!("amqp://guest:guest@127.0.0.1:{}/%2f", broker.amqp_port);
    let conn = Connection::connect(&uri, ConnectionProperties::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    ch.queue_declare(
        "lapin-q".into(),
        QueueDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    const N: usize = 10_000;
    let mut confirms = Vec::with_capacity(N);
    for i in 0..N {
        let body = format!("message {i}");
        let confirm = ch
            .basic_publish(
                "".into(),
                "lapin-q".into(),
                BasicPublishOptions::default(),
                body.as_bytes(),
                BasicProperties::default(),
            )
            .await
            .unwrap();
        confirms.push(confirm);
    }
    for confirm in confirms {
        assert!(confirm.await.unwrap().is_ack());
    }
    let mut consumer = ch
        .basic_consume(
            "lapin-q".into(),
            "lapin-consumer".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    for i in 0..N {
        let delivery = tokio_timeout(consumer.next()).await.unwrap().unwrap();
        assert_eq!(delivery.data, format!("message {i}").as_bytes());
        assert!(!delivery.redelivered);
        if i == N - 1 {
            // The last one goes back once and must come again, redelivered.
            delivery
                .nack(BasicNackOptions {
                    requeue: true,
                    ..Default::default()
                })
                .await
                .unwrap();
        } else {
            delivery.ack(BasicAckOptions::default()).await.unwrap();
        }
    }
    let again = tokio_timeout(consumer.next()).await.unwrap().unwrap();
    assert_eq!(again.data, format!("message {}", N - 1).as_bytes());
    assert!(again.redelivered);
    again.ack(BasicAckOptions::default()).await.unwrap();
    conn.close(200, "bye".into()).await.unwrap();
}

/// Waits for a stream item at most 10 s.
async fn tokio_timeout<T>(fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .expect("no delivery within 10 s")
}
