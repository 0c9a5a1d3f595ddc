//! Every byte example in `docs/protocol.md` is encoded here and compared with the hex in the
//! doc, so the doc and the code cannot drift. Examples sit in fences preceded by
//! `<!-- example: NAME -->`. `PORTASK_PRINT_EXAMPLES=1` prints the current encodings.

use bytes::{Bytes, BytesMut};
use portask_protocol::body::*;
use portask_protocol::frame::{FrameDecoder, Header, encode_frame, flags};
use portask_protocol::wire::encode_body;
use portask_protocol::{Compression, Limits, Request};

const DOC: &str = include_str!("../../../docs/protocol.md");

fn frame<T: serde::Serialize>(
    opcode: u8,
    flags: u8,
    cid: u64,
    compress: Option<Compression>,
    body: &T,
) -> Vec<u8> {
    let mut out = BytesMut::new();
    let h = Header {
        version: 1,
        opcode,
        flags,
        correlation_id: cid,
    };
    encode_frame(h, compress, 0, &mut out, |o| encode_body(body, o));
    out.to_vec()
}

fn metrics_batch() -> Publish {
    let messages = (0..8)
        .map(|i| Message {
            key: Some(Bytes::from_static(b"host-1")),
            payload: Bytes::from(format!("cpu={}", 40 + i)),
            timestamp: Some(1_700_000_000_000 + i),
            ..Default::default()
        })
        .collect();
    Publish {
        target: Target::Topic {
            topic: "metrics".into(),
            partition: Some(0),
        },
        messages,
        durable: false,
    }
}

fn examples() -> Vec<(&'static str, Vec<u8>)> {
    let hello = Hello {
        versions: vec![1],
        client: "demo/1.0".into(),
        user: Some("guest".into()),
        password: Some("guest".into()),
        compression: vec!["zstd".into(), "lz4".into()],
    };
    let hello_ok = HelloOk {
        version: 1,
        server: "portask".into(),
        compression: Some("zstd".into()),
        max_frame_bytes: 16 * 1024 * 1024,
    };
    let publish = Publish {
        target: Target::Topic {
            topic: "orders".into(),
            partition: None,
        },
        messages: vec![Message {
            key: Some(Bytes::from_static(b"k1")),
            payload: Bytes::from_static(b"hello"),
            ..Default::default()
        }],
        durable: true,
    };
    let error = ErrorBody {
        code: 10,
        message: "unknown topic orders".into(),
    };
    let zstd = Some(Compression::Zstd);
    let (resp, err) = (flags::RESPONSE, flags::RESPONSE | flags::ERROR);
    vec![
        ("hello", frame(opcode::HELLO, 0, 1, None, &hello)),
        (
            "hello_ok",
            frame(opcode::HELLO_OK, resp, 1, None, &hello_ok),
        ),
        ("ping", frame(opcode::PING, 0, 2, None, &Ping {})),
        ("publish", frame(opcode::PUBLISH, 0, 3, None, &publish)),
        (
            "publish_zstd",
            frame(opcode::PUBLISH, 0, 4, zstd, &metrics_batch()),
        ),
        ("error", frame(opcode::ERROR, err, 3, None, &error)),
    ]
}

/// `(name, bytes)` of every example in the doc.
fn doc_examples() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut rest = DOC;
    while let Some(i) = rest.find("<!-- example: ") {
        rest = &rest[i + 14..];
        let name = rest[..rest.find(" -->").expect("example marker ends")].to_owned();
        let open = rest.find("```").expect("fence after the marker");
        rest = &rest[open..];
        rest = &rest[rest.find('\n').expect("fence line") + 1..];
        let close = rest.find("```").expect("closing fence");
        let bytes = rest[..close]
            .split_whitespace()
            .map(|h| u8::from_str_radix(h, 16).unwrap_or_else(|_| panic!("{name}: bad hex {h}")))
            .collect();
        out.push((name, bytes));
        rest = &rest[close + 3..];
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    let lines: Vec<String> = bytes
        .chunks(16)
        .map(|c| {
            c.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    lines.join("\n")
}

#[test]
fn doc_hex_matches_the_encoder() {
    let ours = examples();
    if std::env::var_os("PORTASK_PRINT_EXAMPLES").is_some() {
        for (name, bytes) in &ours {
            println!("<!-- example: {name} -->\n```text\n{}\n```\n", hex(bytes));
        }
    }
    let doc = doc_examples();
    let names: Vec<&str> = doc.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ours.iter().map(|(n, _)| *n).collect::<Vec<_>>());
    for ((name, want), (_, got)) in doc.iter().zip(&ours) {
        assert_eq!(hex(got), hex(want), "example {name}");
    }
}

#[test]
fn doc_examples_decode_to_their_values() {
    let limits = Limits::default();
    let mut d = FrameDecoder::new(1 << 20);
    for (name, bytes) in doc_examples() {
        let mut buf = BytesMut::from(&bytes[..]);
        let f = d.decode(&mut buf).unwrap().unwrap();
        assert!(buf.is_empty(), "{name}");
        let body = f.decompressed(Some(Compression::Zstd), &limits).unwrap();
        if name == "publish_zstd" {
            let req = Request::decode(f.header.opcode, &body, 8).unwrap();
            assert_eq!(req, Request::Publish(metrics_batch()));
            let mut plain = BytesMut::new();
            req.encode_body(&mut plain);
            assert!(bytes.len() < plain.len(), "compression pays off");
        }
    }
}
