//! Channel calls of the [`Engine`]: consumers, prefetch, basic.get, acknowledgements,
//! channel and connection close, back-pressure.

use std::collections::BTreeMap;

use crate::broker_ops::{check_access, no_queue};
use crate::deliver::dead_letter;
use crate::error::BrokerError;
use crate::message::{ConnId, Consume, GetOk};
use crate::queue::consumer::{Consumer, Unacked};
use crate::queue::dead_letter::Reason;
use crate::queue_ops::generated_name;
use crate::stream::StreamStart;
use crate::vhost::{queue_res, store_key};
use crate::{Engine, Millis, WallMillis};

fn unknown_tag(tag: u64) -> BrokerError {
    BrokerError::PreconditionFailed(format!("unknown delivery tag {tag}"))
}

impl Engine {
    /// Opens a channel (channels are also opened implicitly by their first use).
    pub fn channel_open(&mut self, conn: ConnId, channel: u16) {
        self.broker.channels.entry((conn, channel)).or_default();
    }

    /// Closes a channel: cancels its consumers and requeues its unacknowledged messages.
    pub fn channel_close(&mut self, now: Millis, conn: ConnId, channel: u16) {
        self.broker.observe(now, None);
        let Some(mut ch) = self.broker.channels.remove(&(conn, channel)) else {
            return;
        };
        for (tag, (vhost, queue)) in std::mem::take(&mut ch.consumers) {
            self.remove_consumer(now, &vhost, &queue, conn, channel, &tag);
        }
        self.requeue(ch.take_all());
        self.settle(now);
    }

    /// Closes every channel of a closed connection and deletes the exclusive queues it owns.
    pub(crate) fn close_queue_connection(&mut self, conn: ConnId) {
        let now = self.broker.clock.0;
        let channels: Vec<u16> = self
            .broker
            .channels
            .range((conn, 0)..=(conn, u16::MAX))
            .map(|(k, _)| k.1)
            .collect();
        for channel in channels {
            self.channel_close(now, conn, channel);
        }
        let owned: Vec<(String, String)> = (self.broker.vhosts.iter())
            .flat_map(|(v, vh)| {
                let mine = vh.queues.values().filter(|q| q.owner == Some(conn));
                mine.map(move |q| (v.clone(), q.name.clone()))
            })
            .collect();
        for (vhost, queue) in owned {
            // Exclusive queues are not stored, so removing them touches no storage.
            let _ = self.remove_queue(&vhost, &queue);
        }
        self.broker.blocked.remove(&conn);
        self.settle(now);
    }

    /// Stops (`false`) or resumes (`true`) deliveries to a connection.
    pub fn set_conn_writable(&mut self, conn: ConnId, writable: bool) {
        if !writable {
            self.broker.blocked.insert(conn);
            return;
        }
        if !self.broker.blocked.remove(&conn) {
            return;
        }
        let range = (conn, 0)..=(conn, u16::MAX);
        let queues: Vec<(String, String)> = (self.broker.channels.range(range))
            .flat_map(|(_, ch)| ch.consumers.values().cloned())
            .collect();
        self.broker.touched.extend(queues);
        self.settle(self.broker.clock.0);
    }

    fn remove_consumer(
        &mut self,
        now: Millis,
        vhost: &str,
        queue: &str,
        conn: ConnId,
        channel: u16,
        tag: &str,
    ) {
        let Some(q) = self
            .broker
            .vhosts
            .get_mut(vhost)
            .and_then(|v| v.queues.get_mut(queue))
        else {
            return;
        };
        q.consumers
            .retain(|c| !(c.conn == conn && c.channel == channel && c.tag == tag));
        if q.consumers.is_empty() {
            q.last_used = now;
            if q.auto_delete && q.had_consumers {
                // Auto-delete queues that are durable store nothing needing a rollback here.
                let _ = self.remove_queue(vhost, queue);
                return;
            }
        }
        self.broker
            .touched
            .insert((vhost.to_owned(), queue.to_owned()));
    }

    /// Puts unacknowledged messages back at their place in their queues, marked redelivered.
    /// Their consumers' credit is already given back (or the consumers are gone).
    fn requeue(&mut self, items: Vec<Unacked>) {
        for u in items {
            let st = &mut self.broker;
            let Some(q) = st
                .vhosts
                .get_mut(&u.vhost)
                .and_then(|v| v.queues.get_mut(&u.queue))
            else {
                continue;
            };
            // Stream deliveries stay in the log: nothing goes back.
            if q.uid != u.queue_uid || q.args.stream {
                continue;
            }
            let mut m = u.message;
            m.redelivered = true;
            q.ready.insert(m);
            st.touched.insert((u.vhost, u.queue));
        }
    }

