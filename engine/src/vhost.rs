//! Virtual hosts and the queue model's state inside the engine, plus the keys and records of
//! its durable definitions.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::exchange::{Binding, Exchange, ExchangeKind};
use crate::message::{ConnId, Message};
use crate::queue::Queue;
use crate::queue::consumer::Channel;
use crate::queue::dead_letter::Reason;
use crate::storage::StorageError;
use crate::value::Table;
use crate::{Millis, WallMillis};

/// The exchanges every vhost has.
pub(crate) const STANDARD_EXCHANGES: [(&str, ExchangeKind); 6] = [
    ("", ExchangeKind::Direct),
    ("amq.direct", ExchangeKind::Direct),
    ("amq.fanout", ExchangeKind::Fanout),
    ("amq.topic", ExchangeKind::Topic),
    ("amq.headers", ExchangeKind::Headers),
    ("amq.match", ExchangeKind::Headers),
];

/// One virtual host: its exchanges and queues.
#[derive(Debug, Clone, Default)]
pub(crate) struct Vhost {
    pub(crate) exchanges: BTreeMap<String, Exchange>,
    pub(crate) queues: BTreeMap<String, Queue>,
}

impl Vhost {
    pub(crate) fn with_standard_exchanges() -> Self {
        let mut v = Vhost::default();
        for (name, kind) in STANDARD_EXCHANGES {
            let x = Exchange {
                name: name.to_owned(),
                kind,
                durable: true,
                auto_delete: false,
                internal: false,
                arguments: Table::new(),
                bindings: Vec::new(),
            };
            v.exchanges.insert(name.to_owned(), x);
        }
        v
    }
}

/// A message waiting to be republished to a dead-letter exchange.
#[derive(Debug, Clone)]
pub(crate) struct DeadLetter {
    pub(crate) vhost: String,
    pub(crate) queue: String,
    pub(crate) dlx: String,
    pub(crate) dl_routing_key: Option<String>,
    pub(crate) message: Arc<Message>,
    pub(crate) reason: Reason,
}

/// The queue model's state in the engine.
#[derive(Debug, Clone, Default)]
pub(crate) struct BrokerState {
    pub(crate) vhosts: BTreeMap<String, Vhost>,
    pub(crate) channels: BTreeMap<(ConnId, u16), Channel>,
    /// Connections that cannot take deliveries now.
    pub(crate) blocked: BTreeSet<ConnId>,
    /// Queues to dispatch before the call returns.
    pub(crate) touched: BTreeSet<(String, String)>,
    /// Queues whose dispatch stopped at the per-call cap with credit left.
    pub(crate) pending: BTreeSet<(String, String)>,
    /// Queues whose dispatch stopped at a storage read still in progress
    /// ([`crate::StorageError::Pending`]); dispatched again by [`crate::Engine::storage_progress`].
    pub(crate) waiting_for_storage: BTreeSet<(String, String)>,
    pub(crate) dead_letters: VecDeque<DeadLetter>,
    /// Stored messages to remove once their dead-lettered copies are stored: (store key, id).
    pub(crate) removals: Vec<(String, u64)>,
    /// The latest monotonic time seen and the wall clock at that moment.
    pub(crate) clock: (Millis, WallMillis),
    pub(crate) next_uid: u64,
}

impl BrokerState {
    /// Records the time of a call and returns the wall clock for it (estimated from the last
    /// wall clock seen when the call has none).
    pub(crate) fn observe(&mut self, now: Millis, wall: Option<WallMillis>) -> WallMillis {
        let (last_now, last_wall) = self.clock;
        let wall = wall.unwrap_or(last_wall + now.saturating_sub(last_now) as i64);
        self.clock = (now.max(last_now), wall);
        wall
    }
}

/// `queue 'q' in vhost '/'`, as RabbitMQ names a resource in error texts.
pub(crate) fn queue_res(vhost: &str, name: &str) -> String {
    format!("queue '{name}' in vhost '{vhost}'")
}

/// `exchange 'x' in vhost '/'`.
pub(crate) fn exchange_res(vhost: &str, name: &str) -> String {
    format!("exchange '{name}' in vhost '{vhost}'")
}

fn enc(s: &str) -> String {
    s.replace('%', "%25").replace('/', "%2F")
}

pub(crate) fn vhost_key(vhost: &str) -> String {
    format!("v/{}", enc(vhost))
}

pub(crate) fn exchange_key(vhost: &str, name: &str) -> String {
    format!("x/{}/{}", enc(vhost), enc(name))
}

pub(crate) fn queue_key(vhost: &str, name: &str) -> String {
    format!("q/{}/{}", enc(vhost), enc(name))
}

/// The name of a durable queue's message store.
pub(crate) fn store_key(vhost: &str, name: &str) -> String {
    format!("{}/{}", enc(vhost), enc(name))
}

pub(crate) fn binding_key(vhost: &str, source: &str, b: &Binding) -> String {
    let (kind, dest) = match &b.destination {
        crate::exchange::Destination::Queue(q) => ("q", q),
        crate::exchange::Destination::Exchange(x) => ("x", x),
    };
    let mut args = Vec::new();
    ciborium::into_writer(&b.arguments, &mut args).expect("CBOR into a Vec cannot fail");
    // FNV-1a of the arguments keeps bindings that differ only by arguments apart.
    let hash = args.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    });
    format!(
        "b/{}/{}/{kind}/{}/{}/{hash:016x}",
        enc(vhost),
        enc(source),
        enc(dest),
        enc(&b.routing_key)
    )
}

/// A durable definition as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Definition {
    Vhost {
        name: String,
    },
    Exchange {
        vhost: String,
        exchange: Exchange,
    },
    Queue {
        vhost: String,
        name: String,
        auto_delete: bool,
        arguments: Table,
    },
    Binding {
        vhost: String,
        source: String,
        binding: Binding,
    },
}

impl Definition {
    pub(crate) fn encode(&self) -> Bytes {
        let mut out = Vec::new();
        ciborium::into_writer(self, &mut out).expect("CBOR into a Vec cannot fail");
        Bytes::from(out)
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, StorageError> {
        ciborium::from_reader(bytes).map_err(|e| StorageError::Corrupt(format!("definition: {e}")))
    }
}
