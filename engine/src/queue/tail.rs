//! The paged-out tail of a durable queue: stored messages behind the in-memory window, kept
//! as counts only (see [`crate::paging`]).

use std::collections::VecDeque;

use crate::Millis;
use crate::storage::StoredQueue;

/// Messages of a queue that are only in its store, after every message in memory.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tail {
    /// Messages in the tail.
    pub(crate) count: u64,
    /// Their body bytes; for messages stored before the last restart, their stored size.
    pub(crate) bytes: u64,
    /// Store id of the tail's first message: while the tail is not empty, every stored
    /// message with this id or above is in it (ids grow in append order).
    pub(crate) from: u64,
    /// Store id and expiry of the tail's messages that expire, in id order.
    pub(crate) expiries: VecDeque<(u64, Millis)>,
    /// Store ids below this were stored before the last restart: they come back marked
    /// redelivered, count their stored size, and are dropped when not persistent.
    pub(crate) recovered_below: u64,
    /// When the queue was recovered: the TTL of recovered messages counts from here.
    pub(crate) recovered_at: Millis,
}

impl Tail {
    /// The tail of a queue recovered at `now` with `stored` in its store: all of it.
    pub(crate) fn recovered(stored: &StoredQueue, now: Millis) -> Self {
        Self {
            count: stored.count,
            bytes: stored.bytes,
            from: 0,
            expiries: VecDeque::new(),
            recovered_below: stored.next_id,
            recovered_at: now,
        }
    }

    /// Adds a message just stored with id `id` at the end.
    pub(crate) fn push(&mut self, id: u64, size: u64, expires_at: Option<Millis>) {
        if self.count == 0 {
            self.from = id;
        }
        self.count += 1;
        self.bytes += size;
        self.expiries.extend(expires_at.map(|t| (id, t)));
    }

    /// Takes message `id` (the tail's first) off the tail after it was read, with `size` as
    /// it was counted; returns its expiry if it was paged with one.
    pub(crate) fn take(&mut self, id: u64, size: u64) -> Option<Millis> {
        self.from = id + 1;
        self.count = self.count.saturating_sub(1);
        self.bytes = self.bytes.saturating_sub(size);
        while self.expiries.front().is_some_and(|(e, _)| *e < id) {
            self.expiries.pop_front();
        }
        let expiry = match self.expiries.front() {
            Some(&(e, t)) if e == id => {
                self.expiries.pop_front();
                Some(t)
            }
            _ => None,
        };
        if self.count == 0 {
            self.clear();
        }
        expiry
    }

    /// Forgets every message of the tail (purged, or no longer in the store).
    pub(crate) fn clear(&mut self) {
        self.count = 0;
        self.bytes = 0;
        self.expiries.clear();
    }
}
