//! ApiVersions, Metadata, DescribeCluster, FindCoordinator and SASL.

use bytes::{BufMut, BytesMut};
use portask_kafka::api::{self, RequestError, ResponseBody};
use portask_kafka::error_codes as code;
use portask_kafka::generated::{
    DescribeClusterRequest, DescribeClusterResponse, FindCoordinatorRequest,
    FindCoordinatorResponse, MetadataRequest, MetadataResponse, SaslAuthenticateResponse,
    SaslHandshakeResponse, describe_cluster_response, find_coordinator_response, metadata_response,
};

use super::{Ctx, NODE_ID};
use crate::kafka::errors::code_of;

/// The cluster id clients see; one broker is one cluster.
pub(crate) const CLUSTER_ID: &str = "portask-single-node";
/// Operations an authorised client may perform, as Kafka's ACL operation bits. Without
/// ACLs every client may do everything that applies to the resource type.
pub(crate) const TOPIC_OPERATIONS: i32 = ops(&[3, 4, 5, 6, 7, 8, 10, 11]);
pub(crate) const CLUSTER_OPERATIONS: i32 = ops(&[5, 7, 8, 9, 10, 11, 12]);
pub(crate) const GROUP_OPERATIONS: i32 = ops(&[3, 6, 8]);
/// "Not asked for" in the authorized-operations fields.
const OPERATIONS_OMITTED: i32 = i32::MIN;

const fn ops(bits: &[u32]) -> i32 {
    let mut out = 0;
    let mut i = 0;
    while i < bits.len() {
        out |= 1 << bits[i];
        i += 1;
    }
    out
}

/// First FindCoordinator version that takes a list of keys.
const COORDINATOR_KEYS_MIN_VERSION: i16 = 4;

pub(crate) fn api_versions() -> ResponseBody {
    ResponseBody::ApiVersions(api::api_versions_response(code::NONE))
}

fn broker_endpoint(ctx: &Ctx<'_>) -> (String, i32) {
    (
        ctx.broker.kafka.advertised_host.clone(),
        ctx.broker.kafka.advertised_port,
    )
}

pub(crate) fn metadata(ctx: &mut Ctx<'_>, req: MetadataRequest) -> ResponseBody {
    let (host, port) = broker_endpoint(ctx);
    let names: Vec<Option<String>> = match req.topics {
        // v0 used an empty list for "all topics"; v1+ uses null.
        None => all_topics(ctx),
        Some(t) if t.is_empty() && ctx.header.api_version == 0 => all_topics(ctx),
        Some(t) => t
            .into_iter()
            .map(|t| match t.name {
                Some(name) => Some(name),
                None => ctx
                    .broker
                    .engine
                    .topic_by_id(&t.topic_id)
                    .map(|i| i.name.clone()),
            })
            .collect(),
    };
    let auto_create = req.allow_auto_topic_creation;
    let topic_ops = if req.include_topic_authorized_operations {
        TOPIC_OPERATIONS
    } else {
        OPERATIONS_OMITTED
    };
    let topics = names
        .into_iter()
        .map(|name| metadata_response::MetadataResponseTopic {
            topic_authorized_operations: topic_ops,
            ..topic_metadata(ctx, name, auto_create)
        })
        .collect();
    ResponseBody::Metadata(MetadataResponse {
        brokers: vec![metadata_response::MetadataResponseBroker {
            node_id: NODE_ID,
            host,
            port,
            ..Default::default()
        }],
        cluster_id: Some(CLUSTER_ID.to_owned()),
        controller_id: NODE_ID,
        topics,
        cluster_authorized_operations: if req.include_cluster_authorized_operations {
            CLUSTER_OPERATIONS
        } else {
            OPERATIONS_OMITTED
        },
        ..Default::default()
    })
}

fn all_topics(ctx: &Ctx<'_>) -> Vec<Option<String>> {
    ctx.broker
        .engine
        .topics()
        .map(|t| Some(t.name.clone()))
        .collect()
}

