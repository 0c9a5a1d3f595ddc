//! ListOffsets, OffsetCommit, OffsetFetch, OffsetForLeaderEpoch, DeleteRecords and
//! InitProducerId.

use portask_engine::{Engine, EngineError, StorageError, TopicPartition};
use portask_kafka::api::ResponseBody;
use portask_kafka::error_codes as code;
use portask_kafka::generated::{
    DeleteRecordsRequest, DeleteRecordsResponse, InitProducerIdRequest, InitProducerIdResponse,
    ListOffsetsRequest, ListOffsetsResponse, OffsetCommitRequest, OffsetCommitResponse,
    OffsetFetchRequest, OffsetFetchResponse, OffsetForLeaderEpochRequest,
    OffsetForLeaderEpochResponse, delete_records_response, list_offsets_response,
    offset_commit_response, offset_fetch_response, offset_for_leader_epoch_response,
};

use super::errors::{code_of, code_of_result};
use super::{Ctx, Handled};
use crate::broker::Broker;

/// ListOffsets timestamps with a special meaning.
const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
/// First ListOffsets version whose response carries the leader epoch.
const LEADER_EPOCH_MIN_VERSION: i16 = 4;

/// ListOffsets; parks while a timestamp lookup waits for a storage read.
pub(crate) fn list_offsets(ctx: &mut Ctx<'_>, req: ListOffsetsRequest) -> Handled {
    match try_list_offsets(ctx.broker, ctx.header.api_version, &req) {
        Some(body) => Handled::Reply(body),
        None => Handled::ParkListOffsets(Box::new(req)),
    }
}

/// Answers a ListOffsets, or `None` while a lookup waits for a storage read (every lookup
/// of the request is started first, so they run together).
pub(crate) fn try_list_offsets(
    broker: &mut Broker,
    version: i16,
    req: &ListOffsetsRequest,
) -> Option<ResponseBody> {
    let mut reading = false;
    let topics = req
        .topics
        .iter()
        .map(|t| list_offsets_response::ListOffsetsTopicResponse {
            partitions: t
                .partitions
                .iter()
                .map(|p| {
                    let tp = TopicPartition {
                        topic: t.name.clone(),
                        partition: p.partition_index,
                    };
                    let found = offset_at(&mut broker.engine, &tp, p.timestamp);
                    reading |= matches!(found, Err(EngineError::Storage(StorageError::Pending)));
                    let mut r = list_offsets_response::ListOffsetsPartitionResponse {
                        partition_index: p.partition_index,
                        error_code: code_of_result(&found),
                        ..Default::default()
                    };
                    if let Ok((offset, timestamp)) = found {
                        if version == 0 {
                            r.old_style_offsets = vec![offset];
                        } else {
                            (r.offset, r.timestamp) = (offset, timestamp);
                            if version >= LEADER_EPOCH_MIN_VERSION {
                                r.leader_epoch = 0;
                            }
                        }
                    }
                    r
                })
                .collect(),
            name: t.name.clone(),
            ..Default::default()
        })
        .collect();
    (!reading).then(|| {
        ResponseBody::ListOffsets(ListOffsetsResponse {
            topics,
            ..Default::default()
        })
    })
}

/// The offset (and timestamp, -1 when none applies) that a ListOffsets timestamp names.
fn offset_at(engine: &mut Engine, tp: &TopicPartition, ts: i64) -> Result<(i64, i64), EngineError> {
    let offsets = engine.partition_offsets(tp)?;
    match ts {
        LATEST => Ok((offsets.high_watermark, -1)),
        EARLIEST => Ok((offsets.log_start_offset, -1)),
        MAX_TIMESTAMP => {
            let last = offsets.high_watermark - 1;
            if last < offsets.log_start_offset {
                return Ok((-1, -1));
            }
            let f = engine.fetch(tp, last, 1)?;
            let rec = f
                .batches
                .iter()
                .flat_map(|b| b.records.iter())
                .max_by_key(|(_, r)| r.timestamp);
            Ok(rec.map_or((-1, -1), |(o, r)| (*o, r.timestamp)))
        }
        ts if ts < 0 => Err(EngineError::InvalidRequest("unknown special timestamp")),
        ts => Ok(engine
            .offset_for_timestamp(tp, ts)?
            .unwrap_or((offsets.high_watermark, -1))),
    }
}

