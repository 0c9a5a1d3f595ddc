//! Connection state machines: [`server::ServerConn`] for the broker side and
//! [`client::ClientConn`] for clients, tests and tools.

pub mod client;
pub mod server;

use bytes::BytesMut;

use crate::body::{ErrorBody, opcode};
use crate::compression::Compression;
use crate::frame::{self, Header, flags};
use crate::wire::encode_body;

/// What the handshake settled on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    /// The protocol version in every frame header after the handshake.
    pub version: u8,
    /// The compression either side may use for bodies, if any.
    pub compression: Option<Compression>,
    /// Largest frame the server accepts (the length prefix's value).
    pub max_frame_bytes: u32,
}

/// Appends an `Error` frame (opcode 0xFF, flags response and error). Error bodies are small
/// and never compressed.
pub(crate) fn write_error(
    version: u8,
    correlation_id: u64,
    code: u16,
    message: &str,
    out: &mut BytesMut,
) {
    let header = Header {
        version,
        opcode: opcode::ERROR,
        flags: flags::RESPONSE | flags::ERROR,
        correlation_id,
    };
    let body = ErrorBody {
        code,
        message: message.to_owned(),
    };
    frame::encode_frame(header, None, 0, out, |o| encode_body(&body, o));
}
