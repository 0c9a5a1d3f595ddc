//! Topic, queue, exchange, binding, group and statistics requests, and the mapping of
//! engine errors to protocol error codes.

use std::collections::BTreeMap;

use portask_engine::{BrokerError, EngineError, ExchangeDeclare, QueueDeclare};
use portask_protocol::body::{
    BindingInfo, Bindings, Done, ExchangeInfo, Exchanges, GroupInfo, Groups, MemberInfo,
    PartitionOffset, QueueDeclared, QueueInfo, Queues, Request, Response, StatsOk, TopicInfo,
    Topics,
};
use portask_protocol::error::code;

use super::{Failure, convert};
use crate::broker::Broker;
use crate::worker::Now;

/// The empty success response.
pub(super) fn done() -> Response {
    Response::Done(Done {})
}

/// A topic or group error as a protocol error.
pub(super) fn engine_failure(e: EngineError) -> Failure {
    let c = match &e {
        EngineError::UnknownTopicOrPartition => code::UNKNOWN_TOPIC,
        EngineError::TopicAlreadyExists => code::ALREADY_EXISTS,
        EngineError::OffsetOutOfRange => code::OFFSET_OUT_OF_RANGE,
        EngineError::InvalidTopic(_) | EngineError::InvalidPartitions(_) => code::INVALID_ARGUMENT,
        EngineError::InvalidRequest(_) | EngineError::InvalidGroupId => code::INVALID_ARGUMENT,
        EngineError::RebalanceInProgress => code::REBALANCE_IN_PROGRESS,
        EngineError::UnknownMemberId => code::UNKNOWN_MEMBER,
        EngineError::IllegalGeneration => code::ILLEGAL_GENERATION,
        EngineError::GroupIdNotFound => code::UNKNOWN_GROUP,
        EngineError::NonEmptyGroup => code::GROUP_NOT_EMPTY,
        EngineError::Storage(_) => code::STORAGE_UNAVAILABLE,
        _ => code::INTERNAL,
    };
    (c, e.to_string())
}

/// A queue or exchange error as a protocol error; the text is RabbitMQ's.
pub(super) fn broker_failure(e: BrokerError) -> Failure {
    let c = match &e {
        BrokerError::NotFound(t) if t.contains("exchange") => code::UNKNOWN_EXCHANGE,
        BrokerError::NotFound(_) => code::UNKNOWN_QUEUE,
        BrokerError::PreconditionFailed(_) | BrokerError::InvalidArgument(_) => {
            code::INVALID_ARGUMENT
        }
        BrokerError::Storage(_) => code::STORAGE_UNAVAILABLE,
        BrokerError::NotImplemented(_) | BrokerError::CommandInvalid(_) => code::INVALID_ARGUMENT,
        _ => code::NOT_ALLOWED,
    };
    (c, e.to_string())
}

