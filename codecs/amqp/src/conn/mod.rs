//! Connection state machines: [`server::ServerConn`] for the broker side and
//! [`client::ClientConn`] for clients, tests and tools.

pub mod auth;
pub mod client;
pub mod server;

/// What tuning settled on (spec 4.2.3 and `connection.tune`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    /// Highest channel number the peer may use.
    pub channel_max: u16,
    /// Largest frame, framing included, in bytes.
    pub frame_max: u32,
    /// Heartbeat interval in seconds; 0 is off.
    pub heartbeat_s: u16,
}
