//! Topic bodies: messages, publishing and fetching.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// One message, as published and as delivered. Byte fields are CBOR byte strings.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Message {
    /// A 16-byte ULID chosen by the publisher, for deduplication and tracing.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "super::ulid")]
    pub id: Option<[u8; 16]>,
    /// The key: picks the partition of a topic, and is kept with the message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Bytes>,
    /// Headers, in order; names may repeat.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<(String, Bytes)>,
    /// The payload.
    pub payload: Bytes,
    /// Milliseconds since the Unix epoch; the broker sets it when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
    /// MIME type of the payload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// Queue priority, 0-255 (queues declared with a maximum priority).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u8>,
    /// Time to live in queues, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_ms: Option<u64>,
}

/// Where a `Publish` goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// A topic partition, appended in order.
    Topic {
        /// The topic.
        topic: String,
        /// The partition; when absent, from the key (see
        /// [`crate::partition::partition_for_key`]), or the broker's choice without a key.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        partition: Option<i32>,
    },
    /// An AMQP exchange, routed like `basic.publish`.
    Exchange {
        /// The virtual host.
        vhost: String,
        /// The exchange; `""` is the default exchange.
        exchange: String,
        /// The routing key.
        routing_key: String,
        /// Fail with `UNROUTABLE` when no queue receives a message.
        #[serde(default)]
        mandatory: bool,
    },
}

impl Default for Target {
    fn default() -> Self {
        Self::Topic {
            topic: String::new(),
            partition: None,
        }
    }
}

/// `Publish` (opcode 0x10): a batch of messages to one target.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Publish {
    /// Where the messages go.
    pub target: Target,
    /// The messages, in order.
    pub messages: Vec<Message>,
    /// Answer only once the messages are on stable storage.
    #[serde(default)]
    pub durable: bool,
}

/// What happened to one published message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PublishResult {
    /// Appended to a topic partition.
    Appended {
        /// The partition.
        partition: i32,
        /// The message's offset.
        offset: i64,
    },
    /// Published to an exchange: whether at least one queue or topic received it.
    Routed(bool),
}

/// `PublishOk` (opcode 0x90): one result per message, in order.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PublishOk {
    /// The results.
    pub results: Vec<PublishResult>,
}

/// `Fetch` (opcode 0x11): read a topic partition from an offset.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Fetch {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The first offset wanted.
    pub offset: i64,
    /// At most this many messages.
    pub max_messages: u32,
    /// At most about this many payload bytes (at least one message is returned).
    pub max_bytes: u32,
    /// Wait up to this long for a first message, in milliseconds.
    #[serde(default)]
    pub max_wait_ms: u32,
}

/// A message read from a topic, with its offset.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StoredMessage {
    /// The offset in the partition.
    pub offset: i64,
    /// The message.
    pub message: Message,
}

/// `FetchOk` (opcode 0x91).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FetchOk {
    /// The offset the next appended message will get.
    pub high_watermark: i64,
    /// The messages, in offset order.
    pub messages: Vec<StoredMessage>,
}
