//! Consumers and channels: delivery tags, unacknowledged messages and prefetch limits.

use std::collections::BTreeMap;

use super::QueuedMessage;
use crate::message::ConnId;

/// A consumer of one queue.
#[derive(Debug, Clone)]
pub(crate) struct Consumer {
    pub(crate) conn: ConnId,
    pub(crate) channel: u16,
    pub(crate) tag: String,
    pub(crate) no_ack: bool,
    pub(crate) exclusive: bool,
    /// Per-consumer prefetch (0: unlimited).
    pub(crate) prefetch: u16,
    /// Deliveries not yet acknowledged.
    pub(crate) unacked: u32,
    /// Stream queues: the next offset to deliver (partition 0 of the topic).
    pub(crate) stream_offset: Option<i64>,
    /// Stream queues: a start time (ms) whose first record is still to be looked up; the
    /// lookup runs at the consumer's first dispatch, as storage reads may complete later.
    pub(crate) stream_from_ms: Option<i64>,
}

impl Consumer {
    pub(crate) fn has_credit(&self) -> bool {
        self.no_ack || self.prefetch == 0 || self.unacked < u32::from(self.prefetch)
    }
}

/// A message delivered on a channel and not yet acknowledged.
#[derive(Debug, Clone)]
pub(crate) struct Unacked {
    pub(crate) vhost: String,
    pub(crate) queue: String,
    pub(crate) queue_uid: u64,
    /// `None` for basic.get.
    pub(crate) consumer_tag: Option<String>,
    pub(crate) message: QueuedMessage,
}

/// One channel of a connection.
#[derive(Debug, Clone, Default)]
pub(crate) struct Channel {
    pub(crate) next_tag: u64,
    pub(crate) unacked: BTreeMap<u64, Unacked>,
    pub(crate) unacked_bytes: u64,
    /// Unacknowledged consumer deliveries (what a global prefetch limits).
    pub(crate) consumer_unacked: u32,
    /// Prefetch given to consumers started later (basic.qos global=false).
    pub(crate) prefetch: u16,
    /// Limit for the whole channel (basic.qos global=true).
    pub(crate) global_prefetch: u16,
    /// Consumer tag → (vhost, queue).
    pub(crate) consumers: BTreeMap<String, (String, String)>,
}

impl Channel {
    pub(crate) fn has_credit(&self) -> bool {
        self.global_prefetch == 0 || self.consumer_unacked < u32::from(self.global_prefetch)
    }

    pub(crate) fn next_delivery_tag(&mut self) -> u64 {
        self.next_tag += 1;
        self.next_tag
    }

    pub(crate) fn track(&mut self, tag: u64, u: Unacked) {
        self.unacked_bytes += u.message.size();
        if u.consumer_tag.is_some() {
            self.consumer_unacked += 1;
        }
        self.unacked.insert(tag, u);
    }

    /// Takes the unacknowledged deliveries an ack/nack names: `tag` alone, or every tag up to
    /// it with `multiple` (tag 0 with `multiple`: all). An unknown tag is RabbitMQ's
    /// "unknown delivery tag".
    pub(crate) fn take(&mut self, tag: u64, multiple: bool) -> Result<Vec<Unacked>, String> {
        let tags: Vec<u64> = if multiple && tag == 0 {
            self.unacked.keys().copied().collect()
        } else if !self.unacked.contains_key(&tag) {
            return Err(format!("unknown delivery tag {tag}"));
        } else if multiple {
            self.unacked.range(..=tag).map(|(t, _)| *t).collect()
        } else {
            vec![tag]
        };
        Ok(tags.into_iter().filter_map(|t| self.untrack(t)).collect())
    }

    fn untrack(&mut self, tag: u64) -> Option<Unacked> {
        let u = self.unacked.remove(&tag)?;
        self.unacked_bytes -= u.message.size();
        if u.consumer_tag.is_some() {
            self.consumer_unacked -= 1;
        }
        Some(u)
    }

    pub(crate) fn take_all(&mut self) -> Vec<Unacked> {
        let tags: Vec<u64> = self.unacked.keys().copied().collect();
        tags.into_iter().filter_map(|t| self.untrack(t)).collect()
    }
}