    /// Starts a consumer; returns its tag (generated when empty).
    pub fn basic_consume(
        &mut self,
        now: Millis,
        conn: ConnId,
        channel: u16,
        vhost: &str,
        c: Consume,
    ) -> Result<String, BrokerError> {
        self.broker.observe(now, None);
        self.vhost_mut(vhost)?;
        let (stream_offset, stream_from_ms) =
            match self.stream_start(now, conn, channel, vhost, &c)? {
                None => (None, None),
                Some(StreamStart::Offset(o)) => (Some(o), None),
                Some(StreamStart::Timestamp(ms)) => (None, Some(ms)),
            };
        let tag = match c.consumer_tag.is_empty() {
            true => generated_name(&mut self.rng, "amq.ctag-"),
            false => c.consumer_tag.clone(),
        };
        let st = &mut self.broker;
        let ch = st.channels.entry((conn, channel)).or_default();
        if ch.consumers.contains_key(&tag) {
            let text = format!("attempt to reuse consumer tag '{tag}'");
            return Err(BrokerError::NotAllowed(text));
        }
        let queues = &mut st.vhosts.get_mut(vhost).expect("checked").queues;
        let q = queues
            .get_mut(&c.queue)
            .ok_or_else(|| no_queue(vhost, &c.queue))?;
        check_access(q, conn, vhost)?;
        if q.consumers.iter().any(|c| c.exclusive) || (c.exclusive && !q.consumers.is_empty()) {
            let res = queue_res(vhost, &c.queue);
            return Err(BrokerError::AccessRefused(format!(
                "{res} in exclusive use"
            )));
        }
        q.consumers.push(Consumer {
            conn,
            channel,
            tag: tag.clone(),
            no_ack: c.no_ack,
            exclusive: c.exclusive,
            prefetch: ch.prefetch,
            unacked: 0,
            stream_offset,
            stream_from_ms,
        });
        q.had_consumers = true;
        q.last_used = now;
        ch.consumers
            .insert(tag.clone(), (vhost.to_owned(), c.queue.clone()));
        st.touched.insert((vhost.to_owned(), c.queue));
        self.settle(now);
        Ok(tag)
    }

    /// Cancels a consumer; an unknown tag is fine. Its unacknowledged messages stay on the
    /// channel.
    pub fn basic_cancel(
        &mut self,
        conn: ConnId,
        channel: u16,
        consumer_tag: &str,
    ) -> Result<(), BrokerError> {
        let now = self.broker.clock.0;
        let ch = self.broker.channels.get_mut(&(conn, channel));
        let Some((vhost, queue)) = ch.and_then(|ch| ch.consumers.remove(consumer_tag)) else {
            return Ok(());
        };
        self.remove_consumer(now, &vhost, &queue, conn, channel, consumer_tag);
        self.settle(now);
        Ok(())
    }

    /// Sets the prefetch: per consumer started later (`global` false) or for the whole
    /// channel (`global` true). 0 is unlimited.
    pub fn basic_qos(&mut self, conn: ConnId, channel: u16, prefetch_count: u16, global: bool) {
        let ch = self.broker.channels.entry((conn, channel)).or_default();
        if global {
            ch.global_prefetch = prefetch_count;
        } else {
            ch.prefetch = prefetch_count;
        }
        let queues: Vec<(String, String)> = ch.consumers.values().cloned().collect();
        self.broker.touched.extend(queues);
        self.settle(self.broker.clock.0);
    }

    /// Takes one ready message, or `None` when the queue has none.
    pub fn basic_get(
        &mut self,
        now: Millis,
        conn: ConnId,
        channel: u16,
        vhost: &str,
        queue: &str,
        no_ack: bool,
    ) -> Result<Option<GetOk>, BrokerError> {
        self.broker.observe(now, None);
        let v = self.vhost_mut(vhost)?;
        let q = v
            .queues
            .get_mut(queue)
            .ok_or_else(|| no_queue(vhost, queue))?;
        check_access(q, conn, vhost)?;
        if q.args.stream {
            return Err(BrokerError::NotImplemented(format!(
                "basic.get not supported by stream queues {}",
                queue_res(vhost, queue)
            )));
        }
        q.last_used = now;
        let mut q = v.queues.remove(queue).expect("found");
        let taken = self.take_head(now, vhost, &mut q);
        let st = &mut self.broker;
        let q = st
            .vhosts
            .get_mut(vhost)
            .expect("found")
            .queues
            .entry(queue.to_owned())
            .or_insert(q);
        let Some(m) = taken else {
            self.settle(now);
            return Ok(None);
        };
        let ch = st.channels.entry((conn, channel)).or_default();
        let delivery_tag = ch.next_delivery_tag();
        let ok = GetOk {
            delivery_tag,
            redelivered: m.redelivered,
            message_count: q.len() as u32,
            message: m.message.clone(),
        };
        if no_ack {
            if let Some(id) = m.store_id {
                st.removals.push((store_key(vhost, queue), id));
            }
        } else {
            let u = Unacked {
                vhost: vhost.to_owned(),
                queue: queue.to_owned(),
                queue_uid: q.uid,
                consumer_tag: None,
                message: m,
            };
            ch.track(delivery_tag, u);
        }
        self.settle(now);
        Ok(Some(ok))
    }

