//! The classic consumer group APIs: JoinGroup, SyncGroup, Heartbeat, LeaveGroup, ListGroups,
//! DescribeGroups, DeleteGroups.

use portask_engine::{EngineError, JoinGroup, Output, SyncGroup, Waiter};
use portask_kafka::api::ResponseBody;
use portask_kafka::error_codes as code;
use portask_kafka::generated::{
    DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest, DescribeGroupsResponse,
    HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest,
    LeaveGroupResponse, ListGroupsRequest, ListGroupsResponse, SyncGroupRequest, SyncGroupResponse,
    delete_groups_response, describe_groups_response, join_group_response, leave_group_response,
    list_groups_response,
};

use super::errors::{code_of, code_of_result};
use super::{Ctx, Handled};

/// First JoinGroup version whose clients expect MEMBER_ID_REQUIRED on their first join.
const REQUIRE_MEMBER_ID_MIN_VERSION: i16 = 4;
/// The rebalance timeout of JoinGroup v0, which had none: the session timeout.
const NO_REBALANCE_TIMEOUT: i32 = -1;

fn waiter(ctx: &Ctx<'_>) -> Waiter {
    Waiter {
        conn: ctx.conn,
        request: ctx.header.correlation_id as u32 as u64,
    }
}

fn millis(v: i32) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

pub(crate) fn join(ctx: &mut Ctx<'_>, req: JoinGroupRequest) -> Handled {
    let rebalance = match req.rebalance_timeout_ms {
        NO_REBALANCE_TIMEOUT => req.session_timeout_ms,
        t => t,
    };
    let join = JoinGroup {
        group_id: req.group_id,
        member_id: req.member_id,
        group_instance_id: req.group_instance_id,
        session_timeout_ms: millis(req.session_timeout_ms),
        rebalance_timeout_ms: millis(rebalance),
        protocol_type: req.protocol_type,
        protocols: req
            .protocols
            .into_iter()
            .map(|p| (p.name, p.metadata))
            .collect(),
        require_known_member_id: ctx.header.api_version >= REQUIRE_MEMBER_ID_MIN_VERSION,
        client_id: ctx.client_id.to_owned(),
        client_host: ctx.client_host.clone(),
    };
    let w = waiter(ctx);
    ctx.broker.engine.join_group(ctx.now.mono, w, join);
    Handled::ParkGroup
}

pub(crate) fn sync(ctx: &mut Ctx<'_>, req: SyncGroupRequest) -> Handled {
    let sync = SyncGroup {
        group_id: req.group_id,
        generation_id: req.generation_id,
        member_id: req.member_id,
        group_instance_id: req.group_instance_id,
        protocol_type: req.protocol_type,
        protocol_name: req.protocol_name,
        assignments: req
            .assignments
            .into_iter()
            .map(|a| (a.member_id, a.assignment))
            .collect(),
    };
    let w = waiter(ctx);
    ctx.broker.engine.sync_group(ctx.now.mono, w, sync);
    Handled::ParkGroup
}

