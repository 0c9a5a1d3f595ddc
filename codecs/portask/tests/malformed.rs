//! Malformed input fed through the public server API only: every case gets an `Error` frame
//! with the right code and either keeps the connection usable or closes it, never panics.

mod common;

use bytes::{BufMut, BytesMut};
use common::Pair;
use portask_protocol::body::{Ping, opcode};
use portask_protocol::frame::{FrameDecoder, Header, encode_frame};
use portask_protocol::wire::decode_body;
use portask_protocol::{
    ClientConfig, Compression, Limits, Request, ServerConfig, ServerConn, ServerEvent,
    body::ErrorBody,
};

fn open_server(limits: Limits) -> ServerConn {
    let mut p = Pair::connected(
        ClientConfig::default(),
        ServerConfig {
            limits,
            ..Default::default()
        },
    );
    p.server_events.clear();
    p.server
}

/// Errors the server wrote: (correlation id, code).
fn errors(out: &mut BytesMut) -> Vec<(u64, u16)> {
    let mut d = FrameDecoder::new(1 << 20);
    let mut v = Vec::new();
    while let Some(f) = d.decode(out).unwrap() {
        assert_eq!(f.header.opcode, opcode::ERROR);
        assert_eq!(f.header.flags, 0x18);
        let e: ErrorBody = decode_body(&f.body, 8).unwrap();
        v.push((f.header.correlation_id, e.code));
    }
    v
}

fn raw(opcode: u8, flags: u8, cid: u64, body: &[u8]) -> BytesMut {
    let mut out = BytesMut::new();
    let h = Header {
        version: 1,
        opcode,
        flags,
        correlation_id: cid,
    };
    encode_frame(h, None, 0, &mut out, |o| o.extend_from_slice(body));
    out[7] = flags;
    out
}

#[test]
fn bad_bodies_get_error_frames_and_the_connection_goes_on() {
    let mut server = open_server(Limits::default());
    let mut input = BytesMut::new();
    input.extend_from_slice(&raw(opcode::PUBLISH, 0, 1, b"\xa1\x66target\x05"));
    input.extend_from_slice(&raw(opcode::PING, 0, 2, b"\xa0\x00"));
    input.extend_from_slice(&raw(0x7E, 0, 3, b"\xa0"));
    input.extend_from_slice(&raw(opcode::PONG, 0, 4, b"\xa0"));
    input.extend_from_slice(&raw(opcode::PING, 0x08, 5, b"\xa0"));
    input.extend_from_slice(&raw(opcode::PING, 0x80, 6, b"\xa0"));
    input.extend_from_slice(&raw(opcode::PING, 0x01, 7, b"\xa0"));
    input.extend_from_slice(&raw(opcode::PING, 0x07, 8, b"\x00\x00\x00\x01\xa0"));
    input.extend_from_slice(&raw(opcode::PING, 0, 9, b"\xa0"));
    let mut out = BytesMut::new();
    server.handle_input(&mut input, &mut out).unwrap();
    assert!(input.is_empty());
    let expected = [
        (1, 3),
        (2, 3),
        (3, 5),
        (4, 5),
        (5, 3),
        (6, 3),
        (7, 3),
        (8, 6),
    ];
    assert_eq!(errors(&mut out), expected);
    assert!(matches!(
        server.poll_event(),
        Some(ServerEvent::Request {
            correlation_id: 9,
            request: Request::Ping(Ping {}),
            ..
        })
    ));
    assert!(!server.is_closed());
}

#[test]
fn decompression_bomb_is_refused_with_code_4() {
    let limits = Limits {
        body_bytes_max: 64 * 1024,
        ..Default::default()
    };
    let mut server = open_server(limits);
    let mut bomb = Vec::new();
    Compression::Zstd.compress(&vec![0u8; 64 << 20], &mut bomb);
    assert!(bomb.len() < 10_000);
    let mut input = raw(opcode::PUBLISH, 0x03, 42, &bomb);
    let mut out = BytesMut::new();
    server.handle_input(&mut input, &mut out).unwrap();
    assert_eq!(errors(&mut out), [(42, 4)]);
}

#[test]
fn frame_above_the_limit_closes_before_buffering() {
    let limits = Limits {
        frame_bytes_max: 1000,
        ..Default::default()
    };
    let mut server = open_server(limits);
    let mut input = BytesMut::new();
    input.put_u32(1001);
    input.put_u8(0xB7);
    let mut out = BytesMut::new();
    assert!(server.handle_input(&mut input, &mut out).is_err());
    assert!(server.is_closed());
    assert_eq!(errors(&mut out), [(0, 4)]);
}

#[test]
fn garbage_never_panics() {
    let mut seed = 0x1234_5678_u64;
    for round in 0..2000 {
        let mut server = if round % 2 == 0 {
            open_server(Limits::default())
        } else {
            ServerConn::new(ServerConfig::default())
        };
        let len = (round % 64) + 1;
        let mut input = BytesMut::new();
        input.extend_from_slice(&[0, 0, 0, len as u8 + 12, 0xB7, 1, (round % 256) as u8, 0]);
        input.put_u64(round as u64);
        for _ in 0..len {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            input.put_u8(seed as u8);
        }
        let mut out = BytesMut::new();
        let _ = server.handle_input(&mut input, &mut out);
        while server.poll_event().is_some() {}
    }
}
