//! Subscribe, Heartbeat and Leave: consumer groups over the engine's group coordinator.
//!
//! The broker assigns partitions itself (range assignment, as Kafka's default): the member
//! the coordinator makes leader gets the members' subscriptions from its join and answers
//! the sync with every member's partitions, so clients only send `Subscribe`.

use std::collections::BTreeMap;

use bytes::Bytes;
use portask_engine::{JoinGroup, JoinResult, Output, SyncGroup, TopicPartition, Waiter};
use portask_protocol::body::{Heartbeat, Leave, PartitionOffset, Response, Subscribe, SubscribeOk};

use super::Failure;
use super::admin::{done, engine_failure};
use crate::broker::Broker;
use crate::worker::Now;

/// Protocol type and assignor name given to the coordinator.
const PROTOCOL_TYPE: &str = "portask";
const ASSIGNOR: &str = "range";
/// Session and rebalance timeouts of Portask protocol members.
const SESSION_TIMEOUT_MS: u64 = 30_000;

/// A Subscribe waiting for the group.
#[derive(Debug)]
pub(super) struct PendingJoin {
    group: String,
    member_id: String,
    generation: i32,
}

/// Starts a Subscribe; the answer comes from [`on_output`].
pub(super) fn subscribe(
    broker: &mut Broker,
    now: Now,
    id: u64,
    correlation_id: u64,
    peer: &str,
    s: Subscribe,
) -> PendingJoin {
    let join = JoinGroup {
        group_id: s.group.clone(),
        member_id: s.member_id.unwrap_or_default(),
        group_instance_id: None,
        session_timeout_ms: SESSION_TIMEOUT_MS,
        rebalance_timeout_ms: SESSION_TIMEOUT_MS,
        protocol_type: PROTOCOL_TYPE.to_owned(),
        protocols: vec![(ASSIGNOR.to_owned(), Bytes::from(s.topics.join("\n")))],
        require_known_member_id: false,
        client_id: "portask".to_owned(),
        client_host: peer.to_owned(),
    };
    broker.engine.join_group(
        now.mono,
        Waiter {
            conn: id,
            request: correlation_id,
        },
        join,
    );
    PendingJoin {
        group: s.group,
        member_id: String::new(),
        generation: -1,
    }
}

/// Advances a Subscribe with a Joined or Synced output. Returns the final answer when the
/// Subscribe is complete (then the pending entry is done), `None` while it waits.
pub(super) fn on_output(
    broker: &mut Broker,
    now: Now,
    pending: &mut PendingJoin,
    out: Output,
) -> Option<Result<Response, Failure>> {
    match out {
        Output::Joined { waiter, result } => {
            let joined = match result {
                Ok(j) => j,
                Err(e) => return Some(Err(engine_failure(e))),
            };
            (pending.member_id, pending.generation) =
                (joined.member_id.clone(), joined.generation_id);
            let assignments = if joined.leader == joined.member_id {
                assign(broker, &joined)
            } else {
                Vec::new()
            };
            let sync = SyncGroup {
                group_id: pending.group.clone(),
                generation_id: joined.generation_id,
                member_id: joined.member_id,
                group_instance_id: None,
                protocol_type: Some(PROTOCOL_TYPE.to_owned()),
                protocol_name: Some(ASSIGNOR.to_owned()),
                assignments,
            };
            broker.engine.sync_group(now.mono, waiter, sync);
            None
        }
        Output::Synced { result, .. } => Some(match result {
            Ok(s) => Ok(subscribed(broker, pending, &s.assignment)),
            Err(e) => Err(engine_failure(e)),
        }),
        _ => None,
    }
}

/// Range assignment: each topic's partitions split into contiguous ranges over the members
/// subscribed to it, in member id order. An assignment is "topic\tpartition" lines.
fn assign(broker: &mut Broker, joined: &JoinResult) -> Vec<(String, Bytes)> {
    let mut by_topic: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for m in &joined.members {
        for topic in String::from_utf8_lossy(&m.metadata)
            .lines()
            .filter(|t| !t.is_empty())
        {
            by_topic
                .entry(topic.to_owned())
                .or_default()
                .push(m.member_id.clone());
        }
    }
    let mut lines: BTreeMap<String, String> = BTreeMap::new();
    for (topic, mut members) in by_topic {
        members.sort();
        let Ok(info) = broker.engine.ensure_topic(&topic) else {
            continue;
        };
        let (n, k) = (info.partitions as usize, members.len());
        for (i, member) in members.iter().enumerate() {
            let (start, end) = (i * n / k, (i + 1) * n / k);
            let entry = lines.entry(member.clone()).or_default();
            for p in start..end {
                entry.push_str(&format!("{topic}\t{p}\n"));
            }
        }
    }
    joined
        .members
        .iter()
        .map(|m| {
            (
                m.member_id.clone(),
                Bytes::from(lines.remove(&m.member_id).unwrap_or_default()),
            )
        })
        .collect()
}

/// The partitions of an assignment made by [`assign`].
pub(super) fn parse_assignment(assignment: &[u8]) -> Vec<TopicPartition> {
    String::from_utf8_lossy(assignment)
        .lines()
        .filter_map(|l| {
            let (topic, p) = l.split_once('\t')?;
            Some(TopicPartition {
                topic: topic.to_owned(),
                partition: p.parse().ok()?,
            })
        })
        .collect()
}

/// The SubscribeOk for an assignment, with each partition's committed offset (-1: none).
fn subscribed(broker: &Broker, pending: &PendingJoin, assignment: &[u8]) -> Response {
    let tps = parse_assignment(assignment);
    let committed = broker.engine.fetch_offsets(&pending.group, Some(&tps));
    let assignments = committed
        .into_iter()
        .map(|(tp, c)| PartitionOffset {
            topic: tp.topic,
            partition: tp.partition,
            offset: c.map_or(-1, |c| c.offset),
        })
        .collect();
    Response::SubscribeOk(SubscribeOk {
        member_id: pending.member_id.clone(),
        generation: pending.generation,
        assignments,
    })
}

pub(super) fn heartbeat(broker: &mut Broker, now: Now, h: Heartbeat) -> Result<Response, Failure> {
    broker
        .engine
        .heartbeat(now.mono, &h.group, h.generation, &h.member_id, None)
        .map_err(engine_failure)?;
    Ok(done())
}

pub(super) fn leave(broker: &mut Broker, now: Now, l: Leave) -> Result<Response, Failure> {
    let results = broker
        .engine
        .leave_group(now.mono, &l.group, &[(l.member_id, None)])
        .map_err(engine_failure)?;
    for r in results {
        r.map_err(engine_failure)?;
    }
    Ok(done())
}
