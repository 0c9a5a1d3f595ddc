//! Deterministic random values of every Portask protocol body (splitmix64, seeded by
//! proptest), so one `u64` strategy covers every request and response.

use bytes::Bytes;
use portask_protocol::body::*;
use portask_protocol::{Request, Response};

pub(crate) struct Gen(pub(crate) u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn bool(&mut self) -> bool {
        self.next() & 1 == 1
    }

    fn u32(&mut self) -> u32 {
        self.next() as u32
    }

    fn i32(&mut self) -> i32 {
        self.next() as i32
    }

    fn i64(&mut self) -> i64 {
        self.next() as i64
    }

    fn text(&mut self) -> String {
        let n = [0, 1, 5, 40, 300][self.below(5) as usize];
        (0..n)
            .map(|_| char::from_u32(0x20 + self.below(0x2000) as u32).unwrap_or('?'))
            .collect()
    }

    fn bytes(&mut self) -> Bytes {
        let n = [0, 1, 16, 1000, 70_000][self.below(5) as usize];
        Bytes::from((0..n).map(|_| self.next() as u8).collect::<Vec<u8>>())
    }

    fn opt<T>(&mut self, f: impl FnOnce(&mut Self) -> T) -> Option<T> {
        self.bool().then(|| f(self))
    }

    fn vec<T>(&mut self, f: impl FnMut(&mut Self) -> T) -> Vec<T> {
        let n = self.below(4) as usize;
        let mut f = f;
        (0..n).map(|_| f(self)).collect()
    }

    fn texts(&mut self) -> Vec<String> {
        self.vec(Self::text)
    }

    fn value(&mut self, depth: u32) -> Value {
        match self.below(if depth == 0 { 6 } else { 8 }) {
            0 => Value::Null,
            1 => Value::Bool(self.bool()),
            2 => Value::Int(self.i64()),
            3 => Value::Float(self.i32() as f64 / 7.0),
            4 => Value::Text(self.text()),
            5 => Value::Bytes(self.bytes()),
            6 => Value::Array(self.vec(|g| g.value(depth - 1))),
            _ => Value::Map(self.vec(|g| (g.text(), g.value(depth - 1)))),
        }
    }

    pub(crate) fn message(&mut self) -> Message {
        Message {
            id: self.opt(|g| std::array::from_fn(|_| g.next() as u8)),
            key: self.opt(Self::bytes),
            headers: self.vec(|g| (g.text(), g.bytes())),
            payload: self.bytes(),
            timestamp: self.opt(Self::i64),
            content_type: self.opt(Self::text),
            priority: self.opt(|g| g.next() as u8),
            expiration_ms: self.opt(Self::next),
        }
    }

    fn target(&mut self) -> Target {
        if self.bool() {
            Target::Topic {
                topic: self.text(),
                partition: self.opt(Self::i32),
            }
        } else {
            Target::Exchange {
                vhost: self.text(),
                exchange: self.text(),
                routing_key: self.text(),
                mandatory: self.bool(),
            }
        }
    }

    fn offsets(&mut self) -> Vec<PartitionOffset> {
        self.vec(|g| PartitionOffset {
            topic: g.text(),
            partition: g.i32(),
            offset: g.i64(),
        })
    }

    fn bind(&mut self) -> Bind {
        Bind {
            vhost: self.text(),
            queue_or_exchange: self.text(),
            exchange: self.text(),
            routing_key: self.text(),
        }
    }
}

/// Number of request kinds [`request`] generates (every `Request` variant).
pub(crate) const REQUESTS: u64 = 29;
/// Number of response kinds [`response`] generates (every `Response` variant).
pub(crate) const RESPONSES: u64 = 14;

/// A random request of kind `kind` (0..REQUESTS).
pub(crate) fn request(g: &mut Gen, kind: u64) -> Request {
    match kind {
        0 => Request::Hello(Hello {
            versions: g.vec(|g| g.next() as u8),
            client: g.text(),
            user: g.opt(Gen::text),
            password: g.opt(Gen::text),
            compression: g.texts(),
        }),
        1 => Request::Ping(Ping {}),
        2 => Request::Publish(Publish {
            target: g.target(),
            messages: g.vec(Gen::message),
            durable: g.bool(),
        }),
        3 => Request::Fetch(Fetch {
            topic: g.text(),
            partition: g.i32(),
            offset: g.i64(),
            max_messages: g.u32(),
            max_bytes: g.u32(),
            max_wait_ms: g.u32(),
        }),
        4 => Request::Subscribe(Subscribe {
            group: g.text(),
            topics: g.texts(),
            member_id: g.opt(Gen::text),
        }),
        5 => Request::Heartbeat(Heartbeat {
            group: g.text(),
            member_id: g.text(),
            generation: g.i32(),
        }),
        6 => Request::Leave(Leave {
            group: g.text(),
            member_id: g.text(),
        }),
        7 => Request::Commit(Commit {
            group: g.text(),
            offsets: g.offsets(),
            member_id: g.opt(Gen::text),
            generation: g.opt(Gen::i32),
        }),
        8 => Request::DescribeGroups(DescribeGroups { groups: g.texts() }),
        9 => Request::ListGroups(ListGroups {}),
        10 => Request::DeleteGroup(DeleteGroup { group: g.text() }),
        _ => request_more(g, kind),
    }
}

