//! Messages of the queue model and the requests and answers of its calls.

use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::value::{Table, bytes_serde};

/// Identifies a client connection; chosen by the caller.
pub type ConnId = u64;

/// Message properties (AMQP basic properties).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MessageProps {
    /// MIME content type.
    pub content_type: Option<String>,
    /// MIME content encoding.
    pub content_encoding: Option<String>,
    /// Application headers.
    pub headers: Option<Table>,
    /// 1 = transient, 2 = persistent.
    pub delivery_mode: Option<u8>,
    /// Priority, 0..=9 by convention (up to the queue's `x-max-priority`).
    pub priority: Option<u8>,
    /// Correlation id.
    pub correlation_id: Option<String>,
    /// Reply-to address.
    pub reply_to: Option<String>,
    /// Per-message TTL in milliseconds, as a decimal string.
    pub expiration: Option<String>,
    /// Message id.
    pub message_id: Option<String>,
    /// Timestamp (seconds since the epoch).
    pub timestamp: Option<u64>,
    /// Message type (AMQP `type`).
    pub kind: Option<String>,
    /// Validated user id.
    pub user_id: Option<String>,
    /// Application id.
    pub app_id: Option<String>,
    /// Cluster id (deprecated in AMQP 0-9-1).
    pub cluster_id: Option<String>,
}

/// A message as queues hold it: where it was published, its properties and its body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// The exchange it was published to.
    pub exchange: String,
    /// The routing key it was published with.
    pub routing_key: String,
    /// Properties.
    pub props: MessageProps,
    /// Body.
    #[serde(with = "bytes_serde")]
    pub body: Bytes,
}

impl Message {
    /// Persistent messages (delivery mode 2) are stored by durable queues.
    pub fn is_persistent(&self) -> bool {
        self.props.delivery_mode == Some(2)
    }
}

/// An exchange.declare.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExchangeDeclare {
    /// Name.
    pub name: String,
    /// Type: `direct`, `fanout`, `topic` or `headers`.
    pub kind: String,
    /// Only check that it exists.
    pub passive: bool,
    /// Survives a restart.
    pub durable: bool,
    /// Deleted when its last binding goes away.
    pub auto_delete: bool,
    /// Cannot be published to directly.
    pub internal: bool,
    /// Arguments (`alternate-exchange`).
    pub arguments: Table,
}

/// A queue.declare.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueueDeclare {
    /// Name; empty for a server-named queue.
    pub name: String,
    /// Only check that it exists.
    pub passive: bool,
    /// Survives a restart.
    pub durable: bool,
    /// Owned by the declaring connection and deleted with it.
    pub exclusive: bool,
    /// Deleted when its last consumer goes away.
    pub auto_delete: bool,
    /// Arguments (`x-message-ttl`, `x-max-length`, ...).
    pub arguments: Table,
}

/// The answer to a queue.declare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueDeclareOk {
    /// The queue's name (generated for a server-named queue).
    pub name: String,
    /// Ready messages.
    pub message_count: u32,
    /// Consumers.
    pub consumer_count: u32,
}

/// A basic.publish with its content.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Publish {
    /// Exchange name; empty for the default exchange.
    pub exchange: String,
    /// Routing key.
    pub routing_key: String,
    /// Return the message if no queue gets it.
    pub mandatory: bool,
    /// Properties.
    pub props: MessageProps,
    /// Body.
    pub body: Bytes,
}

/// What became of a publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishOutcome {
    /// Some queue got it (or an alternate exchange took it). `false` with `mandatory`: return it.
    pub routed: bool,
    /// `false`: a queue refused it (`reject-publish` overflow); nack it to a confirming publisher.
    pub accepted: bool,
}

/// A basic.consume.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Consume {
    /// Queue name.
    pub queue: String,
    /// Consumer tag; empty for a generated one.
    pub consumer_tag: String,
    /// Deliveries need no acknowledgement.
    pub no_ack: bool,
    /// No other consumer may consume from the queue.
    pub exclusive: bool,
    /// Arguments.
    pub arguments: Table,
}

/// A message taken with basic.get.
#[derive(Debug, Clone, PartialEq)]
pub struct GetOk {
    /// Delivery tag on the channel.
    pub delivery_tag: u64,
    /// The message was delivered before.
    pub redelivered: bool,
    /// Ready messages left in the queue.
    pub message_count: u32,
    /// The message.
    pub message: Arc<Message>,
}
