//! Kafka wire protocol, sans-IO.
//!
//! This crate never reads a socket, never sleeps and never reads the clock. Bytes go in,
//! typed requests and responses come out; typed values go in, bytes come out into a buffer
//! the caller owns.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod api;
pub mod error;
pub mod error_codes;
pub mod frame;
#[cfg(any(fuzzing, feature = "fuzzing"))]
pub mod fuzzing;
pub mod generated;
pub mod header;
pub mod limits;
pub mod records;
pub mod wire;

pub use api::{Request, RequestError, decode_request, encode_response};
pub use error::{DecodeError, EncodeError};
pub use frame::{FrameDecoder, FrameError};
pub use limits::Limits;
