//! A client and a server connected back to back, moving bytes by hand.

#![allow(dead_code)]

use bytes::BytesMut;
use portask_protocol::{
    ClientConfig, ClientConn, ClientEvent, ServerConfig, ServerConn, ServerEvent,
};

/// A connected pair; `client_bytes` records everything the client sent.
pub(crate) struct Pair {
    pub(crate) client: ClientConn,
    pub(crate) server: ServerConn,
    pub(crate) to_server: BytesMut,
    pub(crate) to_client: BytesMut,
    pub(crate) client_bytes: Vec<u8>,
    pub(crate) server_events: Vec<ServerEvent>,
    pub(crate) client_events: Vec<ClientEvent>,
}

impl Pair {
    /// A pair that has completed the handshake (the server accepts every Hello).
    pub(crate) fn connected(client: ClientConfig, server: ServerConfig) -> Self {
        let mut p = Self {
            client: ClientConn::new(client),
            server: ServerConn::new(server),
            to_server: BytesMut::new(),
            to_client: BytesMut::new(),
            client_bytes: Vec::new(),
            server_events: Vec::new(),
            client_events: Vec::new(),
        };
        p.client.start(&mut p.to_server);
        p.step();
        assert!(p.client.negotiated().is_some(), "{:?}", p.client_events);
        p
    }

    /// Moves bytes both ways until nothing moves; accepts Hello events.
    pub(crate) fn step(&mut self) {
        while !self.to_server.is_empty() || !self.to_client.is_empty() {
            self.client_bytes.extend_from_slice(&self.to_server);
            let _ = self
                .server
                .handle_input(&mut self.to_server, &mut self.to_client);
            while let Some(ev) = self.server.poll_event() {
                if matches!(ev, ServerEvent::Hello { .. }) {
                    self.server.accept_hello(&mut self.to_client);
                    let _ = self
                        .server
                        .handle_input(&mut self.to_server, &mut self.to_client);
                }
                self.server_events.push(ev);
            }
            let _ = self.client.handle_input(&mut self.to_client);
            while let Some(ev) = self.client.poll_event() {
                self.client_events.push(ev);
            }
        }
    }

    /// Sends `req` from the client and steps.
    pub(crate) fn request(&mut self, req: &portask_protocol::Request) -> u64 {
        let id = self.client.send_request(req, &mut self.to_server).unwrap();
        self.step();
        id
    }
}
