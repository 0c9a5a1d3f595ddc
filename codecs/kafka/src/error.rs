//! Errors of the Kafka codec, sorted by who is at fault.

/// Bytes from the peer that cannot be decoded. Never allocates.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended inside a value that the frame announced.
    #[error("truncated input: {0}")]
    Truncated(&'static str),
    /// A value is outside what the protocol allows.
    #[error("invalid value: {0}")]
    Invalid(&'static str),
    /// A length or count is larger than a configured limit or than the remaining input.
    #[error("limit exceeded: {0}")]
    TooLarge(&'static str),
    /// Bytes were left over after a complete message.
    #[error("trailing bytes after the message")]
    TrailingData,
    /// The API key is not one this codec knows.
    #[error("unknown api key {0}")]
    UnknownApiKey(i16),
    /// The API version is outside the range the codec supports for this key.
    #[error("unsupported version {version} of api key {api_key}")]
    UnsupportedVersion {
        /// The request's API key.
        api_key: i16,
        /// The version the peer asked for.
        version: i16,
    },
    /// A record batch's CRC-32C does not match its contents.
    #[error("record batch CRC mismatch")]
    CrcMismatch,
    /// A compression codec the codec does not know, or corrupt compressed data.
    #[error("compression error: {0}")]
    Compression(&'static str),
}

impl DecodeError {
    /// The Kafka error code that answers a request that failed this way.
    pub fn error_code(&self) -> i16 {
        match self {
            Self::UnsupportedVersion { .. } => crate::error_codes::UNSUPPORTED_VERSION,
            Self::CrcMismatch | Self::Compression(_) => crate::error_codes::CORRUPT_MESSAGE,
            _ => crate::error_codes::INVALID_REQUEST,
        }
    }
}

/// A value that cannot be encoded in the chosen version. A local misuse, not peer input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A field is set to a non-default value but does not exist in this version.
    #[error("field {field} cannot be encoded in version {version}")]
    FieldNotInVersion {
        /// The field's name in the schema.
        field: &'static str,
        /// The version being encoded.
        version: i16,
    },
    /// A null value for a field that is not nullable in this version.
    #[error("field {0} is null but not nullable in this version")]
    NotNullable(&'static str),
    /// The version is outside the message's valid versions.
    #[error("version {version} is not valid for {message}")]
    InvalidVersion {
        /// The message's name.
        message: &'static str,
        /// The version asked for.
        version: i16,
    },
    /// A string, array or byte field is too long for its length prefix.
    #[error("value too long: {0}")]
    TooLong(&'static str),
}
