//! Errors of the Portask protocol codec, sorted by who is at fault, and the error codes that
//! go on the wire in `Error` frames (see `docs/protocol.md`, "Error codes").

/// Error codes carried by `Error` frames. Codes below 100 are defined here; the broker may
/// use others, which clients treat like [`INTERNAL`].
pub mod code {
    /// None of the client's versions is supported by the server. Closes the connection.
    pub const UNSUPPORTED_VERSION: u16 = 1;
    /// The user and password were refused. Closes the connection.
    pub const AUTH_FAILED: u16 = 2;
    /// The frame or its body cannot be decoded, or is not allowed now.
    pub const MALFORMED_FRAME: u16 = 3;
    /// The frame is above `max_frame_bytes`, or its body above the decompressed-body limit.
    pub const FRAME_TOO_LARGE: u16 = 4;
    /// The opcode names no request this server knows.
    pub const UNKNOWN_OPCODE: u16 = 5;
    /// The compression algorithm was not negotiated in the handshake.
    pub const BAD_COMPRESSION: u16 = 6;
    /// The topic does not exist.
    pub const UNKNOWN_TOPIC: u16 = 10;
    /// The queue does not exist.
    pub const UNKNOWN_QUEUE: u16 = 11;
    /// The exchange does not exist.
    pub const UNKNOWN_EXCHANGE: u16 = 12;
    /// The topic, queue, exchange or binding already exists with other settings.
    pub const ALREADY_EXISTS: u16 = 13;
    /// The partition does not exist in the topic.
    pub const UNKNOWN_PARTITION: u16 = 14;
    /// The offset is outside the partition's log.
    pub const OFFSET_OUT_OF_RANGE: u16 = 15;
    /// The consumer tag names no consumer on this connection.
    pub const UNKNOWN_CONSUMER: u16 = 16;
    /// The user may not do this, or the request is not allowed in this state.
    pub const NOT_ALLOWED: u16 = 20;
    /// An argument is out of range or inconsistent (a precondition failed).
    pub const INVALID_ARGUMENT: u16 = 21;
    /// A mandatory message could not be routed to any queue.
    pub const UNROUTABLE: u16 = 22;
    /// Storage is unavailable. Retriable.
    pub const STORAGE_UNAVAILABLE: u16 = 30;
    /// The broker is over a resource limit (memory, disk). Retriable.
    pub const RESOURCE_LIMIT: u16 = 31;
    /// The request timed out inside the broker. Retriable.
    pub const TIMEOUT: u16 = 32;
    /// An internal error in the broker.
    pub const INTERNAL: u16 = 40;
    /// The group is rebalancing: join again with `Subscribe`. Retriable.
    pub const REBALANCE_IN_PROGRESS: u16 = 50;
    /// The member id is not (or no longer) in the group.
    pub const UNKNOWN_MEMBER: u16 = 51;
    /// The generation is not the group's current one.
    pub const ILLEGAL_GENERATION: u16 = 52;
    /// The group does not exist.
    pub const UNKNOWN_GROUP: u16 = 53;
    /// The group has members and cannot be deleted.
    pub const GROUP_NOT_EMPTY: u16 = 54;

    /// Whether a client may retry the same request later and expect it to succeed.
    pub fn is_retriable(code: u16) -> bool {
        matches!(
            code,
            STORAGE_UNAVAILABLE | RESOURCE_LIMIT | TIMEOUT | REBALANCE_IN_PROGRESS
        )
    }

    /// The name of a code, as used in `docs/protocol.md`.
    pub fn name(code: u16) -> Option<&'static str> {
        Some(match code {
            UNSUPPORTED_VERSION => "UNSUPPORTED_VERSION",
            AUTH_FAILED => "AUTH_FAILED",
            MALFORMED_FRAME => "MALFORMED_FRAME",
            FRAME_TOO_LARGE => "FRAME_TOO_LARGE",
            UNKNOWN_OPCODE => "UNKNOWN_OPCODE",
            BAD_COMPRESSION => "BAD_COMPRESSION",
            UNKNOWN_TOPIC => "UNKNOWN_TOPIC",
            UNKNOWN_QUEUE => "UNKNOWN_QUEUE",
            UNKNOWN_EXCHANGE => "UNKNOWN_EXCHANGE",
            ALREADY_EXISTS => "ALREADY_EXISTS",
            UNKNOWN_PARTITION => "UNKNOWN_PARTITION",
            OFFSET_OUT_OF_RANGE => "OFFSET_OUT_OF_RANGE",
            UNKNOWN_CONSUMER => "UNKNOWN_CONSUMER",
            NOT_ALLOWED => "NOT_ALLOWED",
            INVALID_ARGUMENT => "INVALID_ARGUMENT",
            UNROUTABLE => "UNROUTABLE",
            STORAGE_UNAVAILABLE => "STORAGE_UNAVAILABLE",
            RESOURCE_LIMIT => "RESOURCE_LIMIT",
            TIMEOUT => "TIMEOUT",
            INTERNAL => "INTERNAL",
            REBALANCE_IN_PROGRESS => "REBALANCE_IN_PROGRESS",
            UNKNOWN_MEMBER => "UNKNOWN_MEMBER",
            ILLEGAL_GENERATION => "ILLEGAL_GENERATION",
            UNKNOWN_GROUP => "UNKNOWN_GROUP",
            GROUP_NOT_EMPTY => "GROUP_NOT_EMPTY",
            _ => return None,
        })
    }
}

