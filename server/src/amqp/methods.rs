//! exchange.*, queue.*, and the channel-level basic, confirm and tx methods.

use bytes::BytesMut;
use portask_amqp::generated::*;
use portask_engine::{Consume, ExchangeDeclare as Declare, QueueDeclare as QDeclare};

use super::convert::table_in;
use super::errors::Failure;
use super::{AckOp, Session, basic};
use crate::auth::Access;
use crate::broker::Broker;
use crate::worker::Now;

/// Checks a permission for the session's user.
pub(super) fn allow(
    session: &Session,
    broker: &Broker,
    access: Access,
    kind: &str,
    name: &str,
) -> Result<(), Failure> {
    broker
        .amqp
        .users
        .check(&session.user, &session.vhost, access, kind, name)
        .map_err(|t| Failure::access_refused(&t))
}

/// The exchange name RabbitMQ checks permissions on: the default exchange is "amq.default".
pub(super) fn exchange_resource(name: &str) -> &str {
    if name.is_empty() { "amq.default" } else { name }
}

/// Handles one method from an open channel. Replies go to `out`.
pub(super) fn handle(
    session: &mut Session,
    out: &mut BytesMut,
    id: u64,
    broker: &mut Broker,
    now: Now,
    channel: u16,
    method: Method,
) -> Result<(), Failure> {
    let reply = match method {
        Method::ExchangeDeclare(m) => exchange_declare(session, broker, m)?,
        Method::ExchangeDelete(m) => {
            allow(session, broker, Access::Configure, "exchange", &m.exchange)?;
            broker
                .engine
                .exchange_delete(&session.vhost, &m.exchange, m.if_unused)?;
            (!m.nowait).then(|| Method::ExchangeDeleteOk(Default::default()))
        }
        Method::ExchangeBind(m) => {
            allow(session, broker, Access::Write, "exchange", &m.destination)?;
            allow(session, broker, Access::Read, "exchange", &m.source)?;
            let v = &session.vhost;
            broker.engine.exchange_bind(
                v,
                &m.destination,
                &m.source,
                &m.routing_key,
                table_in(m.arguments),
            )?;
            (!m.nowait).then(|| Method::ExchangeBindOk(Default::default()))
        }
        Method::ExchangeUnbind(m) => {
            allow(session, broker, Access::Write, "exchange", &m.destination)?;
            allow(session, broker, Access::Read, "exchange", &m.source)?;
            let args = table_in(m.arguments);
            broker.engine.exchange_unbind(
                &session.vhost,
                &m.destination,
                &m.source,
                &m.routing_key,
                &args,
            )?;
            (!m.nowait).then(|| Method::ExchangeUnbindOk(Default::default()))
        }
        Method::QueueDeclare(m) => queue_declare(session, broker, id, now, m)?,
        Method::QueueBind(m) => {
            allow(session, broker, Access::Write, "queue", &m.queue)?;
            allow(
                session,
                broker,
                Access::Read,
                "exchange",
                exchange_resource(&m.exchange),
            )?;
            let args = table_in(m.arguments);
            broker.engine.queue_bind(
                &session.vhost,
                &m.queue,
                &m.exchange,
                &m.routing_key,
                args,
                id,
            )?;
            (!m.nowait).then(|| Method::QueueBindOk(Default::default()))
        }
        Method::QueueUnbind(m) => {
            allow(session, broker, Access::Write, "queue", &m.queue)?;
            allow(
                session,
                broker,
                Access::Read,
                "exchange",
                exchange_resource(&m.exchange),
            )?;
            let args = table_in(m.arguments);
            broker.engine.queue_unbind(
                &session.vhost,
                &m.queue,
                &m.exchange,
                &m.routing_key,
                &args,
                id,
            )?;
            Some(Method::QueueUnbindOk(Default::default()))
        }
        Method::QueuePurge(m) => {
            allow(session, broker, Access::Read, "queue", &m.queue)?;
            let message_count = broker.engine.queue_purge(id, &session.vhost, &m.queue)?;
            (!m.nowait).then(|| Method::QueuePurgeOk(QueuePurgeOk { message_count }))
        }
        Method::QueueDelete(m) => {
            allow(session, broker, Access::Configure, "queue", &m.queue)?;
            let v = &session.vhost;
            let message_count =
                broker
                    .engine
                    .queue_delete(id, v, &m.queue, m.if_unused, m.if_empty)?;
            (!m.nowait).then(|| Method::QueueDeleteOk(QueueDeleteOk { message_count }))
        }
        Method::BasicQos(m) => {
            if m.prefetch_size != 0 {
                return Err(Failure::not_implemented(&format!(
                    "prefetch_size!=0 ({})",
                    m.prefetch_size
                )));
            }
            broker
                .engine
                .basic_qos(id, channel, m.prefetch_count, m.global);
            Some(Method::BasicQosOk(Default::default()))
        }
        Method::BasicConsume(m) => {
            allow(session, broker, Access::Read, "queue", &m.queue)?;
            let c = Consume {
                queue: m.queue,
                consumer_tag: m.consumer_tag,
                no_ack: m.no_ack,
                exclusive: m.exclusive,
                arguments: table_in(m.arguments),
            };
            let consumer_tag =
                broker
                    .engine
                    .basic_consume(now.mono, id, channel, &session.vhost, c)?;
            (!m.nowait).then(|| Method::BasicConsumeOk(BasicConsumeOk { consumer_tag }))
        }
        Method::BasicCancel(m) => {
            broker.engine.basic_cancel(id, channel, &m.consumer_tag)?;
            (!m.nowait).then(|| {
                Method::BasicCancelOk(BasicCancelOk {
                    consumer_tag: m.consumer_tag,
                })
            })
        }
        Method::BasicGet(m) => {
            allow(session, broker, Access::Read, "queue", &m.queue)?;
            return basic::get(session, out, id, broker, now, channel, m);
        }
        Method::BasicAck(m) => {
            basic::ack(
                session,
                broker,
                id,
                now,
                channel,
                AckOp::Ack {
                    tag: m.delivery_tag,
                    multiple: m.multiple,
                },
            )?;
            None
        }
        Method::BasicNack(m) => {
            let op = AckOp::Nack {
                tag: m.delivery_tag,
                multiple: m.multiple,
                requeue: m.requeue,
            };
            basic::ack(session, broker, id, now, channel, op)?;
            None
        }
        Method::BasicReject(m) => {
            let op = AckOp::Nack {
                tag: m.delivery_tag,
                multiple: false,
                requeue: m.requeue,
            };
            basic::ack(session, broker, id, now, channel, op)?;
            None
        }
        Method::BasicRecover(m) => {
            recover(broker, id, now, channel, m.requeue)?;
            Some(Method::BasicRecoverOk(Default::default()))
        }
        Method::BasicRecoverAsync(m) => {
            recover(broker, id, now, channel, m.requeue)?;
            None
        }
        Method::ChannelFlow(m) => {
            if !m.active {
                return Err(Failure::not_implemented("active=false"));
            }
            Some(Method::ChannelFlowOk(ChannelFlowOk { active: true }))
        }
        Method::ConfirmSelect(m) => basic::confirm_select(session, channel, m.nowait)?,
        Method::TxSelect(_) => basic::tx_select(session, channel)?,
        Method::TxCommit(_) => basic::tx_commit(session, out, id, broker, now, channel)?,
        Method::TxRollback(_) => basic::tx_rollback(session, channel)?,
        Method::AccessRequest(_) => Some(Method::AccessRequestOk(AccessRequestOk { ticket: 1 })),
        other => {
            return Err(Failure::hard(
                reply_code::COMMAND_INVALID,
                "COMMAND_INVALID",
                &format!("unexpected method {}", other.name()),
            ));
        }
    };
    if let Some(reply) = reply {
        session.conn.send_method(channel, &reply, out);
    }
    Ok(())
}

