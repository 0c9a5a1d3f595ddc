//! Engine errors as AMQP reply codes and RabbitMQ's reply texts.

use portask_amqp::generated::reply_code as code;
use portask_engine::BrokerError;

/// How an error ends: the channel (soft) or the whole connection (hard).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    pub(crate) code: u16,
    pub(crate) text: String,
    pub(crate) hard: bool,
}

impl Failure {
    /// A soft error (channel.close) with RabbitMQ's "NAME - text" reply text.
    pub(crate) fn soft(code: u16, name: &str, text: &str) -> Self {
        Self {
            code,
            text: format!("{name} - {text}"),
            hard: false,
        }
    }

    /// A hard error (connection.close).
    pub(crate) fn hard(code: u16, name: &str, text: &str) -> Self {
        Self {
            code,
            text: format!("{name} - {text}"),
            hard: true,
        }
    }

    /// 403 ACCESS_REFUSED, a channel error.
    pub(crate) fn access_refused(text: &str) -> Self {
        Self::soft(code::ACCESS_REFUSED, "ACCESS_REFUSED", text)
    }

    /// 406 PRECONDITION_FAILED, a channel error.
    pub(crate) fn precondition(text: &str) -> Self {
        Self::soft(code::PRECONDITION_FAILED, "PRECONDITION_FAILED", text)
    }

    /// 540 NOT_IMPLEMENTED, a connection error.
    pub(crate) fn not_implemented(text: &str) -> Self {
        Self::hard(code::NOT_IMPLEMENTED, "NOT_IMPLEMENTED", text)
    }
}

impl From<BrokerError> for Failure {
    fn from(e: BrokerError) -> Self {
        match e {
            BrokerError::NotFound(t) => Self::soft(code::NOT_FOUND, "NOT_FOUND", &t),
            BrokerError::PreconditionFailed(t) | BrokerError::InvalidArgument(t) => {
                Self::precondition(&t)
            }
            BrokerError::ResourceLocked(t) => {
                Self::soft(code::RESOURCE_LOCKED, "RESOURCE_LOCKED", &t)
            }
            BrokerError::AccessRefused(t) => Self::access_refused(&t),
            BrokerError::NotAllowed(t) => Self::hard(code::NOT_ALLOWED, "NOT_ALLOWED", &t),
            BrokerError::NotImplemented(t) => Self::not_implemented(&t),
            BrokerError::CommandInvalid(t) => {
                Self::hard(code::COMMAND_INVALID, "COMMAND_INVALID", &t)
            }
            other => Self::hard(code::INTERNAL_ERROR, "INTERNAL_ERROR", &other.to_string()),
        }
    }
}
