//! Handshake and liveness bodies, and the `Error` body.

use serde::{Deserialize, Serialize};

/// `Hello` (opcode 0x01), the client's first frame.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Hello {
    /// Protocol versions the client speaks; the server picks the highest it also speaks.
    pub versions: Vec<u8>,
    /// Client software name and version, for logs.
    pub client: String,
    /// User name, if the client authenticates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Password, if the client authenticates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Compression algorithms the client accepts, preferred first (`zstd`, `lz4`, `snappy`).
    #[serde(default)]
    pub compression: Vec<String>,
}

/// `HelloOk` (opcode 0x81): the handshake succeeded.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HelloOk {
    /// The protocol version used from now on, in every frame header.
    pub version: u8,
    /// Server software name and version.
    pub server: String,
    /// The compression both sides may use from now on, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<String>,
    /// Largest frame the server accepts (the length prefix's value).
    pub max_frame_bytes: u32,
}

/// `Ping` (opcode 0x02): the server answers `Pong`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Ping {}

/// `Pong` (opcode 0x82): answers `Ping`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Pong {}

/// `Done` (opcode 0x80): success without data.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Done {}

/// `Error` (opcode 0xFF): a request failed, or the connection is about to close.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error code, from [`crate::error::code`].
    pub code: u16,
    /// A human-readable explanation.
    pub message: String,
}
