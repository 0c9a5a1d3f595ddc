//! Vhost, exchange, queue and binding calls of the [`Engine`] (the queue model's topology).

use crate::Engine;
use crate::error::BrokerError;
use crate::exchange::{Binding, Destination, Exchange, ExchangeKind};
use crate::message::{ConnId, ExchangeDeclare};
use crate::queue::Queue;
use crate::queue::args::{assert_field_equivalent, assert_keys_equivalent};
use crate::value::Table;
use crate::vhost::{
    Definition, STANDARD_EXCHANGES, Vhost, binding_key, exchange_key, exchange_res, queue_res,
    vhost_key,
};

const DEFAULT_EXCHANGE: &str = "operation not permitted on the default exchange";

pub(crate) fn locked(vhost: &str, name: &str) -> BrokerError {
    BrokerError::ResourceLocked(format!(
        "cannot obtain exclusive access to locked {}. It could be originally declared on another \
         connection or the exclusive property value does not match that of the original \
         declaration.",
        queue_res(vhost, name)
    ))
}

/// Exclusive queues of another connection are off limits.
pub(crate) fn check_access(q: &Queue, conn: ConnId, vhost: &str) -> Result<(), BrokerError> {
    match q.owner {
        Some(owner) if owner != conn => Err(locked(vhost, &q.name)),
        _ => Ok(()),
    }
}

pub(crate) fn no_queue(vhost: &str, name: &str) -> BrokerError {
    BrokerError::NotFound(format!("no {}", queue_res(vhost, name)))
}

fn no_exchange(vhost: &str, name: &str) -> BrokerError {
    BrokerError::NotFound(format!("no {}", exchange_res(vhost, name)))
}

