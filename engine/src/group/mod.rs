//! Consumer groups with the semantics of Kafka's classic group coordinator.

pub mod offsets;
mod state;
pub mod types;

#[cfg(test)]
mod tests;

pub(crate) use state::Group;
use types::{GroupState, JoinGroup, Output, SyncGroup, SyncResult, Waiter};

use crate::{Engine, EngineError, Millis};

impl Engine {
    fn check_session_timeout(&self, timeout: u64) -> Result<(), EngineError> {
        let range = self.cfg.group_min_session_timeout_ms..=self.cfg.group_max_session_timeout_ms;
        if range.contains(&timeout) {
            Ok(())
        } else {
            Err(EngineError::InvalidSessionTimeout)
        }
    }

    /// Joins a group; the answer arrives as [`Output::Joined`] via [`Engine::poll_output`], at
    /// once or when the rebalance completes.
    pub fn join_group(&mut self, now: Millis, waiter: Waiter, req: JoinGroup) {
        let group_id = req.group_id.clone();
        if let Err(e) = self.join_inner(now, waiter, req) {
            let unused = self.groups.get(&group_id).is_some_and(|g| {
                g.state == GroupState::Empty && g.generation == 0 && g.pending.is_empty()
            });
            if unused {
                self.groups.remove(&group_id);
            }
            self.outputs.push_back(Output::Joined {
                waiter,
                result: Err(e),
            });
        }
    }

    fn join_inner(
        &mut self,
        now: Millis,
        waiter: Waiter,
        req: JoinGroup,
    ) -> Result<(), EngineError> {
        if req.group_id.is_empty() {
            return Err(EngineError::InvalidGroupId);
        }
        self.check_session_timeout(req.session_timeout_ms)?;
        if req.protocol_type.is_empty() || req.protocols.is_empty() {
            return Err(EngineError::InconsistentGroupProtocol);
        }
        let delay = self.cfg.group_initial_rebalance_delay_ms;
        let group = self
            .groups
            .entry(req.group_id.clone())
            .or_insert_with(Group::new);
        if !group.supports(&req.member_id, &req) {
            return Err(EngineError::InconsistentGroupProtocol);
        }
        if group.members.contains_key(&req.member_id) {
            let id = req.member_id.clone();
            group.rejoin(now, waiter, &id, req, delay, &mut self.outputs);
            return Ok(());
        }
        let static_member = match (&req.group_instance_id, req.member_id.is_empty()) {
            (Some(instance), true) => group.member_by_instance(instance),
            _ => None,
        };
        if let Some(old_id) = static_member {
            let id = format!("{}-{}", req.client_id, self.rng.hex32());
            group.replace_member(&old_id, &id, &mut self.outputs);
            group.rejoin(now, waiter, &id, req, delay, &mut self.outputs);
            return Ok(());
        }
        let member_id = if req.member_id.is_empty() {
            let id = format!("{}-{}", req.client_id, self.rng.hex32());
            if req.require_known_member_id && req.group_instance_id.is_none() {
                group
                    .pending
                    .insert(id.clone(), now + req.session_timeout_ms);
                return Err(EngineError::MemberIdRequired(id));
            }
            id
        } else if group.pending.remove(&req.member_id).is_some() {
            req.member_id.clone()
        } else {
            return Err(EngineError::UnknownMemberId);
        };
        group.add_member(now, waiter, member_id, req, delay, &mut self.outputs);
        Ok(())
    }

    /// Syncs a group; the answer arrives as [`Output::Synced`] via [`Engine::poll_output`], at
    /// once or when the leader sends the assignments.
    pub fn sync_group(&mut self, now: Millis, waiter: Waiter, req: SyncGroup) {
        match self.sync_inner(now, waiter, req) {
            Ok(None) => {}
            Ok(Some(result)) => self.outputs.push_back(Output::Synced {
                waiter,
                result: Ok(result),
            }),
            Err(e) => self.outputs.push_back(Output::Synced {
                waiter,
                result: Err(e),
            }),
        }
    }

    fn sync_inner(
        &mut self,
        now: Millis,
        waiter: Waiter,
        req: SyncGroup,
    ) -> Result<Option<SyncResult>, EngineError> {
        if req.group_id.is_empty() {
            return Err(EngineError::InvalidGroupId);
        }
        let group = self
            .groups
            .get_mut(&req.group_id)
            .ok_or(EngineError::UnknownMemberId)?;
        let Some(member) = group.members.get_mut(&req.member_id) else {
            return Err(EngineError::UnknownMemberId);
        };
        if req.generation_id != group.generation {
            return Err(EngineError::IllegalGeneration);
        }
        let type_ok = req.protocol_type.is_none() || req.protocol_type == group.protocol_type;
        let name_ok = req.protocol_name.is_none() || req.protocol_name == group.protocol;
        if !type_ok || !name_ok {
            return Err(EngineError::InconsistentGroupProtocol);
        }
        member.session_deadline = now + member.session_timeout_ms;
        if group.state == GroupState::CompletingRebalance {
            member.awaiting_sync = true;
            if let Some(old) = member.sync_waiter.replace(waiter) {
                let result = Err(EngineError::RebalanceInProgress);
                self.outputs.push_back(Output::Synced {
                    waiter: old,
                    result,
                });
            }
            if group.leader.as_deref() == Some(req.member_id.as_str()) {
                group.assign(req.assignments, &mut self.outputs);
            }
            return Ok(None);
        }
        match group.state {
            GroupState::Empty | GroupState::Dead => Err(EngineError::UnknownMemberId),
            GroupState::PreparingRebalance => Err(EngineError::RebalanceInProgress),
            GroupState::Stable => Ok(Some(group.sync_result(&req.member_id))),
            GroupState::CompletingRebalance => unreachable!("handled above"),
        }
    }