fn recover(
    broker: &mut Broker,
    id: u64,
    now: Now,
    channel: u16,
    requeue: bool,
) -> Result<(), Failure> {
    if !requeue {
        return Err(Failure::not_implemented("requeue=false"));
    }
    broker.engine.basic_recover(now.mono, id, channel)?;
    Ok(())
}

fn exchange_declare(
    session: &Session,
    broker: &mut Broker,
    m: ExchangeDeclare,
) -> Result<Option<Method>, Failure> {
    allow(session, broker, Access::Configure, "exchange", &m.exchange)?;
    let d = Declare {
        name: m.exchange,
        kind: m.r#type,
        passive: m.passive,
        durable: m.durable,
        auto_delete: m.auto_delete,
        internal: m.internal,
        arguments: table_in(m.arguments),
    };
    broker.engine.exchange_declare(&session.vhost, d)?;
    Ok((!m.nowait).then(|| Method::ExchangeDeclareOk(Default::default())))
}

fn queue_declare(
    session: &Session,
    broker: &mut Broker,
    id: u64,
    now: Now,
    m: QueueDeclare,
) -> Result<Option<Method>, Failure> {
    if !m.queue.is_empty() {
        allow(session, broker, Access::Configure, "queue", &m.queue)?;
    }
    let d = QDeclare {
        name: m.queue,
        passive: m.passive,
        durable: m.durable,
        exclusive: m.exclusive,
        auto_delete: m.auto_delete,
        arguments: table_in(m.arguments),
    };
    let ok = broker
        .engine
        .queue_declare(now.mono, id, &session.vhost, d)?;
    Ok((!m.nowait).then(|| {
        Method::QueueDeclareOk(QueueDeclareOk {
            queue: ok.name,
            message_count: ok.message_count,
            consumer_count: ok.consumer_count,
        })
    }))
}
