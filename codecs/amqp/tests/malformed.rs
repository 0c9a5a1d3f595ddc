//! Malformed and out-of-order input through the public API only: garbage, truncations, huge
//! sizes, deep tables, frames in the wrong state. Each must give the documented close code
//! (or a `ConnError` for a bad protocol header) and never a panic.

use bytes::{BufMut, Bytes, BytesMut};
use portask_amqp::frame::{self, FrameDecoder};
use portask_amqp::generated::*;
use portask_amqp::{
    ConnError, FieldTable, FieldValue, Frame, ServerConfig, ServerConn, ServerEvent,
};

/// Header, start-ok (PLAIN guest), tune-ok, open: a client up to an open connection.
fn handshake() -> BytesMut {
    let mut s = BytesMut::new();
    frame::encode_protocol_header(&mut s);
    let start_ok = ConnectionStartOk {
        response: Bytes::from_static(b"\0guest\0guest"),
        ..Default::default()
    };
    frame::encode_method(0, &start_ok.into(), &mut s);
    let tune_ok = ConnectionTuneOk {
        channel_max: 10,
        frame_max: 4096,
        heartbeat: 0,
    };
    frame::encode_method(0, &tune_ok.into(), &mut s);
    frame::encode_method(0, &ConnectionOpen::default().into(), &mut s);
    s
}

fn with_channel_1() -> BytesMut {
    let mut s = handshake();
    frame::encode_method(1, &ChannelOpen::default().into(), &mut s);
    s
}

/// Runs `input` through a server accepting everything; returns the reply code of the last
/// `connection.close` it wrote (or channel.close when `channel` is set) and whether it closed.
fn run(input: &[u8]) -> (Option<u16>, Option<u16>, ServerConn) {
    let mut conn = ServerConn::new(ServerConfig::default(), 0);
    let mut rbuf = BytesMut::from(input);
    let mut out = BytesMut::new();
    conn.handle_input(&mut rbuf, 0, &mut out).unwrap();
    while let Some(ev) = conn.poll_event() {
        match ev {
            ServerEvent::Login { .. } => conn.accept_login(&mut out),
            ServerEvent::OpenVhost { .. } => conn.accept_open(&mut out),
            _ => {}
        }
    }
    let (mut conn_close, mut chan_close) = (None, None);
    let mut d = FrameDecoder::client(1 << 20, 16);
    while let Some(f) = d.decode(&mut out).unwrap() {
        match f {
            Frame::Method {
                method: Method::ConnectionClose(c),
                ..
            } => conn_close = Some(c.reply_code),
            Frame::Method {
                method: Method::ChannelClose(c),
                ..
            } => chan_close = Some(c.reply_code),
            _ => {}
        }
    }
    (conn_close, chan_close, conn)
}

fn with_frame(mut s: BytesMut, kind: u8, channel: u16, payload: &[u8]) -> BytesMut {
    s.put_u8(kind);
    s.put_u16(channel);
    s.put_u32(payload.len() as u32);
    s.put_slice(payload);
    s.put_u8(0xce);
    s
}

#[test]
fn bad_protocol_headers_get_ours_back() {
    for input in [
        &b"AMQP\x00\x00\x09\x02"[..],
        b"AMQP\x01\x01\x00\x09",
        b"GET / HTTP/1.1\r\n",
        b"\x16\x03\x01",
    ] {
        let mut conn = ServerConn::new(ServerConfig::default(), 0);
        let mut out = BytesMut::new();
        let r = conn.handle_input(&mut BytesMut::from(input), 0, &mut out);
        assert_eq!(r, Err(ConnError::BadProtocolHeader), "{input:?}");
        assert_eq!(&out[..], b"AMQP\x00\x00\x09\x01");
        assert!(conn.is_closed());
    }
}

