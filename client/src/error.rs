//! What can go wrong talking to a broker.

use std::io;

use portask_protocol::code;

/// An error from a [`crate::Client`] call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The broker answered with an `Error` frame (or refused the handshake).
    #[error("{} ({code}): {message}", code_name(*code))]
    Broker {
        /// The protocol error code (`portask_protocol::code`).
        code: u16,
        /// The broker's explanation.
        message: String,
    },
    /// No TCP connection could be made to the address.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The address as given.
        addr: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Reading or writing the socket failed.
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
    /// No answer came within the timeout. The connection may still deliver the answer later.
    #[error("timed out waiting for the broker")]
    Timeout,
    /// The broker closed the connection.
    #[error("connection closed by the broker")]
    Closed,
    /// The broker sent something this client cannot use (bad frame, unexpected response).
    #[error("protocol error: {0}")]
    Protocol(String),
    /// A local argument cannot be used (unknown compression name, frame too large, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

/// The documented name of an error code, or `"ERROR"` for codes this client does not know.
pub fn code_name(code: u16) -> &'static str {
    code::name(code).unwrap_or("ERROR")
}

impl ClientError {
    /// The broker's error code, when the broker answered with one.
    pub fn code(&self) -> Option<u16> {
        match self {
            Self::Broker { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Whether sending the same request again later may succeed: retriable broker codes
    /// (storage unavailable, resource limit, broker timeout, rebalance) and client timeouts.
    pub fn is_retriable(&self) -> bool {
        match self {
            Self::Broker { code, .. } => code::is_retriable(*code),
            Self::Timeout => true,
            _ => false,
        }
    }

    /// Whether the connection is unusable after this error.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            Self::Connect { .. } | Self::Io(_) | Self::Closed | Self::Protocol(_)
        )
    }

    pub(crate) fn broker(code: u16, message: impl Into<String>) -> Self {
        Self::Broker {
            code,
            message: message.into(),
        }
    }

    /// A copy for answering several waiters with the same fatal condition.
    pub(crate) fn duplicate(&self) -> Self {
        match self {
            Self::Broker { code, message } => Self::broker(*code, message.clone()),
            Self::Connect { addr, source } => Self::Connect {
                addr: addr.clone(),
                source: io::Error::new(source.kind(), source.to_string()),
            },
            Self::Io(e) => Self::Io(io::Error::new(e.kind(), e.to_string())),
            Self::Timeout => Self::Timeout,
            Self::Closed => Self::Closed,
            Self::Protocol(m) => Self::Protocol(m.clone()),
            Self::InvalidArgument(m) => Self::InvalidArgument(m.clone()),
        }
    }
}
