//! AMQP 0-9-1 wire protocol, sans-IO, as RabbitMQ speaks it.
//!
//! This crate never reads a socket, never sleeps and never reads the clock: bytes go in,
//! frames, methods and connection events come out; replies are appended to a buffer the
//! caller owns. Time is passed in as `now_ms`, monotonic milliseconds.
//!
//! The broker side of a connection is [`ServerConn`]; a small client is [`ClientConn`].
//!
//! ```no_run
//! use bytes::BytesMut;
//! use portask_amqp::{ServerConfig, ServerConn, ServerEvent};
//!
//! # fn read_socket(_: &mut BytesMut) {}
//! # fn write_socket(_: &mut BytesMut) {}
//! # fn now_ms() -> u64 { 0 }
//! let mut conn = ServerConn::new(ServerConfig::default(), now_ms());
//! let (mut rbuf, mut wbuf) = (BytesMut::new(), BytesMut::new());
//! while !conn.is_closed() {
//!     read_socket(&mut rbuf);
//!     if conn.handle_input(&mut rbuf, now_ms(), &mut wbuf).is_err() {
//!         break; // flush `wbuf` (the protocol header), then close
//!     }
//!     while let Some(event) = conn.poll_event() {
//!         match event {
//!             ServerEvent::Login { .. } => conn.accept_login(&mut wbuf),
//!             ServerEvent::OpenVhost { .. } => conn.accept_open(&mut wbuf),
//!             _ => {} // hand methods and publishes to the broker
//!         }
//!     }
//!     conn.handle_timeout(now_ms(), &mut wbuf);
//!     write_socket(&mut wbuf);
//! }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod conn;
pub mod content;
pub mod error;
pub mod frame;
#[cfg(any(fuzzing, feature = "fuzzing"))]
pub mod fuzzing;
pub mod generated;
pub mod heartbeat;
pub mod limits;
pub mod method;
pub mod table;
pub mod wire;

pub use conn::Negotiated;
pub use conn::client::{ClientConfig, ClientConn, ClientEvent};
pub use conn::server::{ServerConfig, ServerConn, ServerEvent};
pub use error::{CloseReason, ConnError, DecodeError, FrameError};
pub use frame::{Frame, FrameDecoder};
pub use generated::{BasicProperties, Method, reply_code};
pub use limits::Limits;
pub use method::MethodInfo;
pub use table::{FieldTable, FieldValue};
