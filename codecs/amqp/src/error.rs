//! Errors of the AMQP codec, sorted by who is at fault, and their reply codes.

use crate::generated::reply_code;

/// Bytes inside a complete frame that cannot be decoded. Never allocates.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The frame ended inside a value.
    #[error("truncated input: {0}")]
    Truncated(&'static str),
    /// A value is outside what the protocol allows.
    #[error("invalid value: {0}")]
    Invalid(&'static str),
    /// A length, count or nesting depth is above a limit or the remaining input.
    #[error("limit exceeded: {0}")]
    TooLarge(&'static str),
    /// Bytes were left over after a complete method or header.
    #[error("trailing bytes after the frame's contents")]
    TrailingData,
    /// The class and method ids name no method this codec knows.
    #[error("unknown method {class_id}.{method_id}")]
    UnknownMethod {
        /// The class id read.
        class_id: u16,
        /// The method id read.
        method_id: u16,
    },
}

/// A frame that cannot be accepted. After any of these the stream cannot be resynchronised.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The first 8 bytes are not `AMQP\x00\x00\x09\x01`: answer with that header and close.
    #[error("bad protocol header")]
    BadProtocolHeader,
    /// The size field is above the current frame_max (less the 8 bytes of framing).
    #[error("frame payload of {size} bytes is above the limit of {max}")]
    TooLarge {
        /// The announced payload size.
        size: u32,
        /// The largest payload accepted.
        max: u32,
    },
    /// The octet after the payload is not `0xCE`.
    #[error("frame end octet is {0:#04x}, not 0xce")]
    MissingFrameEnd(u8),
    /// The frame type is not method, header, body or heartbeat.
    #[error("unknown frame type {0}")]
    UnknownFrameType(u8),
    /// A heartbeat frame on a channel other than 0 or with a payload.
    #[error("heartbeat frame on channel {0} or with a payload")]
    BadHeartbeat(u16),
    /// A content header for a class other than basic, the only class with content.
    #[error("content header for class {class_id}")]
    BadContentClass {
        /// The class id of the header.
        class_id: u16,
    },
    /// A method frame naming an unknown class or method.
    #[error("unknown method {class_id}.{method_id} on channel {channel}")]
    UnknownMethod {
        /// The frame's channel.
        channel: u16,
        /// The class id read.
        class_id: u16,
        /// The method id read.
        method_id: u16,
    },
    /// A method or content header whose contents do not decode.
    #[error("cannot decode frame on channel {channel} ({class_id}.{method_id}): {error}")]
    Malformed {
        /// The frame's channel.
        channel: u16,
        /// The class id, if it was read.
        class_id: u16,
        /// The method id, if it was read (0 for a content header).
        method_id: u16,
        /// What was wrong.
        error: DecodeError,
    },
}

impl FrameError {
    /// The reply code of the `connection.close` that answers this error, as RabbitMQ's reader
    /// chooses it: 540 `NOT_IMPLEMENTED` for an unknown method, 505 `UNEXPECTED_FRAME` for
    /// content of a class without content, 501 `FRAME_ERROR` for everything else.
    pub fn reply_code(&self) -> u16 {
        match self {
            Self::UnknownMethod { .. } => reply_code::NOT_IMPLEMENTED,
            Self::BadContentClass { .. } => reply_code::UNEXPECTED_FRAME,
            _ => reply_code::FRAME_ERROR,
        }
    }

    /// The (class id, method id) the error refers to, for the `connection.close` arguments.
    pub fn method_ids(&self) -> (u16, u16) {
        match self {
            Self::UnknownMethod {
                class_id,
                method_id,
                ..
            }
            | Self::Malformed {
                class_id,
                method_id,
                ..
            } => (*class_id, *method_id),
            Self::BadContentClass { class_id } => (*class_id, 0),
            _ => (0, 0),
        }
    }
}

/// A fatal condition after which not even a `connection.close` can be sent. Output written
/// before it (the protocol header the peer should have sent) must still be flushed; then the
/// transport is closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnError {
    /// The peer's protocol header is not AMQP 0-9-1. `AMQP\x00\x00\x09\x01` was written to
    /// the output, as the spec asks.
    #[error("bad protocol header; sent AMQP 0-9-1 header")]
    BadProtocolHeader,
    /// The server answered the client's protocol header with another protocol header.
    #[error("server does not support AMQP 0-9-1")]
    ProtocolRejected,
}

/// A hard or soft error to be sent as `connection.close` or `channel.close`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseReason {
    /// The reply code, from [`reply_code`].
    pub code: u16,
    /// The reply text, `NAME - explanation` as RabbitMQ words it.
    pub text: String,
    /// The class id of the method that caused it, or 0.
    pub class_id: u16,
    /// The method id of the method that caused it, or 0.
    pub method_id: u16,
}

impl CloseReason {
    /// A reason whose text is `NAME - why`.
    pub fn new(code: u16, why: &str, class_id: u16, method_id: u16) -> Self {
        let name = reply_code::name(code).unwrap_or("ERROR");
        Self {
            code,
            text: format!("{name} - {why}"),
            class_id,
            method_id,
        }
    }
}

impl From<&FrameError> for CloseReason {
    fn from(e: &FrameError) -> Self {
        let (class_id, method_id) = e.method_ids();
        Self::new(e.reply_code(), &e.to_string(), class_id, method_id)
    }
}