fn request_more(g: &mut Gen, kind: u64) -> Request {
    match kind {
        11 => Request::Consume(Consume {
            vhost: g.text(),
            queue: g.text(),
            credit: g.u32(),
            no_ack: g.bool(),
        }),
        12 => Request::Credit(Credit {
            consumer_tag: g.text(),
            credit: g.u32(),
        }),
        13 => Request::Ack(Ack {
            delivery_tags: g.vec(Gen::next),
            multiple: g.bool(),
        }),
        14 => Request::Nack(Nack {
            delivery_tags: g.vec(Gen::next),
            requeue: g.bool(),
        }),
        15 => Request::Cancel(Cancel {
            consumer_tag: g.text(),
        }),
        16 => Request::CreateTopic(CreateTopic {
            name: g.text(),
            partitions: g.i32(),
            configs: g.vec(|g| (g.text(), g.text())),
        }),
        17 => Request::DeleteTopic(DeleteTopic { name: g.text() }),
        18 => Request::ListTopics(ListTopics {}),
        19 => Request::DeclareQueue(DeclareQueue {
            vhost: g.text(),
            name: g.text(),
            durable: g.bool(),
            auto_delete: g.bool(),
            arguments: g.vec(|g| (g.text(), g.value(3))),
        }),
        20 => Request::DeleteQueue(DeleteQueue {
            vhost: g.text(),
            name: g.text(),
            if_unused: g.bool(),
            if_empty: g.bool(),
        }),
        21 => Request::ListQueues(ListQueues {
            vhost: g.opt(Gen::text),
        }),
        22 => Request::DeclareExchange(DeclareExchange {
            vhost: g.text(),
            name: g.text(),
            kind: g.text(),
            durable: g.bool(),
        }),
        23 => Request::DeleteExchange(DeleteExchange {
            vhost: g.text(),
            name: g.text(),
        }),
        24 => Request::ListExchanges(ListExchanges {
            vhost: g.opt(Gen::text),
        }),
        25 => Request::Bind(g.bind()),
        26 => Request::Unbind(g.bind()),
        27 => Request::ListBindings(ListBindings {
            vhost: g.opt(Gen::text),
        }),
        _ => Request::Stats(Stats {}),
    }
}

/// A random response of kind `kind` (0..RESPONSES).
pub(crate) fn response(g: &mut Gen, kind: u64) -> Response {
    match kind {
        0 => Response::Done(Done {}),
        1 => Response::HelloOk(HelloOk {
            version: g.next() as u8,
            server: g.text(),
            compression: g.opt(Gen::text),
            max_frame_bytes: g.u32(),
        }),
        2 => Response::Pong(Pong {}),
        3 => Response::PublishOk(PublishOk {
            results: g.vec(|g| match g.bool() {
                true => PublishResult::Appended {
                    partition: g.i32(),
                    offset: g.i64(),
                },
                false => PublishResult::Routed(g.bool()),
            }),
        }),
        4 => Response::FetchOk(FetchOk {
            high_watermark: g.i64(),
            messages: g.vec(|g| StoredMessage {
                offset: g.i64(),
                message: g.message(),
            }),
        }),
        5 => Response::SubscribeOk(SubscribeOk {
            member_id: g.text(),
            generation: g.i32(),
            assignments: g.offsets(),
        }),
        6 => Response::Groups(Groups {
            groups: g.vec(|g| GroupInfo {
                group: g.text(),
                state: g.text(),
                generation: g.i32(),
                members: g.vec(|g| MemberInfo {
                    member_id: g.text(),
                    client: g.text(),
                    assignments: g.offsets(),
                }),
            }),
        }),
        _ => response_more(g, kind),
    }
}

fn response_more(g: &mut Gen, kind: u64) -> Response {
    match kind {
        7 => Response::ConsumeOk(ConsumeOk {
            consumer_tag: g.text(),
        }),
        8 => Response::Topics(Topics {
            topics: g.vec(|g| TopicInfo {
                name: g.text(),
                partitions: g.i32(),
                high_watermarks: g.vec(Gen::i64),
                configs: g.vec(|g| (g.text(), g.text())),
            }),
        }),
        9 => Response::QueueDeclared(QueueDeclared {
            name: g.text(),
            message_count: g.next(),
            consumer_count: g.u32(),
        }),
        10 => Response::Queues(Queues {
            queues: g.vec(|g| QueueInfo {
                vhost: g.text(),
                name: g.text(),
                durable: g.bool(),
                auto_delete: g.bool(),
                messages: g.next(),
                consumers: g.u32(),
            }),
        }),
        11 => Response::Exchanges(Exchanges {
            exchanges: g.vec(|g| ExchangeInfo {
                vhost: g.text(),
                name: g.text(),
                kind: g.text(),
                durable: g.bool(),
            }),
        }),
        12 => Response::Bindings(Bindings {
            bindings: g.vec(|g| BindingInfo {
                vhost: g.text(),
                source: g.text(),
                destination: g.text(),
                destination_kind: g.text(),
                routing_key: g.text(),
            }),
        }),
        _ => Response::StatsOk(StatsOk {
            entries: g.vec(|g| (g.text(), g.next())),
        }),
    }
}

/// A random delivery.
pub(crate) fn delivery(g: &mut Gen) -> Delivery {
    Delivery {
        consumer_tag: g.text(),
        delivery_tag: g.next(),
        redelivered: g.bool(),
        exchange: g.text(),
        routing_key: g.text(),
        message: g.message(),
    }
}
