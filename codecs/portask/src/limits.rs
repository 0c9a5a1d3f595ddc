//! Limits on what a peer may make the codec buffer or allocate.

/// Limits applied while decoding peer input. Checked before buffering or allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest frame accepted, counted as the length prefix counts it: the 12-byte header and
    /// the (possibly compressed) body. Announced to clients as `HelloOk.max_frame_bytes`.
    pub frame_bytes_max: u32,
    /// Largest body after decompression. Bounds what a small compressed frame can expand to.
    pub body_bytes_max: u64,
    /// Deepest nesting of CBOR arrays and maps inside a body.
    pub nesting_depth_max: usize,
    /// Bodies at least this long are compressed with the negotiated algorithm when sent.
    pub compress_bytes_min: usize,
}

impl Limits {
    /// Default [`Limits::frame_bytes_max`]: 16 MiB.
    pub const FRAME_BYTES_MAX_DEFAULT: u32 = 16 * 1024 * 1024;
    /// Default [`Limits::body_bytes_max`]: 64 MiB.
    pub const BODY_BYTES_MAX_DEFAULT: u64 = 64 * 1024 * 1024;
    /// Default [`Limits::nesting_depth_max`].
    pub const NESTING_DEPTH_MAX_DEFAULT: usize = 32;
    /// Default [`Limits::compress_bytes_min`].
    pub const COMPRESS_BYTES_MIN_DEFAULT: usize = 1024;
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            frame_bytes_max: Self::FRAME_BYTES_MAX_DEFAULT,
            body_bytes_max: Self::BODY_BYTES_MAX_DEFAULT,
            nesting_depth_max: Self::NESTING_DEPTH_MAX_DEFAULT,
            compress_bytes_min: Self::COMPRESS_BYTES_MIN_DEFAULT,
        }
    }
}
