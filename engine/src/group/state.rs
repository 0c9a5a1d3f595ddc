//! One group's membership and its state machine, independent of the engine's other state.

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;

use super::types::{GroupState, JoinGroup, JoinResult, JoinedMember, Output, SyncResult, Waiter};
use crate::{EngineError, Millis};

/// One member of a group.
#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub(crate) group_instance_id: Option<String>,
    pub(crate) client_id: String,
    pub(crate) client_host: String,
    pub(crate) session_timeout_ms: u64,
    pub(crate) rebalance_timeout_ms: u64,
    pub(crate) protocols: Vec<(String, Bytes)>,
    pub(crate) assignment: Bytes,
    pub(crate) session_deadline: Millis,
    /// Joined in the current rebalance; its join answer is due.
    pub(crate) awaiting_join: bool,
    pub(crate) join_waiter: Option<Waiter>,
    /// Sent a sync in the current generation; its answer is due.
    pub(crate) awaiting_sync: bool,
    pub(crate) sync_waiter: Option<Waiter>,
    /// Order in which members first joined (the first one becomes leader).
    pub(crate) join_seq: u64,
}

impl Member {
    fn update(&mut self, now: Millis, req: JoinGroup) {
        self.group_instance_id = req.group_instance_id;
        self.client_id = req.client_id;
        self.client_host = req.client_host;
        self.session_timeout_ms = req.session_timeout_ms;
        self.rebalance_timeout_ms = req.rebalance_timeout_ms;
        self.protocols = req.protocols;
        self.session_deadline = now + self.session_timeout_ms;
    }

    pub(crate) fn metadata(&self, protocol: Option<&str>) -> Bytes {
        let found = self
            .protocols
            .iter()
            .find(|(name, _)| Some(name.as_str()) == protocol);
        found.map(|(_, m)| m.clone()).unwrap_or_default()
    }

    /// Whether the coordinator keeps the member alive without heartbeats (answers are due).
    pub(crate) fn kept_alive(&self) -> bool {
        self.awaiting_join || self.awaiting_sync
    }
}

/// One consumer group.
#[derive(Debug, Clone)]
pub(crate) struct Group {
    pub(crate) state: GroupState,
    pub(crate) generation: i32,
    pub(crate) protocol_type: Option<String>,
    pub(crate) protocol: Option<String>,
    pub(crate) leader: Option<String>,
    pub(crate) members: BTreeMap<String, Member>,
    /// Member ids handed out with `MemberIdRequired`, until their deadline.
    pub(crate) pending: BTreeMap<String, Millis>,
    pub(crate) rebalance_deadline: Option<Millis>,
    /// The current rebalance waits for the initial delay instead of for all members.
    pub(crate) initial_delay: bool,
    next_join_seq: u64,
}

impl Group {
    pub(crate) fn new() -> Self {
        Self {
            state: GroupState::Empty,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            pending: BTreeMap::new(),
            rebalance_deadline: None,
            initial_delay: false,
            next_join_seq: 0,
        }
    }

    /// Whether a join with these protocols fits the other members.
    pub(crate) fn supports(&self, member_id: &str, req: &JoinGroup) -> bool {
        let others: Vec<&Member> = self
            .members
            .iter()
            .filter(|(id, _)| *id != member_id)
            .map(|(_, m)| m)
            .collect();
        if others.is_empty() {
            return true;
        }
        if self.protocol_type.as_deref() != Some(req.protocol_type.as_str()) {
            return false;
        }
        req.protocols.iter().any(|(name, _)| {
            others
                .iter()
                .all(|m| m.protocols.iter().any(|(n, _)| n == name))
        })
    }

    fn max_rebalance_timeout(&self) -> u64 {
        self.members
            .values()
            .map(|m| m.rebalance_timeout_ms)
            .max()
            .unwrap_or(0)
    }

    /// Adds a new member that is joining.
    pub(crate) fn add_member(
        &mut self,
        now: Millis,
        waiter: Waiter,
        member_id: String,
        req: JoinGroup,
        delay: u64,
        out: &mut VecDeque<Output>,
    ) {
        if self.members.is_empty() {
            self.protocol_type = Some(req.protocol_type.clone());
        }
        let mut member = Member {
            group_instance_id: None,
            client_id: String::new(),
            client_host: String::new(),
            session_timeout_ms: 0,
            rebalance_timeout_ms: 0,
            protocols: Vec::new(),
            assignment: Bytes::new(),
            session_deadline: now,
            awaiting_join: true,
            join_waiter: Some(waiter),
            awaiting_sync: false,
            sync_waiter: None,
            join_seq: self.next_join_seq,
        };
        self.next_join_seq += 1;
        member.update(now, req);
        self.members.insert(member_id, member);
        if self.state != GroupState::PreparingRebalance {
            self.prepare_rebalance(now, delay, out);
        }
        self.try_complete_join(now, out);
    }

