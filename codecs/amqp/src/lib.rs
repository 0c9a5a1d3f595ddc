//! AMQP 0-9-1 wire protocol, sans-IO, as RabbitMQ speaks it.
//!
//! This crate never reads a socket, never sleeps and never reads the clock: bytes go in,
//! frames, methods and connection events come out; replies are appended to a buffer the
//! caller owns. Time is passed in as `now_ms`, monotonic milliseconds.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod content;
pub mod error;
pub mod frame;
pub mod generated;
pub mod heartbeat;
pub mod limits;
pub mod method;
pub mod table;
pub mod wire;

pub use error::{CloseReason, ConnError, DecodeError, FrameError};
pub use frame::{Frame, FrameDecoder};
pub use generated::{BasicProperties, Method, reply_code};
pub use limits::Limits;
pub use method::MethodInfo;
pub use table::{FieldTable, FieldValue};