#[test]
fn framing_errors_close_with_501() {
    let mut h = BytesMut::new();
    frame::encode_protocol_header(&mut h);
    // Size far above the pre-auth limit: rejected from the 7-byte header alone.
    let mut huge = h.clone();
    huge.put_slice(&[1, 0, 0, 0x7f, 0xff, 0xff, 0xff]);
    assert_eq!(run(&huge).0, Some(reply_code::FRAME_ERROR));
    assert!(run(&huge).2.is_closed());
    // Just above 8192 before tuning.
    let mut big = h.clone();
    big.put_slice(&[1, 0, 0]);
    big.put_u32(8192 - 7);
    assert_eq!(run(&big).0, Some(reply_code::FRAME_ERROR));
    let mut no_end = with_frame(h.clone(), 8, 0, b"");
    *no_end.last_mut().unwrap() = 0;
    assert_eq!(run(&no_end).0, Some(reply_code::FRAME_ERROR));
    assert_eq!(
        run(&with_frame(h.clone(), 9, 0, b"")).0,
        Some(reply_code::FRAME_ERROR)
    );
    // Garbage arguments for connection.start-ok.
    assert_eq!(
        run(&with_frame(h.clone(), 1, 0, &[0, 10, 0, 11, 0xff])).0,
        Some(reply_code::FRAME_ERROR)
    );
    assert_eq!(
        run(&with_frame(h, 1, 0, &[0, 10])).0,
        Some(reply_code::FRAME_ERROR)
    );
}

#[test]
fn deep_tables_are_refused() {
    let mut v = FieldValue::Void;
    for _ in 0..40 {
        v = FieldValue::Table(FieldTable(vec![("n".into(), v)]));
    }
    let start_ok = ConnectionStartOk {
        client_properties: FieldTable(vec![("deep".into(), v)]),
        response: Bytes::from_static(b"\0a\0b"),
        ..Default::default()
    };
    let mut s = BytesMut::new();
    frame::encode_protocol_header(&mut s);
    frame::encode_method(0, &start_ok.into(), &mut s);
    let (code, _, conn) = run(&s);
    assert_eq!(code, Some(reply_code::FRAME_ERROR));
    assert!(conn.is_closed());
}

#[test]
fn state_errors_get_rabbitmq_codes() {
    let m = |channel, method: Method| {
        let mut s = with_channel_1();
        frame::encode_method(channel, &method, &mut s);
        run(&s).0
    };
    assert_eq!(
        m(2, QueueDeclare::default().into()),
        Some(reply_code::CHANNEL_ERROR)
    );
    assert_eq!(
        m(11, ChannelOpen::default().into()),
        Some(reply_code::CHANNEL_ERROR)
    );
    assert_eq!(
        m(1, ChannelOpen::default().into()),
        Some(reply_code::CHANNEL_ERROR)
    );
    assert_eq!(
        m(1, BasicDeliver::default().into()),
        Some(reply_code::COMMAND_INVALID)
    );
    assert_eq!(
        m(0, QueueDeclare::default().into()),
        Some(reply_code::COMMAND_INVALID)
    );
    assert_eq!(
        m(1, ConnectionTuneOk::default().into()),
        Some(reply_code::COMMAND_INVALID)
    );
    assert_eq!(
        m(0, ConnectionTuneOk::default().into()),
        Some(reply_code::UNEXPECTED_FRAME)
    );
    assert_eq!(m(1, QueueDeclare::default().into()), None);
    let unknown = with_frame(with_channel_1(), 1, 1, &[0, 60, 0, 99]);
    assert_eq!(run(&unknown).0, Some(reply_code::NOT_IMPLEMENTED));
}

