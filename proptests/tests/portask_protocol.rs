//! Every Portask protocol request and response: a random value encodes, decodes to the same
//! value and re-encodes to the same bytes, also through a client/server pair with each
//! compression. A client session split at arbitrary points gives the server the same events
//! as a single push.

#[path = "portask_protocol/gen.rs"]
mod generate;

use bytes::BytesMut;
use generate::{Gen, REQUESTS, RESPONSES, delivery, request, response};
use portask_protocol::{
    ClientConfig, ClientConn, ClientEvent, Compression, Request, Response, ServerConfig,
    ServerConn, ServerEvent,
};
use proptest::prelude::*;

fn connect(compression: Vec<Compression>) -> (ClientConn, ServerConn, BytesMut) {
    let cfg = ClientConfig {
        compression,
        ..Default::default()
    };
    let (mut client, mut server) = (
        ClientConn::new(cfg),
        ServerConn::new(ServerConfig::default()),
    );
    let (mut to_server, mut to_client) = (BytesMut::new(), BytesMut::new());
    client.start(&mut to_server);
    let mut session = to_server.clone();
    server.handle_input(&mut to_server, &mut to_client).unwrap();
    assert!(matches!(
        server.poll_event(),
        Some(ServerEvent::Hello { .. })
    ));
    server.accept_hello(&mut to_client);
    client.handle_input(&mut to_client).unwrap();
    assert!(matches!(
        client.poll_event(),
        Some(ClientEvent::Connected { .. })
    ));
    session.clear();
    (client, server, session)
}

fn compressions(g: &mut Gen) -> Vec<Compression> {
    match g.below(4) {
        0 => vec![],
        n => vec![Compression::ALL[n as usize - 1]],
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn every_request_round_trips(seed: u64) {
        let mut g = Gen(seed);
        for kind in 0..REQUESTS {
            let req = request(&mut g, kind);
            let mut body = BytesMut::new();
            req.encode_body(&mut body);
            let back = Request::decode(req.opcode(), &body, 32).unwrap();
            prop_assert_eq!(&back, &req);
            let mut again = BytesMut::new();
            back.encode_body(&mut again);
            prop_assert_eq!(again, body);
        }
    }

    #[test]
    fn every_response_round_trips(seed: u64) {
        let mut g = Gen(seed);
        for kind in 0..RESPONSES {
            let resp = response(&mut g, kind);
            let mut body = BytesMut::new();
            resp.encode_body(&mut body);
            let back = Response::decode(resp.opcode(), &body, 32).unwrap();
            prop_assert_eq!(&back, &resp);
            let mut again = BytesMut::new();
            back.encode_body(&mut again);
            prop_assert_eq!(again, body);
        }
    }

    #[test]
    fn requests_and_responses_cross_a_connection(seed: u64) {
        let mut g = Gen(seed);
        let (mut client, mut server, _) = connect(compressions(&mut g));
        let (mut to_server, mut to_client) = (BytesMut::new(), BytesMut::new());
        for kind in 1..REQUESTS {
            let req = request(&mut g, kind);
            let id = client.send_request(&req, &mut to_server).unwrap();
            server.handle_input(&mut to_server, &mut to_client).unwrap();
            let ev = server.poll_event();
            let expected = ServerEvent::Request { correlation_id: id, no_reply: false, request: req };
            prop_assert_eq!(ev, Some(expected));
            let resp = response(&mut g, kind % RESPONSES);
            server.send_response(id, &resp, &mut to_client);
            let d = delivery(&mut g);
            server.send_delivery(id, &d, &mut to_client);
            client.handle_input(&mut to_client).unwrap();
            let expected = ClientEvent::Response { correlation_id: id, more: false, response: resp };
            prop_assert_eq!(client.poll_event(), Some(expected));
            let expected = ClientEvent::Delivery { correlation_id: id, delivery: d };
            prop_assert_eq!(client.poll_event(), Some(expected));
        }
    }

    #[test]
    fn chunking_does_not_change_events(seed: u64, cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12)) {
        let mut g = Gen(seed);
        let compression = compressions(&mut g);
        let (mut client, _, mut session) = connect(compression.clone());
        for _ in 0..6 {
            let kind = 1 + g.below(REQUESTS - 1);
            let req = request(&mut g, kind);
            client.send_request(&req, &mut session).unwrap();
        }
        let (_, mut whole, _) = connect(compression.clone());
        let (mut rbuf, mut out) = (session.clone(), BytesMut::new());
        whole.handle_input(&mut rbuf, &mut out).unwrap();
        let want: Vec<_> = std::iter::from_fn(|| whole.poll_event()).collect();
        prop_assert_eq!(want.len(), 6);
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(session.len() + 1)).collect();
        points.push(session.len());
        points.sort_unstable();
        let (_, mut split, _) = connect(compression);
        let (mut rbuf, mut got, mut at) = (BytesMut::new(), Vec::new(), 0);
        for p in points {
            rbuf.extend_from_slice(&session[at..p]);
            at = p;
            split.handle_input(&mut rbuf, &mut out).unwrap();
            got.extend(std::iter::from_fn(|| split.poll_event()));
        }
        prop_assert_eq!(got, want);
    }
}