/// Handles the requests that do not depend on the connection's consumers.
pub(super) fn handle(
    broker: &mut Broker,
    now: Now,
    id: u64,
    request: Request,
) -> Result<Response, Failure> {
    let engine = &mut broker.engine;
    Ok(match request {
        Request::CreateTopic(t) => {
            let configs: BTreeMap<String, String> = t.configs.into_iter().collect();
            engine
                .create_topic(&t.name, t.partitions, configs)
                .map_err(engine_failure)?;
            done()
        }
        Request::DeleteTopic(t) => {
            engine.delete_topic(&t.name).map_err(engine_failure)?;
            done()
        }
        Request::ListTopics(_) => {
            let topics = engine
                .topics()
                .cloned()
                .collect::<Vec<_>>()
                .into_iter()
                .map(|t| TopicInfo {
                    high_watermarks: (0..t.partitions)
                        .map(|p| {
                            let tp = portask_engine::TopicPartition {
                                topic: t.name.clone(),
                                partition: p,
                            };
                            engine
                                .partition_offsets(&tp)
                                .map_or(-1, |o| o.high_watermark)
                        })
                        .collect(),
                    configs: t.configs.into_iter().collect(),
                    name: t.name,
                    partitions: t.partitions,
                })
                .collect();
            Response::Topics(Topics { topics })
        }
        Request::DeclareQueue(q) => {
            let d = QueueDeclare {
                name: q.name,
                durable: q.durable,
                auto_delete: q.auto_delete,
                arguments: q
                    .arguments
                    .into_iter()
                    .map(|(k, v)| (k, convert::value_in(v)))
                    .collect(),
                ..Default::default()
            };
            let ok = engine
                .queue_declare(now.mono, id, &q.vhost, d)
                .map_err(broker_failure)?;
            Response::QueueDeclared(QueueDeclared {
                name: ok.name,
                message_count: u64::from(ok.message_count),
                consumer_count: ok.consumer_count,
            })
        }
        Request::DeleteQueue(q) => {
            engine
                .queue_delete(id, &q.vhost, &q.name, q.if_unused, q.if_empty)
                .map_err(broker_failure)?;
            done()
        }
        Request::ListQueues(l) => Response::Queues(Queues {
            queues: engine
                .list_queues(l.vhost.as_deref())
                .into_iter()
                .map(|q| QueueInfo {
                    vhost: q.vhost,
                    name: q.name,
                    durable: q.durable,
                    auto_delete: q.auto_delete,
                    messages: q.messages,
                    consumers: q.consumers,
                })
                .collect(),
        }),
        Request::DeclareExchange(x) => {
            let d = ExchangeDeclare {
                name: x.name,
                kind: x.kind,
                durable: x.durable,
                ..Default::default()
            };
            engine
                .exchange_declare(&x.vhost, d)
                .map_err(broker_failure)?;
            done()
        }
        Request::DeleteExchange(x) => {
            engine
                .exchange_delete(&x.vhost, &x.name, false)
                .map_err(broker_failure)?;
            done()
        }
        Request::ListExchanges(l) => Response::Exchanges(Exchanges {
            exchanges: engine
                .list_exchanges(l.vhost.as_deref())
                .into_iter()
                .map(|x| ExchangeInfo {
                    vhost: x.vhost,
                    name: x.name,
                    kind: x.kind.to_owned(),
                    durable: x.durable,
                })
                .collect(),
        }),
        Request::ListBindings(l) => Response::Bindings(Bindings {
            bindings: engine
                .list_bindings(l.vhost.as_deref())
                .into_iter()
                .map(|b| BindingInfo {
                    vhost: b.vhost,
                    source: b.source,
                    destination: b.destination,
                    destination_kind: if b.to_exchange { "exchange" } else { "queue" }.to_owned(),
                    routing_key: b.routing_key,
                })
                .collect(),
        }),
        Request::Bind(b) => {
            let (v, dest, src, key) = (&b.vhost, &b.queue_or_exchange, &b.exchange, &b.routing_key);
            if engine.queue_exists(v, dest) {
                engine
                    .queue_bind(v, dest, src, key, Vec::new(), id)
                    .map_err(broker_failure)?;
            } else {
                engine
                    .exchange_bind(v, dest, src, key, Vec::new())
                    .map_err(broker_failure)?;
            }
            done()
        }
        Request::Unbind(b) => {
            let (v, dest, src, key) = (&b.vhost, &b.queue_or_exchange, &b.exchange, &b.routing_key);
            if engine.queue_exists(v, dest) {
                engine
                    .queue_unbind(v, dest, src, key, &Vec::new(), id)
                    .map_err(broker_failure)?;
            } else {
                engine
                    .exchange_unbind(v, dest, src, key, &Vec::new())
                    .map_err(broker_failure)?;
            }
            done()
        }
        Request::ListGroups(_) => {
            let ids: Vec<String> = engine
                .list_groups()
                .into_iter()
                .map(|g| g.group_id)
                .collect();
            Response::Groups(Groups {
                groups: ids.iter().map(|g| group_info(broker, g)).collect(),
            })
        }
        Request::DescribeGroups(d) => Response::Groups(Groups {
            groups: d.groups.iter().map(|g| group_info(broker, g)).collect(),
        }),
        Request::DeleteGroup(g) => {
            engine.delete_group(&g.group).map_err(engine_failure)?;
            done()
        }
        Request::Stats(_) => Response::StatsOk(StatsOk {
            entries: vec![
                ("topics".to_owned(), engine.topics().count() as u64),
                ("queues".to_owned(), engine.list_queues(None).len() as u64),
                ("queued_bytes".to_owned(), engine.queued_bytes()),
                ("requests_total".to_owned(), broker.requests_total),
            ],
        }),
        other => {
            return Err((
                code::UNKNOWN_OPCODE,
                format!("opcode {:#04x} is not served", other.opcode()),
            ));
        }
    })
}

fn group_info(broker: &Broker, group: &str) -> GroupInfo {
    use portask_engine::GroupState;
    let d = broker.engine.describe_group(group);
    let state = match d.state {
        GroupState::Empty => "empty",
        GroupState::PreparingRebalance | GroupState::CompletingRebalance => "rebalancing",
        GroupState::Stable => "stable",
        GroupState::Dead => "dead",
    };
    let members = d
        .members
        .into_iter()
        .map(|m| {
            let tps = super::groups::parse_assignment(&m.assignment);
            let assignments = broker
                .engine
                .fetch_offsets(group, Some(&tps))
                .into_iter()
                .map(|(tp, c)| PartitionOffset {
                    topic: tp.topic,
                    partition: tp.partition,
                    offset: c.map_or(-1, |c| c.offset),
                })
                .collect();
            MemberInfo {
                member_id: m.member_id,
                client: m.client_id,
                assignments,
            }
        })
        .collect();
    GroupInfo {
        group: group.to_owned(),
        state: state.to_owned(),
        generation: d.generation_id,
        members,
    }
}