fn bool_str(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

impl Engine {
    /// Creates a vhost with the standard exchanges, if it does not exist.
    pub fn ensure_vhost(&mut self, vhost: &str) -> Result<(), BrokerError> {
        if self.broker.vhosts.contains_key(vhost) {
            return Ok(());
        }
        let def = Definition::Vhost {
            name: vhost.to_owned(),
        };
        self.storage
            .put_definition(&vhost_key(vhost), Some(&def.encode()))?;
        self.broker
            .vhosts
            .insert(vhost.to_owned(), Vhost::with_standard_exchanges());
        Ok(())
    }

    /// Whether the vhost exists.
    pub fn vhost_exists(&self, vhost: &str) -> bool {
        self.broker.vhosts.contains_key(vhost)
    }

    pub(crate) fn vhost_mut(&mut self, vhost: &str) -> Result<&mut Vhost, BrokerError> {
        self.broker
            .vhosts
            .get_mut(vhost)
            .ok_or_else(|| BrokerError::NotAllowed(format!("vhost '{vhost}' not found")))
    }

    /// Declares an exchange (or checks it, `passive`).
    pub fn exchange_declare(&mut self, vhost: &str, d: ExchangeDeclare) -> Result<(), BrokerError> {
        let kind = ExchangeKind::parse(&d.kind)?;
        let res = exchange_res(vhost, &d.name);
        let v = self.vhost_mut(vhost)?;
        if d.name.is_empty() && !d.passive {
            return Err(BrokerError::AccessRefused(DEFAULT_EXCHANGE.into()));
        }
        if let Some(x) = v.exchanges.get(&d.name) {
            if d.passive {
                return Ok(());
            }
            assert_field_equivalent("type", x.kind.as_str(), kind.as_str(), &res)?;
            assert_field_equivalent("durable", bool_str(x.durable), bool_str(d.durable), &res)?;
            let (ad, int) = (x.auto_delete, x.internal);
            assert_field_equivalent("auto_delete", bool_str(ad), bool_str(d.auto_delete), &res)?;
            assert_field_equivalent("internal", bool_str(int), bool_str(d.internal), &res)?;
            let keys = ["alternate-exchange"];
            return assert_keys_equivalent(&keys, &x.arguments, &d.arguments, &res);
        }
        if d.passive {
            return Err(no_exchange(vhost, &d.name));
        }
        if d.name.starts_with("amq.") {
            return Err(BrokerError::AccessRefused(format!(
                "exchange name '{}' contains reserved prefix 'amq.*'",
                d.name
            )));
        }
        let x = Exchange {
            name: d.name.clone(),
            kind,
            durable: d.durable,
            auto_delete: d.auto_delete,
            internal: d.internal,
            arguments: d.arguments,
            bindings: Vec::new(),
        };
        if x.durable {
            let def = Definition::Exchange {
                vhost: vhost.to_owned(),
                exchange: x.clone(),
            };
            self.storage
                .put_definition(&exchange_key(vhost, &x.name), Some(&def.encode()))?;
        }
        self.vhost_mut(vhost)?.exchanges.insert(d.name, x);
        Ok(())
    }

    /// Deletes an exchange and every binding to or from it. A missing exchange is fine.
    pub fn exchange_delete(
        &mut self,
        vhost: &str,
        name: &str,
        if_unused: bool,
    ) -> Result<(), BrokerError> {
        if name.is_empty() {
            return Err(BrokerError::AccessRefused(DEFAULT_EXCHANGE.into()));
        }
        if STANDARD_EXCHANGES.iter().any(|(n, _)| *n == name) {
            return Err(BrokerError::AccessRefused(format!(
                "deletion of system exchange '{name}' in vhost '{vhost}' not allowed"
            )));
        }
        let v = self.vhost_mut(vhost)?;
        let Some(x) = v.exchanges.get(name) else {
            return Ok(());
        };
        if if_unused && !x.bindings.is_empty() {
            return Err(BrokerError::PreconditionFailed(format!(
                "{} in use",
                exchange_res(vhost, name)
            )));
        }
        self.remove_exchange(vhost, name)
    }

    /// Removes an exchange, its bindings and bindings to it; auto-deletes exchanges left
    /// without bindings.
    pub(crate) fn remove_exchange(&mut self, vhost: &str, name: &str) -> Result<(), BrokerError> {
        let Some(x) = self.vhost_mut(vhost)?.exchanges.remove(name) else {
            return Ok(());
        };
        if x.durable {
            self.storage
                .put_definition(&exchange_key(vhost, name), None)?;
        }
        for b in x.bindings.iter().filter(|b| b.durable) {
            self.storage
                .put_definition(&binding_key(vhost, name, b), None)?;
        }
        let dest = Destination::Exchange(name.to_owned());
        self.remove_bindings(vhost, &|_, b| b.destination == dest)
    }

    /// Removes the bindings `pred` picks (by source name and binding), then auto-deletes the
    /// auto-delete exchanges that lost their last binding.
    pub(crate) fn remove_bindings(
        &mut self,
        vhost: &str,
        pred: &dyn Fn(&str, &Binding) -> bool,
    ) -> Result<(), BrokerError> {
        let mut stored = Vec::new();
        let mut emptied = Vec::new();
        for x in self.vhost_mut(vhost)?.exchanges.values_mut() {
            let before = x.bindings.len();
            let name = x.name.clone();
            x.bindings.retain(|b| {
                let remove = pred(&name, b);
                if remove && b.durable {
                    stored.push(binding_key(vhost, &name, b));
                }
                !remove
            });
            if before > 0 && x.bindings.is_empty() && x.auto_delete {
                emptied.push(name);
            }
        }
        for key in stored {
            self.storage.put_definition(&key, None)?;
        }
        for name in emptied {
            self.remove_exchange(vhost, &name)?;
        }
        Ok(())
    }

    fn add_binding(
        &mut self,
        vhost: &str,
        source: &str,
        destination: Destination,
        routing_key: &str,
        arguments: Table,
    ) -> Result<(), BrokerError> {
        let v = self.vhost_mut(vhost)?;
        let dest_durable = match &destination {
            Destination::Queue(q) => v.queues.get(q).is_some_and(Queue::stores_messages),
            Destination::Exchange(x) => v.exchanges.get(x).is_some_and(|x| x.durable),
        };
        let x = v
            .exchanges
            .get_mut(source)
            .expect("source checked by the caller");
        if x.bindings
            .iter()
            .any(|b| b.same(&destination, routing_key, &arguments))
        {
            return Ok(());
        }
        let b = Binding {
            destination,
            routing_key: routing_key.to_owned(),
            arguments,
            durable: x.durable && dest_durable,
        };
        if b.durable {
            let def = Definition::Binding {
                vhost: vhost.to_owned(),
                source: source.to_owned(),
                binding: b.clone(),
            };
            self.storage
                .put_definition(&binding_key(vhost, source, &b), Some(&def.encode()))?;
        }
        let x = self
            .vhost_mut(vhost)?
            .exchanges
            .get_mut(source)
            .expect("checked");
        x.bindings.push(b);
        Ok(())
    }

    /// Binds exchange `destination` to exchange `source`.
    pub fn exchange_bind(
        &mut self,
        vhost: &str,
        destination: &str,
        source: &str,
        routing_key: &str,
        arguments: Table,
    ) -> Result<(), BrokerError> {
        let v = self.vhost_mut(vhost)?;
        if source.is_empty() || destination.is_empty() {
            return Err(BrokerError::AccessRefused(DEFAULT_EXCHANGE.into()));
        }
        for name in [source, destination] {
            if !v.exchanges.contains_key(name) {
                return Err(no_exchange(vhost, name));
            }
        }
        let dest = Destination::Exchange(destination.to_owned());
        self.add_binding(vhost, source, dest, routing_key, arguments)
    }

    /// Removes an exchange-to-exchange binding; a missing one is fine.
    pub fn exchange_unbind(
        &mut self,
        vhost: &str,
        destination: &str,
        source: &str,
        routing_key: &str,
        arguments: &Table,
    ) -> Result<(), BrokerError> {
        self.vhost_mut(vhost)?;
        if source.is_empty() || destination.is_empty() {
            return Err(BrokerError::AccessRefused(DEFAULT_EXCHANGE.into()));
        }
        let dest = Destination::Exchange(destination.to_owned());
        self.remove_bindings(vhost, &|s, b| {
            s == source && b.same(&dest, routing_key, arguments)
        })
    }

    /// Binds a queue to an exchange.
    pub fn queue_bind(
        &mut self,
        vhost: &str,
        queue: &str,
        exchange: &str,
        routing_key: &str,
        arguments: Table,
        conn: ConnId,
    ) -> Result<(), BrokerError> {
        let v = self.vhost_mut(vhost)?;
        if exchange.is_empty() {
            return Err(BrokerError::AccessRefused(DEFAULT_EXCHANGE.into()));
        }
        if !v.exchanges.contains_key(exchange) {
            return Err(no_exchange(vhost, exchange));
        }
        let q = v.queues.get(queue).ok_or_else(|| no_queue(vhost, queue))?;
        check_access(q, conn, vhost)?;
        let dest = Destination::Queue(queue.to_owned());
        self.add_binding(vhost, exchange, dest, routing_key, arguments)
    }

    /// Removes a queue binding; a missing queue, exchange or binding is fine.
    pub fn queue_unbind(
        &mut self,
        vhost: &str,
        queue: &str,
        exchange: &str,
        routing_key: &str,
        arguments: &Table,
        conn: ConnId,
    ) -> Result<(), BrokerError> {
        let v = self.vhost_mut(vhost)?;
        if exchange.is_empty() {
            return Err(BrokerError::AccessRefused(DEFAULT_EXCHANGE.into()));
        }
        if let Some(q) = v.queues.get(queue) {
            check_access(q, conn, vhost)?;
        }
        let dest = Destination::Queue(queue.to_owned());
        self.remove_bindings(vhost, &|s, b| {
            s == exchange && b.same(&dest, routing_key, arguments)
        })
    }
}