    /// A member's heartbeat: extends its session and says whether it must rejoin.
    pub fn heartbeat(
        &mut self,
        now: Millis,
        group_id: &str,
        generation_id: i32,
        member_id: &str,
        _group_instance_id: Option<&str>,
    ) -> Result<(), EngineError> {
        if group_id.is_empty() {
            return Err(EngineError::InvalidGroupId);
        }
        let group = self
            .groups
            .get_mut(group_id)
            .ok_or(EngineError::UnknownMemberId)?;
        let Some(member) = group.members.get_mut(member_id) else {
            return Err(EngineError::UnknownMemberId);
        };
        if generation_id != group.generation {
            return Err(EngineError::IllegalGeneration);
        }
        member.session_deadline = now + member.session_timeout_ms;
        match group.state {
            GroupState::PreparingRebalance => Err(EngineError::RebalanceInProgress),
            GroupState::Empty | GroupState::Dead => Err(EngineError::UnknownMemberId),
            GroupState::CompletingRebalance | GroupState::Stable => Ok(()),
        }
    }

    /// Members leave a group (by member id, or by instance id when the member id is empty);
    /// one result per member.
    pub fn leave_group(
        &mut self,
        now: Millis,
        group_id: &str,
        members: &[(String, Option<String>)],
    ) -> Result<Vec<Result<(), EngineError>>, EngineError> {
        if group_id.is_empty() {
            return Err(EngineError::InvalidGroupId);
        }
        let Some(group) = self.groups.get_mut(group_id) else {
            return Ok(members
                .iter()
                .map(|_| Err(EngineError::UnknownMemberId))
                .collect());
        };
        let mut results = Vec::with_capacity(members.len());
        let mut removed = false;
        for (member_id, instance) in members {
            let found = if member_id.is_empty() {
                let by_instance = group.members.iter().find(|(_, m)| {
                    instance.is_some() && m.group_instance_id.as_ref() == instance.as_ref()
                });
                by_instance.map(|(id, _)| id.clone())
            } else {
                group
                    .members
                    .contains_key(member_id)
                    .then(|| member_id.clone())
            };
            match found {
                Some(id) => {
                    group.remove_member(&id, &mut self.outputs);
                    removed = true;
                    results.push(Ok(()));
                }
                None => results.push(Err(EngineError::UnknownMemberId)),
            }
        }
        if removed {
            let delay = self.cfg.group_initial_rebalance_delay_ms;
            group.after_removal(now, delay, &mut self.outputs);
        }
        Ok(results)
    }

    /// Drops parked requests of a closed connection; its members stay until their session
    /// times out. Closes its channels (cancelling consumers, requeueing unacknowledged
    /// messages) and deletes the exclusive queues it owns.
    pub fn connection_closed(&mut self, conn: u64) {
        self.close_queue_connection(conn);
        for group in self.groups.values_mut() {
            for m in group.members.values_mut() {
                if m.join_waiter.is_some_and(|w| w.conn == conn) {
                    m.join_waiter = None;
                }
                if m.sync_waiter.is_some_and(|w| w.conn == conn) {
                    m.sync_waiter = None;
                }
            }
        }
    }

    /// Processes every deadline due at `now`: expired sessions, rebalance timeouts, initial
    /// delays, expired pending member ids; expired queue messages and unused queues
    /// (`x-expires`); dispatches that stopped at their per-call cap.
    pub fn handle_timeout(&mut self, now: Millis) {
        self.queue_timeouts(now);
        self.retention_timeout(now);
        let delay = self.cfg.group_initial_rebalance_delay_ms;
        for group in self.groups.values_mut() {
            group.pending.retain(|_, deadline| *deadline > now);
            let expired: Vec<String> = group
                .members
                .iter()
                .filter(|(_, m)| !m.kept_alive() && m.session_deadline <= now)
                .map(|(id, _)| id.clone())
                .collect();
            for id in &expired {
                group.remove_member(id, &mut self.outputs);
            }
            if !expired.is_empty() {
                group.after_removal(now, delay, &mut self.outputs);
            }
            let due = group.rebalance_deadline.is_some_and(|d| d <= now);
            if group.state == GroupState::PreparingRebalance && due {
                group.expire_rebalance(now, &mut self.outputs);
            }
        }
    }

    /// The earliest pending deadline; call [`Engine::handle_timeout`] when it passes.
    pub fn poll_timeout(&self) -> Option<Millis> {
        let groups = self.groups.values().filter_map(Group::next_deadline).min();
        let retention = self.retention_deadline();
        [groups, self.queue_deadline(), retention]
            .into_iter()
            .flatten()
            .min()
    }
}
