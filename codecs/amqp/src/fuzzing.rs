//! Entry points for the fuzz targets. Compiled with `cfg(fuzzing)` or the `fuzzing` feature,
//! so stable builds type-check them and replay the seed corpus.

use bytes::{Bytes, BytesMut};

use crate::conn::server::{ServerConfig, ServerConn, ServerEvent};
use crate::frame::{self, Frame, FrameDecoder};
use crate::generated::{FRAME_END, Method};
use crate::wire::Reader;

/// Feeds `data` through a [`ServerConn`] in chunks whose sizes come from the first byte,
/// accepting every login and vhost, and checks the invariants: no panic; everything written
/// is a sequence of well-formed frames within the negotiated frame_max; nothing is written
/// or reported after the connection is closed; the time never goes backwards.
pub fn server_conn(data: &[u8]) {
    let (chunk, data) = match data.split_first() {
        Some((c, rest)) => (usize::from(*c % 64) + 1, rest),
        None => (1, data),
    };
    let mut conn = ServerConn::new(ServerConfig::default(), 0);
    let (mut rbuf, mut out) = (BytesMut::new(), BytesMut::new());
    for (i, part) in data.chunks(chunk).enumerate() {
        let now = i as u64 * 1000;
        rbuf.extend_from_slice(part);
        let was_closed = conn.is_closed();
        let failed = conn.handle_input(&mut rbuf, now, &mut out).is_err();
        conn.handle_timeout(now, &mut out);
        while let Some(ev) = conn.poll_event() {
            assert!(!was_closed, "event {ev:?} after close");
            match ev {
                ServerEvent::Login { .. } => conn.accept_login(&mut out),
                ServerEvent::OpenVhost { .. } => conn.accept_open(&mut out),
                ServerEvent::Method { channel, .. } | ServerEvent::Publish { channel, .. }
                    if channel % 3 == 2 =>
                {
                    conn.close_channel(channel, 404, "NOT_FOUND - x", 60, 40, &mut out);
                }
                _ => {}
            }
        }
        if was_closed {
            assert!(out.is_empty(), "output after close");
        }
        if failed {
            assert_eq!(&out[..], &frame::PROTOCOL_HEADER[..]);
            return;
        }
        check_output(&mut out, conn.negotiated().frame_max.max(131_072));
    }
}

/// Every byte the server wrote must split into frames of at most `frame_max` bytes.
fn check_output(out: &mut BytesMut, frame_max: u32) {
    let mut d = FrameDecoder::client(frame_max, 64);
    while !out.is_empty() {
        match d.decode(out) {
            Ok(Some(_)) => {}
            other => panic!("server wrote a bad frame: {other:?}"),
        }
    }
}

/// Splits `data` into frames (server side, protocol header first) and checks that every method
/// and content header that decodes re-encodes to bytes that decode to the same re-encoding.
pub fn decode_frames(data: &[u8]) {
    let mut buf = BytesMut::from(data);
    let mut d = FrameDecoder::server(1 << 20, 16);
    while let Ok(Some(f)) = d.decode(&mut buf) {
        let mut out = BytesMut::new();
        match &f {
            Frame::Method { channel, method } => frame::encode_method(*channel, method, &mut out),
            Frame::Header {
                channel,
                body_size,
                properties,
                ..
            } => {
                frame::encode_header(*channel, *body_size, properties, &mut out);
            }
            _ => continue,
        }
        let bytes = out.clone().freeze();
        let mut c = FrameDecoder::client(1 << 20, 16);
        let again = c
            .decode(&mut out)
            .expect("re-encoding decodes")
            .expect("complete");
        let mut out2 = BytesMut::new();
        if let Frame::Method { channel, method } = &again {
            frame::encode_method(*channel, method, &mut out2);
        } else if let Frame::Header {
            channel,
            body_size,
            properties,
            ..
        } = &again
        {
            frame::encode_header(*channel, *body_size, properties, &mut out2);
        }
        assert_eq!(out2.freeze(), bytes);
        assert_eq!(bytes.last(), Some(&FRAME_END));
    }
}

/// Decodes `payload` as the arguments of any method id pair taken from its first 4 bytes.
pub fn decode_method(payload: &[u8]) {
    let mut r = Reader::new(Bytes::copy_from_slice(payload));
    let (Ok(c), Ok(m)) = (r.u16(), r.u16()) else {
        return;
    };
    if let Ok(method) = Method::decode(c, m, &mut r) {
        let mut out = BytesMut::new();
        method.encode(&mut out);
        let mut r2 = Reader::new(out.freeze().slice(4..));
        let again = Method::decode(c, m, &mut r2).expect("re-encoding decodes");
        assert_eq!(again.name(), method.name());
    }
}