    /// Takes the deliveries an ack/nack names and gives their consumers credit back.
    fn take_acked(
        &mut self,
        conn: ConnId,
        channel: u16,
        tag: u64,
        multiple: bool,
    ) -> Result<Vec<Unacked>, BrokerError> {
        let ch = self
            .broker
            .channels
            .get_mut(&(conn, channel))
            .ok_or_else(|| unknown_tag(tag))?;
        let items = ch
            .take(tag, multiple)
            .map_err(BrokerError::PreconditionFailed)?;
        let st = &mut self.broker;
        for u in &items {
            let Some(q) = st
                .vhosts
                .get_mut(&u.vhost)
                .and_then(|v| v.queues.get_mut(&u.queue))
            else {
                continue;
            };
            if q.uid != u.queue_uid {
                continue;
            }
            if let Some(tag) = &u.consumer_tag {
                let mine =
                    |c: &&mut Consumer| c.conn == conn && c.channel == channel && c.tag == *tag;
                if let Some(c) = q.consumers.iter_mut().find(mine) {
                    c.unacked -= 1;
                }
            }
            st.touched.insert((u.vhost.clone(), u.queue.clone()));
        }
        if self
            .broker
            .channels
            .get(&(conn, channel))
            .is_some_and(|c| c.global_prefetch > 0)
        {
            let ch = &self.broker.channels[&(conn, channel)];
            let queues: Vec<(String, String)> = ch.consumers.values().cloned().collect();
            self.broker.touched.extend(queues);
        }
        Ok(items)
    }

    /// The stored ids of messages whose queue still exists, by store key.
    fn stored_ids(&self, items: &[Unacked]) -> BTreeMap<String, Vec<u64>> {
        let mut out: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        for u in items {
            let v = self.broker.vhosts.get(&u.vhost);
            let q = v
                .and_then(|v| v.queues.get(&u.queue))
                .filter(|q| q.uid == u.queue_uid);
            if let (Some(_), Some(id)) = (q, u.message.store_id) {
                out.entry(store_key(&u.vhost, &u.queue))
                    .or_default()
                    .push(id);
            }
        }
        out
    }

    /// Acknowledges a delivery (or all up to it with `multiple`; tag 0 with `multiple`: all).
    pub fn basic_ack(
        &mut self,
        conn: ConnId,
        channel: u16,
        delivery_tag: u64,
        multiple: bool,
    ) -> Result<(), BrokerError> {
        let items = self.take_acked(conn, channel, delivery_tag, multiple)?;
        for (key, ids) in self.stored_ids(&items) {
            self.storage.queue_remove(&key, &ids)?;
        }
        self.settle(self.broker.clock.0);
        Ok(())
    }

    /// Rejects deliveries: requeued (marked redelivered) or dead-lettered with reason
    /// `rejected`.
    #[allow(clippy::too_many_arguments)]
    pub fn basic_nack(
        &mut self,
        now: Millis,
        wall: WallMillis,
        conn: ConnId,
        channel: u16,
        delivery_tag: u64,
        multiple: bool,
        requeue: bool,
    ) -> Result<(), BrokerError> {
        self.broker.observe(now, Some(wall));
        let items = self.take_acked(conn, channel, delivery_tag, multiple)?;
        if requeue {
            self.requeue(items);
        } else {
            for (key, ids) in self.stored_ids(&items) {
                self.broker
                    .removals
                    .extend(ids.into_iter().map(|id| (key.clone(), id)));
            }
            for u in items {
                let v = self.broker.vhosts.get(&u.vhost);
                let q = v
                    .and_then(|v| v.queues.get(&u.queue))
                    .filter(|q| q.uid == u.queue_uid);
                let Some(q) = q else { continue };
                let job = dead_letter(&u.vhost, q, u.message.message, Reason::Rejected);
                self.broker.dead_letters.extend(job);
            }
        }
        self.settle(now);
        Ok(())
    }

    /// Rejects one delivery; see [`Engine::basic_nack`].
    pub fn basic_reject(
        &mut self,
        now: Millis,
        wall: WallMillis,
        conn: ConnId,
        channel: u16,
        delivery_tag: u64,
        requeue: bool,
    ) -> Result<(), BrokerError> {
        self.basic_nack(now, wall, conn, channel, delivery_tag, false, requeue)
    }

    /// Requeues every unacknowledged message of the channel (basic.recover requeue=true).
    pub fn basic_recover(
        &mut self,
        now: Millis,
        conn: ConnId,
        channel: u16,
    ) -> Result<(), BrokerError> {
        self.broker.observe(now, None);
        if !self.broker.channels.contains_key(&(conn, channel)) {
            return Ok(());
        }
        let items = self.take_acked(conn, channel, 0, true)?;
        self.requeue(items);
        self.settle(now);
        Ok(())
    }

    /// Body bytes held in all queues, ready and unacknowledged.
    pub fn queued_bytes(&self) -> u64 {
        let ready: u64 = (self.broker.vhosts.values())
            .flat_map(|v| v.queues.values())
            .map(|q| q.ready.bytes())
            .sum();
        ready
            + self
                .broker
                .channels
                .values()
                .map(|c| c.unacked_bytes)
                .sum::<u64>()
    }
}
