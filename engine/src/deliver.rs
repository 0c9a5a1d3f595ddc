//! Publishing, enqueueing, dead-lettering and dispatch to consumers.

use std::sync::Arc;

use crate::error::BrokerError;
use crate::exchange::routing::route;
use crate::group::types::Output;
use crate::message::{Message, Publish, PublishOutcome};
use crate::paging::pages_out;
use crate::queue::args::Overflow;
use crate::queue::consumer::{Channel, Unacked};
use crate::queue::dead_letter::{Reason, dead_lettered, is_cycle};
use crate::queue::stored::encode_message;
use crate::queue::{Queue, QueuedMessage};
use crate::value::Table;
use crate::vhost::{BrokerState, DeadLetter, exchange_res, store_key};
use crate::{Engine, Millis, WallMillis};

/// Most deliveries one consumer gets in one dispatch; the rest follow on the next call
/// (see [`Engine::poll_timeout`]).
pub const MAX_DELIVERIES_PER_DISPATCH: u32 = 1000;

const NO_HEADERS: &Table = &Vec::new();

/// Parses a per-message `expiration` as RabbitMQ does.
fn parse_expiration(expiration: Option<&str>) -> Result<Option<u64>, BrokerError> {
    let Some(s) = expiration else { return Ok(None) };
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    let err =
        |why: String| BrokerError::PreconditionFailed(format!("invalid expiration '{s}': {why}"));
    if end == 0 {
        return Err(err("no_integer".into()));
    }
    if end < digits.len() {
        return Err(err(format!("{{leftover_string,\"{}\"}}", &digits[end..])));
    }
    let n: i128 = s.parse().map_err(|_| err("no_integer".into()))?;
    if n < 0 {
        return Err(err(format!("{{value_negative,{n}}}")));
    }
    u64::try_from(n)
        .map(Some)
        .map_err(|_| err(format!("{{value_too_large,{n}}}")))
}

/// The TTL of a message in `q`: the smaller of `x-message-ttl` and its own `expiration`.
pub(crate) fn ttl_of(q: &Queue, m: &Message) -> Option<u64> {
    let expiration = parse_expiration(m.props.expiration.as_deref())
        .ok()
        .flatten();
    [q.args.message_ttl, expiration].into_iter().flatten().min()
}

/// The dead-letter job for a message leaving `q`, if `q` has a dead-letter exchange.
pub(crate) fn dead_letter(
    vhost: &str,
    q: &Queue,
    message: Arc<Message>,
    reason: Reason,
) -> Option<DeadLetter> {
    Some(DeadLetter {
        vhost: vhost.to_owned(),
        queue: q.name.clone(),
        dlx: q.args.dead_letter_exchange.clone()?,
        dl_routing_key: q.args.dead_letter_routing_key.clone(),
        message,
        reason,
    })
}

/// Removes a message from `q` for good: dead-letters it and forgets its stored copy.
fn discard(st: &mut BrokerState, vhost: &str, q: &Queue, m: QueuedMessage, reason: Reason) {
    if let Some(id) = m.store_id {
        st.removals.push((store_key(vhost, &q.name), id));
    }
    st.dead_letters
        .extend(dead_letter(vhost, q, m.message, reason));
}

fn expire_heads(st: &mut BrokerState, vhost: &str, q: &mut Queue, now: Millis) {
    while let Some(m) = q.ready.pop_expired(now) {
        discard(st, vhost, q, m, Reason::Expired);
    }
}

impl Engine {
    /// Publishes a message. Persistent messages routed to durable queues are stored before
    /// this returns.
    pub fn publish(
        &mut self,
        now: Millis,
        wall: WallMillis,
        vhost: &str,
        p: Publish,
    ) -> Result<PublishOutcome, BrokerError> {
        self.broker.observe(now, Some(wall));
        let v = self.vhost_mut(vhost)?;
        let Some(x) = v.exchanges.get(&p.exchange) else {
            let res = exchange_res(vhost, &p.exchange);
            return Err(BrokerError::NotFound(format!("no {res}")));
        };
        if x.internal {
            let res = exchange_res(vhost, &p.exchange);
            return Err(BrokerError::AccessRefused(format!(
                "cannot publish to internal {res}"
            )));
        }
        parse_expiration(p.props.expiration.as_deref())?;
        let headers = p.props.headers.as_ref().unwrap_or(NO_HEADERS);
        let targets = route(
            &v.exchanges,
            |q| v.queues.contains_key(q),
            &p.exchange,
            &p.routing_key,
            headers,
        );
        let message = Arc::new(Message {
            exchange: p.exchange,
            routing_key: p.routing_key,
            props: p.props,
            body: p.body,
        });
        let mut accepted = true;
        for q in &targets {
            accepted &= self.enqueue(now, vhost, q, message.clone(), true)?;
        }
        self.settle(now);
        Ok(PublishOutcome {
            routed: !targets.is_empty(),
            accepted,
        })
    }

