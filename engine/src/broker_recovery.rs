//! Queue-model timers (message TTL, `x-expires`, continued dispatch) and recovery of durable
//! definitions and messages at open.

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::exchange::Destination;
use crate::message::QueueDeclare;
use crate::queue::args::QueueArgs;
use crate::queue::tail::Tail;
use crate::storage::{StorageError, StoredQueue};
use crate::vhost::{Definition, Vhost, queue_key, queue_res, store_key};
use crate::{Engine, Millis};

impl Engine {
    /// Expires queue heads and unused queues, and continues capped dispatches.
    pub(crate) fn queue_timeouts(&mut self, now: Millis) {
        self.broker.observe(now, None);
        let mut expired = Vec::new();
        for (vname, v) in &self.broker.vhosts {
            for q in v.queues.values() {
                let key = (vname.clone(), q.name.clone());
                if q.expiry_deadline().is_some_and(|d| d <= now) {
                    expired.push(key);
                } else if q.next_deadline().is_some_and(|d| d <= now) {
                    self.broker.touched.insert(key);
                }
            }
        }
        let pending = std::mem::take(&mut self.broker.pending);
        self.broker.touched.extend(pending);
        for (vhost, queue) in expired {
            // A failed delete leaves the definition stored; the queue comes back at restart.
            let _ = self.remove_queue(&vhost, &queue);
        }
        self.settle(now);
    }

    /// The earliest queue-model deadline.
    pub(crate) fn queue_deadline(&self) -> Option<Millis> {
        let queues = self.broker.vhosts.values().flat_map(|v| v.queues.values());
        let earliest = queues.filter_map(|q| q.next_deadline()).min();
        let pending = (!self.broker.pending.is_empty()).then_some(self.broker.clock.0);
        [earliest, pending].into_iter().flatten().min()
    }

    /// Rebuilds vhosts, exchanges, queues and bindings; a durable queue's stored messages all
    /// start in its paged-out tail (see [`crate::paging`]).
    pub(crate) fn recover_broker(
        &mut self,
        now: Millis,
        definitions: &BTreeMap<String, Bytes>,
        stores: BTreeMap<String, StoredQueue>,
    ) -> Result<(), StorageError> {
        self.broker.clock = (now, 0);
        let mut defs: Vec<Definition> = definitions
            .values()
            .map(|b| Definition::decode(b))
            .collect::<Result<_, _>>()?;
        defs.sort_by_key(|d| match d {
            Definition::Vhost { .. } => 0,
            Definition::Exchange { .. } => 1,
            Definition::Queue { .. } => 2,
            Definition::Binding { .. } => 3,
        });
        for d in defs {
            self.recover_definition(now, d)?;
        }
        let mut by_store = BTreeMap::new();
        for (vname, v) in &self.broker.vhosts {
            for q in v.queues.values() {
                by_store.insert(store_key(vname, &q.name), (vname.clone(), q.name.clone()));
            }
        }
        for (key, stored) in stores {
            let Some((vhost, queue)) = by_store.get(&key) else {
                continue;
            };
            let v = self.broker.vhosts.get_mut(vhost);
            let q = v
                .and_then(|v| v.queues.get_mut(queue))
                .expect("indexed above");
            q.next_store_id = stored.next_id;
            q.tail = Tail::recovered(&stored, now);
            if q.tail.count > 0 {
                // Read the heads back early, so the first basic.get or consumer finds them.
                self.broker.pending.insert((vhost.clone(), queue.clone()));
            }
        }
        Ok(())
    }

    fn recover_definition(&mut self, now: Millis, d: Definition) -> Result<(), StorageError> {
        let vhosts = &mut self.broker.vhosts;
        match d {
            Definition::Vhost { name } => {
                vhosts
                    .entry(name)
                    .or_insert_with(Vhost::with_standard_exchanges);
            }
            Definition::Exchange { vhost, exchange } => {
                let v = vhosts
                    .entry(vhost)
                    .or_insert_with(Vhost::with_standard_exchanges);
                v.exchanges.insert(exchange.name.clone(), exchange);
            }
            Definition::Queue {
                vhost,
                name,
                auto_delete,
                arguments,
            } => {
                let args = QueueArgs::parse(&arguments, &queue_res(&vhost, &name))
                    .map_err(|e| StorageError::Corrupt(e.to_string()))?;
                if args.stream && !self.topics.contains_key(&name) {
                    // The topic went while the definition stayed: the stream is gone.
                    return self.storage.put_definition(&queue_key(&vhost, &name), None);
                }
                let d = QueueDeclare {
                    name: name.clone(),
                    durable: true,
                    auto_delete,
                    arguments,
                    ..QueueDeclare::default()
                };
                let q = self.new_queue(now, name, &d, 0, args);
                let v = self.broker.vhosts.entry(vhost);
                let v = v.or_insert_with(Vhost::with_standard_exchanges);
                v.queues.insert(q.name.clone(), q);
            }
            Definition::Binding {
                vhost,
                source,
                binding,
            } => {
                let Some(v) = vhosts.get_mut(&vhost) else {
                    return Ok(());
                };
                let dest_exists = match &binding.destination {
                    Destination::Queue(q) => v.queues.contains_key(q),
                    Destination::Exchange(x) => v.exchanges.contains_key(x),
                };
                if let (true, Some(x)) = (dest_exists, v.exchanges.get_mut(&source)) {
                    x.bindings.push(binding);
                }
            }
        }
        Ok(())
    }
}
