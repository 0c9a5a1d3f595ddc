//! The bodies of every opcode, and the [`Request`] and [`Response`] enums over them.
//!
//! Opcodes below 0x80 are requests (client to server); opcodes from 0x80 are sent by the
//! server. `docs/protocol.md` documents each body field by field.

mod admin;
mod data;
mod group;
mod handshake;
mod queue;
mod ulid;
mod value;

pub use admin::{
    Bind, BindingInfo, Bindings, CreateTopic, DeclareExchange, DeclareQueue, DeleteExchange,
    DeleteQueue, DeleteTopic, ExchangeInfo, Exchanges, ListBindings, ListExchanges, ListQueues,
    ListTopics, QueueDeclared, QueueInfo, Queues, Stats, StatsOk, TopicInfo, Topics,
};
pub use data::{Fetch, FetchOk, Message, Publish, PublishOk, PublishResult, StoredMessage, Target};
pub use group::{
    Commit, DeleteGroup, DescribeGroups, GroupInfo, Groups, Heartbeat, Leave, ListGroups,
    MemberInfo, PartitionOffset, Subscribe, SubscribeOk,
};
pub use handshake::{Done, ErrorBody, Hello, HelloOk, Ping, Pong};
pub use queue::{Ack, Cancel, Consume, ConsumeOk, Credit, Delivery, Nack};
pub use value::Value;

use bytes::BytesMut;

use crate::error::DecodeError;
use crate::wire::{decode_body, encode_body};

/// Opcode numbers (header byte 2).
pub mod opcode {
    #![allow(missing_docs)]
    pub const HELLO: u8 = 0x01;
    pub const PING: u8 = 0x02;
    pub const PUBLISH: u8 = 0x10;
    pub const FETCH: u8 = 0x11;
    pub const SUBSCRIBE: u8 = 0x20;
    pub const HEARTBEAT: u8 = 0x21;
    pub const LEAVE: u8 = 0x22;
    pub const COMMIT: u8 = 0x23;
    pub const DESCRIBE_GROUPS: u8 = 0x24;
    pub const LIST_GROUPS: u8 = 0x25;
    pub const DELETE_GROUP: u8 = 0x26;
    pub const CONSUME: u8 = 0x30;
    pub const CREDIT: u8 = 0x31;
    pub const ACK: u8 = 0x32;
    pub const NACK: u8 = 0x33;
    pub const CANCEL: u8 = 0x34;
    pub const CREATE_TOPIC: u8 = 0x40;
    pub const DELETE_TOPIC: u8 = 0x41;
    pub const LIST_TOPICS: u8 = 0x42;
    pub const DECLARE_QUEUE: u8 = 0x43;
    pub const DELETE_QUEUE: u8 = 0x44;
    pub const LIST_QUEUES: u8 = 0x45;
    pub const DECLARE_EXCHANGE: u8 = 0x46;
    pub const DELETE_EXCHANGE: u8 = 0x47;
    pub const LIST_EXCHANGES: u8 = 0x48;
    pub const BIND: u8 = 0x49;
    pub const UNBIND: u8 = 0x4A;
    pub const LIST_BINDINGS: u8 = 0x4B;
    pub const STATS: u8 = 0x50;

    pub const DONE: u8 = 0x80;
    pub const HELLO_OK: u8 = 0x81;
    pub const PONG: u8 = 0x82;
    pub const PUBLISH_OK: u8 = 0x90;
    pub const FETCH_OK: u8 = 0x91;
    pub const SUBSCRIBE_OK: u8 = 0xA0;
    pub const GROUPS: u8 = 0xA4;
    pub const CONSUME_OK: u8 = 0xB0;
    pub const DELIVERY: u8 = 0xB5;
    pub const TOPICS: u8 = 0xC2;
    pub const QUEUE_DECLARED: u8 = 0xC3;
    pub const QUEUES: u8 = 0xC5;
    pub const EXCHANGES: u8 = 0xC8;
    pub const BINDINGS: u8 = 0xC9;
    pub const STATS_OK: u8 = 0xD0;
    pub const ERROR: u8 = 0xFF;

    /// Whether the opcode is one the server sends (responses, deliveries, errors).
    pub fn is_server_side(opcode: u8) -> bool {
        opcode >= 0x80
    }
}

macro_rules! messages {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $var:ident($ty:ty) = $op:path,)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq)]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vm])* $var($ty),)*
        }

        impl $name {
            /// The opcode of the frame that carries this body.
            pub fn opcode(&self) -> u8 {
                match self {
                    $(Self::$var(_) => $op,)*
                }
            }

            /// Appends the CBOR body to `out`.
            pub fn encode_body(&self, out: &mut BytesMut) {
                match self {
                    $(Self::$var(b) => encode_body(b, out),)*
                }
            }

            /// Decodes the (decompressed) body of a frame with this opcode.
            pub fn decode(opcode: u8, body: &[u8], depth_max: usize) -> Result<Self, DecodeError> {
                match opcode {
                    $($op => decode_body(body, depth_max).map(Self::$var),)*
                    _ => Err(DecodeError::UnknownOpcode(opcode)),
                }
            }
        }
    };
}

