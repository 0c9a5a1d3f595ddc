//! The [`Engine`]: construction, producer ids, time and outputs.

use std::collections::{BTreeMap, VecDeque};

use crate::compression::CompressionState;
use crate::compression::dictionary::{self, Dictionary};
use crate::config::EngineConfig;
use crate::group::Group;
use crate::group::types::Output;
use crate::partition::Partition;
use crate::rng::Rng;
use crate::storage::{CommittedOffset, Storage, StorageError, TopicPartition};
use crate::topics::TopicInfo;
use crate::vhost::BrokerState;
use crate::{EngineError, Millis};

/// How many producer ids are reserved in storage at once.
pub const PRODUCER_ID_BLOCK: i64 = 1000;

/// The deterministic broker core. See the crate docs.
pub struct Engine {
    pub(crate) cfg: EngineConfig,
    pub(crate) storage: Box<dyn Storage>,
    pub(crate) rng: Rng,
    pub(crate) topics: BTreeMap<String, TopicInfo>,
    pub(crate) topic_ids: BTreeMap<[u8; 16], String>,
    pub(crate) partitions: BTreeMap<TopicPartition, Partition>,
    pub(crate) next_producer_id: i64,
    pub(crate) producer_id_limit: i64,
    pub(crate) groups: BTreeMap<String, Group>,
    pub(crate) offsets: BTreeMap<String, BTreeMap<TopicPartition, CommittedOffset>>,
    pub(crate) outputs: VecDeque<Output>,
    pub(crate) broker: BrokerState,
    pub(crate) compression: CompressionState,
    pub(crate) retention: crate::retention::RetentionTimer,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("topics", &self.topics.len())
            .field("partitions", &self.partitions.len())
            .field("groups", &self.groups.len())
            .field("next_producer_id", &self.next_producer_id)
            .field("vhosts", &self.broker.vhosts.len())
            .field("channels", &self.broker.channels.len())
            .finish_non_exhaustive()
    }
}

fn id_bits(id: &[u8; 16]) -> u64 {
    u64::from_be_bytes(id[..8].try_into().expect("8 bytes"))
        ^ u64::from_be_bytes(id[8..].try_into().expect("8 bytes"))
}

impl Engine {
    /// Opens the engine on a storage backend, recovering what it holds.
    pub fn open(
        cfg: EngineConfig,
        mut storage: Box<dyn Storage>,
        now: Millis,
    ) -> Result<Engine, StorageError> {
        let mut recovered = storage.recover()?;
        let (dict_defs, definitions): (BTreeMap<_, _>, BTreeMap<_, _>) =
            std::mem::take(&mut recovered.definitions)
                .into_iter()
                .partition(|(k, _)| k.starts_with(dictionary::KEY_PREFIX));
        let mut dictionaries = Vec::new();
        for (key, value) in &dict_defs {
            let dict = Dictionary::decode(key, value)
                .ok_or_else(|| StorageError::Corrupt(format!("bad dictionary {key}")))?;
            dictionaries.push(dict);
        }
        let queue_stores = std::mem::take(&mut recovered.queues);
        let mut rng = Rng::new(cfg.seed);
        let mut topics = BTreeMap::new();
        let mut topic_ids = BTreeMap::new();
        let mut partitions = BTreeMap::new();
        for meta in recovered.topics {
            rng.mix(id_bits(&meta.id));
            for partition in 0..meta.partitions {
                let tp = TopicPartition {
                    topic: meta.name.clone(),
                    partition,
                };
                let part = match recovered.partitions.get(&tp) {
                    Some(state) => Partition::recovered(state)?,
                    None => Partition::default(),
                };
                partitions.insert(tp, part);
            }
            topic_ids.insert(meta.id, meta.name.clone());
            topics.insert(meta.name.clone(), TopicInfo::from(meta));
        }
        rng.mix(recovered.next_producer_id as u64);
        rng.mix(definitions.len() as u64);
        let compression = CompressionState::new(cfg.compression.clone(), dictionaries);
        let mut engine = Engine {
            cfg,
            storage,
            rng,
            topics,
            topic_ids,
            partitions,
            next_producer_id: recovered.next_producer_id,
            producer_id_limit: recovered.next_producer_id,
            groups: BTreeMap::new(),
            offsets: recovered.offsets,
            outputs: VecDeque::new(),
            broker: BrokerState::default(),
            compression,
            retention: Default::default(),
        };
        engine.recover_broker(now, &definitions, queue_stores)?;
        engine.rearm_retention();
        Ok(engine)
    }

    /// The configuration the engine runs with.
    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// Hands out a new producer id with epoch 0. Ids are never reused, also across restarts.
    pub fn init_producer_id(&mut self) -> Result<(i64, i16), EngineError> {
        if self.next_producer_id >= self.producer_id_limit {
            let limit = self.next_producer_id + PRODUCER_ID_BLOCK;
            self.storage.set_next_producer_id(limit)?;
            self.producer_id_limit = limit;
        }
        let id = self.next_producer_id;
        self.next_producer_id += 1;
        Ok((id, 0))
    }

    /// Makes every earlier write durable.
    pub fn sync(&mut self) -> Result<(), StorageError> {
        self.storage.sync()
    }

    /// Whether a queue waits for a storage read of its head (a basic.get that found it empty
    /// should wait for [`Engine::storage_progress`] rather than answer get-empty).
    pub fn queue_reading(&self, vhost: &str, queue: &str) -> bool {
        let key = (vhost.to_owned(), queue.to_owned());
        self.broker.waiting_for_storage.contains(&key)
    }

    /// Tells the engine that the storage backend completed reads it had started (reads that
    /// answered [`StorageError::Pending`]): dispatches again the queues that waited for them.
    pub fn storage_progress(&mut self, now: Millis) {
        let waiting = std::mem::take(&mut self.broker.waiting_for_storage);
        self.broker.touched.extend(waiting);
        self.settle(now);
    }

    /// Takes the next completion to deliver, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }
}