/// A frame whose boundaries are known but whose contents cannot be used. The stream can go on
/// after these: the peer gets an `Error` frame for the frame's correlation id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The CBOR body does not decode as the opcode's body.
    #[error("malformed body: {0}")]
    Body(&'static str),
    /// Bytes were left after the CBOR body.
    #[error("trailing bytes after the body")]
    TrailingData,
    /// The opcode names no message (or none in this direction).
    #[error("unknown opcode {0:#04x}")]
    UnknownOpcode(u8),
    /// The compressed body cannot be decompressed, or its size is not the announced one.
    #[error("bad compressed body: {0}")]
    Compression(&'static str),
    /// The compression algorithm in the flags was not negotiated (or is not known).
    #[error("compression algorithm {0} not negotiated")]
    CompressionNotNegotiated(u8),
    /// The announced decompressed size is above `Limits::body_bytes_max`.
    #[error("decompressed body of {size} bytes is above the limit of {max}")]
    BodyTooLarge {
        /// The announced decompressed size.
        size: u64,
        /// The largest body accepted.
        max: u64,
    },
    /// The flags have a reserved bit set, or a combination that means nothing.
    #[error("invalid flags {0:#04x}")]
    InvalidFlags(u8),
}

impl DecodeError {
    /// The wire error code that answers this error.
    pub fn code(&self) -> u16 {
        match self {
            Self::UnknownOpcode(_) => code::UNKNOWN_OPCODE,
            Self::BodyTooLarge { .. } => code::FRAME_TOO_LARGE,
            Self::CompressionNotNegotiated(_) => code::BAD_COMPRESSION,
            _ => code::MALFORMED_FRAME,
        }
    }
}

/// A frame that cannot be delimited or does not belong to this protocol. The stream cannot be
/// resynchronised after these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The length prefix is above `Limits::frame_bytes_max`.
    #[error("frame of {size} bytes is above the limit of {max}")]
    TooLarge {
        /// The announced length (bytes after the length field).
        size: u32,
        /// The largest length accepted.
        max: u32,
    },
    /// The length prefix is smaller than the 12-byte header.
    #[error("frame of {0} bytes is shorter than the header")]
    TooShort(u32),
    /// The first header byte is not the magic `0xB7`.
    #[error("bad magic {0:#04x}")]
    BadMagic(u8),
    /// The header's version is not the one this stream uses.
    #[error("unsupported frame version {0}")]
    BadVersion(u8),
}

impl FrameError {
    /// The wire error code that answers this error.
    pub fn code(&self) -> u16 {
        match self {
            Self::TooLarge { .. } => code::FRAME_TOO_LARGE,
            Self::BadVersion(_) => code::UNSUPPORTED_VERSION,
            _ => code::MALFORMED_FRAME,
        }
    }
}

/// A fatal condition: the connection is closed. Output written before it (the `Error` frame
/// that explains it) must still be flushed; then the transport is closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnError {
    /// The peer's stream cannot be read any further.
    #[error("framing error: {0}")]
    Frame(#[from] FrameError),
    /// The peer broke the handshake (a request before `Hello`, a second `Hello`, ...).
    #[error("handshake violated: {0}")]
    Handshake(&'static str),
    /// The handshake was refused (by the server, or by the client's own checks).
    #[error("refused with code {code}: {message}")]
    Refused {
        /// The error code sent or received.
        code: u16,
        /// The explanation sent or received.
        message: String,
    },
    /// A frame from the server cannot be decoded (client side: the connection closes).
    #[error("cannot decode server frame: {0}")]
    Decode(#[from] DecodeError),
    /// The connection was already closed.
    #[error("connection closed")]
    Closed,
}

/// Local misuse while encoding: nothing was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The encoded frame is above the peer's `max_frame_bytes`.
    #[error("frame of {size} bytes is above the peer's limit of {max}")]
    FrameTooLarge {
        /// The frame's length (bytes after the length field).
        size: usize,
        /// The peer's limit.
        max: u32,
    },
    /// The connection is not open (before `HelloOk`, or after close).
    #[error("connection not open")]
    NotOpen,
}
