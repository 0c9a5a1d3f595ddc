//! Consumer groups with the semantics of Kafka's classic group coordinator.

pub mod types;

use std::collections::BTreeMap;

use crate::storage::{CommittedOffset, TopicPartition};
use crate::{Engine, EngineError, Millis, WallMillis};
use types::{GroupDescription, GroupListing, GroupState, JoinGroup, Output, SyncGroup, Waiter};

/// One consumer group's membership state.
#[derive(Debug, Clone, Default)]
pub struct Group {}

impl Engine {
    /// Joins a group; the answer arrives as [`Output::Joined`] via [`Engine::poll_output`].
    pub fn join_group(&mut self, _now: Millis, waiter: Waiter, _req: JoinGroup) {
        self.outputs.push_back(Output::Joined {
            waiter,
            result: Err(EngineError::InvalidRequest("groups not implemented yet")),
        });
    }

    /// Syncs a group; the answer arrives as [`Output::Synced`] via [`Engine::poll_output`].
    pub fn sync_group(&mut self, _now: Millis, waiter: Waiter, _req: SyncGroup) {
        self.outputs.push_back(Output::Synced {
            waiter,
            result: Err(EngineError::InvalidRequest("groups not implemented yet")),
        });
    }

    /// A member's heartbeat.
    pub fn heartbeat(
        &mut self,
        _now: Millis,
        _group_id: &str,
        _generation_id: i32,
        _member_id: &str,
        _group_instance_id: Option<&str>,
    ) -> Result<(), EngineError> {
        Err(EngineError::UnknownMemberId)
    }

    /// Members leave a group; one result per member.
    pub fn leave_group(
        &mut self,
        _now: Millis,
        _group_id: &str,
        members: &[(String, Option<String>)],
    ) -> Result<Vec<Result<(), EngineError>>, EngineError> {
        Ok(members
            .iter()
            .map(|_| Err(EngineError::UnknownMemberId))
            .collect())
    }

    /// Commits offsets for a group.
    #[allow(clippy::type_complexity)]
    pub fn commit_offsets(
        &mut self,
        _now: Millis,
        wall: WallMillis,
        group_id: &str,
        _generation_id: i32,
        _member_id: &str,
        offsets: Vec<(TopicPartition, i64, i32, Option<String>)>,
    ) -> Result<Vec<(TopicPartition, Result<(), EngineError>)>, EngineError> {
        let list: Vec<(TopicPartition, CommittedOffset)> = offsets
            .into_iter()
            .map(|(tp, offset, leader_epoch, metadata)| {
                (
                    tp,
                    CommittedOffset {
                        offset,
                        leader_epoch,
                        metadata,
                        commit_timestamp: wall,
                    },
                )
            })
            .collect();
        self.storage.commit_offsets(group_id, &list)?;
        let g = self.offsets.entry(group_id.to_owned()).or_default();
        let mut out = Vec::new();
        for (tp, o) in list {
            g.insert(tp.clone(), o);
            out.push((tp, Ok(())));
        }
        Ok(out)
    }

    /// Committed offsets of a group: of `partitions`, or all when `None`.
    pub fn fetch_offsets(
        &self,
        group_id: &str,
        partitions: Option<&[TopicPartition]>,
    ) -> Vec<(TopicPartition, Option<CommittedOffset>)> {
        let empty = BTreeMap::new();
        let g = self.offsets.get(group_id).unwrap_or(&empty);
        match partitions {
            None => g
                .iter()
                .map(|(tp, o)| (tp.clone(), Some(o.clone())))
                .collect(),
            Some(ps) => ps
                .iter()
                .map(|tp| (tp.clone(), g.get(tp).cloned()))
                .collect(),
        }
    }

    /// All groups.
    pub fn list_groups(&self) -> Vec<GroupListing> {
        Vec::new()
    }

    /// One group's description.
    pub fn describe_group(&self, group_id: &str) -> GroupDescription {
        GroupDescription {
            group_id: group_id.to_owned(),
            state: GroupState::Dead,
            protocol_type: String::new(),
            protocol: String::new(),
            members: Vec::new(),
        }
    }

    /// Deletes an empty group and its committed offsets.
    pub fn delete_group(&mut self, group_id: &str) -> Result<(), EngineError> {
        if !self.offsets.contains_key(group_id) {
            return Err(EngineError::GroupIdNotFound);
        }
        self.storage.delete_group(group_id)?;
        self.offsets.remove(group_id);
        Ok(())
    }

    /// Drops parked requests of a closed connection.
    pub fn connection_closed(&mut self, _conn: u64) {}

    /// Processes every deadline due at `now`.
    pub fn handle_timeout(&mut self, _now: Millis) {}

    /// The earliest pending deadline.
    pub fn poll_timeout(&self) -> Option<Millis> {
        None
    }
}
