//! Portask's own binary protocol, sans-IO.
//!
//! This crate never reads a socket, never sleeps and never reads the clock: bytes go in,
//! requests, responses and deliveries come out; frames are appended to a buffer the caller
//! owns. The protocol is specified in `docs/protocol.md`: length-prefixed frames with a
//! 12-byte header and a CBOR body, compressed (zstd, LZ4, Snappy) as the handshake allows.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod body;
pub mod compression;
pub mod error;
pub mod frame;
pub mod limits;
pub mod partition;
pub mod wire;

pub use body::{Request, Response};
pub use compression::Compression;
pub use error::{ConnError, DecodeError, EncodeError, FrameError, code};
pub use frame::{FrameDecoder, Header, RawFrame};
pub use limits::Limits;
