//! Queue consumption bodies.

use serde::{Deserialize, Serialize};

use super::data::Message;

/// `Consume` (opcode 0x30): start a consumer on a queue.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Consume {
    /// The virtual host.
    pub vhost: String,
    /// The queue.
    pub queue: String,
    /// How many deliveries may be outstanding (unacknowledged); raised with `Credit`.
    pub credit: u32,
    /// Deliveries count as acknowledged when sent.
    #[serde(default)]
    pub no_ack: bool,
}

/// `ConsumeOk` (opcode 0xB0).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ConsumeOk {
    /// The consumer's tag, used by `Credit`, `Cancel` and deliveries.
    pub consumer_tag: String,
}

/// `Delivery` (opcode 0xB5), pushed by the server with the `Consume`'s correlation id.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Delivery {
    /// The consumer.
    pub consumer_tag: String,
    /// Identifies the delivery in `Ack`/`Nack`; increases per connection.
    pub delivery_tag: u64,
    /// Delivered before and not acknowledged.
    #[serde(default)]
    pub redelivered: bool,
    /// The exchange it was published to.
    pub exchange: String,
    /// The routing key it was published with.
    pub routing_key: String,
    /// The message.
    pub message: Message,
}

/// `Credit` (opcode 0x31): allow this many more outstanding deliveries.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Credit {
    /// The consumer.
    pub consumer_tag: String,
    /// Credit added.
    pub credit: u32,
}

/// `Ack` (opcode 0x32).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Ack {
    /// The deliveries acknowledged.
    pub delivery_tags: Vec<u64>,
    /// Each tag also acknowledges every earlier one.
    #[serde(default)]
    pub multiple: bool,
}

/// `Nack` (opcode 0x33).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Nack {
    /// The deliveries rejected.
    pub delivery_tags: Vec<u64>,
    /// Put them back in the queue (otherwise dead-letter or drop them).
    #[serde(default)]
    pub requeue: bool,
}

/// `Cancel` (opcode 0x34): stop a consumer; its unacknowledged deliveries are requeued.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Cancel {
    /// The consumer.
    pub consumer_tag: String,
}
