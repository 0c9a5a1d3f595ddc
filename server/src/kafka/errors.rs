//! Engine errors as Kafka error codes.

use portask_engine::EngineError;
use portask_kafka::error_codes as code;

/// The Kafka error code for an engine error.
pub(crate) fn code_of(err: &EngineError) -> i16 {
    match err {
        EngineError::UnknownTopicOrPartition => code::UNKNOWN_TOPIC_OR_PARTITION,
        EngineError::TopicAlreadyExists => code::TOPIC_ALREADY_EXISTS,
        EngineError::InvalidTopic(_) => code::INVALID_TOPIC_EXCEPTION,
        EngineError::InvalidPartitions(_) => code::INVALID_PARTITIONS,
        EngineError::OffsetOutOfRange => code::OFFSET_OUT_OF_RANGE,
        EngineError::OutOfOrderSequence => code::OUT_OF_ORDER_SEQUENCE_NUMBER,
        EngineError::InvalidProducerEpoch => code::INVALID_PRODUCER_EPOCH,
        EngineError::UnknownProducerId => code::UNKNOWN_PRODUCER_ID,
        EngineError::InvalidRequest(_) => code::INVALID_REQUEST,
        EngineError::UnknownMemberId => code::UNKNOWN_MEMBER_ID,
        EngineError::IllegalGeneration => code::ILLEGAL_GENERATION,
        EngineError::RebalanceInProgress => code::REBALANCE_IN_PROGRESS,
        EngineError::InconsistentGroupProtocol => code::INCONSISTENT_GROUP_PROTOCOL,
        EngineError::InvalidSessionTimeout => code::INVALID_SESSION_TIMEOUT,
        EngineError::MemberIdRequired(_) => code::MEMBER_ID_REQUIRED,
        EngineError::NonEmptyGroup => code::NON_EMPTY_GROUP,
        EngineError::GroupIdNotFound => code::GROUP_ID_NOT_FOUND,
        EngineError::InvalidGroupId => code::INVALID_GROUP_ID,
        EngineError::Storage(_) => code::KAFKA_STORAGE_ERROR,
        _ => code::UNKNOWN_SERVER_ERROR,
    }
}

/// The error code and, for errors that carry one, a message for the client.
pub(crate) fn code_and_message(err: &EngineError) -> (i16, Option<String>) {
    (code_of(err), Some(err.to_string()))
}

/// Error code of a result.
pub(crate) fn code_of_result<T>(r: &Result<T, EngineError>) -> i16 {
    r.as_ref().err().map_or(code::NONE, code_of)
}
