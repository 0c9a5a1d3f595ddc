//! Shared helpers: driving a client and a server against each other in memory.
#![allow(dead_code)]

use bytes::{Bytes, BytesMut};
use portask_amqp::generated::{BasicPublish, ChannelOpen};
use portask_amqp::{
    BasicProperties, ClientConfig, ClientConn, ClientEvent, ServerConfig, ServerConn, ServerEvent,
};

/// A client and a server joined by two in-memory pipes.
pub(crate) struct Pair {
    pub(crate) client: ClientConn,
    pub(crate) server: ServerConn,
    pub(crate) to_server: BytesMut,
    pub(crate) to_client: BytesMut,
    pub(crate) client_events: Vec<ClientEvent>,
    pub(crate) server_events: Vec<ServerEvent>,
    pub(crate) now_ms: u64,
    /// Every byte the client wrote, for seed corpora.
    pub(crate) client_bytes: Vec<u8>,
}

impl Pair {
    pub(crate) fn new(client: ClientConfig, server: ServerConfig) -> Self {
        let mut to_server = BytesMut::new();
        let client = ClientConn::new(client, 0, &mut to_server);
        Self {
            client,
            server: ServerConn::new(server, 0),
            client_bytes: to_server.to_vec(),
            to_server,
            to_client: BytesMut::new(),
            client_events: Vec::new(),
            server_events: Vec::new(),
            now_ms: 0,
        }
    }

    /// Moves bytes both ways until nothing moves, accepting logins and vhosts.
    pub(crate) fn step(&mut self) {
        for _ in 0..100 {
            let mut rbuf = std::mem::take(&mut self.to_server);
            let mut out = BytesMut::new();
            self.server
                .handle_input(&mut rbuf, self.now_ms, &mut out)
                .unwrap();
            assert!(rbuf.is_empty(), "server left {} bytes", rbuf.len());
            while let Some(ev) = self.server.poll_event() {
                match &ev {
                    ServerEvent::Login { .. } => self.server.accept_login(&mut out),
                    ServerEvent::OpenVhost { .. } => self.server.accept_open(&mut out),
                    _ => {}
                }
                self.server_events.push(ev);
            }
            let mut wbuf = BytesMut::new();
            self.client
                .handle_input(&mut out, self.now_ms, &mut wbuf)
                .unwrap();
            while let Some(ev) = self.client.poll_event() {
                self.client_events.push(ev);
            }
            if wbuf.is_empty() {
                return;
            }
            self.client_bytes.extend_from_slice(&wbuf);
            self.to_server = wbuf;
        }
        panic!("no quiescence");
    }

    /// Server output delivered to the client; the client's answers go back to the server.
    pub(crate) fn server_output(&mut self, mut out: BytesMut) {
        let mut w = BytesMut::new();
        self.client
            .handle_input(&mut out, self.now_ms, &mut w)
            .unwrap();
        while let Some(ev) = self.client.poll_event() {
            self.client_events.push(ev);
        }
        self.client_bytes.extend_from_slice(&w);
        self.to_server.extend_from_slice(&w);
        self.step();
    }

    /// Client-side write, then step.
    pub(crate) fn client_send(&mut self, f: impl FnOnce(&mut ClientConn, &mut BytesMut)) {
        let mut out = BytesMut::new();
        f(&mut self.client, &mut out);
        self.client_bytes.extend_from_slice(&out);
        self.to_server.extend_from_slice(&out);
        self.step();
    }
}

/// A session: handshake, channel 1 open, one publish of `body` split at frame_max 4096.
pub(crate) fn publishing_session(body: &[u8]) -> Pair {
    let client = ClientConfig {
        frame_max: 4096,
        ..Default::default()
    };
    let mut p = Pair::new(client, ServerConfig::default());
    p.step();
    p.client_send(|c, out| c.send_method(1, &ChannelOpen::default().into(), out));
    let body = Bytes::copy_from_slice(body);
    let props = BasicProperties {
        content_type: Some("text/plain".into()),
        ..Default::default()
    };
    let publish = BasicPublish {
        routing_key: "q".into(),
        ..Default::default()
    };
    p.client_send(|c, out| c.publish(1, publish, &props, &body, out));
    p
}
