//! CreateTopics, DeleteTopics, CreatePartitions and DescribeConfigs.

use std::collections::BTreeMap;

use portask_engine::{EngineError, TopicInfo};
use portask_kafka::api::ResponseBody;
use portask_kafka::error_codes as code;
use portask_kafka::generated::{
    create_partitions_response, create_topics_response, delete_topics_response,
    describe_configs_response, CreatePartitionsRequest, CreatePartitionsResponse,
    CreateTopicsRequest, CreateTopicsResponse, DeleteTopicsRequest, DeleteTopicsResponse,
    DescribeConfigsRequest, DescribeConfigsResponse,
};

use super::errors::{code_and_message, code_of_result};
use super::Ctx;

/// DescribeConfigs resource types.
const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
/// DescribeConfigs config sources.
const SOURCE_TOPIC: i8 = 1;
const SOURCE_DEFAULT: i8 = 5;
/// First DeleteTopics version that lists topics as (name, id) pairs.
const DELETE_BY_ID_MIN_VERSION: i16 = 6;

/// Topic configs every topic reports, with the values this broker applies.
const TOPIC_DEFAULTS: &[(&str, &str)] = &[
    ("cleanup.policy", "delete"),
    ("compression.type", "producer"),
    ("max.message.bytes", "1048588"),
    ("message.timestamp.type", "CreateTime"),
    ("min.insync.replicas", "1"),
    ("retention.bytes", "-1"),
    ("retention.ms", "-1"),
];

pub(crate) fn create_topics(ctx: &mut Ctx<'_>, req: CreateTopicsRequest) -> ResponseBody {
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let configs: BTreeMap<String, String> =
                t.configs.into_iter().filter_map(|c| Some((c.name, c.value?))).collect();
            let result = if t.replication_factor > 1 {
                Err(EngineError::InvalidRequest("replication factor above 1 on a single broker"))
            } else if req.validate_only {
                validate_new_topic(ctx, &t.name)
            } else {
                ctx.broker.engine.create_topic(&t.name, t.num_partitions, configs).map(Some)
            };
            topic_result(t.name, result)
        })
        .collect();
    ResponseBody::CreateTopics(CreateTopicsResponse { topics, ..Default::default() })
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
    let targets: Vec<(Option<String>, [u8; 16])> = if ctx.header.api_version >= DELETE_BY_ID_MIN_VERSION {
        req.topics
            .into_iter()
            .map(|t| {
                let name = t.name.or_else(|| ctx.broker.engine.topic_by_id(&t.topic_id).map(|i| i.name.clone()));
                (name, t.topic_id)
            })
            .collect()
    } else {
        req.topic_names.into_iter().map(|n| (Some(n), [0; 16])).collect()
    };
    let responses = targets
        .into_iter()
        .map(|(name, topic_id)| {
            let id = name.as_deref().and_then(|n| ctx.broker.engine.topic(n)).map_or(topic_id, |i| i.id);
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
    ResponseBody::DeleteTopics(DeleteTopicsResponse { responses, ..Default::default() })
}

pub(crate) fn create_partitions(ctx: &mut Ctx<'_>, req: CreatePartitionsRequest) -> ResponseBody {
    let results = req
        .topics
        .into_iter()
        .map(|t| {
            let result = if req.validate_only {
                ctx.broker.engine.topic(&t.name).map(|_| ()).ok_or(EngineError::UnknownTopicOrPartition)
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
    ResponseBody::CreatePartitions(CreatePartitionsResponse { results, ..Default::default() })
}

pub(crate) fn describe_configs(ctx: &mut Ctx<'_>, req: DescribeConfigsRequest) -> ResponseBody {
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
                    Some(info) => topic_configs(info),
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
                .filter(|(name, _, _)| r.configuration_keys.as_ref().is_none_or(|keys| keys.contains(name)))
                .map(|(name, value, source)| describe_configs_response::DescribeConfigsResourceResult {
                    name,
                    value: Some(value),
                    read_only: r.resource_type == RESOURCE_BROKER,
                    is_default: source == SOURCE_DEFAULT,
                    config_source: source,
                    ..Default::default()
                })
                .collect();
            result
        })
        .collect();
    ResponseBody::DescribeConfigs(DescribeConfigsResponse { results, ..Default::default() })
}

fn topic_configs(info: &TopicInfo) -> Vec<(String, String, i8)> {
    let mut out: Vec<(String, String, i8)> = TOPIC_DEFAULTS
        .iter()
        .filter(|(k, _)| !info.configs.contains_key(*k))
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned(), SOURCE_DEFAULT))
        .collect();
    out.extend(info.configs.iter().map(|(k, v)| (k.clone(), v.clone(), SOURCE_TOPIC)));
    out.sort();
    out
}
