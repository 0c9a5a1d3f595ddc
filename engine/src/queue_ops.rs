//! Queue declare, purge and delete calls of the [`Engine`].

use crate::broker_ops::{check_access, locked, no_queue};
use crate::error::BrokerError;
use crate::exchange::Destination;
use crate::group::types::Output;
use crate::message::{ConnId, QueueDeclare, QueueDeclareOk};
use crate::queue::args::{QueueArgs, assert_args_equivalent, assert_field_equivalent};
use crate::queue::tail::Tail;
use crate::queue::{Queue, Ready};
use crate::vhost::{Definition, queue_key, queue_res, store_key};
use crate::{Engine, EngineError};
use crate::{Millis, rng::Rng};

const NAME_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// `prefix` followed by 22 characters from the RNG, like RabbitMQ's generated names.
pub(crate) fn generated_name(rng: &mut Rng, prefix: &str) -> String {
    let mut s = String::from(prefix);
    for _ in 0..22 {
        s.push(char::from(NAME_CHARS[rng.below(64) as usize]));
    }
    s
}

fn bool_str(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

fn stats(q: &Queue) -> QueueDeclareOk {
    QueueDeclareOk {
        name: q.name.clone(),
        message_count: q.len() as u32,
        consumer_count: q.consumers.len() as u32,
    }
}

impl Engine {
    /// Declares a queue (or checks it, `passive`). An empty name declares a server-named queue.
    pub fn queue_declare(
        &mut self,
        now: Millis,
        conn: ConnId,
        vhost: &str,
        d: QueueDeclare,
    ) -> Result<QueueDeclareOk, BrokerError> {
        self.broker.observe(now, None);
        let mut name = d.name.clone();
        let generated = name.is_empty() && !d.passive;
        while generated && (name.is_empty() || self.vhost_mut(vhost)?.queues.contains_key(&name)) {
            name = generated_name(&mut self.rng, "amq.gen-");
        }
        let res = queue_res(vhost, &name);
        if let Some(q) = self.vhost_mut(vhost)?.queues.get_mut(&name) {
            let stream = q.args.stream;
            if d.passive {
                check_access(q, conn, vhost)?;
            } else {
                if q.owner != d.exclusive.then_some(conn) {
                    return Err(locked(vhost, &name));
                }
                assert_field_equivalent("durable", bool_str(q.durable), bool_str(d.durable), &res)?;
                let ad = bool_str(q.auto_delete);
                assert_field_equivalent("auto_delete", ad, bool_str(d.auto_delete), &res)?;
                assert_args_equivalent(&q.arguments, &d.arguments, &res)?;
            }
            q.last_used = now;
            let mut ok = stats(q);
            if stream {
                ok.message_count = self.stream_length(&name);
            }
            return Ok(ok);
        }
        if d.passive {
            return Err(no_queue(vhost, &name));
        }
        if !generated && name.starts_with("amq.") {
            return Err(BrokerError::AccessRefused(format!(
                "queue name '{name}' contains reserved prefix 'amq.*'"
            )));
        }
        let args = QueueArgs::parse(&d.arguments, &res)?;
        if args.stream {
            return self.stream_declare(now, conn, vhost, &d, name, args);
        }
        let q = self.new_queue(now, name, &d, conn, args);
        if q.stores_messages() {
            let def = Definition::Queue {
                vhost: vhost.to_owned(),
                name: q.name.clone(),
                auto_delete: q.auto_delete,
                arguments: q.arguments.clone(),
            };
            self.storage
                .put_definition(&queue_key(vhost, &q.name), Some(&def.encode()))?;
        }
        let ok = stats(&q);
        self.vhost_mut(vhost)?.queues.insert(q.name.clone(), q);
        Ok(ok)
    }

    pub(crate) fn new_queue(
        &mut self,
        now: Millis,
        name: String,
        d: &QueueDeclare,
        conn: ConnId,
        args: QueueArgs,
    ) -> Queue {
        self.broker.next_uid += 1;
        Queue {
            name,
            uid: self.broker.next_uid,
            durable: d.durable,
            auto_delete: d.auto_delete,
            owner: d.exclusive.then_some(conn),
            arguments: d.arguments.clone(),
            ready: Ready::new(args.max_priority),
            tail: Tail::default(),
            args,
            consumers: Vec::new(),
            had_consumers: false,
            last_used: now,
            next_seq: 0,
            next_store_id: 0,
        }
    }

    /// Removes the ready messages of a queue; returns how many.
    pub fn queue_purge(
        &mut self,
        conn: ConnId,
        vhost: &str,
        queue: &str,
    ) -> Result<u32, BrokerError> {
        let v = self.vhost_mut(vhost)?;
        let q = v
            .queues
            .get_mut(queue)
            .ok_or_else(|| no_queue(vhost, queue))?;
        check_access(q, conn, vhost)?;
        if q.args.stream {
            return Err(BrokerError::NotImplemented(format!(
                "queue.purge not supported by stream queues {}",
                queue_res(vhost, queue)
            )));
        }
        let stored = q.stores_messages();
        let paged = (q.tail.count > 0).then_some((q.tail.count, q.tail.from));
        let key = store_key(vhost, queue);
        if let Some((_, from)) = paged {
            self.storage.queue_remove_from(&key, from)?;
        }
        let q = self.vhost_mut(vhost)?.queues.get_mut(queue).expect("found");
        q.tail.clear();
        let drained = q.ready.drain();
        let ids: Vec<u64> = drained.iter().filter_map(|m| m.store_id).collect();
        if stored && !ids.is_empty() {
            self.storage.queue_remove(&key, &ids)?;
        }
        Ok((drained.len() as u64 + paged.map_or(0, |p| p.0)) as u32)
    }

    /// Deletes a queue; returns how many ready messages it had. A missing queue is fine.
    pub fn queue_delete(
        &mut self,
        conn: ConnId,
        vhost: &str,
        queue: &str,
        if_unused: bool,
        if_empty: bool,
    ) -> Result<u32, BrokerError> {
        let v = self.vhost_mut(vhost)?;
        let Some(q) = v.queues.get(queue) else {
            return Ok(0);
        };
        check_access(q, conn, vhost)?;
        if q.args.stream {
            // As RabbitMQ deletes the stream: its records go, if-unused and if-empty aside.
            let count = self.stream_length(queue);
            match self.delete_topic(queue) {
                Ok(()) | Err(EngineError::UnknownTopicOrPartition) => {}
                Err(EngineError::Storage(e)) => return Err(e.into()),
                Err(e) => return Err(BrokerError::PreconditionFailed(e.to_string())),
            }
            self.remove_queue(vhost, queue)?;
            return Ok(count);
        }
        let res = queue_res(vhost, queue);
        if if_unused && !q.consumers.is_empty() {
            return Err(BrokerError::PreconditionFailed(format!("{res} in use")));
        }
        if if_empty && q.len() > 0 {
            return Err(BrokerError::PreconditionFailed(format!("{res} not empty")));
        }
        self.remove_queue(vhost, queue)
    }

    /// Removes a queue: cancels its consumers, drops its bindings and its stored messages.
    pub(crate) fn remove_queue(&mut self, vhost: &str, name: &str) -> Result<u32, BrokerError> {
        let Some(q) = self.vhost_mut(vhost)?.queues.remove(name) else {
            return Ok(0);
        };
        for c in &q.consumers {
            if let Some(ch) = self.broker.channels.get_mut(&(c.conn, c.channel)) {
                ch.consumers.remove(&c.tag);
            }
            self.outputs.push_back(Output::ConsumerCancelled {
                conn: c.conn,
                channel: c.channel,
                consumer_tag: c.tag.clone(),
            });
        }
        let key = (vhost.to_owned(), name.to_owned());
        self.broker.pending.remove(&key);
        self.broker.touched.remove(&key);
        if q.stores_messages() {
            if !q.args.stream {
                self.storage.queue_delete(&store_key(vhost, name))?;
            }
            self.storage.put_definition(&queue_key(vhost, name), None)?;
        }
        let dest = Destination::Queue(name.to_owned());
        self.remove_bindings(vhost, &|_, b| b.destination == dest)?;
        Ok(q.len() as u32)
    }
}
