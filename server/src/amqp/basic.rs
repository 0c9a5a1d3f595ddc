//! basic.publish, basic.get, acknowledgements, publisher confirms and transactions.

use bytes::{Bytes, BytesMut};
use portask_amqp::generated::*;
use portask_engine::Publish;

use super::convert::{props_in, props_out};
use super::errors::Failure;
use super::methods::{allow, exchange_resource};
use super::{AckOp, Session, TxOp};
use crate::auth::Access;
use crate::broker::Broker;
use crate::worker::Now;

/// Handles one assembled basic.publish.
#[allow(clippy::too_many_arguments)]
pub(super) fn publish(
    session: &mut Session,
    out: &mut BytesMut,
    broker: &mut Broker,
    now: Now,
    channel: u16,
    method: BasicPublish,
    props: BasicProperties,
    body: Bytes,
) -> Result<(), Failure> {
    if method.immediate {
        return Err(Failure::not_implemented("immediate=true"));
    }
    allow(
        session,
        broker,
        Access::Write,
        "exchange",
        exchange_resource(&method.exchange),
    )?;
    let ch = session.channels.entry(channel).or_default();
    if let Some(ops) = ch.tx.as_mut() {
        ops.push(TxOp::Publish(Box::new((method, props, body))));
        return Ok(());
    }
    let seq = ch.confirm.then(|| {
        ch.next_seq += 1;
        ch.next_seq
    });
    let accepted = route(session, out, broker, now, channel, method, props, body)?;
    if let Some(delivery_tag) = seq {
        let reply = if accepted {
            Method::BasicAck(BasicAck {
                delivery_tag,
                multiple: false,
            })
        } else {
            Method::BasicNack(BasicNack {
                delivery_tag,
                multiple: false,
                requeue: false,
            })
        };
        session.conn.send_method(channel, &reply, out);
    }
    Ok(())
}

/// Hands a message to the engine; an unroutable mandatory message comes back as
/// basic.return. Returns whether the engine accepted it (for the confirm).
#[allow(clippy::too_many_arguments)]
fn route(
    session: &mut Session,
    out: &mut BytesMut,
    broker: &mut Broker,
    now: Now,
    channel: u16,
    method: BasicPublish,
    props: BasicProperties,
    body: Bytes,
) -> Result<bool, Failure> {
    let p = Publish {
        exchange: method.exchange.clone(),
        routing_key: method.routing_key.clone(),
        mandatory: method.mandatory,
        props: props_in(props.clone()),
        body: body.clone(),
    };
    let outcome = broker
        .engine
        .publish(now.mono, now.wall, &session.vhost, p)?;
    if !outcome.routed && method.mandatory {
        let ret = Method::BasicReturn(BasicReturn {
            reply_code: reply_code::NO_ROUTE,
            reply_text: "NO_ROUTE".into(),
            exchange: method.exchange,
            routing_key: method.routing_key,
        });
        session.conn.send_content(channel, &ret, &props, &body, out);
    }
    Ok(outcome.accepted)
}

/// basic.get: one message as basic.get-ok, or basic.get-empty; parked in the session while
/// the queue's head is being read from storage.
pub(super) fn get(
    session: &mut Session,
    out: &mut BytesMut,
    id: u64,
    broker: &mut Broker,
    now: Now,
    channel: u16,
    m: BasicGet,
) -> Result<(), Failure> {
    match broker
        .engine
        .basic_get(now.mono, id, channel, &session.vhost, &m.queue, m.no_ack)?
    {
        None if broker.engine.queue_reading(&session.vhost, &m.queue) => {
            session.parked_get = Some((channel, m));
        }
        Some(ok) => {
            let method = Method::BasicGetOk(BasicGetOk {
                delivery_tag: ok.delivery_tag,
                redelivered: ok.redelivered,
                exchange: ok.message.exchange.clone(),
                routing_key: ok.message.routing_key.clone(),
                message_count: ok.message_count,
            });
            let props = props_out(&ok.message.props);
            session
                .conn
                .send_content(channel, &method, &props, &ok.message.body, out);
        }
        None => {
            let method = Method::BasicGetEmpty(BasicGetEmpty::default());
            session.conn.send_method(channel, &method, out);
        }
    }
    Ok(())
}

/// basic.ack / basic.nack / basic.reject, held back in a transaction.
pub(super) fn ack(
    session: &mut Session,
    broker: &mut Broker,
    id: u64,
    now: Now,
    channel: u16,
    op: AckOp,
) -> Result<(), Failure> {
    if let Some(ops) = session
        .channels
        .get_mut(&channel)
        .and_then(|c| c.tx.as_mut())
    {
        ops.push(TxOp::Ack(op));
        return Ok(());
    }
    apply_ack(broker, id, now, channel, op)
}

fn apply_ack(
    broker: &mut Broker,
    id: u64,
    now: Now,
    channel: u16,
    op: AckOp,
) -> Result<(), Failure> {
    let engine = &mut broker.engine;
    match op {
        AckOp::Ack { tag, multiple } => engine.basic_ack(id, channel, tag, multiple)?,
        AckOp::Nack {
            tag,
            multiple,
            requeue,
        } => {
            engine.basic_nack(now.mono, now.wall, id, channel, tag, multiple, requeue)?;
        }
    }
    Ok(())
}

pub(super) fn confirm_select(
    session: &mut Session,
    channel: u16,
    nowait: bool,
) -> Result<Option<Method>, Failure> {
    let ch = session.channels.entry(channel).or_default();
    if ch.tx.is_some() {
        return Err(Failure::precondition(
            "cannot switch from tx to confirm mode",
        ));
    }
    ch.confirm = true;
    Ok((!nowait).then(|| Method::ConfirmSelectOk(Default::default())))
}

pub(super) fn tx_select(session: &mut Session, channel: u16) -> Result<Option<Method>, Failure> {
    let ch = session.channels.entry(channel).or_default();
    if ch.confirm {
        return Err(Failure::precondition(
            "cannot switch from confirm to tx mode",
        ));
    }
    ch.tx.get_or_insert_with(Vec::new);
    Ok(Some(Method::TxSelectOk(Default::default())))
}

pub(super) fn tx_commit(
    session: &mut Session,
    out: &mut BytesMut,
    id: u64,
    broker: &mut Broker,
    now: Now,
    channel: u16,
) -> Result<Option<Method>, Failure> {
    let Some(ops) = session
        .channels
        .get_mut(&channel)
        .and_then(|c| c.tx.as_mut())
    else {
        return Err(Failure::precondition("channel is not transactional"));
    };
    for op in std::mem::take(ops) {
        match op {
            TxOp::Publish(publish) => {
                let (m, props, body) = *publish;
                route(session, out, broker, now, channel, m, props, body)?;
            }
            TxOp::Ack(op) => apply_ack(broker, id, now, channel, op)?,
        }
    }
    Ok(Some(Method::TxCommitOk(Default::default())))
}

pub(super) fn tx_rollback(session: &mut Session, channel: u16) -> Result<Option<Method>, Failure> {
    let Some(ops) = session
        .channels
        .get_mut(&channel)
        .and_then(|c| c.tx.as_mut())
    else {
        return Err(Failure::precondition("channel is not transactional"));
    };
    ops.clear();
    Ok(Some(Method::TxRollbackOk(Default::default())))
}
