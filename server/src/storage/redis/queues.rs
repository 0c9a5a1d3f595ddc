//! Durable queue messages in Redis: `<ns>:queue:<key>` (hash, id → message) and
//! `<ns>:qids:<key>` (sorted set of the same ids, score = id), written together in one
//! transaction, so that reads find the next ids in order without loading the hash.
//!
//! Recovery runs one script per queue that counts the messages and their bytes and finds the
//! largest id without sending any message; it also rebuilds `qids` when its size differs
//! from the hash's (a store written before `qids` existed).

use std::collections::BTreeMap;

use bytes::Bytes;
use portask_engine::storage::{StorageError, StoredQueue};

use super::RedisStorage;

/// KEYS[1] the messages hash, KEYS[2] the ids set; returns {count, bytes, largest id or -1}.
const SUMMARY_SCRIPT: &str = r"
local ids = redis.call('HKEYS', KEYS[1])
local rebuild = redis.call('ZCARD', KEYS[2]) ~= #ids
if rebuild then redis.call('DEL', KEYS[2]) end
local bytes, top = 0, -1
for _, id in ipairs(ids) do
  bytes = bytes + redis.call('HSTRLEN', KEYS[1], id)
  local n = tonumber(id)
  if n > top then top = n end
  if rebuild then redis.call('ZADD', KEYS[2], n, id) end
end
return {#ids, bytes, top}
";

impl RedisStorage {
    /// What every durable queue's store holds.
    pub(super) fn recover_queues(&mut self) -> Result<BTreeMap<String, StoredQueue>, StorageError> {
        let keys = &self.keys;
        let queues: Vec<String> = self
            .conn
            .run(|c| redis::cmd("SMEMBERS").arg(keys.queues()).query(c))?;
        let mut out = BTreeMap::new();
        for queue in queues {
            let (count, bytes, top): (u64, u64, i64) = self.conn.run(|c| {
                redis::cmd("EVAL")
                    .arg(SUMMARY_SCRIPT)
                    .arg(2)
                    .arg(keys.queue(&queue))
                    .arg(keys.queue_ids(&queue))
                    .query(c)
            })?;
            let next_id = u64::try_from(top + 1).unwrap_or(0);
            out.insert(
                queue,
                StoredQueue {
                    count,
                    bytes,
                    next_id,
                },
            );
        }
        Ok(out)
    }

    /// [`portask_engine::Storage::queue_append`]: one transaction.
    pub(super) fn append_messages(
        &mut self,
        queue: &str,
        messages: &[(u64, Bytes)],
    ) -> Result<(), StorageError> {
        if messages.is_empty() {
            return Ok(());
        }
        let keys = &self.keys;
        self.conn.run(|c| {
            let mut hset = redis::cmd("HSET");
            hset.arg(keys.queue(queue));
            let mut zadd = redis::cmd("ZADD");
            zadd.arg(keys.queue_ids(queue));
            for (id, bytes) in messages {
                hset.arg(*id).arg(bytes.as_ref());
                zadd.arg(*id).arg(*id);
            }
            redis::pipe()
                .atomic()
                .cmd("SADD")
                .arg(keys.queues())
                .arg(queue)
                .ignore()
                .add_command(hset)
                .ignore()
                .add_command(zadd)
                .ignore()
                .query::<()>(c)
        })
    }

    /// [`portask_engine::Storage::queue_remove`]: one transaction.
    pub(super) fn remove_messages(&mut self, queue: &str, ids: &[u64]) -> Result<(), StorageError> {
        if ids.is_empty() {
            return Ok(());
        }
        let keys = &self.keys;
        self.conn.run(|c| {
            redis::pipe()
                .atomic()
                .cmd("HDEL")
                .arg(keys.queue(queue))
                .arg(ids)
                .ignore()
                .cmd("ZREM")
                .arg(keys.queue_ids(queue))
                .arg(ids)
                .ignore()
                .query::<()>(c)
        })
    }

    /// [`portask_engine::Storage::queue_read`]: the next ids from `qids`, then one `HMGET`.
    pub(super) fn read_messages(
        &mut self,
        queue: &str,
        after: Option<u64>,
        max_messages: usize,
        max_bytes: usize,
    ) -> Result<Vec<(u64, Bytes)>, StorageError> {
        let keys = &self.keys;
        let min = after.map_or("-inf".to_owned(), |a| format!("({a}"));
        let ids: Vec<u64> = self.conn.run(|c| {
            redis::cmd("ZRANGEBYSCORE")
                .arg(keys.queue_ids(queue))
                .arg(min)
                .arg("+inf")
                .arg("LIMIT")
                .arg(0)
                .arg(max_messages.clamp(1, isize::MAX as usize))
                .query(c)
        })?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let bodies: Vec<Option<Vec<u8>>> = self.conn.run(|c| {
            redis::cmd("HMGET")
                .arg(keys.queue(queue))
                .arg(&ids)
                .query(c)
        })?;
        let mut out = Vec::with_capacity(ids.len());
        let mut total = 0;
        for (id, body) in ids.into_iter().zip(bodies) {
            // An id without a message was removed between the two calls.
            let Some(body) = body else { continue };
            if !out.is_empty() && total + body.len() > max_bytes {
                break;
            }
            total += body.len();
            out.push((id, Bytes::from(body)));
        }
        Ok(out)
    }

    /// [`portask_engine::Storage::queue_remove_from`]: the ids from `qids`, then one
    /// transaction removing them.
    pub(super) fn remove_messages_from(
        &mut self,
        queue: &str,
        from: u64,
    ) -> Result<(), StorageError> {
        let keys = &self.keys;
        let ids: Vec<u64> = self.conn.run(|c| {
            redis::cmd("ZRANGEBYSCORE")
                .arg(keys.queue_ids(queue))
                .arg(from)
                .arg("+inf")
                .query(c)
        })?;
        self.remove_messages(queue, &ids)
    }

    /// [`portask_engine::Storage::queue_delete`]: one transaction.
    pub(super) fn delete_messages(&mut self, queue: &str) -> Result<(), StorageError> {
        let keys = &self.keys;
        self.conn.run(|c| {
            redis::pipe()
                .atomic()
                .cmd("SREM")
                .arg(keys.queues())
                .arg(queue)
                .ignore()
                .cmd("UNLINK")
                .arg(keys.queue(queue))
                .arg(keys.queue_ids(queue))
                .ignore()
                .query::<()>(c)
        })
    }
}
