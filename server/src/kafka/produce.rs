//! Produce: decode the record batches, append them through the engine, answer per partition.

use portask_engine::{EngineError, TopicPartition};
use portask_kafka::api::ResponseBody;
use portask_kafka::error_codes as code;
use portask_kafka::generated::{
    ProduceRequest, ProduceResponse, produce_request, produce_response,
};
use portask_kafka::records::{Compression, RecordBatch};

use super::convert::to_engine;
use super::errors::code_and_message;
use super::{Ctx, Handled};

/// First Produce version that may carry zstd batches.
const ZSTD_MIN_VERSION: i16 = 7;

pub(crate) fn produce(ctx: &mut Ctx<'_>, req: ProduceRequest) -> Handled {
    if req.transactional_id.is_some() {
        return reply_all(req, code::TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
    }
    if !matches!(req.acks, -1..=1) {
        return reply_all(req, code::INVALID_REQUIRED_ACKS);
    }
    if ctx.broker.storage_unavailable {
        // Not even a retried batch is answered from memory: its first copy may still be
        // waiting for the store.
        return reply_all(req, code::KAFKA_STORAGE_ERROR);
    }
    let acks = req.acks;
    let responses = req
        .topic_data
        .into_iter()
        .map(|topic| produce_topic(ctx, topic))
        .collect();
    ctx.broker.data_arrived = true;
    if acks == 0 {
        return Handled::NoReply;
    }
    Handled::Reply(ResponseBody::Produce(ProduceResponse {
        responses,
        ..Default::default()
    }))
}

fn produce_topic(
    ctx: &mut Ctx<'_>,
    topic: produce_request::TopicProduceData,
) -> produce_response::TopicProduceResponse {
    let info = ctx.broker.engine.ensure_topic(&topic.name);
    let partition_responses = topic
        .partition_data
        .into_iter()
        .map(|p| {
            let tp = TopicPartition {
                topic: topic.name.clone(),
                partition: p.index,
            };
            let result = match &info {
                Ok(info) if (0..info.partitions).contains(&p.index) => {
                    append(ctx, &tp, p.records.unwrap_or_default())
                }
                Ok(_) => Err((code::UNKNOWN_TOPIC_OR_PARTITION, None)),
                Err(e) => Err(code_and_message(e)),
            };
            partition_response(p.index, result)
        })
        .collect();
    produce_response::TopicProduceResponse {
        name: topic.name,
        partition_responses,
        ..Default::default()
    }
}

type Appended = (i64, i64);

fn append(
    ctx: &mut Ctx<'_>,
    tp: &TopicPartition,
    records: bytes::Bytes,
) -> Result<Appended, (i16, Option<String>)> {
    let limits = &ctx.broker.kafka.records;
    let batches = RecordBatch::decode_all(&records, limits, false)
        .map_err(|e| (code::CORRUPT_MESSAGE, Some(e.to_string())))?;
    if batches.is_empty() {
        return Err((
            code::INVALID_RECORD,
            Some("no record batch in the request".into()),
        ));
    }
    let zstd = batches
        .iter()
        .any(|b| b.compression() == Ok(Compression::Zstd));
    if zstd && ctx.header.api_version < ZSTD_MIN_VERSION {
        return Err((code::UNSUPPORTED_COMPRESSION_TYPE, None));
    }
    // Kafka refuses keyless records on compacted topics (compaction would drop them).
    let compacted = ctx
        .broker
        .engine
        .retention_policy(&tp.topic)
        .is_some_and(|p| p.compact);
    if compacted
        && batches
            .iter()
            .any(|b| b.records.iter().any(|r| r.key.is_none()))
    {
        let msg = format!(
            "Compacted topic cannot accept message without key in topic partition {}-{}.",
            tp.topic, tp.partition
        );
        return Err((code::INVALID_RECORD, Some(msg)));
    }
    let mut first = None;
    let mut log_start = 0;
    for batch in batches {
        if batch.records.is_empty() {
            continue;
        }
        let outcome = ctx
            .broker
            .engine
            .produce(ctx.now.wall, tp, to_engine(batch))
            .map_err(|e: EngineError| code_and_message(&e))?;
        first.get_or_insert(outcome.base_offset);
        log_start = outcome.log_start_offset;
    }
    first
        .map(|base| (base, log_start))
        .ok_or((code::INVALID_RECORD, None))
}

fn partition_response(
    index: i32,
    result: Result<Appended, (i16, Option<String>)>,
) -> produce_response::PartitionProduceResponse {
    match result {
        Ok((base_offset, log_start_offset)) => produce_response::PartitionProduceResponse {
            index,
            base_offset,
            log_append_time_ms: -1,
            log_start_offset,
            ..Default::default()
        },
        Err((error_code, error_message)) => produce_response::PartitionProduceResponse {
            index,
            error_code,
            base_offset: -1,
            log_append_time_ms: -1,
            log_start_offset: -1,
            error_message,
            ..Default::default()
        },
    }
}

fn reply_all(req: ProduceRequest, error_code: i16) -> Handled {
    if req.acks == 0 {
        return Handled::NoReply;
    }
    let responses = req
        .topic_data
        .into_iter()
        .map(|t| produce_response::TopicProduceResponse {
            partition_responses: t
                .partition_data
                .iter()
                .map(|p| partition_response(p.index, Err((error_code, None))))
                .collect(),
            name: t.name,
            ..Default::default()
        })
        .collect();
    Handled::Reply(ResponseBody::Produce(ProduceResponse {
        responses,
        ..Default::default()
    }))
}