    /// A known member joins again.
    pub(crate) fn rejoin(
        &mut self,
        now: Millis,
        waiter: Waiter,
        member_id: &str,
        req: JoinGroup,
        delay: u64,
        out: &mut VecDeque<Output>,
    ) {
        let is_leader = self.leader.as_deref() == Some(member_id);
        let m = self
            .members
            .get_mut(member_id)
            .expect("caller checked membership");
        let same = m.protocols == req.protocols;
        m.update(now, req);
        let immediate = match self.state {
            GroupState::CompletingRebalance => same,
            GroupState::Stable => same && !is_leader,
            _ => false,
        };
        if immediate {
            let result = Ok(self.join_result(member_id));
            out.push_back(Output::Joined { waiter, result });
            return;
        }
        m.awaiting_join = true;
        if let Some(old) = m.join_waiter.replace(waiter) {
            let result = Err(EngineError::RebalanceInProgress);
            out.push_back(Output::Joined {
                waiter: old,
                result,
            });
        }
        if self.state != GroupState::PreparingRebalance {
            self.prepare_rebalance(now, delay, out);
        }
        self.try_complete_join(now, out);
    }

    /// The member with this static instance id, if any.
    pub(crate) fn member_by_instance(&self, instance: &str) -> Option<String> {
        let found = self
            .members
            .iter()
            .find(|(_, m)| m.group_instance_id.as_deref() == Some(instance));
        found.map(|(id, _)| id.clone())
    }

    /// Moves a static member to a new member id (a restarted static member), keeping its
    /// assignment and leadership; parked requests of the old id fail with `UnknownMemberId`.
    pub(crate) fn replace_member(
        &mut self,
        old_id: &str,
        new_id: &str,
        out: &mut VecDeque<Output>,
    ) {
        let Some(mut m) = self.members.remove(old_id) else {
            return;
        };
        let fenced = Err(EngineError::UnknownMemberId);
        if let Some(waiter) = m.join_waiter.take() {
            out.push_back(Output::Joined {
                waiter,
                result: fenced,
            });
        }
        if let Some(waiter) = m.sync_waiter.take() {
            out.push_back(Output::Synced {
                waiter,
                result: Err(EngineError::UnknownMemberId),
            });
        }
        if self.leader.as_deref() == Some(old_id) {
            self.leader = Some(new_id.to_owned());
        }
        self.members.insert(new_id.to_owned(), m);
    }

    /// Enters `PreparingRebalance`, failing parked syncs.
    pub(crate) fn prepare_rebalance(
        &mut self,
        now: Millis,
        delay: u64,
        out: &mut VecDeque<Output>,
    ) {
        for m in self.members.values_mut() {
            m.awaiting_sync = false;
            m.assignment = Bytes::new();
            if let Some(waiter) = m.sync_waiter.take() {
                let result = Err(EngineError::RebalanceInProgress);
                out.push_back(Output::Synced { waiter, result });
            }
        }
        let was_empty = self.state == GroupState::Empty;
        self.state = GroupState::PreparingRebalance;
        let max_timeout = self.max_rebalance_timeout();
        self.initial_delay = was_empty && delay > 0;
        let wait = if self.initial_delay {
            delay.min(max_timeout)
        } else {
            max_timeout
        };
        self.rebalance_deadline = Some(now + wait);
    }

    /// Completes the join phase if every member has rejoined (and no initial delay runs).
    pub(crate) fn try_complete_join(&mut self, now: Millis, out: &mut VecDeque<Output>) {
        if self.state != GroupState::PreparingRebalance {
            return;
        }
        let ready = if self.initial_delay {
            self.rebalance_deadline.is_some_and(|d| d <= now)
        } else {
            self.members.values().all(|m| m.awaiting_join)
        };
        if ready {
            self.complete_join(now, out);
        }
    }

    /// Removes members that did not rejoin in time and completes the join phase.
    pub(crate) fn expire_rebalance(&mut self, now: Millis, out: &mut VecDeque<Output>) {
        let late: Vec<String> = self
            .members
            .iter()
            .filter(|(_, m)| !m.awaiting_join)
            .map(|(id, _)| id.clone())
            .collect();
        for id in late {
            self.remove_member(&id, out);
        }
        self.complete_join(now, out);
    }

