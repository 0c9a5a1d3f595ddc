//! CreateTopics, DeleteTopics, CreatePartitions and DescribeConfigs.

use std::collections::BTreeMap;

use portask_engine::retention::{RetentionDefaults, validate_topic_configs};
use portask_engine::{EngineError, TopicInfo};
use portask_kafka::api::ResponseBody;
use portask_kafka::error_codes as code;
use portask_kafka::generated::{
    AlterConfigsRequest, AlterConfigsResponse, CreatePartitionsRequest, CreatePartitionsResponse,
    CreateTopicsRequest, CreateTopicsResponse, DeleteTopicsRequest, DeleteTopicsResponse,
    DescribeConfigsRequest, DescribeConfigsResponse, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse, alter_configs_response, create_partitions_response,
    create_topics_response, delete_topics_response, describe_configs_response,
    incremental_alter_configs_response,
};

use super::Ctx;
use super::errors::{code_and_message, code_of_result};

/// DescribeConfigs resource types.
const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
/// DescribeConfigs config sources.
const SOURCE_TOPIC: i8 = 1;
const SOURCE_DEFAULT: i8 = 5;
/// First DeleteTopics version that lists topics as (name, id) pairs.
const DELETE_BY_ID_MIN_VERSION: i16 = 6;

/// Topic configs every topic reports, with the values this broker applies (`retention.ms`
/// and `retention.bytes` come from the engine's retention defaults).
const TOPIC_DEFAULTS: &[(&str, &str)] = &[
    ("cleanup.policy", "delete"),
    ("compression.type", "producer"),
    ("delete.retention.ms", "86400000"),
    ("max.message.bytes", "1048588"),
    ("message.timestamp.type", "CreateTime"),
    ("min.insync.replicas", "1"),
    ("segment.bytes", "1073741824"),
    ("segment.ms", "604800000"),
];

pub(crate) fn create_topics(ctx: &mut Ctx<'_>, req: CreateTopicsRequest) -> ResponseBody {
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let configs: BTreeMap<String, String> = t
                .configs
                .into_iter()
                .filter_map(|c| Some((c.name, c.value?)))
                .collect();
            if let Err(why) = validate_topic_configs(&configs) {
                return create_topics_response::CreatableTopicResult {
                    name: t.name,
                    error_code: code::INVALID_CONFIG,
                    error_message: Some(why),
                    num_partitions: -1,
                    replication_factor: -1,
                    ..Default::default()
                };
            }
            let result = if t.replication_factor > 1 {
                Err(EngineError::InvalidRequest(
                    "replication factor above 1 on a single broker",
                ))
            } else if req.validate_only {
                validate_new_topic(ctx, &t.name)
            } else {
                ctx.broker
                    .engine
                    .create_topic(&t.name, t.num_partitions, configs)
                    .map(Some)
            };
            topic_result(t.name, result)
        })
        .collect();
    ResponseBody::CreateTopics(CreateTopicsResponse {
        topics,
        ..Default::default()
    })
}

fn validate_new_topic(ctx: &Ctx<'_>, name: &str) -> Result<Option<TopicInfo>, EngineError> {
    match ctx.broker.engine.topic(name) {
        Some(_) => Err(EngineError::TopicAlreadyExists),
        None => Ok(None),
    }
}

fn topic_result(
    name: String,
    result: Result<Option<TopicInfo>, EngineError>,
) -> create_topics_response::CreatableTopicResult {
    match result {
        Ok(info) => create_topics_response::CreatableTopicResult {
            name,
            topic_id: info.as_ref().map_or([0; 16], |i| i.id),
            num_partitions: info.as_ref().map_or(-1, |i| i.partitions),
            replication_factor: 1,
            ..Default::default()
        },
        Err(e) => {
            let (error_code, error_message) = code_and_message(&e);
            create_topics_response::CreatableTopicResult {
                name,
                error_code,
                error_message,
                num_partitions: -1,
                replication_factor: -1,
                ..Default::default()
            }
        }
    }
}

