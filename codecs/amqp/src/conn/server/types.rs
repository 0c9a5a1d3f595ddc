//! What the broker configures and what it is told.

use bytes::Bytes;

use crate::generated::{BasicProperties, BasicPublish, Method};
use crate::limits::Limits;
use crate::table::{FieldTable, FieldValue};

/// What the broker offers a client.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// `server-properties` of `connection.start` (product, version, capabilities).
    pub server_properties: FieldTable,
    /// SASL mechanisms offered: `PLAIN`, `AMQPLAIN`.
    pub mechanisms: Vec<&'static str>,
    /// Highest channel number offered.
    pub channel_max: u16,
    /// Largest frame offered, framing included.
    pub frame_max: u32,
    /// Heartbeat interval proposed, in seconds.
    pub heartbeat_s: u16,
    /// Decoding limits.
    pub limits: Limits,
}

impl Default for ServerConfig {
    fn default() -> Self {
        let yes = |k: &str| (k.to_string(), FieldValue::Bool(true));
        let capabilities: FieldTable = [
            "publisher_confirms",
            "exchange_exchange_bindings",
            "basic.nack",
            "consumer_cancel_notify",
            "connection.blocked",
            "authentication_failure_close",
            "per_consumer_qos",
        ]
        .into_iter()
        .map(yes)
        .collect();
        let text = |s: &'static str| FieldValue::LongString(Bytes::from_static(s.as_bytes()));
        let server_properties = FieldTable(vec![
            ("capabilities".into(), FieldValue::Table(capabilities)),
            ("product".into(), text("Portask")),
            ("version".into(), text(env!("CARGO_PKG_VERSION"))),
            ("platform".into(), text("Rust")),
        ]);
        Self {
            server_properties,
            mechanisms: vec!["PLAIN", "AMQPLAIN"],
            channel_max: 2047,
            frame_max: 131_072,
            heartbeat_s: 60,
            limits: Limits::default(),
        }
    }
}

/// What the broker must act on.
// Events are moved out at once; boxing the methods would cost an allocation each.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum ServerEvent {
    /// The client wants to log in; answer with [`super::ServerConn::accept_login`] or
    /// [`super::ServerConn::refuse_login`].
    Login {
        /// `PLAIN` or `AMQPLAIN`.
        mechanism: String,
        /// The user name.
        username: String,
        /// The password.
        password: String,
    },
    /// The client opens a virtual host; answer with [`super::ServerConn::accept_open`] or
    /// [`super::ServerConn::refuse_open`].
    OpenVhost {
        /// The virtual host.
        vhost: String,
    },
    /// A channel was opened (`channel.open-ok` is already written).
    ChannelOpened {
        /// The channel.
        channel: u16,
    },
    /// A channel is gone: closed by the peer, or its close-ok to our close arrived. The broker
    /// drops the channel's consumers and requeues its unacked messages.
    ChannelClosed {
        /// The channel.
        channel: u16,
    },
    /// Any other method of an open channel (exchange.*, queue.*, basic.* but publish, tx.*,
    /// confirm.*, channel.flow), or connection.blocked/unblocked/update-secret on channel 0.
    Method {
        /// The channel.
        channel: u16,
        /// The method.
        method: Method,
    },
    /// A complete `basic.publish` with its content.
    Publish {
        /// The channel.
        channel: u16,
        /// The method.
        method: BasicPublish,
        /// The content properties.
        properties: BasicProperties,
        /// The body.
        body: Bytes,
    },
    /// The connection is over: the peer sent `connection.close` (close-ok is written), or the
    /// peer answered ours, or ours timed out, or a fatal error was sent. The last event of every
    /// connection that got past the protocol header, unless [`ServerEvent::PeerDead`] came.
    ConnectionClosed {
        /// The reply code.
        code: u16,
        /// The reply text.
        text: String,
    },
    /// No frame arrived for two heartbeat intervals; the transport should be closed.
    PeerDead,
}
