//! Replays the committed fuzz seed corpus through the fuzz target's body on stable, and
//! checks every seed is a client session the server accepts without closing.
//! `PORTASK_WRITE_CORPUS=1 cargo test -p portask-protocol --test fuzz_corpus` rewrites seeds.

mod common;

use std::path::PathBuf;

use bytes::{Bytes, BytesMut};
use common::Pair;
use portask_protocol::body::*;
use portask_protocol::{ClientConfig, Compression, Request, ServerConfig, ServerConn, ServerEvent};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/portask_server_conn")
}

fn message(i: usize) -> Message {
    Message {
        id: Some([i as u8; 16]),
        key: Some(Bytes::from(format!("k{}", i % 4))),
        headers: vec![("h".into(), Bytes::from_static(b"v"))],
        payload: Bytes::from(vec![b'x'; i * 7]),
        timestamp: Some(i as i64),
        ..Default::default()
    }
}

fn session(compression: Vec<Compression>, requests: &[Request]) -> Vec<u8> {
    let cfg = ClientConfig {
        compression,
        user: Some("guest".into()),
        password: Some("guest".into()),
        ..Default::default()
    };
    let mut p = Pair::connected(cfg, ServerConfig::default());
    for r in requests {
        p.request(r);
    }
    p.client_bytes
}

/// Client byte streams of a few sessions, prefixed with the chunk-size byte of the target.
fn sessions() -> Vec<(&'static str, Vec<u8>)> {
    let publish = Request::Publish(Publish {
        target: Target::Topic {
            topic: "t".into(),
            partition: None,
        },
        messages: (0..40).map(message).collect(),
        durable: true,
    });
    let queue = [
        Request::DeclareQueue(DeclareQueue {
            vhost: "/".into(),
            name: "q".into(),
            arguments: vec![("x-max-priority".into(), Value::Int(5))],
            ..Default::default()
        }),
        Request::Consume(Consume {
            vhost: "/".into(),
            queue: "q".into(),
            credit: 10,
            no_ack: false,
        }),
        Request::Ack(Ack {
            delivery_tags: vec![1, 2],
            multiple: true,
        }),
        Request::Cancel(Cancel {
            consumer_tag: "c".into(),
        }),
    ];
    let group = [
        Request::Subscribe(Subscribe {
            group: "g".into(),
            topics: vec!["t".into()],
            member_id: None,
        }),
        Request::Fetch(Fetch {
            topic: "t".into(),
            max_messages: 10,
            max_bytes: 1 << 20,
            ..Default::default()
        }),
        Request::Stats(Stats {}),
    ];
    let out = vec![
        ("ping", session(vec![], &[Request::Ping(Ping {})])),
        (
            "publish-zstd",
            session(vec![Compression::Zstd], std::slice::from_ref(&publish)),
        ),
        (
            "publish-lz4",
            session(vec![Compression::Lz4], std::slice::from_ref(&publish)),
        ),
        (
            "publish-snappy",
            session(vec![Compression::Snappy], &[publish]),
        ),
        ("queue", session(vec![], &queue)),
        ("group", session(vec![Compression::Zstd], &group)),
    ];
    out.into_iter()
        .enumerate()
        .flat_map(|(i, (name, bytes))| {
            [0u8, 7].map(|chunk| {
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
            let name = e.file_name().to_string_lossy().into_owned();
            (name, std::fs::read(e.path()).unwrap())
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
        portask_protocol::fuzzing::server_conn(data);
        portask_protocol::fuzzing::decode_frames(&data[1..]);
    }
}

#[test]
fn every_seed_is_a_session_the_server_accepts() {
    for (name, data) in corpus() {
        let mut conn = ServerConn::new(ServerConfig::default());
        let (mut rbuf, mut out) = (BytesMut::from(&data[1..]), BytesMut::new());
        conn.handle_input(&mut rbuf, &mut out).unwrap();
        let Some(ServerEvent::Hello { .. }) = conn.poll_event() else {
            panic!("{name}: no Hello")
        };
        conn.accept_hello(&mut out);
        conn.handle_input(&mut rbuf, &mut out).unwrap();
        let mut requests = 0;
        while let Some(ev) = conn.poll_event() {
            assert!(matches!(ev, ServerEvent::Request { .. }), "{name}: {ev:?}");
            requests += 1;
        }
        assert!(
            rbuf.is_empty() && requests >= 1 && !conn.is_closed(),
            "{name}"
        );
    }
}