pub(crate) fn delete_topics(ctx: &mut Ctx<'_>, req: DeleteTopicsRequest) -> ResponseBody {
    let targets: Vec<(Option<String>, [u8; 16])> =
        if ctx.header.api_version >= DELETE_BY_ID_MIN_VERSION {
            req.topics
                .into_iter()
                .map(|t| {
                    let name = t.name.or_else(|| {
                        ctx.broker
                            .engine
                            .topic_by_id(&t.topic_id)
                            .map(|i| i.name.clone())
                    });
                    (name, t.topic_id)
                })
                .collect()
        } else {
            req.topic_names
                .into_iter()
                .map(|n| (Some(n), [0; 16]))
                .collect()
        };
    let responses = targets
        .into_iter()
        .map(|(name, topic_id)| {
            let id = name
                .as_deref()
                .and_then(|n| ctx.broker.engine.topic(n))
                .map_or(topic_id, |i| i.id);
            let result = match &name {
                Some(n) => ctx.broker.engine.delete_topic(n),
                None => Err(EngineError::UnknownTopicOrPartition),
            };
            let error_code = match (&name, code_of_result(&result)) {
                (None, _) => code::UNKNOWN_TOPIC_ID,
                (_, c) => c,
            };
            delete_topics_response::DeletableTopicResult {
                name,
                topic_id: id,
                error_code,
                ..Default::default()
            }
        })
        .collect();
    ResponseBody::DeleteTopics(DeleteTopicsResponse {
        responses,
        ..Default::default()
    })
}

pub(crate) fn create_partitions(ctx: &mut Ctx<'_>, req: CreatePartitionsRequest) -> ResponseBody {
    let results = req
        .topics
        .into_iter()
        .map(|t| {
            let result = if req.validate_only {
                ctx.broker
                    .engine
                    .topic(&t.name)
                    .map(|_| ())
                    .ok_or(EngineError::UnknownTopicOrPartition)
            } else {
                ctx.broker.engine.create_partitions(&t.name, t.count)
            };
            let (error_code, error_message) = match &result {
                Ok(()) => (code::NONE, None),
                Err(e) => code_and_message(e),
            };
            create_partitions_response::CreatePartitionsTopicResult {
                name: t.name,
                error_code,
                error_message,
                ..Default::default()
            }
        })
        .collect();
    ResponseBody::CreatePartitions(CreatePartitionsResponse {
        results,
        ..Default::default()
    })
}

pub(crate) fn describe_configs(ctx: &mut Ctx<'_>, req: DescribeConfigsRequest) -> ResponseBody {
    let version = ctx.header.api_version;
    let results = req
        .resources
        .into_iter()
        .map(|r| {
            let mut result = describe_configs_response::DescribeConfigsResult {
                resource_type: r.resource_type,
                resource_name: r.resource_name.clone(),
                ..Default::default()
            };
            let entries: Vec<(String, String, i8)> = match r.resource_type {
                RESOURCE_TOPIC => match ctx.broker.engine.topic(&r.resource_name) {
                    Some(info) => topic_configs(info, &ctx.broker.engine.retention_defaults()),
                    None => {
                        result.error_code = code::UNKNOWN_TOPIC_OR_PARTITION;
                        Vec::new()
                    }
                },
                RESOURCE_BROKER => vec![(
                    "num.partitions".to_owned(),
                    ctx.broker.engine.config().default_partitions.to_string(),
                    SOURCE_DEFAULT,
                )],
                _ => {
                    result.error_code = code::INVALID_REQUEST;
                    result.error_message = Some("unsupported resource type".to_owned());
                    Vec::new()
                }
            };
            result.configs = entries
                .into_iter()
                .filter(|(name, _, _)| {
                    r.configuration_keys
                        .as_ref()
                        .is_none_or(|keys| keys.contains(name))
                })
                .map(|(name, value, source)| {
                    describe_configs_response::DescribeConfigsResourceResult {
                        name,
                        value: Some(value),
                        read_only: r.resource_type == RESOURCE_BROKER,
                        // v0 says whether a value is the default; v1+ says where it comes from.
                        is_default: version == 0 && source == SOURCE_DEFAULT,
                        config_source: if version == 0 { -1 } else { source },
                        ..Default::default()
                    }
                })
                .collect();
            result
        })
        .collect();
    ResponseBody::DescribeConfigs(DescribeConfigsResponse {
        results,
        ..Default::default()
    })
}

fn topic_configs(info: &TopicInfo, retention: &RetentionDefaults) -> Vec<(String, String, i8)> {
    let retention = [
        ("retention.bytes", retention.retention_bytes.to_string()),
        ("retention.ms", retention.retention_ms.to_string()),
    ];
    let mut out: Vec<(String, String, i8)> = TOPIC_DEFAULTS
        .iter()
        .map(|(k, v)| (*k, (*v).to_owned()))
        .chain(retention)
        .filter(|(k, _)| !info.configs.contains_key(*k))
        .map(|(k, v)| (k.to_owned(), v, SOURCE_DEFAULT))
        .collect();
    out.extend(
        info.configs
            .iter()
            .map(|(k, v)| (k.clone(), v.clone(), SOURCE_TOPIC)),
    );
    out.sort();
    out
}

