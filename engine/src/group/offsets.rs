//! Committed offsets and group administration (list, describe, delete).

use std::collections::{BTreeMap, BTreeSet};

use super::types::{GroupDescription, GroupListing, GroupState, MemberDescription};
use crate::storage::{CommittedOffset, TopicPartition};
use crate::{Engine, EngineError, Millis, WallMillis};

/// Longest metadata string accepted with a committed offset (Kafka's default).
pub const MAX_OFFSET_METADATA: usize = 4096;

/// One offset to commit: partition, offset, leader epoch, metadata.
pub type OffsetToCommit = (TopicPartition, i64, i32, Option<String>);
/// Per-partition results of a commit.
pub type CommitResults = Vec<(TopicPartition, Result<(), EngineError>)>;

impl Engine {
    fn check_commit_member(
        &mut self,
        now: Millis,
        group_id: &str,
        generation_id: i32,
        member_id: &str,
    ) -> Result<(), EngineError> {
        let Some(group) = self.groups.get_mut(group_id) else {
            return match generation_id < 0 {
                true => Ok(()),
                false => Err(EngineError::UnknownMemberId),
            };
        };
        if generation_id < 0 && group.state == GroupState::Empty {
            return Ok(());
        }
        if group.state == GroupState::CompletingRebalance {
            return Err(EngineError::RebalanceInProgress);
        }
        let Some(member) = group.members.get_mut(member_id) else {
            return Err(EngineError::UnknownMemberId);
        };
        if generation_id != group.generation {
            return Err(EngineError::IllegalGeneration);
        }
        member.session_deadline = now + member.session_timeout_ms;
        Ok(())
    }

    /// Commits offsets for a group. Generation -1 with an empty member id is a simple commit,
    /// allowed while the group has no members; otherwise member and generation must match.
    /// Group-level failures are the outer error; per-partition ones are in the list.
    pub fn commit_offsets(
        &mut self,
        now: Millis,
        wall: WallMillis,
        group_id: &str,
        generation_id: i32,
        member_id: &str,
        offsets: Vec<OffsetToCommit>,
    ) -> Result<CommitResults, EngineError> {
        if group_id.is_empty() {
            return Err(EngineError::InvalidGroupId);
        }
        self.check_commit_member(now, group_id, generation_id, member_id)?;
        let mut results = Vec::with_capacity(offsets.len());
        let mut accepted = Vec::new();
        for (tp, offset, leader_epoch, metadata) in offsets {
            let result = if metadata
                .as_ref()
                .is_some_and(|m| m.len() > MAX_OFFSET_METADATA)
            {
                Err(EngineError::OffsetMetadataTooLarge)
            } else if !self.partitions.contains_key(&tp) {
                Err(EngineError::UnknownTopicOrPartition)
            } else {
                let commit_timestamp = wall;
                accepted.push((
                    tp.clone(),
                    CommittedOffset {
                        offset,
                        leader_epoch,
                        metadata,
                        commit_timestamp,
                    },
                ));
                Ok(())
            };
            results.push((tp, result));
        }
        if !accepted.is_empty() {
            self.storage.commit_offsets(group_id, &accepted)?;
            self.offsets
                .entry(group_id.to_owned())
                .or_default()
                .extend(accepted);
        }
        Ok(results)
    }

    /// Committed offsets of a group: of `partitions` (`None` where nothing is committed), or
    /// every committed one when `partitions` is `None`.
    pub fn fetch_offsets(
        &self,
        group_id: &str,
        partitions: Option<&[TopicPartition]>,
    ) -> Vec<(TopicPartition, Option<CommittedOffset>)> {
        let empty = BTreeMap::new();
        let committed = self.offsets.get(group_id).unwrap_or(&empty);
        match partitions {
            None => committed
                .iter()
                .map(|(tp, o)| (tp.clone(), Some(o.clone())))
                .collect(),
            Some(ps) => ps
                .iter()
                .map(|tp| (tp.clone(), committed.get(tp).cloned()))
                .collect(),
        }
    }

    /// Every group with members or committed offsets, by id.
    pub fn list_groups(&self) -> Vec<GroupListing> {
        let ids: BTreeSet<&String> = self.groups.keys().chain(self.offsets.keys()).collect();
        ids.into_iter()
            .map(|id| match self.groups.get(id) {
                Some(g) => GroupListing {
                    group_id: id.clone(),
                    protocol_type: g.protocol_type.clone().unwrap_or_default(),
                    state: g.state,
                },
                None => GroupListing {
                    group_id: id.clone(),
                    protocol_type: String::new(),
                    state: GroupState::Empty,
                },
            })
            .collect()
    }

    /// Describes a group. Member metadata and assignments are filled in only while `Stable`.
    pub fn describe_group(&self, group_id: &str) -> GroupDescription {
        let mut desc = GroupDescription {
            group_id: group_id.to_owned(),
            state: GroupState::Dead,
            protocol_type: String::new(),
            protocol: String::new(),
            generation_id: 0,
            members: Vec::new(),
        };
        let Some(g) = self.groups.get(group_id) else {
            if self.offsets.contains_key(group_id) {
                desc.state = GroupState::Empty;
            }
            return desc;
        };
        let stable = g.state == GroupState::Stable;
        desc.state = g.state;
        desc.generation_id = g.generation;
        desc.protocol_type = g.protocol_type.clone().unwrap_or_default();
        if stable {
            desc.protocol = g.protocol.clone().unwrap_or_default();
        }
        desc.members = g
            .members
            .iter()
            .map(|(id, m)| MemberDescription {
                member_id: id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                metadata: if stable {
                    m.metadata(g.protocol.as_deref())
                } else {
                    Default::default()
                },
                assignment: if stable {
                    m.assignment.clone()
                } else {
                    Default::default()
                },
            })
            .collect();
        desc
    }

    /// Deletes a group without members, and its committed offsets.
    pub fn delete_group(&mut self, group_id: &str) -> Result<(), EngineError> {
        if group_id.is_empty() {
            return Err(EngineError::InvalidGroupId);
        }
        let group = self.groups.get(group_id);
        if group.is_none() && !self.offsets.contains_key(group_id) {
            return Err(EngineError::GroupIdNotFound);
        }
        if group.is_some_and(|g| g.state != GroupState::Empty) {
            return Err(EngineError::NonEmptyGroup);
        }
        self.storage.delete_group(group_id)?;
        self.groups.remove(group_id);
        self.offsets.remove(group_id);
        Ok(())
    }
}
