//! Replays the committed fuzz seed corpus through the fuzz target's body on stable, and
//! checks every seed is a valid client session that the server accepts without closing.
//! `PORTASK_WRITE_CORPUS=1 cargo test -p portask-amqp --test fuzz_corpus` rewrites the seeds.

mod common;

use std::path::PathBuf;

use bytes::{Bytes, BytesMut};
use common::{Pair, publishing_session};
use portask_amqp::generated::*;
use portask_amqp::{BasicProperties, ClientConfig, ServerConfig, ServerConn, ServerEvent};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/amqp_server_conn")
}

/// Client byte streams of a few sessions, prefixed with the chunk-size byte of the target.
fn sessions() -> Vec<(&'static str, Vec<u8>)> {
    let mut out = Vec::new();
    out.push(("publish-small", publishing_session(b"hello").client_bytes));
    out.push((
        "publish-split",
        publishing_session(&[7u8; 9000]).client_bytes,
    ));
    let mut p = publishing_session(b"");
    let ch = |m: Method| {
        move |c: &mut portask_amqp::ClientConn, o: &mut BytesMut| c.send_method(1, &m, o)
    };
    p.client_send(ch(ConfirmSelect::default().into()));
    p.client_send(ch(QueueDeclare {
        queue: "q".into(),
        durable: true,
        ..Default::default()
    }
    .into()));
    p.client_send(ch(BasicQos {
        prefetch_count: 10,
        ..Default::default()
    }
    .into()));
    p.client_send(ch(BasicConsume {
        queue: "q".into(),
        ..Default::default()
    }
    .into()));
    p.client_send(ch(BasicAck {
        delivery_tag: 1,
        multiple: true,
    }
    .into()));
    p.client_send(ch(ChannelClose::default().into()));
    p.client_send(|c, o| c.close(200, "bye", o));
    out.push(("consume-ack-close", p.client_bytes));
    let client = ClientConfig {
        heartbeat_s: 5,
        frame_max: 8192,
        ..Default::default()
    };
    let mut p = Pair::new(client, ServerConfig::default());
    p.step();
    let props = BasicProperties {
        delivery_mode: Some(2),
        ..Default::default()
    };
    for channel in 1..4 {
        p.client_send(|c, o| c.send_method(channel, &ChannelOpen::default().into(), o));
        let body = Bytes::from(vec![channel as u8; 20_000]);
        p.client_send(|c, o| c.publish(channel, BasicPublish::default(), &props, &body, o));
    }
    out.push(("three-channels", p.client_bytes));
    out.into_iter()
        .enumerate()
        .flat_map(|(i, (name, bytes))| {
            [0u8, 7, 63].map(|chunk| {
                let mut v = vec![chunk.wrapping_add(i as u8)];
                v.extend_from_slice(&bytes);
                (name, v)
            })
        })
        .collect()
}

fn corpus() -> Vec<(String, Vec<u8>)> {
    if std::env::var_os("PORTASK_WRITE_CORPUS").is_some() {
        std::fs::create_dir_all(dir()).unwrap();
        for (i, (name, data)) in sessions().into_iter().enumerate() {
            std::fs::write(dir().join(format!("{name}-{i}")), data).unwrap();
        }
    }
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir())
        .unwrap_or_else(|e| panic!("{}: {e}", dir().display()))
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn corpus_replays_without_failures() {
    let files = corpus();
    assert!(files.len() >= 10, "corpus has {} files", files.len());
    for (_, data) in &files {
        portask_amqp::fuzzing::server_conn(data);
        portask_amqp::fuzzing::decode_frames(&data[1..]);
    }
}

#[test]
fn every_seed_is_a_session_the_server_accepts() {
    for (name, data) in corpus() {
        let mut conn = ServerConn::new(ServerConfig::default(), 0);
        let mut rbuf = BytesMut::from(&data[1..]);
        let mut out = BytesMut::new();
        conn.handle_input(&mut rbuf, 0, &mut out).unwrap();
        let mut publishes = 0;
        while let Some(ev) = conn.poll_event() {
            match ev {
                ServerEvent::Login { .. } => conn.accept_login(&mut out),
                ServerEvent::OpenVhost { .. } => conn.accept_open(&mut out),
                ServerEvent::Publish { .. } => publishes += 1,
                ServerEvent::ConnectionClosed { code, .. } => assert_eq!(code, 200, "{name}"),
                _ => {}
            }
        }
        assert!(rbuf.is_empty(), "{name}");
        assert!(publishes >= 1, "{name}");
    }
}