/// IncrementalAlterConfigs operations.
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;

/// Applies new configs to a topic resource; broker configs are read-only here.
fn alter_topic(
    ctx: &mut Ctx<'_>,
    resource_type: i8,
    name: &str,
    validate_only: bool,
    change: impl FnOnce(&mut BTreeMap<String, String>) -> Result<(), &'static str>,
) -> (i16, Option<String>) {
    if resource_type != RESOURCE_TOPIC {
        return (
            code::INVALID_REQUEST,
            Some("only topic configs can be altered".to_owned()),
        );
    }
    let Some(info) = ctx.broker.engine.topic(name) else {
        return (code::UNKNOWN_TOPIC_OR_PARTITION, None);
    };
    let mut configs = info.configs.clone();
    if let Err(why) = change(&mut configs) {
        return (code::INVALID_CONFIG, Some(why.to_owned()));
    }
    if let Err(why) = validate_topic_configs(&configs) {
        return (code::INVALID_CONFIG, Some(why));
    }
    if validate_only {
        return (code::NONE, None);
    }
    match ctx.broker.engine.set_topic_configs(name, configs) {
        Ok(()) => (code::NONE, None),
        Err(e) => code_and_message(&e),
    }
}

pub(crate) fn alter_configs(ctx: &mut Ctx<'_>, req: AlterConfigsRequest) -> ResponseBody {
    let responses = req
        .resources
        .into_iter()
        .map(|r| {
            let new: BTreeMap<String, String> = r
                .configs
                .into_iter()
                .filter_map(|c| Some((c.name, c.value?)))
                .collect();
            let (error_code, error_message) = alter_topic(
                ctx,
                r.resource_type,
                &r.resource_name,
                req.validate_only,
                |c| {
                    *c = new;
                    Ok(())
                },
            );
            alter_configs_response::AlterConfigsResourceResponse {
                error_code,
                error_message,
                resource_type: r.resource_type,
                resource_name: r.resource_name,
                ..Default::default()
            }
        })
        .collect();
    ResponseBody::AlterConfigs(AlterConfigsResponse {
        responses,
        ..Default::default()
    })
}

pub(crate) fn incremental_alter_configs(
    ctx: &mut Ctx<'_>,
    req: IncrementalAlterConfigsRequest,
) -> ResponseBody {
    let responses = req
        .resources
        .into_iter()
        .map(|r| {
            let ops = r.configs;
            let (error_code, error_message) = alter_topic(
                ctx,
                r.resource_type,
                &r.resource_name,
                req.validate_only,
                |c| {
                    ops.into_iter()
                        .try_for_each(|op| apply_op(c, op.config_operation, op.name, op.value))
                },
            );
            incremental_alter_configs_response::AlterConfigsResourceResponse {
                error_code,
                error_message,
                resource_type: r.resource_type,
                resource_name: r.resource_name,
                ..Default::default()
            }
        })
        .collect();
    ResponseBody::IncrementalAlterConfigs(IncrementalAlterConfigsResponse {
        responses,
        ..Default::default()
    })
}

/// One IncrementalAlterConfigs operation; list values are comma-separated, as in Kafka.
fn apply_op(
    configs: &mut BTreeMap<String, String>,
    op: i8,
    name: String,
    value: Option<String>,
) -> Result<(), &'static str> {
    let list = |c: &BTreeMap<String, String>, n: &str| -> Vec<String> {
        c.get(n)
            .map(|v| {
                v.split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    match op {
        OP_SET => {
            configs.insert(name, value.ok_or("SET needs a value")?);
        }
        OP_DELETE => {
            configs.remove(&name);
        }
        OP_APPEND | OP_SUBTRACT => {
            let value = value.ok_or("APPEND and SUBTRACT need a value")?;
            let mut items = list(configs, &name);
            for v in value.split(',').filter(|s| !s.is_empty()) {
                items.retain(|i| i != v);
                if op == OP_APPEND {
                    items.push(v.to_owned());
                }
            }
            configs.insert(name, items.join(","));
        }
        _ => return Err("unknown config operation"),
    }
    Ok(())
}
