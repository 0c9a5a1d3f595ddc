//! Fetch, with long-polling: a fetch that finds fewer than `min_bytes` parks until records
//! arrive or `max_wait_ms` passes.

use portask_engine::{EngineError, StorageError, TopicPartition};
use portask_kafka::api::ResponseBody;
use portask_kafka::error_codes as code;
use portask_kafka::generated::{FetchRequest, FetchResponse, fetch_response};

use super::convert::to_kafka;
use super::errors::code_of;
use super::{Ctx, Handled};
use crate::broker::Broker;

/// First Fetch version that names topics by id.
const TOPIC_ID_MIN_VERSION: i16 = 13;
/// Most record bytes one Fetch response carries (past the first batch, as Kafka allows),
/// so the storage reads one fetch waits for fit in the storage thread's read cache.
const RESPONSE_BYTES_MAX: usize = 4 << 20;

pub(crate) fn fetch(ctx: &mut Ctx<'_>, req: FetchRequest) -> Handled {
    let wait = u64::try_from(req.max_wait_ms).unwrap_or(0);
    if wait == 0 {
        let body = complete(ctx.broker, &req, ctx.header.api_version, true);
        return Handled::Reply(body.expect("a fetch at its deadline always answers"));
    }
    match complete(ctx.broker, &req, ctx.header.api_version, false) {
        Some(body) => Handled::Reply(body),
        None => Handled::ParkFetch(Box::new(req), ctx.now.mono + wait),
    }
}

/// Reads what `req` asks for. Returns `None` when fewer than `min_bytes` are available, or a
/// storage read is still in progress, and the deadline has not passed (`due` false), so the
/// request stays parked (and runs again when records arrive or the storage reports progress).
pub(crate) fn complete(
    broker: &mut Broker,
    req: &FetchRequest,
    version: i16,
    due: bool,
) -> Option<ResponseBody> {
    let max_bytes = usize::try_from(req.max_bytes)
        .unwrap_or(0)
        .clamp(1, RESPONSE_BYTES_MAX);
    let mut total = 0usize;
    let mut any_error = false;
    let mut reading = false;
    let mut responses = Vec::with_capacity(req.topics.len());
    for topic in &req.topics {
        let name = if version >= TOPIC_ID_MIN_VERSION {
            broker
                .engine
                .topic_by_id(&topic.topic_id)
                .map(|t| t.name.clone())
        } else {
            Some(topic.topic.clone())
        };
        let partitions = topic
            .partitions
            .iter()
            .map(|p| {
                let budget = max_bytes.saturating_sub(total);
                let part =
                    read_partition(broker, name.as_deref(), p, budget, version, &mut reading);
                total += part.records.as_ref().map_or(0, bytes::Bytes::len);
                any_error |= part.error_code != code::NONE;
                part
            })
            .collect();
        responses.push(fetch_response::FetchableTopicResponse {
            topic: topic.topic.clone(),
            topic_id: topic.topic_id,
            partitions,
            ..Default::default()
        });
    }
    let enough = total > 0 && total >= usize::try_from(req.min_bytes).unwrap_or(0);
    if !due && (reading || !(enough || any_error)) {
        return None;
    }
    Some(ResponseBody::Fetch(FetchResponse {
        responses,
        ..Default::default()
    }))
}

fn read_partition(
    broker: &mut Broker,
    name: Option<&str>,
    p: &portask_kafka::generated::fetch_request::FetchPartition,
    budget: usize,
    version: i16,
    reading: &mut bool,
) -> fetch_response::PartitionData {
    let unknown = if version >= TOPIC_ID_MIN_VERSION {
        code::UNKNOWN_TOPIC_ID
    } else {
        code::UNKNOWN_TOPIC_OR_PARTITION
    };
    let Some(name) = name else {
        return error_partition(p.partition, unknown);
    };
    let tp = TopicPartition {
        topic: name.to_owned(),
        partition: p.partition,
    };
    let engine = &mut broker.engine;
    let offsets_only = |engine: &mut portask_engine::Engine| {
        engine.partition_offsets(&tp).map(|o| {
            (
                o.high_watermark,
                o.last_stable_offset,
                o.log_start_offset,
                None,
            )
        })
    };
    let result = if budget == 0 {
        // The response is full: report offsets only, the client asks again.
        offsets_only(engine)
    } else {
        let max = usize::try_from(p.partition_max_bytes)
            .unwrap_or(0)
            .clamp(1, budget);
        match engine.fetch(&tp, p.fetch_offset, max) {
            Ok(f) => {
                let records = (!f.batches.is_empty()).then(|| to_kafka(f.batches));
                Ok((
                    f.high_watermark,
                    f.last_stable_offset,
                    f.log_start_offset,
                    records,
                ))
            }
            Err(EngineError::Storage(StorageError::Pending)) => {
                *reading = true;
                offsets_only(engine)
            }
            Err(e) => Err(e),
        }
    };
    match result {
        Ok((high_watermark, last_stable_offset, log_start_offset, records)) => {
            fetch_response::PartitionData {
                partition_index: p.partition,
                high_watermark,
                last_stable_offset,
                log_start_offset,
                records: Some(records.unwrap_or_default()),
                ..Default::default()
            }
        }
        Err(EngineError::UnknownTopicOrPartition) => error_partition(p.partition, unknown),
        Err(e) => error_partition(p.partition, code_of(&e)),
    }
}

fn error_partition(partition_index: i32, error_code: i16) -> fetch_response::PartitionData {
    fetch_response::PartitionData {
        partition_index,
        error_code,
        high_watermark: -1,
        last_stable_offset: -1,
        log_start_offset: -1,
        records: Some(bytes::Bytes::new()),
        ..Default::default()
    }
}
