//! Queues: ready messages (FIFO or priority buckets), consumers, limits and expiry.

pub mod args;
pub(crate) mod consumer;
pub(crate) mod dead_letter;
pub(crate) mod stored;
pub(crate) mod tail;

use std::collections::VecDeque;
use std::sync::Arc;

use args::QueueArgs;
use consumer::Consumer;
use tail::Tail;

use crate::Millis;
use crate::message::{ConnId, Message};
use crate::value::Table;

/// A message in a queue, ready or unacknowledged.
#[derive(Debug, Clone)]
pub(crate) struct QueuedMessage {
    /// Enqueue order within the queue; requeued messages go back to their place by it.
    pub(crate) seq: u64,
    /// Id in the queue's durable store, for persistent messages of durable queues.
    pub(crate) store_id: Option<u64>,
    pub(crate) message: Arc<Message>,
    pub(crate) redelivered: bool,
    pub(crate) expires_at: Option<Millis>,
    pub(crate) priority: u8,
}

impl QueuedMessage {
    pub(crate) fn size(&self) -> u64 {
        self.message.body.len() as u64
    }

    /// Expired once `now` is past its expiry time: a message with TTL 0 can still be
    /// delivered in the call that enqueued it, as RabbitMQ delivers it to a waiting consumer.
    pub(crate) fn expired(&self, now: Millis) -> bool {
        self.expires_at.is_some_and(|t| t < now)
    }
}

/// Ready messages: one FIFO per priority level, each sorted by `seq`.
#[derive(Debug, Clone)]
pub(crate) struct Ready {
    buckets: Vec<VecDeque<QueuedMessage>>,
    len: usize,
    bytes: u64,
}

impl Ready {
    pub(crate) fn new(max_priority: u8) -> Self {
        Self {
            buckets: (0..=max_priority).map(|_| VecDeque::new()).collect(),
            len: 0,
            bytes: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    fn bucket(&self, priority: u8) -> usize {
        usize::from(priority).min(self.buckets.len() - 1)
    }

    /// Adds a message at its place by `seq` (at the back for new messages).
    pub(crate) fn insert(&mut self, m: QueuedMessage) {
        self.len += 1;
        self.bytes += m.size();
        let i = self.bucket(m.priority);
        let b = &mut self.buckets[i];
        if b.back().is_none_or(|last| last.seq < m.seq) {
            b.push_back(m);
        } else {
            let at = b.partition_point(|x| x.seq < m.seq);
            b.insert(at, m);
        }
    }

    /// Takes the next message to deliver: highest priority first, oldest first.
    pub(crate) fn pop(&mut self) -> Option<QueuedMessage> {
        let m = self
            .buckets
            .iter_mut()
            .rev()
            .find_map(VecDeque::pop_front)?;
        self.len -= 1;
        self.bytes -= m.size();
        Some(m)
    }

    /// Removes the head of a bucket whose head expired at `now`.
    pub(crate) fn pop_expired(&mut self, now: Millis) -> Option<QueuedMessage> {
        let b = self
            .buckets
            .iter_mut()
            .find(|b| b.front().is_some_and(|m| m.expired(now)))?;
        let m = b.pop_front()?;
        self.len -= 1;
        self.bytes -= m.size();
        Some(m)
    }

    /// The earliest expiry among bucket heads.
    pub(crate) fn next_expiry(&self) -> Option<Millis> {
        self.buckets
            .iter()
            .filter_map(|b| b.front()?.expires_at)
            .min()
    }

    pub(crate) fn drain(&mut self) -> Vec<QueuedMessage> {
        self.len = 0;
        self.bytes = 0;
        let mut all: Vec<QueuedMessage> =
            self.buckets.iter_mut().flat_map(|b| b.drain(..)).collect();
        all.sort_by_key(|m| m.seq);
        all
    }
}

/// A queue.
#[derive(Debug, Clone)]
pub(crate) struct Queue {
    pub(crate) name: String,
    /// Distinguishes this queue from an earlier one of the same name.
    pub(crate) uid: u64,
    pub(crate) durable: bool,
    pub(crate) auto_delete: bool,
    pub(crate) owner: Option<ConnId>,
    pub(crate) arguments: Table,
    pub(crate) args: QueueArgs,
    /// Ready messages in memory: the whole queue, or its head window when it pages.
    pub(crate) ready: Ready,
    /// Ready messages after the window that are only in the queue's store.
    pub(crate) tail: Tail,
    pub(crate) consumers: Vec<Consumer>,
    /// An auto-delete queue is deleted when its last consumer goes, once it had one.
    pub(crate) had_consumers: bool,
    /// Last declare, get or consumer change; `x-expires` counts from here.
    pub(crate) last_used: Millis,
    pub(crate) next_seq: u64,
    pub(crate) next_store_id: u64,
}

impl Queue {
    pub(crate) fn stores_messages(&self) -> bool {
        self.durable && self.owner.is_none()
    }

    /// Whether messages beyond the head window stay only in the store: durable, stored,
    /// FIFO queues (priority queues keep every message in memory).
    pub(crate) fn pages(&self) -> bool {
        self.stores_messages() && self.args.max_priority == 0 && !self.args.stream
    }

    /// Ready messages, in memory and paged out.
    pub(crate) fn len(&self) -> u64 {
        self.ready.len() as u64 + self.tail.count
    }

    /// Body bytes of the ready messages, in memory and paged out.
    pub(crate) fn bytes(&self) -> u64 {
        self.ready.bytes() + self.tail.bytes
    }

    /// When `x-expires` deletes this queue if nothing uses it.
    pub(crate) fn expiry_deadline(&self) -> Option<Millis> {
        let ttl = self.args.expires?;
        self.consumers
            .is_empty()
            .then(|| self.last_used.saturating_add(ttl))
    }

    /// The earliest deadline of this queue (head message expiry or queue expiry).
    pub(crate) fn next_deadline(&self) -> Option<Millis> {
        let head = self.ready.next_expiry().map(|t| t.saturating_add(1));
        [head, self.expiry_deadline()].into_iter().flatten().min()
    }

    pub(crate) fn over_limit(&self, extra_len: usize, extra_bytes: u64) -> bool {
        let len = self.len() + extra_len as u64;
        let bytes = self.bytes() + extra_bytes;
        self.args.max_length.is_some_and(|m| len > m)
            || self.args.max_length_bytes.is_some_and(|m| bytes > m)
    }
}
