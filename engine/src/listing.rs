//! Read-only views of the AMQP model for admin APIs: queues and exchanges by vhost.

use crate::Engine;

/// A queue as admin tools list it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueListing {
    /// Virtual host.
    pub vhost: String,
    /// Queue name.
    pub name: String,
    /// Survives a restart.
    pub durable: bool,
    /// Deleted when its last consumer goes.
    pub auto_delete: bool,
    /// Messages ready for delivery.
    pub messages: u64,
    /// Consumers attached.
    pub consumers: u32,
}

/// An exchange as admin tools list it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeListing {
    /// Virtual host.
    pub vhost: String,
    /// Exchange name ("" is the default exchange).
    pub name: String,
    /// Routing type: direct, fanout, topic or headers.
    pub kind: &'static str,
    /// Survives a restart.
    pub durable: bool,
}

/// A binding as admin tools list it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingListing {
    /// Virtual host.
    pub vhost: String,
    /// The exchange messages come from.
    pub source: String,
    /// The queue or exchange they go to.
    pub destination: String,
    /// Whether the destination is an exchange (else a queue).
    pub to_exchange: bool,
    /// Binding key.
    pub routing_key: String,
}

impl Engine {
    /// Every binding of `vhost` (or of every vhost), by vhost and source exchange, in the
    /// order they were made.
    pub fn list_bindings(&self, vhost: Option<&str>) -> Vec<BindingListing> {
        let vhosts = self
            .broker
            .vhosts
            .iter()
            .filter(|(v, _)| vhost.is_none_or(|w| w == *v));
        vhosts
            .flat_map(|(v, host)| {
                host.exchanges.values().flat_map(move |x| {
                    x.bindings.iter().map(move |b| {
                        let (destination, to_exchange) = match &b.destination {
                            crate::Destination::Queue(q) => (q.clone(), false),
                            crate::Destination::Exchange(e) => (e.clone(), true),
                        };
                        BindingListing {
                            vhost: v.clone(),
                            source: x.name.clone(),
                            destination,
                            to_exchange,
                            routing_key: b.routing_key.clone(),
                        }
                    })
                })
            })
            .collect()
    }

    /// Every queue of `vhost` (or of every vhost), by vhost and name.
    pub fn list_queues(&self, vhost: Option<&str>) -> Vec<QueueListing> {
        let vhosts = self
            .broker
            .vhosts
            .iter()
            .filter(|(v, _)| vhost.is_none_or(|w| w == *v));
        vhosts
            .flat_map(|(v, host)| {
                host.queues.values().map(move |q| QueueListing {
                    vhost: v.clone(),
                    name: q.name.clone(),
                    durable: q.durable,
                    auto_delete: q.auto_delete,
                    messages: q.len(),
                    consumers: q.consumers.len() as u32,
                })
            })
            .collect()
    }

    /// Every exchange of `vhost` (or of every vhost), by vhost and name.
    pub fn list_exchanges(&self, vhost: Option<&str>) -> Vec<ExchangeListing> {
        let vhosts = self
            .broker
            .vhosts
            .iter()
            .filter(|(v, _)| vhost.is_none_or(|w| w == *v));
        vhosts
            .flat_map(|(v, host)| {
                host.exchanges.values().map(move |x| ExchangeListing {
                    vhost: v.clone(),
                    name: x.name.clone(),
                    kind: x.kind.as_str(),
                    durable: x.durable,
                })
            })
            .collect()
    }

    /// Whether a queue exists.
    pub fn queue_exists(&self, vhost: &str, name: &str) -> bool {
        self.broker
            .vhosts
            .get(vhost)
            .is_some_and(|v| v.queues.contains_key(name))
    }
}

#[cfg(test)]
mod tests {
    use crate::{Engine, EngineConfig, MemStorage, QueueDeclare};

    #[test]
    fn lists_queues_and_exchanges() {
        let mut e = Engine::open(EngineConfig::default(), Box::new(MemStorage::new()), 0).unwrap();
        e.ensure_vhost("/").unwrap();
        let d = QueueDeclare {
            name: "q".into(),
            durable: true,
            ..Default::default()
        };
        e.queue_declare(0, 1, "/", d).unwrap();
        let qs = e.list_queues(Some("/"));
        assert_eq!(qs.len(), 1);
        assert_eq!(
            (qs[0].name.as_str(), qs[0].durable, qs[0].messages),
            ("q", true, 0)
        );
        assert!(e.queue_exists("/", "q"));
        assert!(e.list_queues(Some("other")).is_empty());
        let xs = e.list_exchanges(None);
        assert!(
            xs.iter()
                .any(|x| x.name == "amq.topic" && x.kind == "topic")
        );
    }
}
