//! Engine errors. The server maps each variant to its protocol's error code.

use crate::batch::BatchFormatError;
use crate::storage::StorageError;

/// Why an engine call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The topic does not exist, or the partition index is out of range.
    #[error("unknown topic or partition")]
    UnknownTopicOrPartition,
    /// A topic with that name already exists.
    #[error("topic already exists")]
    TopicAlreadyExists,
    /// The topic name breaks the naming rules.
    #[error("invalid topic: {0}")]
    InvalidTopic(&'static str),
    /// The partition count is not acceptable.
    #[error("invalid partitions: {0}")]
    InvalidPartitions(&'static str),
    /// The requested offset is outside the partition's log.
    #[error("offset out of range")]
    OffsetOutOfRange,
    /// An idempotent producer's sequence number is not the expected one.
    #[error("out of order sequence number")]
    OutOfOrderSequence,
    /// An idempotent producer used an epoch older than the current one.
    #[error("invalid producer epoch")]
    InvalidProducerEpoch,
    /// The producer id is not known.
    #[error("unknown producer id")]
    UnknownProducerId,
    /// The request is malformed in a way the engine detects.
    #[error("invalid request: {0}")]
    InvalidRequest(&'static str),
    /// The group member is not (or no longer) in the group.
    #[error("unknown member id")]
    UnknownMemberId,
    /// The generation id does not match the group's.
    #[error("illegal generation")]
    IllegalGeneration,
    /// The group is rebalancing; the member must rejoin.
    #[error("rebalance in progress")]
    RebalanceInProgress,
    /// The member's protocols do not match the group's.
    #[error("inconsistent group protocol")]
    InconsistentGroupProtocol,
    /// The session timeout is outside the configured bounds.
    #[error("invalid session timeout")]
    InvalidSessionTimeout,
    /// The member must rejoin with the member id the engine generated (carried here).
    #[error("member id required: {0}")]
    MemberIdRequired(String),
    /// The group still has members.
    #[error("group is not empty")]
    NonEmptyGroup,
    /// The group does not exist.
    #[error("group id not found")]
    GroupIdNotFound,
    /// The group id is empty or otherwise invalid.
    #[error("invalid group id")]
    InvalidGroupId,
    /// The metadata of a committed offset is longer than allowed.
    #[error("offset metadata too large")]
    OffsetMetadataTooLarge,
    /// The storage backend failed; nothing was acknowledged.
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    /// A batch read back from storage failed its checks.
    #[error("corrupt stored batch: {0}")]
    CorruptStoredBatch(#[from] BatchFormatError),
}

/// Why a call of the queue model failed. The text is RabbitMQ's, as it follows `CODE - ` in a
/// channel.close or connection.close.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BrokerError {
    /// 404 NOT_FOUND (channel error).
    #[error("{0}")]
    NotFound(String),
    /// 406 PRECONDITION_FAILED (channel error).
    #[error("{0}")]
    PreconditionFailed(String),
    /// 405 RESOURCE_LOCKED (channel error).
    #[error("{0}")]
    ResourceLocked(String),
    /// 403 ACCESS_REFUSED (channel error).
    #[error("{0}")]
    AccessRefused(String),
    /// 530 NOT_ALLOWED (connection error).
    #[error("{0}")]
    NotAllowed(String),
    /// 540 NOT_IMPLEMENTED (connection error).
    #[error("{0}")]
    NotImplemented(String),
    /// 503 COMMAND_INVALID (connection error).
    #[error("{0}")]
    CommandInvalid(String),
    /// 406 PRECONDITION_FAILED for an invalid x-argument (channel error).
    #[error("{0}")]
    InvalidArgument(String),
    /// 541 INTERNAL_ERROR (connection error); nothing was acknowledged.
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
}

impl BrokerError {
    /// Connection errors close the whole connection; the others close the channel.
    pub fn is_connection_error(&self) -> bool {
        matches!(
            self,
            Self::NotAllowed(_)
                | Self::NotImplemented(_)
                | Self::CommandInvalid(_)
                | Self::Storage(_)
        )
    }
}