fn topic_metadata(
    ctx: &mut Ctx<'_>,
    name: Option<String>,
    auto_create: bool,
) -> metadata_response::MetadataResponseTopic {
    let Some(name) = name else {
        return metadata_response::MetadataResponseTopic {
            error_code: code::UNKNOWN_TOPIC_ID,
            ..Default::default()
        };
    };
    let engine = &mut ctx.broker.engine;
    let info = match engine.topic(&name) {
        Some(info) => Ok(info.clone()),
        None if auto_create => engine.ensure_topic(&name),
        None => Err(portask_engine::EngineError::UnknownTopicOrPartition),
    };
    match info {
        Ok(info) => metadata_response::MetadataResponseTopic {
            name: Some(info.name.clone()),
            topic_id: info.id,
            partitions: (0..info.partitions)
                .map(|p| metadata_response::MetadataResponsePartition {
                    partition_index: p,
                    leader_id: NODE_ID,
                    leader_epoch: 0,
                    replica_nodes: vec![NODE_ID],
                    isr_nodes: vec![NODE_ID],
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        },
        Err(e) => metadata_response::MetadataResponseTopic {
            error_code: code_of(&e),
            name: Some(name),
            ..Default::default()
        },
    }
}

pub(crate) fn describe_cluster(ctx: &mut Ctx<'_>, req: DescribeClusterRequest) -> ResponseBody {
    let (host, port) = broker_endpoint(ctx);
    ResponseBody::DescribeCluster(DescribeClusterResponse {
        cluster_id: CLUSTER_ID.to_owned(),
        controller_id: NODE_ID,
        brokers: vec![describe_cluster_response::DescribeClusterBroker {
            broker_id: NODE_ID,
            host,
            port,
            ..Default::default()
        }],
        cluster_authorized_operations: if req.include_cluster_authorized_operations {
            CLUSTER_OPERATIONS
        } else {
            OPERATIONS_OMITTED
        },
        ..Default::default()
    })
}

pub(crate) fn find_coordinator(ctx: &mut Ctx<'_>, req: FindCoordinatorRequest) -> ResponseBody {
    let (host, port) = broker_endpoint(ctx);
    // Up to v3 one key per request and the answer at the top level; from v4 a list.
    let body = if ctx.header.api_version < COORDINATOR_KEYS_MIN_VERSION {
        FindCoordinatorResponse {
            node_id: NODE_ID,
            host,
            port,
            ..Default::default()
        }
    } else {
        let coordinators = req
            .coordinator_keys
            .into_iter()
            .map(|key| find_coordinator_response::Coordinator {
                key,
                node_id: NODE_ID,
                host: host.clone(),
                port,
                ..Default::default()
            })
            .collect();
        FindCoordinatorResponse {
            coordinators,
            ..Default::default()
        }
    };
    ResponseBody::FindCoordinator(body)
}

/// No SASL mechanism is configured: clients that insist on SASL are told so.
pub(crate) fn sasl_handshake() -> ResponseBody {
    ResponseBody::SaslHandshake(SaslHandshakeResponse {
        error_code: code::UNSUPPORTED_SASL_MECHANISM,
        mechanisms: Vec::new(),
        ..Default::default()
    })
}

pub(crate) fn sasl_authenticate() -> ResponseBody {
    ResponseBody::SaslAuthenticate(SaslAuthenticateResponse {
        error_code: code::ILLEGAL_SASL_STATE,
        error_message: Some("no SASL mechanism is enabled on this listener".to_owned()),
        ..Default::default()
    })
}

/// Answers a request that cannot be served, appending to `out`. Returns whether the
/// connection stays open.
///
/// A too-new ApiVersions request gets the v0 ApiVersions body with UNSUPPORTED_VERSION and the
/// supported ranges (KIP-511), so the client retries with a version it knows. Another
/// unsupported version or an unknown API key gets the response header and the error code,
/// and the connection is closed after it, because the client cannot parse a body it did not
/// expect. An unreadable or malformed request closes the connection, as Kafka does.
pub(crate) fn answer_unservable(err: &RequestError, out: &mut BytesMut) -> bool {
    match *err {
        RequestError::UnsupportedVersion {
            api_key: api::ApiKey::ApiVersions,
            correlation_id,
            ..
        } => api::api_versions_fallback(correlation_id, out).is_ok(),
        RequestError::UnsupportedVersion { correlation_id, .. }
        | RequestError::UnknownApiKey { correlation_id, .. } => {
            out.put_i32(6);
            out.put_i32(correlation_id);
            out.put_i16(code::UNSUPPORTED_VERSION);
            false
        }
        _ => false,
    }
}
