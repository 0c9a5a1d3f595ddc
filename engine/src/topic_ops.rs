//! Topic calls of the [`Engine`].

use std::collections::BTreeMap;

use crate::partition::Partition;
use crate::storage::TopicPartition;
use crate::topics::{TopicInfo, uuid_v4, validate_partitions, validate_topic_name};
use crate::{Engine, EngineError};

impl Engine {
    fn new_topic_id(&mut self) -> [u8; 16] {
        loop {
            let id = uuid_v4(self.rng.bytes16());
            if !self.topic_ids.contains_key(&id) {
                return id;
            }
        }
    }

    /// Creates a topic with `partitions` partitions (-1: the configured default).
    pub fn create_topic(
        &mut self,
        name: &str,
        partitions: i32,
        configs: BTreeMap<String, String>,
    ) -> Result<TopicInfo, EngineError> {
        validate_topic_name(name)?;
        if self.topics.contains_key(name) {
            return Err(EngineError::TopicAlreadyExists);
        }
        let partitions = if partitions == -1 {
            self.cfg.default_partitions
        } else {
            partitions
        };
        validate_partitions(partitions)?;
        let info = TopicInfo {
            name: name.to_owned(),
            id: self.new_topic_id(),
            partitions,
            configs,
        };
        self.storage.put_topic(&info.meta())?;
        for partition in 0..partitions {
            let tp = TopicPartition {
                topic: name.to_owned(),
                partition,
            };
            self.partitions.insert(tp, Partition::default());
        }
        self.topic_ids.insert(info.id, info.name.clone());
        self.topics.insert(info.name.clone(), info.clone());
        self.rearm_retention();
        Ok(info)
    }

    /// Deletes a topic and its data, and the stream queues named after it. Committed offsets
    /// stay.
    pub fn delete_topic(&mut self, name: &str) -> Result<(), EngineError> {
        let Some(info) = self.topics.get(name) else {
            return Err(EngineError::UnknownTopicOrPartition);
        };
        let id = info.id;
        self.storage.delete_topic(name)?;
        self.topics.remove(name);
        self.topic_ids.remove(&id);
        self.partitions.retain(|tp, _| tp.topic != name);
        self.rearm_retention();
        self.drop_streams(name)
    }

    /// Grows a topic to `total` partitions.
    pub fn create_partitions(&mut self, name: &str, total: i32) -> Result<(), EngineError> {
        let Some(info) = self.topics.get(name) else {
            return Err(EngineError::UnknownTopicOrPartition);
        };
        validate_partitions(total)?;
        if total == info.partitions {
            return Err(EngineError::InvalidPartitions(
                "topic already has that many partitions",
            ));
        }
        if total < info.partitions {
            return Err(EngineError::InvalidPartitions(
                "partitions can only be added",
            ));
        }
        let mut grown = info.clone();
        let old = grown.partitions;
        grown.partitions = total;
        self.storage.put_topic(&grown.meta())?;
        for partition in old..total {
            let tp = TopicPartition {
                topic: name.to_owned(),
                partition,
            };
            self.partitions.insert(tp, Partition::default());
        }
        self.topics.insert(name.to_owned(), grown);
        Ok(())
    }

    /// Replaces a topic's configs (the Kafka AlterConfigs semantics).
    pub fn set_topic_configs(
        &mut self,
        name: &str,
        configs: BTreeMap<String, String>,
    ) -> Result<(), EngineError> {
        let Some(info) = self.topics.get(name) else {
            return Err(EngineError::UnknownTopicOrPartition);
        };
        let mut changed = info.clone();
        changed.configs = configs;
        self.storage.put_topic(&changed.meta())?;
        self.topics.insert(name.to_owned(), changed);
        self.rearm_retention();
        Ok(())
    }

    /// A topic by name.
    pub fn topic(&self, name: &str) -> Option<&TopicInfo> {
        self.topics.get(name)
    }

    /// A topic by id.
    pub fn topic_by_id(&self, id: &[u8; 16]) -> Option<&TopicInfo> {
        self.topic_ids
            .get(id)
            .and_then(|name| self.topics.get(name))
    }

    /// Every topic, by name.
    pub fn topics(&self) -> impl Iterator<Item = &TopicInfo> {
        self.topics.values()
    }

    /// The topic, created with the default partition count if missing and auto-creation is on.
    pub fn ensure_topic(&mut self, name: &str) -> Result<TopicInfo, EngineError> {
        if let Some(info) = self.topics.get(name) {
            return Ok(info.clone());
        }
        if !self.cfg.auto_create_topics {
            return Err(EngineError::UnknownTopicOrPartition);
        }
        self.create_topic(name, -1, BTreeMap::new())
    }
}