    fn select_protocol(&self, leader: &str) -> Option<String> {
        let leader = self.members.get(leader)?;
        let all_support = |name: &str| {
            self.members
                .values()
                .all(|m| m.protocols.iter().any(|(n, _)| n == name))
        };
        let chosen = leader.protocols.iter().find(|(name, _)| all_support(name));
        chosen
            .or(leader.protocols.first())
            .map(|(name, _)| name.clone())
    }

    fn complete_join(&mut self, now: Millis, out: &mut VecDeque<Output>) {
        self.generation = self.generation.wrapping_add(1);
        self.rebalance_deadline = None;
        self.initial_delay = false;
        if self.members.is_empty() {
            self.state = GroupState::Empty;
            (self.protocol_type, self.protocol, self.leader) = (None, None, None);
            return;
        }
        if !self
            .leader
            .as_ref()
            .is_some_and(|l| self.members.contains_key(l))
        {
            let first = self
                .members
                .iter()
                .min_by_key(|(_, m)| m.join_seq)
                .map(|(id, _)| id);
            self.leader = first.cloned();
        }
        let leader = self.leader.clone().expect("a non-empty group has a leader");
        self.protocol = self.select_protocol(&leader);
        self.state = GroupState::CompletingRebalance;
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let result = Ok(self.join_result(&id));
            let m = self.members.get_mut(&id).expect("listed above");
            m.session_deadline = now + m.session_timeout_ms;
            m.awaiting_join = false;
            if let Some(waiter) = m.join_waiter.take() {
                out.push_back(Output::Joined { waiter, result });
            }
        }
    }

    /// The join answer of a member for the current generation.
    pub(crate) fn join_result(&self, member_id: &str) -> JoinResult {
        let leader = self.leader.clone().unwrap_or_default();
        let mut members = Vec::new();
        if leader == member_id {
            let mut all: Vec<(&String, &Member)> = self.members.iter().collect();
            all.sort_by_key(|(_, m)| m.join_seq);
            members = all
                .into_iter()
                .map(|(id, m)| JoinedMember {
                    member_id: id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    metadata: m.metadata(self.protocol.as_deref()),
                })
                .collect();
        }
        JoinResult {
            generation_id: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            leader,
            member_id: member_id.to_owned(),
            members,
        }
    }

    /// The sync answer of a member for the current generation.
    pub(crate) fn sync_result(&self, member_id: &str) -> SyncResult {
        SyncResult {
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            assignment: self
                .members
                .get(member_id)
                .map(|m| m.assignment.clone())
                .unwrap_or_default(),
        }
    }

    /// Stores the leader's assignments, goes `Stable` and answers parked syncs.
    pub(crate) fn assign(&mut self, assignments: Vec<(String, Bytes)>, out: &mut VecDeque<Output>) {
        for (id, assignment) in assignments {
            if let Some(m) = self.members.get_mut(&id) {
                m.assignment = assignment;
            }
        }
        self.state = GroupState::Stable;
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let result = Ok(self.sync_result(&id));
            let m = self.members.get_mut(&id).expect("listed above");
            m.awaiting_sync = false;
            if let Some(waiter) = m.sync_waiter.take() {
                out.push_back(Output::Synced { waiter, result });
            }
        }
    }

    /// Removes a member, failing its parked requests with `UnknownMemberId`.
    pub(crate) fn remove_member(&mut self, member_id: &str, out: &mut VecDeque<Output>) {
        let Some(m) = self.members.remove(member_id) else {
            return;
        };
        if let Some(waiter) = m.join_waiter {
            out.push_back(Output::Joined {
                waiter,
                result: Err(EngineError::UnknownMemberId),
            });
        }
        if let Some(waiter) = m.sync_waiter {
            out.push_back(Output::Synced {
                waiter,
                result: Err(EngineError::UnknownMemberId),
            });
        }
    }

    /// Reacts to removed members: rebalance, or complete a running one.
    pub(crate) fn after_removal(&mut self, now: Millis, delay: u64, out: &mut VecDeque<Output>) {
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.prepare_rebalance(now, delay, out);
                self.try_complete_join(now, out);
            }
            GroupState::PreparingRebalance => self.try_complete_join(now, out),
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    /// The earliest deadline of this group.
    pub(crate) fn next_deadline(&self) -> Option<Millis> {
        let sessions = self
            .members
            .values()
            .filter(|m| !m.kept_alive())
            .map(|m| m.session_deadline);
        let rebalance = self
            .rebalance_deadline
            .filter(|_| self.state == GroupState::PreparingRebalance);
        sessions
            .chain(self.pending.values().copied())
            .chain(rebalance)
            .min()
    }
}