/// The response for a completed JoinGroup or SyncGroup; `None` for outputs of other kinds,
/// which a Kafka connection never gets.
pub(crate) fn output_response(out: Output) -> Option<ResponseBody> {
    Some(match out {
        Output::Joined { result, .. } => ResponseBody::JoinGroup(match result {
            Ok(r) => JoinGroupResponse {
                generation_id: r.generation_id,
                protocol_type: r.protocol_type,
                protocol_name: r.protocol_name,
                leader: r.leader,
                member_id: r.member_id,
                members: r
                    .members
                    .into_iter()
                    .map(|m| join_group_response::JoinGroupResponseMember {
                        member_id: m.member_id,
                        group_instance_id: m.group_instance_id,
                        metadata: m.metadata,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            },
            Err(e) => JoinGroupResponse {
                error_code: code_of(&e),
                generation_id: -1,
                member_id: match e {
                    EngineError::MemberIdRequired(id) => id,
                    _ => String::new(),
                },
                protocol_name: Some(String::new()),
                ..Default::default()
            },
        }),
        Output::Synced { result, .. } => ResponseBody::SyncGroup(match result {
            Ok(r) => SyncGroupResponse {
                protocol_type: r.protocol_type,
                protocol_name: r.protocol_name,
                assignment: r.assignment,
                ..Default::default()
            },
            Err(e) => SyncGroupResponse {
                error_code: code_of(&e),
                ..Default::default()
            },
        }),
        _ => return None,
    })
}

pub(crate) fn heartbeat(ctx: &mut Ctx<'_>, req: HeartbeatRequest) -> ResponseBody {
    let r = ctx.broker.engine.heartbeat(
        ctx.now.mono,
        &req.group_id,
        req.generation_id,
        &req.member_id,
        req.group_instance_id.as_deref(),
    );
    ResponseBody::Heartbeat(HeartbeatResponse {
        error_code: code_of_result(&r),
        ..Default::default()
    })
}

pub(crate) fn leave(ctx: &mut Ctx<'_>, req: LeaveGroupRequest) -> ResponseBody {
    let members: Vec<(String, Option<String>)> = if ctx.header.api_version >= 3 {
        req.members
            .iter()
            .map(|m| (m.member_id.clone(), m.group_instance_id.clone()))
            .collect()
    } else {
        vec![(req.member_id.clone(), None)]
    };
    let result = ctx
        .broker
        .engine
        .leave_group(ctx.now.mono, &req.group_id, &members);
    let body = match result {
        Err(e) => LeaveGroupResponse {
            error_code: code_of(&e),
            ..Default::default()
        },
        Ok(per_member) if ctx.header.api_version < 3 => LeaveGroupResponse {
            error_code: per_member.first().map_or(code::NONE, code_of_result),
            ..Default::default()
        },
        Ok(per_member) => LeaveGroupResponse {
            members: members
                .into_iter()
                .zip(per_member)
                .map(
                    |((member_id, group_instance_id), r)| leave_group_response::MemberResponse {
                        member_id,
                        group_instance_id,
                        error_code: code_of_result(&r),
                        ..Default::default()
                    },
                )
                .collect(),
            ..Default::default()
        },
    };
    ResponseBody::LeaveGroup(body)
}

pub(crate) fn list(ctx: &mut Ctx<'_>, req: ListGroupsRequest) -> ResponseBody {
    let groups = ctx
        .broker
        .engine
        .list_groups()
        .into_iter()
        .map(|g| (g.group_id, g.protocol_type, g.state.as_str().to_owned()))
        .filter(|(_, _, state)| {
            req.states_filter.is_empty()
                || req
                    .states_filter
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(state))
        })
        .filter(|_| req.types_filter.is_empty() || req.types_filter.iter().any(|t| t == "classic"))
        .map(
            |(group_id, protocol_type, group_state)| list_groups_response::ListedGroup {
                group_id,
                protocol_type,
                group_state,
                group_type: "classic".to_owned(),
                ..Default::default()
            },
        )
        .collect();
    ResponseBody::ListGroups(ListGroupsResponse {
        groups,
        ..Default::default()
    })
}

pub(crate) fn describe(ctx: &mut Ctx<'_>, req: DescribeGroupsRequest) -> ResponseBody {
    let groups = req
        .groups
        .iter()
        .cloned()
        .map(|id| {
            let d = ctx.broker.engine.describe_group(&id);
            describe_groups_response::DescribedGroup {
                group_id: id,
                group_state: d.state.as_str().to_owned(),
                protocol_type: d.protocol_type,
                protocol_data: d.protocol,
                members: d
                    .members
                    .into_iter()
                    .map(|m| describe_groups_response::DescribedGroupMember {
                        member_id: m.member_id,
                        group_instance_id: m.group_instance_id,
                        client_id: m.client_id,
                        client_host: m.client_host,
                        member_metadata: m.metadata,
                        member_assignment: m.assignment,
                        ..Default::default()
                    })
                    .collect(),
                authorized_operations: if req.include_authorized_operations {
                    super::cluster::GROUP_OPERATIONS
                } else {
                    i32::MIN
                },
                ..Default::default()
            }
        })
        .collect();
    ResponseBody::DescribeGroups(DescribeGroupsResponse {
        groups,
        ..Default::default()
    })
}

pub(crate) fn delete(ctx: &mut Ctx<'_>, req: DeleteGroupsRequest) -> ResponseBody {
    let results = req
        .groups_names
        .into_iter()
        .map(|group_id| {
            let r = ctx.broker.engine.delete_group(&group_id);
            delete_groups_response::DeletableGroupResult {
                group_id,
                error_code: code_of_result(&r),
                ..Default::default()
            }
        })
        .collect();
    ResponseBody::DeleteGroups(DeleteGroupsResponse {
        results,
        ..Default::default()
    })
}
