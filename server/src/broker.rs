//! The broker state a worker drives: the engine plus what the protocol adapters share.

use std::collections::{BTreeMap, BTreeSet};

use portask_engine::{Engine, Output, StorageError};

use crate::amqp::AmqpSettings;
use crate::kafka::KafkaSettings;

/// Engine, protocol settings, and the bookkeeping of parked requests.
pub struct Broker {
    /// The deterministic core.
    pub engine: Engine,
    /// Kafka protocol settings.
    pub kafka: KafkaSettings,
    /// AMQP protocol settings.
    pub amqp: AmqpSettings,
    /// Portask protocol settings.
    pub portask: portask_protocol::conn::server::ServerConfig,
    /// Set when records were appended (or storage reads completed) this turn, so parked
    /// requests are re-checked.
    pub data_arrived: bool,
    /// During a pass over parked requests: whether data arrived before it, so a parked
    /// request should look again now.
    pub wake_parked: bool,
    /// The store is unreachable for now: writes are refused, and requests that could be
    /// answered from memory as if stored (a retried produce) are refused too.
    pub storage_unavailable: bool,
    /// Engine outputs waiting for their connection, by connection id.
    outputs: BTreeMap<u64, Vec<Output>>,
    /// Deadlines of parked requests: (monotonic ms, connection id).
    deadlines: BTreeSet<(u64, u64)>,
    /// Requests served, for /metrics.
    pub requests_total: u64,
}

impl Broker {
    /// A broker around `engine`.
    pub fn new(
        engine: Engine,
        kafka: KafkaSettings,
        amqp: AmqpSettings,
        portask: portask_protocol::conn::server::ServerConfig,
    ) -> Self {
        Self {
            engine,
            kafka,
            amqp,
            portask,
            data_arrived: false,
            wake_parked: false,
            storage_unavailable: false,
            outputs: BTreeMap::new(),
            deadlines: BTreeSet::new(),
            requests_total: 0,
        }
    }

    /// Most bytes a Kafka connection may buffer unread: one maximal frame plus its prefix.
    pub fn read_buffer_limit(&self) -> usize {
        self.kafka.limits.frame_bytes_max + 4
    }

    /// Most bytes an AMQP connection may buffer unread: one maximal frame and its envelope.
    pub fn amqp_read_buffer_limit(&self) -> usize {
        self.amqp.server.frame_max as usize + 8
    }

    /// Whether queued message bodies are above the memory high-water mark.
    pub fn memory_alarm(&self) -> bool {
        self.engine.queued_bytes() > self.amqp.memory_high_watermark_bytes
    }

    /// The earliest deadline of the engine or of a parked request.
    pub fn next_deadline(&self) -> Option<u64> {
        let parked = self.deadlines.first().map(|(d, _)| *d);
        match (self.engine.poll_timeout(), parked) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Parks a request of `conn` until `deadline` at the latest.
    pub fn add_deadline(&mut self, deadline: u64, conn: u64) {
        self.deadlines.insert((deadline, conn));
    }

    /// Forgets a parked request's deadline.
    pub fn remove_deadline(&mut self, deadline: u64, conn: u64) {
        self.deadlines.remove(&(deadline, conn));
    }

    /// Moves engine outputs to the connections they are for.
    pub fn collect_outputs(&mut self) {
        while let Some(out) = self.engine.poll_output() {
            let conn = match &out {
                Output::Joined { waiter, .. } | Output::Synced { waiter, .. } => waiter.conn,
                Output::Deliver { conn, .. } | Output::ConsumerCancelled { conn, .. } => *conn,
            };
            self.outputs.entry(conn).or_default().push(out);
        }
    }

    /// Takes the next engine output for `conn`.
    pub fn take_output(&mut self, conn: u64) -> Option<Output> {
        let list = self.outputs.get_mut(&conn)?;
        let out = (!list.is_empty()).then(|| list.remove(0));
        if list.is_empty() {
            self.outputs.remove(&conn);
        }
        out
    }

    /// Runs due engine timers. Returns whether parked requests should be re-checked.
    pub fn handle_timers(&mut self, now: crate::worker::Now) -> bool {
        if self.engine.poll_timeout().is_some_and(|d| d <= now.mono) {
            self.engine.handle_timeout(now.mono);
        }
        self.collect_outputs();
        let due = self.deadlines.first().is_some_and(|(d, _)| *d <= now.mono);
        due || self.data_arrived || !self.outputs.is_empty()
    }

    /// Drops what belongs to a closed connection.
    pub fn connection_closed(&mut self, conn: u64) {
        self.outputs.remove(&conn);
        self.deadlines.retain(|(_, c)| *c != conn);
        self.engine.connection_closed(conn);
    }

    /// Makes every write durable.
    pub fn sync(&mut self) -> Result<(), StorageError> {
        self.engine.sync()
    }
}
