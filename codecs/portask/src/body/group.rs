//! Consumer group bodies.

use serde::{Deserialize, Serialize};

/// A topic partition and an offset in it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PartitionOffset {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The offset (committed, or where to start).
    pub offset: i64,
}

/// `Subscribe` (opcode 0x20): join a consumer group.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Subscribe {
    /// The group.
    pub group: String,
    /// The topics this member consumes.
    pub topics: Vec<String>,
    /// The id from an earlier `SubscribeOk`, when rejoining.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_id: Option<String>,
}

/// `SubscribeOk` (opcode 0xA0): this member's share of the partitions.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SubscribeOk {
    /// The member's id in the group.
    pub member_id: String,
    /// The group's generation.
    pub generation: i32,
    /// Assigned partitions with the committed offset to start from.
    pub assignments: Vec<PartitionOffset>,
}

/// `Heartbeat` (opcode 0x21): a member is alive. `REBALANCE_IN_PROGRESS` asks it to rejoin.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Heartbeat {
    /// The group.
    pub group: String,
    /// The member.
    pub member_id: String,
    /// The generation the member is in.
    pub generation: i32,
}

/// `Leave` (opcode 0x22): a member leaves its group.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Leave {
    /// The group.
    pub group: String,
    /// The member.
    pub member_id: String,
}

/// `Commit` (opcode 0x23): store a group's offsets.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Commit {
    /// The group.
    pub group: String,
    /// The offsets: the next offset to consume in each partition.
    pub offsets: Vec<PartitionOffset>,
    /// The committing member, when it commits as a member of the group: the coordinator
    /// then checks it and its generation. Absent: a commit from outside the group, allowed
    /// only while the group has no members.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_id: Option<String>,
    /// The member's generation, from `SubscribeOk`; sent with `member_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i32>,
}

/// `DescribeGroups` (opcode 0x24).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DescribeGroups {
    /// The groups.
    pub groups: Vec<String>,
}

/// `ListGroups` (opcode 0x25): every group, without members.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ListGroups {}

/// `DeleteGroup` (opcode 0x26): delete an empty group and its offsets.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DeleteGroup {
    /// The group.
    pub group: String,
}

/// One member of a group.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MemberInfo {
    /// The member id.
    pub member_id: String,
    /// The client name from its connection's `Hello` (or Kafka client id).
    pub client: String,
    /// Its assigned partitions and their committed offsets.
    pub assignments: Vec<PartitionOffset>,
}

/// One group.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GroupInfo {
    /// The group.
    pub group: String,
    /// `"empty"`, `"rebalancing"`, `"stable"` or `"dead"`.
    pub state: String,
    /// The generation.
    pub generation: i32,
    /// The members (empty in `ListGroups` answers).
    pub members: Vec<MemberInfo>,
}

/// `Groups` (opcode 0xA4): answers `DescribeGroups` and `ListGroups`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Groups {
    /// The groups.
    pub groups: Vec<GroupInfo>,
}
