//! Limits on what a peer may make the codec buffer or allocate.

/// Limits applied while decoding peer input. Checked before buffering or allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest frame accepted, in bytes, not counting the 4-byte size prefix.
    pub frame_bytes_max: usize,
}

impl Limits {
    /// Default [`Limits::frame_bytes_max`]: 100 MiB, as Kafka's `socket.request.max.bytes`.
    pub const FRAME_BYTES_MAX_DEFAULT: usize = 100 * 1024 * 1024;
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            frame_bytes_max: Self::FRAME_BYTES_MAX_DEFAULT,
        }
    }
}
