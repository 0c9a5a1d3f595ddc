//! Drives `ClientConn` against `ServerConn` in memory: handshake and tuning, channel open,
//! a publish split into several body frames, a delivery back, the close handshakes, and
//! heartbeats with fake time.

mod common;

use bytes::{Bytes, BytesMut};
use common::{Pair, publishing_session};
use portask_amqp::generated::{BasicDeliver, ChannelClose, ChannelOpen, QueueDeclare};
use portask_amqp::{
    BasicProperties, ClientConfig, ClientEvent, Method, Negotiated, ServerConfig, ServerEvent,
    reply_code,
};

#[test]
fn handshake_publish_deliver_and_close() {
    let body: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
    let mut p = publishing_session(&body);
    assert_eq!(p.client_events[0], ClientEvent::Ready);
    let n = Negotiated {
        channel_max: 2047,
        frame_max: 4096,
        heartbeat_s: 0,
    };
    assert_eq!(p.server.negotiated(), n);
    assert_eq!(p.client.negotiated(), n);
    assert!(
        matches!(p.server_events[0], ServerEvent::Login { ref username, .. } if username == "guest")
    );
    assert_eq!(
        p.server_events[1],
        ServerEvent::OpenVhost { vhost: "/".into() }
    );
    assert_eq!(
        p.server_events[2],
        ServerEvent::ChannelOpened { channel: 1 }
    );
    let ServerEvent::Publish {
        channel: 1,
        method,
        properties,
        body: got,
    } = &p.server_events[3]
    else {
        panic!("{:?}", p.server_events[3]);
    };
    assert_eq!(method.routing_key, "q");
    assert_eq!(properties.content_type.as_deref(), Some("text/plain"));
    assert_eq!(&got[..], &body[..]);

    // Deliver back, split at the negotiated 4096.
    let mut out = BytesMut::new();
    let deliver = BasicDeliver {
        consumer_tag: "c1".into(),
        delivery_tag: 1,
        ..Default::default()
    };
    let props = BasicProperties::default();
    p.server.send_content(
        1,
        &deliver.clone().into(),
        &props,
        &Bytes::from(body.clone()),
        &mut out,
    );
    assert!(out.len() > 10_000 + 3 * 8);
    p.server_output(out);
    let last = p.client_events.last().unwrap();
    assert_eq!(
        last,
        &ClientEvent::Delivery {
            channel: 1,
            method: deliver.into(),
            properties: props,
            body: body.into()
        }
    );

    // Peer-initiated channel close, then connection close.
    p.client_send(|c, out| c.send_method(1, &ChannelClose::default().into(), out));
    assert_eq!(
        p.server_events.last(),
        Some(&ServerEvent::ChannelClosed { channel: 1 })
    );
    assert!(matches!(
        p.client_events.last(),
        Some(ClientEvent::Method {
            channel: 1,
            method: Method::ChannelCloseOk(_)
        })
    ));
    p.client_send(|c, out| c.close(200, "bye", out));
    assert_eq!(
        p.server_events.last(),
        Some(&ServerEvent::ConnectionClosed {
            code: 200,
            text: "bye".into()
        })
    );
    assert!(p.server.is_closed() && p.client.is_closed());
}

#[test]
fn server_soft_error_then_close_ok_reports_channel_closed() {
    let mut p = publishing_session(b"x");
    let mut out = BytesMut::new();
    p.server
        .close_channel(1, 404, "NOT_FOUND - no queue 'q'", 50, 10, &mut out);
    // Frames on the closing channel are ignored until close-ok.
    let mut ignored = BytesMut::new();
    p.server
        .send_method(1, &QueueDeclare::default().into(), &mut ignored);
    assert!(ignored.is_empty());
    p.server_output(out);
    assert!(
        matches!(p.client_events.last(), Some(ClientEvent::Method { channel: 1, method: Method::ChannelClose(c) }) if c.reply_code == 404)
    );
    p.step();
    assert_eq!(
        p.server_events.last(),
        Some(&ServerEvent::ChannelClosed { channel: 1 })
    );
    p.client_send(|c, out| c.send_method(1, &ChannelOpen::default().into(), out));
    assert_eq!(
        p.server_events.last(),
        Some(&ServerEvent::ChannelOpened { channel: 1 })
    );
}

#[test]
fn server_hard_error_waits_for_close_ok() {
    let mut p = publishing_session(b"x");
    let mut out = BytesMut::new();
    p.server.close_connection(
        reply_code::CONNECTION_FORCED,
        "CONNECTION_FORCED - bye",
        0,
        0,
        &mut out,
    );
    assert!(!p.server.is_closed());
    p.server_output(out);
    assert!(p.server.is_closed());
    assert_eq!(
        p.server_events.last(),
        Some(&ServerEvent::ConnectionClosed {
            code: 320,
            text: "CONNECTION_FORCED - bye".into()
        })
    );
    assert!(matches!(
        p.client_events.last(),
        Some(ClientEvent::Closed { code: 320, .. })
    ));
}

#[test]
fn heartbeats_are_sent_and_a_silent_peer_is_declared_dead() {
    let client = ClientConfig {
        heartbeat_s: 10,
        ..Default::default()
    };
    let mut p = Pair::new(client, ServerConfig::default());
    p.step();
    assert_eq!(p.server.negotiated().heartbeat_s, 10);
    assert_eq!(p.server.poll_timeout(), Some(5000));
    let mut out = BytesMut::new();
    // The handshake wrote frames in the first half interval, so no heartbeat is due yet.
    p.server.handle_timeout(5000, &mut out);
    assert!(out.is_empty());
    p.server.handle_timeout(10_000, &mut out);
    assert_eq!(&out[..], &[8, 0, 0, 0, 0, 0, 0, 0xce]);
    out.clear();
    p.server.handle_timeout(19_999, &mut out);
    assert!(p.server.poll_event().is_none());
    p.server.handle_timeout(20_000, &mut out);
    assert_eq!(p.server.poll_event(), Some(ServerEvent::PeerDead));
    assert!(p.server.is_closed());
    assert_eq!(p.server.poll_timeout(), None);
}

#[test]
fn the_client_heartbeat_keeps_the_server_alive() {
    let client = ClientConfig {
        heartbeat_s: 2,
        ..Default::default()
    };
    let mut p = Pair::new(client, ServerConfig::default());
    p.step();
    for t in (1000..30_000).step_by(1000) {
        p.now_ms = t;
        let mut out = BytesMut::new();
        p.client.handle_timeout(t, &mut out);
        p.to_server.extend_from_slice(&out);
        p.step();
        let mut sout = BytesMut::new();
        p.server.handle_timeout(t, &mut sout);
        assert!(p.server.poll_event().is_none(), "at {t}");
        p.server_output(sout);
    }
    assert!(!p.server.is_closed() && p.client.is_open());
}
