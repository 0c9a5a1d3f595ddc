//! Queue paging: a durable FIFO queue keeps only a head window of its ready messages in
//! memory ([`EngineConfig::queue_window_messages`] and
//! [`EngineConfig::queue_window_bytes`]); messages published while the window is full, or
//! while older messages are still paged out, are stored and counted in the queue's
//! [`Tail`](crate::queue::tail::Tail) only. Once the window is down to half of both limits,
//! the next chunk of the tail is read back with [`crate::Storage::queue_read`], so messages
//! keep their FIFO order.
//!
//! Transient messages are stored too while the queue pages (they would otherwise have to
//! jump the tail); one that is still stored at a restart is dropped when it is read back.
//! After a restart every stored message starts in the tail, so nothing is read before a
//! consumer, a basic.get or a publish needs the head. A read answered with
//! [`StorageError::Pending`] parks the queue in `waiting_for_storage` until
//! [`Engine::storage_progress`].

use std::sync::Arc;

use crate::Engine;
use crate::config::EngineConfig;
use crate::deliver::ttl_of;
use crate::queue::stored::decode_message;
use crate::queue::{Queue, QueuedMessage};
use crate::storage::{Storage, StorageError};
use crate::vhost::store_key;

/// Whether a message of `size` body bytes published to `q` goes to the tail: `q` pages and
/// its tail is not empty or its window is full.
pub(crate) fn pages_out(cfg: &EngineConfig, q: &Queue, size: u64) -> bool {
    let full = q.ready.len() >= cfg.queue_window_messages
        || (q.ready.len() > 0 && q.ready.bytes() + size > cfg.queue_window_bytes);
    q.pages() && (q.tail.count > 0 || full)
}

/// The window limits of `q`: unlimited for a queue that does not page (a priority queue
/// reads its whole recovered store back).
fn window(cfg: &EngineConfig, q: &Queue) -> (usize, u64) {
    match q.pages() {
        true => (
            cfg.queue_window_messages.max(1),
            cfg.queue_window_bytes.max(1),
        ),
        false => (usize::MAX, u64::MAX),
    }
}

/// Whether `q` has a tail and its window is at or below half of both limits.
fn wants_read(cfg: &EngineConfig, q: &Queue) -> bool {
    let (max_messages, max_bytes) = window(cfg, q);
    q.tail.count > 0 && q.ready.len() <= max_messages / 2 && q.ready.bytes() <= max_bytes / 2
}

/// Reads the next chunk of `q`'s tail into its window once the window is down to half of
/// both limits (its low-water mark); a queue that does not page reads its whole tail. Stored ids
/// of recovered transient messages it drops go to `dropped`.
fn refill(
    storage: &mut dyn Storage,
    cfg: &EngineConfig,
    key: &str,
    q: &mut Queue,
    dropped: &mut Vec<u64>,
) -> Result<(), StorageError> {
    let (max_messages, max_bytes) = window(cfg, q);
    while wants_read(cfg, q) {
        let (len, bytes) = (q.ready.len(), q.ready.bytes());
        let chunk = cfg.queue_window_messages.max(1).min(max_messages - len);
        let chunk_bytes = usize::try_from(max_bytes - bytes).unwrap_or(usize::MAX);
        let after = q.tail.from.checked_sub(1);
        let read = storage.queue_read(key, after, chunk, chunk_bytes)?;
        if read.is_empty() {
            // The store holds nothing more: the counts were off (a store changed behind us).
            q.tail.clear();
        }
        for (id, stored) in read {
            if id >= q.tail.from {
                take_read(q, id, &stored, dropped)?;
            }
        }
        if q.pages() {
            break;
        }
    }
    Ok(())
}

/// Moves message `id`, just read from the store as `stored`, from the tail of `q` to the end
/// of its window.
fn take_read(
    q: &mut Queue,
    id: u64,
    stored: &[u8],
    dropped: &mut Vec<u64>,
) -> Result<(), StorageError> {
    let recovered = id < q.tail.recovered_below;
    let message = match decode_message(stored) {
        Ok(m) => m,
        Err(e) => {
            // Skipped, not removed: it stays stored, and the next recovery reports it again.
            q.tail.take(id, stored.len() as u64);
            return Err(e);
        }
    };
    let size = match recovered {
        true => stored.len() as u64,
        false => message.body.len() as u64,
    };
    let paged_expiry = q.tail.take(id, size);
    if recovered && !message.is_persistent() {
        dropped.push(id);
        return Ok(());
    }
    let expires_at = match recovered {
        true => ttl_of(q, &message).map(|t| q.tail.recovered_at.saturating_add(t)),
        false => paged_expiry,
    };
    q.next_seq += 1;
    q.ready.insert(QueuedMessage {
        seq: q.next_seq,
        store_id: Some(id),
        priority: message.props.priority.unwrap_or(0),
        message: Arc::new(message),
        redelivered: recovered,
        expires_at,
    });
    Ok(())
}

impl Engine {
    /// Refills the window of `q` (taken out of vhost `vhost`) from its tail when it is low.
    /// Returns `false` when the tail could not be read now: a pending read (the queue waits
    /// for [`Engine::storage_progress`]) or a failed one (tried again on the queue's next
    /// dispatch).
    pub(crate) fn fill_window(&mut self, vhost: &str, q: &mut Queue) -> bool {
        if !wants_read(&self.cfg, q) {
            return true;
        }
        let key = store_key(vhost, &q.name);
        let mut dropped = Vec::new();
        let r = refill(&mut *self.storage, &self.cfg, &key, q, &mut dropped);
        let st = &mut self.broker;
        st.removals
            .extend(dropped.into_iter().map(|id| (key.clone(), id)));
        match r {
            Ok(()) => true,
            Err(StorageError::Pending) => {
                st.waiting_for_storage
                    .insert((vhost.to_owned(), q.name.clone()));
                false
            }
            Err(_) => false,
        }
    }
}
