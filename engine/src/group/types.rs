//! Protocol-agnostic request, result and description types of consumer groups.

use std::sync::Arc;

use bytes::Bytes;

use crate::error::EngineError;
use crate::message::{ConnId, Message};

/// Identifies a parked request; opaque ids chosen by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Waiter {
    /// Connection id.
    pub conn: u64,
    /// Request id within the connection.
    pub request: u64,
}

/// A completion the caller must deliver, taken with [`crate::Engine::poll_output`].
#[derive(Debug)]
pub enum Output {
    /// A join completed.
    Joined {
        /// Who asked.
        waiter: Waiter,
        /// The answer.
        result: Result<JoinResult, EngineError>,
    },
    /// A sync completed.
    Synced {
        /// Who asked.
        waiter: Waiter,
        /// The answer.
        result: Result<SyncResult, EngineError>,
    },
    /// A message for a queue consumer (basic.deliver).
    Deliver {
        /// Connection of the consumer.
        conn: ConnId,
        /// Channel of the consumer.
        channel: u16,
        /// Consumer tag.
        consumer_tag: String,
        /// Delivery tag on the channel.
        delivery_tag: u64,
        /// The message was delivered before.
        redelivered: bool,
        /// The message.
        message: Arc<Message>,
    },
    /// The queue of a consumer went away (deleted, expired); the consumer is cancelled.
    ConsumerCancelled {
        /// Connection of the consumer.
        conn: ConnId,
        /// Channel of the consumer.
        channel: u16,
        /// Consumer tag.
        consumer_tag: String,
    },
}

/// A JoinGroup request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinGroup {
    /// Group id.
    pub group_id: String,
    /// Member id, empty for a new member.
    pub member_id: String,
    /// Static membership id.
    pub group_instance_id: Option<String>,
    /// Session timeout.
    pub session_timeout_ms: u64,
    /// How long the coordinator waits for members to rejoin during a rebalance.
    pub rebalance_timeout_ms: u64,
    /// Protocol type ("consumer", "connect", ...).
    pub protocol_type: String,
    /// Supported protocols with their metadata, by preference.
    pub protocols: Vec<(String, Bytes)>,
    /// A new member must first obtain a member id (JoinGroup v4+).
    pub require_known_member_id: bool,
    /// Client id of the connection.
    pub client_id: String,
    /// Client host of the connection.
    pub client_host: String,
}

/// A member as the leader sees it in a join result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinedMember {
    /// Member id.
    pub member_id: String,
    /// Static membership id.
    pub group_instance_id: Option<String>,
    /// Metadata for the chosen protocol.
    pub metadata: Bytes,
}

/// A successful join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinResult {
    /// The new generation.
    pub generation_id: i32,
    /// The group's protocol type.
    pub protocol_type: Option<String>,
    /// The chosen protocol.
    pub protocol_name: Option<String>,
    /// The leader's member id.
    pub leader: String,
    /// This member's id.
    pub member_id: String,
    /// All members, only for the leader (empty for others).
    pub members: Vec<JoinedMember>,
}

/// A SyncGroup request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncGroup {
    /// Group id.
    pub group_id: String,
    /// Generation the member joined.
    pub generation_id: i32,
    /// Member id.
    pub member_id: String,
    /// Static membership id.
    pub group_instance_id: Option<String>,
    /// Protocol type, if the client sent it (checked when present).
    pub protocol_type: Option<String>,
    /// Protocol name, if the client sent it (checked when present).
    pub protocol_name: Option<String>,
    /// Assignments by member id (only the leader sends them).
    pub assignments: Vec<(String, Bytes)>,
}

/// A successful sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncResult {
    /// The group's protocol type.
    pub protocol_type: Option<String>,
    /// The chosen protocol.
    pub protocol_name: Option<String>,
    /// This member's assignment (empty if the leader gave none).
    pub assignment: Bytes,
}

/// State of a group, as in Kafka's classic coordinator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GroupState {
    /// No members; may have committed offsets.
    Empty,
    /// Waiting for members to (re)join.
    PreparingRebalance,
    /// Joined; waiting for the leader's assignments.
    CompletingRebalance,
    /// Assignments handed out.
    Stable,
    /// Does not exist.
    Dead,
}

impl GroupState {
    /// Kafka's name of the state.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Empty => "Empty",
            Self::PreparingRebalance => "PreparingRebalance",
            Self::CompletingRebalance => "CompletingRebalance",
            Self::Stable => "Stable",
            Self::Dead => "Dead",
        }
    }
}

/// A group in a ListGroups answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    /// Group id.
    pub group_id: String,
    /// Protocol type (empty for groups that only have committed offsets).
    pub protocol_type: String,
    /// Current state.
    pub state: GroupState,
}

/// A member in a DescribeGroups answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    /// Member id.
    pub member_id: String,
    /// Static membership id.
    pub group_instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Metadata of the chosen protocol.
    pub metadata: Bytes,
    /// Current assignment.
    pub assignment: Bytes,
}

/// A DescribeGroups answer for one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// Group id.
    pub group_id: String,
    /// Current state ([`GroupState::Dead`] if unknown).
    pub state: GroupState,
    /// Protocol type.
    pub protocol_type: String,
    /// Chosen protocol (empty unless stable or completing).
    pub protocol: String,
    /// Current generation (0 before the first rebalance).
    pub generation_id: i32,
    /// Members.
    pub members: Vec<MemberDescription>,
}
