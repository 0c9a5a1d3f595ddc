//! Administration bodies: topics, queues, exchanges, bindings and statistics.

use serde::{Deserialize, Serialize};

use super::value::Value;

/// `CreateTopic` (opcode 0x40).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CreateTopic {
    /// The topic.
    pub name: String,
    /// Number of partitions, at least 1.
    pub partitions: i32,
    /// Topic configs, Kafka's names (`retention.ms`, `cleanup.policy`, ...).
    #[serde(default)]
    pub configs: Vec<(String, String)>,
}

/// `DeleteTopic` (opcode 0x41).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DeleteTopic {
    /// The topic.
    pub name: String,
}

/// `ListTopics` (opcode 0x42).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ListTopics {}

/// One topic.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TopicInfo {
    /// The topic.
    pub name: String,
    /// Number of partitions.
    pub partitions: i32,
    /// The high watermark of each partition, by partition index.
    #[serde(default)]
    pub high_watermarks: Vec<i64>,
    /// Its configs.
    #[serde(default)]
    pub configs: Vec<(String, String)>,
}

/// `Topics` (opcode 0xC2): answers `ListTopics`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Topics {
    /// The topics.
    pub topics: Vec<TopicInfo>,
}

/// `DeclareQueue` (opcode 0x43), like `queue.declare`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct DeclareQueue {
    /// The virtual host.
    pub vhost: String,
    /// The queue; `""` asks the server for a name.
    pub name: String,
    /// Survives a restart.
    #[serde(default)]
    pub durable: bool,
    /// Deleted when its last consumer goes.
    #[serde(default)]
    pub auto_delete: bool,
    /// Queue arguments (`x-message-ttl`, `x-queue-type`, ...), as in AMQP.
    #[serde(default)]
    pub arguments: Vec<(String, Value)>,
}

/// `QueueDeclared` (opcode 0xC3): answers `DeclareQueue`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct QueueDeclared {
    /// The queue's name (chosen by the server when the request's was empty).
    pub name: String,
    /// Messages ready in the queue.
    pub message_count: u64,
    /// Consumers on the queue.
    pub consumer_count: u32,
}

/// `DeleteQueue` (opcode 0x44).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DeleteQueue {
    /// The virtual host.
    pub vhost: String,
    /// The queue.
    pub name: String,
    /// Only if it has no consumers.
    #[serde(default)]
    pub if_unused: bool,
    /// Only if it has no messages.
    #[serde(default)]
    pub if_empty: bool,
}

/// `ListQueues` (opcode 0x45).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ListQueues {
    /// Only this virtual host's queues; every vhost when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vhost: Option<String>,
}

/// One queue.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct QueueInfo {
    /// The virtual host.
    pub vhost: String,
    /// The queue.
    pub name: String,
    /// Survives a restart.
    pub durable: bool,
    /// Deleted when its last consumer goes.
    pub auto_delete: bool,
    /// Messages ready.
    pub messages: u64,
    /// Consumers.
    pub consumers: u32,
}

/// `Queues` (opcode 0xC5): answers `ListQueues`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Queues {
    /// The queues.
    pub queues: Vec<QueueInfo>,
}

/// `DeclareExchange` (opcode 0x46), like `exchange.declare`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DeclareExchange {
    /// The virtual host.
    pub vhost: String,
    /// The exchange.
    pub name: String,
    /// `"direct"`, `"fanout"`, `"topic"` or `"headers"`.
    pub kind: String,
    /// Survives a restart.
    #[serde(default)]
    pub durable: bool,
}

/// `DeleteExchange` (opcode 0x47).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DeleteExchange {
    /// The virtual host.
    pub vhost: String,
    /// The exchange.
    pub name: String,
}

/// `ListExchanges` (opcode 0x48).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ListExchanges {
    /// Only this virtual host's exchanges; every vhost when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vhost: Option<String>,
}

/// One exchange.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ExchangeInfo {
    /// The virtual host.
    pub vhost: String,
    /// The exchange.
    pub name: String,
    /// Its type.
    pub kind: String,
    /// Survives a restart.
    pub durable: bool,
}

/// `Exchanges` (opcode 0xC8): answers `ListExchanges`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Exchanges {
    /// The exchanges.
    pub exchanges: Vec<ExchangeInfo>,
}

/// `ListBindings` (opcode 0x4B): the bindings of a vhost, or of every vhost.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ListBindings {
    /// Only this vhost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vhost: Option<String>,
}

/// One binding in [`Bindings`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BindingInfo {
    /// The vhost.
    pub vhost: String,
    /// The exchange messages come from.
    pub source: String,
    /// The queue or exchange they go to.
    pub destination: String,
    /// `"queue"` or `"exchange"`.
    pub destination_kind: String,
    /// The binding key.
    pub routing_key: String,
}

/// `Bindings` (opcode 0xC9): answers `ListBindings`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Bindings {
    /// The bindings.
    pub bindings: Vec<BindingInfo>,
}

/// `Bind` (opcode 0x49) and `Unbind` (opcode 0x4A): a queue (or an exchange, or a topic)
/// receives what `exchange` routes with `routing_key`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Bind {
    /// The virtual host.
    pub vhost: String,
    /// The destination: a queue, an exchange or a topic name.
    pub queue_or_exchange: String,
    /// The source exchange.
    pub exchange: String,
    /// The binding key.
    pub routing_key: String,
}

/// `Stats` (opcode 0x50).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Stats {}

/// `StatsOk` (opcode 0xD0): counters by name.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StatsOk {
    /// Counter names and values.
    pub entries: Vec<(String, u64)>,
}