    /// Puts a message into a queue. `Ok(false)`: refused by `reject-publish` overflow. With
    /// `strict`, a storage failure is an error; otherwise the message is kept in memory only.
    pub(crate) fn enqueue(
        &mut self,
        now: Millis,
        vhost: &str,
        queue: &str,
        message: Arc<Message>,
        strict: bool,
    ) -> Result<bool, BrokerError> {
        let v = self.broker.vhosts.get(vhost);
        if v.and_then(|v| v.queues.get(queue))
            .is_some_and(|q| q.args.stream)
        {
            return match self.stream_append(queue, &message) {
                Err(e) if strict => Err(e),
                _ => Ok(true),
            };
        }
        let st = &mut self.broker;
        let Some(q) = st
            .vhosts
            .get_mut(vhost)
            .and_then(|v| v.queues.get_mut(queue))
        else {
            return Ok(true);
        };
        let size = message.body.len() as u64;
        if q.args.overflow != Overflow::DropHead && q.over_limit(1, size) {
            if q.args.overflow == Overflow::RejectPublishDlx {
                st.dead_letters
                    .extend(dead_letter(vhost, q, message, Reason::MaxLen));
            }
            return Ok(false);
        }
        let paged = pages_out(&self.cfg, q, size);
        let mut store_id = None;
        if paged || (q.stores_messages() && message.is_persistent()) {
            let id = q.next_store_id;
            let settings = self.compression.policy().for_queue(queue);
            let record = [(id, encode_message(&message, settings))];
            match self.storage.queue_append(&store_key(vhost, queue), &record) {
                Ok(()) => {
                    q.next_store_id += 1;
                    store_id = Some(id);
                }
                Err(e) if strict => return Err(e.into()),
                // Kept in memory only, ahead of a paged tail if there is one.
                Err(_) => {}
            }
        }
        let expires_at = ttl_of(q, &message).map(|t| now.saturating_add(t));
        match store_id {
            Some(id) if paged => q.tail.push(id, size, expires_at),
            _ => {
                q.next_seq += 1;
                q.ready.insert(QueuedMessage {
                    seq: q.next_seq,
                    store_id,
                    priority: message.props.priority.unwrap_or(0),
                    message,
                    redelivered: false,
                    expires_at,
                });
            }
        }
        st.touched.insert((vhost.to_owned(), queue.to_owned()));
        Ok(true)
    }

    /// Runs what earlier changes made possible: dead-letter republishing and dispatch of the
    /// queues touched, until nothing is left; then drops stored copies of removed messages.
    pub(crate) fn settle(&mut self, now: Millis) {
        let wall = self.broker.clock.1;
        loop {
            if let Some(job) = self.broker.dead_letters.pop_front() {
                self.republish_dead(now, wall, job);
                continue;
            }
            let Some((vhost, queue)) = self.broker.touched.pop_first() else {
                break;
            };
            self.dispatch(now, &vhost, &queue);
        }
        let mut removals = std::mem::take(&mut self.broker.removals);
        removals.sort();
        for chunk in removals.chunk_by(|a, b| a.0 == b.0) {
            let ids: Vec<u64> = chunk.iter().map(|(_, id)| *id).collect();
            // A failure leaves the message stored: it comes back after a restart, at least once.
            let _ = self.storage.queue_remove(&chunk[0].0, &ids);
        }
    }

    fn republish_dead(&mut self, now: Millis, wall: WallMillis, job: DeadLetter) {
        let m = dead_lettered(
            &job.message,
            &job.queue,
            job.reason,
            wall,
            &job.dlx,
            job.dl_routing_key.as_deref(),
        );
        let Some(v) = self.broker.vhosts.get(&job.vhost) else {
            return;
        };
        if !v.exchanges.contains_key(&job.dlx) {
            return;
        }
        let headers = m.props.headers.as_ref().unwrap_or(NO_HEADERS);
        let targets = route(
            &v.exchanges,
            |q| v.queues.contains_key(q),
            &m.exchange,
            &m.routing_key,
            headers,
        );
        let m = Arc::new(m);
        for t in targets {
            if job.reason != Reason::Rejected && is_cycle(&t, &m) {
                continue;
            }
            let _ = self.enqueue(now, &job.vhost, &t, m.clone(), false);
        }
    }