messages! {
    /// A client's request; its variant picks the opcode.
    Request {
        /// 0x01: the handshake's first frame.
        Hello(Hello) = opcode::HELLO,
        /// 0x02.
        Ping(Ping) = opcode::PING,
        /// 0x10.
        Publish(Publish) = opcode::PUBLISH,
        /// 0x11.
        Fetch(Fetch) = opcode::FETCH,
        /// 0x20.
        Subscribe(Subscribe) = opcode::SUBSCRIBE,
        /// 0x21.
        Heartbeat(Heartbeat) = opcode::HEARTBEAT,
        /// 0x22.
        Leave(Leave) = opcode::LEAVE,
        /// 0x23.
        Commit(Commit) = opcode::COMMIT,
        /// 0x24.
        DescribeGroups(DescribeGroups) = opcode::DESCRIBE_GROUPS,
        /// 0x25.
        ListGroups(ListGroups) = opcode::LIST_GROUPS,
        /// 0x26.
        DeleteGroup(DeleteGroup) = opcode::DELETE_GROUP,
        /// 0x30.
        Consume(Consume) = opcode::CONSUME,
        /// 0x31.
        Credit(Credit) = opcode::CREDIT,
        /// 0x32.
        Ack(Ack) = opcode::ACK,
        /// 0x33.
        Nack(Nack) = opcode::NACK,
        /// 0x34.
        Cancel(Cancel) = opcode::CANCEL,
        /// 0x40.
        CreateTopic(CreateTopic) = opcode::CREATE_TOPIC,
        /// 0x41.
        DeleteTopic(DeleteTopic) = opcode::DELETE_TOPIC,
        /// 0x42.
        ListTopics(ListTopics) = opcode::LIST_TOPICS,
        /// 0x43.
        DeclareQueue(DeclareQueue) = opcode::DECLARE_QUEUE,
        /// 0x44.
        DeleteQueue(DeleteQueue) = opcode::DELETE_QUEUE,
        /// 0x45.
        ListQueues(ListQueues) = opcode::LIST_QUEUES,
        /// 0x46.
        DeclareExchange(DeclareExchange) = opcode::DECLARE_EXCHANGE,
        /// 0x47.
        DeleteExchange(DeleteExchange) = opcode::DELETE_EXCHANGE,
        /// 0x48.
        ListExchanges(ListExchanges) = opcode::LIST_EXCHANGES,
        /// 0x49.
        Bind(Bind) = opcode::BIND,
        /// 0x4A: the body is the same as `Bind`'s.
        Unbind(Bind) = opcode::UNBIND,
        /// 0x4B.
        ListBindings(ListBindings) = opcode::LIST_BINDINGS,
        /// 0x50.
        Stats(Stats) = opcode::STATS,
    }
}

messages! {
    /// A server's successful answer to a request; its variant picks the opcode.
    Response {
        /// 0x80: answers requests that return no data.
        Done(Done) = opcode::DONE,
        /// 0x81: answers `Hello`.
        HelloOk(HelloOk) = opcode::HELLO_OK,
        /// 0x82: answers `Ping`.
        Pong(Pong) = opcode::PONG,
        /// 0x90: answers `Publish`.
        PublishOk(PublishOk) = opcode::PUBLISH_OK,
        /// 0x91: answers `Fetch`.
        FetchOk(FetchOk) = opcode::FETCH_OK,
        /// 0xA0: answers `Subscribe`.
        SubscribeOk(SubscribeOk) = opcode::SUBSCRIBE_OK,
        /// 0xA4: answers `DescribeGroups` and `ListGroups`.
        Groups(Groups) = opcode::GROUPS,
        /// 0xB0: answers `Consume`.
        ConsumeOk(ConsumeOk) = opcode::CONSUME_OK,
        /// 0xC2: answers `ListTopics`.
        Topics(Topics) = opcode::TOPICS,
        /// 0xC3: answers `DeclareQueue`.
        QueueDeclared(QueueDeclared) = opcode::QUEUE_DECLARED,
        /// 0xC5: answers `ListQueues`.
        Queues(Queues) = opcode::QUEUES,
        /// 0xC8: answers `ListExchanges`.
        Exchanges(Exchanges) = opcode::EXCHANGES,
        /// 0xC9: answers `ListBindings`.
        Bindings(Bindings) = opcode::BINDINGS,
        /// 0xD0: answers `Stats`.
        StatsOk(StatsOk) = opcode::STATS_OK,
    }
}