#[test]
fn content_out_of_sequence_is_505() {
    let mut header = BytesMut::new();
    frame::encode_header(1, 3, &BasicProperties::default(), &mut header);
    let mut s = with_channel_1();
    s.extend_from_slice(&header);
    assert_eq!(run(&s).0, Some(reply_code::UNEXPECTED_FRAME));
    let s = with_frame(with_channel_1(), 3, 1, b"abc");
    assert_eq!(run(&s).0, Some(reply_code::UNEXPECTED_FRAME));
    // Publish, header announcing 3 bytes, body of 4.
    let mut s = with_channel_1();
    frame::encode_method(1, &BasicPublish::default().into(), &mut s);
    s.extend_from_slice(&header);
    let s = with_frame(s, 3, 1, b"abcd");
    assert_eq!(run(&s).0, Some(reply_code::UNEXPECTED_FRAME));
    // A method between publish and its header.
    let mut s = with_channel_1();
    frame::encode_method(1, &BasicPublish::default().into(), &mut s);
    frame::encode_method(1, &BasicQos::default().into(), &mut s);
    assert_eq!(run(&s).0, Some(reply_code::UNEXPECTED_FRAME));
    // Content on channel 0 and for another class.
    assert_eq!(
        run(&with_frame(with_channel_1(), 3, 0, b"x")).0,
        Some(reply_code::UNEXPECTED_FRAME)
    );
    let other = [0, 50, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    assert_eq!(
        run(&with_frame(with_channel_1(), 2, 1, &other)).0,
        Some(reply_code::UNEXPECTED_FRAME)
    );
}

#[test]
fn too_large_content_is_a_soft_error() {
    let mut s = with_channel_1();
    frame::encode_method(1, &BasicPublish::default().into(), &mut s);
    frame::encode_header(1, u64::MAX, &BasicProperties::default(), &mut s);
    let s = with_frame(s, 3, 1, b"ignored until close-ok");
    let (conn_close, chan_close, conn) = run(&s);
    assert_eq!(
        (conn_close, chan_close),
        (None, Some(reply_code::PRECONDITION_FAILED))
    );
    assert!(!conn.is_closed());
}

#[test]
fn tune_ok_below_frame_min_size_is_530() {
    let mut s = BytesMut::new();
    frame::encode_protocol_header(&mut s);
    let start_ok = ConnectionStartOk {
        response: Bytes::from_static(b"\0a\0b"),
        ..Default::default()
    };
    frame::encode_method(0, &start_ok.into(), &mut s);
    let tune_ok = ConnectionTuneOk {
        channel_max: 0,
        frame_max: 512,
        heartbeat: 0,
    };
    frame::encode_method(0, &tune_ok.into(), &mut s);
    assert_eq!(run(&s).0, Some(reply_code::NOT_ALLOWED));
}

#[test]
fn bad_credentials_and_mechanisms() {
    let start = |mechanism: &str, response: &'static [u8]| {
        let mut s = BytesMut::new();
        frame::encode_protocol_header(&mut s);
        let m = ConnectionStartOk {
            mechanism: mechanism.into(),
            response: Bytes::from_static(response),
            ..Default::default()
        };
        frame::encode_method(0, &m.into(), &mut s);
        run(&s)
    };
    assert_eq!(
        start("PLAIN", b"nonsense").0,
        Some(reply_code::ACCESS_REFUSED)
    );
    assert_eq!(
        start("AMQPLAIN", b"\x05LOGIN").0,
        Some(reply_code::ACCESS_REFUSED)
    );
    assert_eq!(start("EXTERNAL", b"").0, Some(reply_code::COMMAND_INVALID));
}

#[test]
fn every_truncation_of_a_session_is_partial_not_an_error() {
    let s = with_channel_1();
    for n in 0..s.len() {
        let mut conn = ServerConn::new(ServerConfig::default(), 0);
        let mut rbuf = BytesMut::from(&s[..n]);
        let mut out = BytesMut::new();
        conn.handle_input(&mut rbuf, 0, &mut out).unwrap();
        assert!(!conn.is_closed(), "closed at {n}");
    }
}

#[test]
fn pseudo_random_garbage_never_panics() {
    let mut x = 0x1234_5678_9abc_def0u64;
    let prefix = with_channel_1();
    for round in 0..2000 {
        let mut data = if round % 2 == 0 {
            prefix.to_vec()
        } else {
            Vec::new()
        };
        for _ in 0..(round % 300) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            data.push(x as u8);
        }
        portask_amqp::fuzzing::server_conn(&data);
        portask_amqp::fuzzing::decode_frames(&data);
        portask_amqp::fuzzing::decode_method(&data);
    }
}
