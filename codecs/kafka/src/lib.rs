//! Kafka wire protocol, sans-IO.
//!
//! This crate never reads a socket, never sleeps and never reads the clock. Bytes go in,
//! typed requests and responses come out; typed values go in, bytes come out into a buffer
//! the caller owns.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod error;
pub mod error_codes;
pub mod records;
pub mod wire;

pub use error::{DecodeError, EncodeError};
