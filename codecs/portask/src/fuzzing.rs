//! Entry points for the fuzz targets. Compiled with `cfg(fuzzing)` or the `fuzzing` feature,
//! so stable builds type-check them and replay the seed corpus.

use bytes::BytesMut;

use crate::body::{Done, Request, Response};
use crate::conn::server::{ServerConfig, ServerConn, ServerEvent};
use crate::frame::{FrameDecoder, flags};

/// Feeds `data` through a [`ServerConn`] in chunks whose sizes come from the first byte,
/// accepting every `Hello` and answering every request, and checks the invariants: no panic;
/// everything written is a sequence of well-formed server frames within the limit; nothing
/// is reported after the connection closed; every decoded request re-encodes to a body that
/// decodes to the same request.
pub fn server_conn(data: &[u8]) {
    let (chunk, data) = match data.split_first() {
        Some((c, rest)) => (usize::from(*c % 64) + 1, rest),
        None => (1, data),
    };
    let cfg = ServerConfig::default();
    let frame_max = cfg.limits.frame_bytes_max;
    let mut conn = ServerConn::new(cfg);
    let (mut rbuf, mut out) = (BytesMut::new(), BytesMut::new());
    let mut check = FrameDecoder::new(frame_max);
    for part in data.chunks(chunk) {
        rbuf.extend_from_slice(part);
        let was_closed = conn.is_closed();
        let mut failed = conn.handle_input(&mut rbuf, &mut out).is_err();
        while let Some(ev) = conn.poll_event() {
            assert!(!was_closed, "event {ev:?} after close");
            match ev {
                ServerEvent::Hello { .. } => {
                    conn.accept_hello(&mut out);
                    failed |= conn.handle_input(&mut rbuf, &mut out).is_err();
                }
                ServerEvent::Request {
                    correlation_id,
                    request,
                    ..
                } => {
                    check_round_trip(&request);
                    conn.send_response(correlation_id, &Response::Done(Done {}), &mut out);
                }
            }
        }
        if was_closed {
            assert!(out.is_empty(), "output after close");
        }
        check_output(&mut check, &mut out);
        if failed {
            assert!(conn.is_closed());
            return;
        }
    }
}

fn check_round_trip(request: &Request) {
    let mut body = BytesMut::new();
    request.encode_body(&mut body);
    let again = Request::decode(request.opcode(), &body, 64).expect("re-encoding decodes");
    assert_eq!(&again, request);
}

/// Every byte the server wrote must split into complete server frames.
fn check_output(d: &mut FrameDecoder, out: &mut BytesMut) {
    while !out.is_empty() {
        match d.decode(out) {
            Ok(Some(f)) => assert!(f.header.has(flags::RESPONSE), "{:?}", f.header),
            other => panic!("server wrote a bad frame: {other:?}"),
        }
    }
}

/// Decodes `data` as a stream of frames and each body as the request or response its opcode
/// names; whatever decodes must re-encode and decode to the same value.
pub fn decode_frames(data: &[u8]) {
    let mut buf = BytesMut::from(data);
    let mut d = FrameDecoder::new(1 << 20);
    let limits = crate::Limits::default();
    while let Ok(Some(f)) = d.decode(&mut buf) {
        let Ok(body) = f.decompressed(f.header.compression().ok().flatten(), &limits) else {
            continue;
        };
        if let Ok(req) = Request::decode(f.header.opcode, &body, 32) {
            check_round_trip(&req);
        } else if let Ok(resp) = Response::decode(f.header.opcode, &body, 32) {
            let mut again = BytesMut::new();
            resp.encode_body(&mut again);
            let back = Response::decode(resp.opcode(), &again, 64).expect("re-encoding decodes");
            assert_eq!(back, resp);
        }
    }
}