    /// Delivers ready messages of one queue to its consumers with credit, round-robin (only
    /// the active one with single-active-consumer); then enforces drop-head limits.
    pub(crate) fn dispatch(&mut self, now: Millis, vhost: &str, queue: &str) {
        let Some(mut q) = self
            .broker
            .vhosts
            .get_mut(vhost)
            .and_then(|v| v.queues.remove(queue))
        else {
            return;
        };
        if q.args.stream {
            self.dispatch_stream(vhost, &mut q);
            if let Some(v) = self.broker.vhosts.get_mut(vhost) {
                v.queues.insert(queue.to_owned(), q);
            }
            return;
        }
        let mut rounds = vec![0u32; q.consumers.len()];
        let mut capped = false;
        let mut readable = true;
        loop {
            readable = readable && self.fill_window(vhost, &mut q);
            let st = &mut self.broker;
            expire_heads(st, vhost, &mut q, now);
            if q.ready.len() == 0 {
                if readable && q.tail.count > 0 {
                    continue;
                }
                break;
            }
            let n = match q.args.single_active_consumer {
                true => q.consumers.len().min(1),
                false => q.consumers.len(),
            };
            let ready = |i: usize| {
                let c = &q.consumers[i];
                let channel_credit = || {
                    let ch = st.channels.get(&(c.conn, c.channel));
                    ch.is_none_or(Channel::has_credit)
                };
                !st.blocked.contains(&c.conn) && c.has_credit() && (c.no_ack || channel_credit())
            };
            let found = (0..n).find(|&i| ready(i) && rounds[i] < MAX_DELIVERIES_PER_DISPATCH);
            let Some(i) = found else {
                capped = (0..n).any(ready);
                break;
            };
            let m = q.ready.pop().expect("not empty");
            rounds[i] += 1;
            self.deliver(vhost, &mut q, i, m);
            if !q.args.single_active_consumer {
                let c = q.consumers.remove(i);
                q.consumers.push(c);
                let r = rounds.remove(i);
                rounds.push(r);
            }
        }
        while q.args.overflow == Overflow::DropHead && q.over_limit(0, 0) {
            readable = readable && self.fill_window(vhost, &mut q);
            let Some(m) = q.ready.pop() else { break };
            discard(&mut self.broker, vhost, &q, m, Reason::MaxLen);
        }
        let st = &mut self.broker;
        if capped {
            st.pending.insert((vhost.to_owned(), queue.to_owned()));
        }
        if let Some(v) = st.vhosts.get_mut(vhost) {
            v.queues.insert(queue.to_owned(), q);
        }
    }

    /// Takes the next ready message of `q` (taken out of vhost `vhost`) for basic.get:
    /// expires heads and refills the window first.
    pub(crate) fn take_head(
        &mut self,
        now: Millis,
        vhost: &str,
        q: &mut Queue,
    ) -> Option<QueuedMessage> {
        loop {
            let readable = self.fill_window(vhost, q);
            expire_heads(&mut self.broker, vhost, q, now);
            if q.ready.len() > 0 || !readable || q.tail.count == 0 {
                return q.ready.pop();
            }
        }
    }

    /// Hands one message to consumer `i` of `q`.
    pub(crate) fn deliver(&mut self, vhost: &str, q: &mut Queue, i: usize, m: QueuedMessage) {
        let st = &mut self.broker;
        let c = &mut q.consumers[i];
        let ch = st.channels.entry((c.conn, c.channel)).or_default();
        let tag = ch.next_delivery_tag();
        self.outputs.push_back(Output::Deliver {
            conn: c.conn,
            channel: c.channel,
            consumer_tag: c.tag.clone(),
            delivery_tag: tag,
            redelivered: m.redelivered,
            message: m.message.clone(),
        });
        if c.no_ack {
            if let Some(id) = m.store_id {
                st.removals.push((store_key(vhost, &q.name), id));
            }
            return;
        }
        c.unacked += 1;
        let u = Unacked {
            vhost: vhost.to_owned(),
            queue: q.name.clone(),
            queue_uid: q.uid,
            consumer_tag: Some(c.tag.clone()),
            message: m,
        };
        ch.track(tag, u);
    }
}