pub(crate) fn offset_commit(ctx: &mut Ctx<'_>, req: OffsetCommitRequest) -> ResponseBody {
    let mut offsets = Vec::new();
    for t in &req.topics {
        for p in &t.partitions {
            let tp = TopicPartition {
                topic: t.name.clone(),
                partition: p.partition_index,
            };
            offsets.push((
                tp,
                p.committed_offset,
                p.committed_leader_epoch,
                p.committed_metadata.clone(),
            ));
        }
    }
    let result = ctx.broker.engine.commit_offsets(
        ctx.now.mono,
        ctx.now.wall,
        &req.group_id,
        req.generation_id_or_member_epoch,
        &req.member_id,
        offsets,
    );
    let per_partition = |tp: &TopicPartition| -> i16 {
        match &result {
            Err(e) => code_of(e),
            Ok(list) => list
                .iter()
                .find(|(t, _)| t == tp)
                .map_or(code::NONE, |(_, r)| code_of_result(r)),
        }
    };
    let topics = req
        .topics
        .iter()
        .map(|t| offset_commit_response::OffsetCommitResponseTopic {
            name: t.name.clone(),
            partitions: t
                .partitions
                .iter()
                .map(|p| offset_commit_response::OffsetCommitResponsePartition {
                    partition_index: p.partition_index,
                    error_code: per_partition(&TopicPartition {
                        topic: t.name.clone(),
                        partition: p.partition_index,
                    }),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
        .collect();
    ResponseBody::OffsetCommit(OffsetCommitResponse {
        topics,
        ..Default::default()
    })
}

/// Committed offsets of one group as (topic, [(partition, offset, epoch, metadata)]).
type GroupOffsets = Vec<(String, Vec<(i32, i64, i32, Option<String>)>)>;

fn committed(ctx: &Ctx<'_>, group: &str, topics: Option<Vec<(String, Vec<i32>)>>) -> GroupOffsets {
    let wanted: Option<Vec<TopicPartition>> = topics.as_ref().map(|ts| {
        ts.iter()
            .flat_map(|(t, ps)| {
                ps.iter().map(|&p| TopicPartition {
                    topic: t.clone(),
                    partition: p,
                })
            })
            .collect()
    });
    let found = ctx.broker.engine.fetch_offsets(group, wanted.as_deref());
    let mut out: GroupOffsets = Vec::new();
    for (tp, c) in found {
        let entry = match c {
            Some(c) => (tp.partition, c.offset, c.leader_epoch, c.metadata),
            None => (tp.partition, -1, -1, Some(String::new())),
        };
        match out.iter_mut().find(|(t, _)| *t == tp.topic) {
            Some((_, list)) => list.push(entry),
            None => out.push((tp.topic, vec![entry])),
        }
    }
    out
}

pub(crate) fn offset_fetch(ctx: &mut Ctx<'_>, req: OffsetFetchRequest) -> ResponseBody {
    use offset_fetch_response as r;
    // v8+ asks for several groups at once; earlier versions for one, with other struct names.
    if ctx.header.api_version >= 8 {
        let groups = req
            .groups
            .into_iter()
            .map(|g| {
                let wanted = g.topics.map(|ts| {
                    ts.into_iter()
                        .map(|t| (t.name, t.partition_indexes))
                        .collect()
                });
                let topics = shape(
                    committed(ctx, &g.group_id, wanted),
                    |name, partitions| r::OffsetFetchResponseTopics {
                        name,
                        partitions,
                        ..Default::default()
                    },
                    |partition_index, committed_offset, committed_leader_epoch, metadata| {
                        r::OffsetFetchResponsePartitions {
                            partition_index,
                            committed_offset,
                            committed_leader_epoch,
                            metadata,
                            ..Default::default()
                        }
                    },
                );
                r::OffsetFetchResponseGroup {
                    group_id: g.group_id,
                    topics,
                    ..Default::default()
                }
            })
            .collect();
        return ResponseBody::OffsetFetch(OffsetFetchResponse {
            groups,
            ..Default::default()
        });
    }
    let wanted = req.topics.map(|ts| {
        ts.into_iter()
            .map(|t| (t.name, t.partition_indexes))
            .collect()
    });
    let topics = shape(
        committed(ctx, &req.group_id, wanted),
        |name, partitions| r::OffsetFetchResponseTopic {
            name,
            partitions,
            ..Default::default()
        },
        |partition_index, committed_offset, committed_leader_epoch, metadata| {
            r::OffsetFetchResponsePartition {
                partition_index,
                committed_offset,
                committed_leader_epoch,
                metadata,
                ..Default::default()
            }
        },
    );
    ResponseBody::OffsetFetch(OffsetFetchResponse {
        topics,
        ..Default::default()
    })
}

/// Builds the response topics of either OffsetFetch layout from committed offsets.
fn shape<T, P>(
    offsets: GroupOffsets,
    topic: impl Fn(String, Vec<P>) -> T,
    partition: impl Fn(i32, i64, i32, Option<String>) -> P,
) -> Vec<T> {
    offsets
        .into_iter()
        .map(|(name, ps)| {
            topic(
                name,
                ps.into_iter()
                    .map(|(p, o, e, m)| partition(p, o, e, m))
                    .collect(),
            )
        })
        .collect()
}

pub(crate) fn offset_for_leader_epoch(
    ctx: &mut Ctx<'_>,
    req: OffsetForLeaderEpochRequest,
) -> ResponseBody {
    let topics = req
        .topics
        .into_iter()
        .map(
            |t| offset_for_leader_epoch_response::OffsetForLeaderTopicResult {
                partitions: t
                    .partitions
                    .iter()
                    .map(|p| {
                        let tp = TopicPartition {
                            topic: t.topic.clone(),
                            partition: p.partition,
                        };
                        // Every partition has had one leader epoch, 0, since it was created.
                        let found = ctx.broker.engine.partition_offsets(&tp);
                        offset_for_leader_epoch_response::EpochEndOffset {
                            error_code: code_of_result(&found),
                            partition: p.partition,
                            leader_epoch: if found.is_ok() { 0 } else { -1 },
                            end_offset: found.map_or(-1, |o| o.high_watermark),
                            ..Default::default()
                        }
                    })
                    .collect(),
                topic: t.topic,
                ..Default::default()
            },
        )
        .collect();
    ResponseBody::OffsetForLeaderEpoch(OffsetForLeaderEpochResponse {
        topics,
        ..Default::default()
    })
}

pub(crate) fn delete_records(ctx: &mut Ctx<'_>, req: DeleteRecordsRequest) -> ResponseBody {
    let topics = req
        .topics
        .into_iter()
        .map(|t| delete_records_response::DeleteRecordsTopicResult {
            partitions: t
                .partitions
                .iter()
                .map(|p| {
                    let tp = TopicPartition {
                        topic: t.name.clone(),
                        partition: p.partition_index,
                    };
                    let r = ctx.broker.engine.delete_records(&tp, p.offset);
                    delete_records_response::DeleteRecordsPartitionResult {
                        partition_index: p.partition_index,
                        error_code: code_of_result(&r),
                        low_watermark: r.unwrap_or(-1),
                        ..Default::default()
                    }
                })
                .collect(),
            name: t.name,
            ..Default::default()
        })
        .collect();
    ResponseBody::DeleteRecords(DeleteRecordsResponse {
        topics,
        ..Default::default()
    })
}

pub(crate) fn init_producer_id(ctx: &mut Ctx<'_>, req: InitProducerIdRequest) -> ResponseBody {
    let body = if req.transactional_id.is_some() {
        // Transactions are not implemented; idempotent producers send no transactional id.
        InitProducerIdResponse {
            error_code: code::TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
            producer_id: -1,
            producer_epoch: -1,
            ..Default::default()
        }
    } else {
        match ctx.broker.engine.init_producer_id() {
            Ok((producer_id, producer_epoch)) => InitProducerIdResponse {
                producer_id,
                producer_epoch,
                ..Default::default()
            },
            Err(e) => InitProducerIdResponse {
                error_code: code_of(&e),
                producer_id: -1,
                producer_epoch: -1,
                ..Default::default()
            },
        }
    };
    ResponseBody::InitProducerId(body)
}
