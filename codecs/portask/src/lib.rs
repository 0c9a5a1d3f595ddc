//! Portask's own binary protocol, sans-IO.
//!
//! This crate never reads a socket, never sleeps and never reads the clock: bytes go in,
//! requests, responses and deliveries come out; frames are appended to a buffer the caller
//! owns. The protocol is specified in `docs/protocol.md`: length-prefixed frames with a
//! 12-byte header and a CBOR body, compressed (zstd, LZ4, Snappy) as the handshake allows.
//!
//! The broker side of a connection is [`ServerConn`]; the client side is [`ClientConn`].
//! Byte fields (payloads, keys, header values) are decoded from CBOR byte strings into
//! [`bytes::Bytes`] with one copy out of the frame; a batch's bodies share nothing else.
//!
//! ```no_run
//! use bytes::BytesMut;
//! use portask_protocol::{ServerConfig, ServerConn, ServerEvent};
//!
//! # fn read_socket(_: &mut BytesMut) {}
//! # fn write_socket(_: &mut BytesMut) {}
//! let mut conn = ServerConn::new(ServerConfig::default());
//! let (mut rbuf, mut wbuf) = (BytesMut::new(), BytesMut::new());
//! while !conn.is_closed() {
//!     read_socket(&mut rbuf);
//!     let result = conn.handle_input(&mut rbuf, &mut wbuf);
//!     while let Some(event) = conn.poll_event() {
//!         match event {
//!             // Check the credentials here, or refuse_hello(2, "bad password", ..).
//!             ServerEvent::Hello { .. } => conn.accept_hello(&mut wbuf),
//!             ServerEvent::Request { correlation_id, .. } => {
//!                 // Hand the request to the broker; answer later with send_response.
//!                 conn.send_error(correlation_id, 40, "not implemented", &mut wbuf);
//!             }
//!             _ => {}
//!         }
//!     }
//!     write_socket(&mut wbuf);
//!     if result.is_err() {
//!         break; // the Error frame explaining why was flushed above
//!     }
//! }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod body;
pub mod compression;
pub mod conn;
pub mod error;
pub mod frame;
#[cfg(any(fuzzing, feature = "fuzzing"))]
pub mod fuzzing;
pub mod limits;
pub mod partition;
pub mod wire;

pub use body::{Request, Response};
pub use compression::Compression;
pub use conn::Negotiated;
pub use conn::client::{ClientConfig, ClientConn, ClientEvent};
pub use conn::server::{ServerConfig, ServerConn, ServerEvent};
pub use error::{ConnError, DecodeError, EncodeError, FrameError, code};
pub use frame::{FrameDecoder, Header, RawFrame};
pub use limits::Limits;
