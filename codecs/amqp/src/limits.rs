//! Limits on what a peer may make the codec buffer or allocate, and its fixed timeouts.

/// Limits applied while decoding peer input. Checked before buffering or allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest frame accepted before `connection.tune-ok`, in bytes including the 8 bytes of
    /// framing. At least 8192: RabbitMQ 4.1 accepts that much before tuning, since
    /// `connection.start-ok` with large client properties does not fit 4096.
    pub preauth_frame_bytes_max: u32,
    /// Deepest nesting of field tables and arrays accepted.
    pub table_depth_max: usize,
    /// Largest content body accepted, as announced in the content header. RabbitMQ's default
    /// `max_message_size` is 128 MiB.
    pub content_bytes_max: u64,
    /// Frames held while the broker decides on `connection.open` (clients may pipeline
    /// `channel.open` and more behind it). Above this, input stays in the caller's buffer.
    pub pending_frames_max: usize,
    /// How long to wait for `connection.close-ok` after sending `connection.close`, in ms.
    pub close_timeout_ms: u64,
}

impl Limits {
    /// Default [`Limits::preauth_frame_bytes_max`].
    pub const PREAUTH_FRAME_BYTES_MAX_DEFAULT: u32 = 8192;
    /// Default [`Limits::table_depth_max`].
    pub const TABLE_DEPTH_MAX_DEFAULT: usize = 16;
    /// Default [`Limits::content_bytes_max`].
    pub const CONTENT_BYTES_MAX_DEFAULT: u64 = 128 * 1024 * 1024;
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            preauth_frame_bytes_max: Self::PREAUTH_FRAME_BYTES_MAX_DEFAULT,
            table_depth_max: Self::TABLE_DEPTH_MAX_DEFAULT,
            content_bytes_max: Self::CONTENT_BYTES_MAX_DEFAULT,
            pending_frames_max: 64,
            close_timeout_ms: 3000,
        }
    }
}
