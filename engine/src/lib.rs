//! Portask's deterministic broker core.
//!
//! The engine never reads a clock, never spawns a thread and never touches a socket: time is
//! passed in, storage is a trait object the caller provides.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod batch;
pub mod storage;
