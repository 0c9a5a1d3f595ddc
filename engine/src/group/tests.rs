//! Consumer group scenarios driven by `now`.

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::*;

const SESSION: u64 = 10_000;
const REBALANCE: u64 = 30_000;

fn engine(delay: u64) -> Engine {
    let cfg = EngineConfig {
        group_initial_rebalance_delay_ms: delay,
        seed: 42,
        ..EngineConfig::default()
    };
    let mut e = Engine::open(cfg, Box::new(MemStorage::new()), 0).unwrap();
    e.create_topic("t", 3, BTreeMap::new()).unwrap();
    e
}

fn w(n: u64) -> Waiter {
    Waiter {
        conn: n,
        request: n,
    }
}

fn join_req(member_id: &str, client: &str) -> JoinGroup {
    JoinGroup {
        group_id: "g".into(),
        member_id: member_id.into(),
        group_instance_id: None,
        session_timeout_ms: SESSION,
        rebalance_timeout_ms: REBALANCE,
        protocol_type: "consumer".into(),
        protocols: vec![("range".into(), Bytes::from(format!("meta-{client}")))],
        require_known_member_id: true,
        client_id: client.into(),
        client_host: "/127.0.0.1".into(),
    }
}

fn sync_req(member_id: &str, generation_id: i32, assignments: Vec<(String, Bytes)>) -> SyncGroup {
    SyncGroup {
        group_id: "g".into(),
        generation_id,
        member_id: member_id.into(),
        group_instance_id: None,
        protocol_type: Some("consumer".into()),
        protocol_name: Some("range".into()),
        assignments,
    }
}

fn drain(e: &mut Engine) -> Vec<Output> {
    std::iter::from_fn(|| e.poll_output()).collect()
}

fn joins(e: &mut Engine) -> BTreeMap<Waiter, Result<JoinResult, EngineError>> {
    drain(e)
        .into_iter()
        .map(|o| match o {
            Output::Joined { waiter, result } => (waiter, result),
            other => panic!("expected a join answer, got {other:?}"),
        })
        .collect()
}

fn syncs(e: &mut Engine) -> BTreeMap<Waiter, Result<SyncResult, EngineError>> {
    drain(e)
        .into_iter()
        .map(|o| match o {
            Output::Synced { waiter, result } => (waiter, result),
            other => panic!("expected a sync answer, got {other:?}"),
        })
        .collect()
}

/// A new member's first join: returns the member id the engine hands out.
fn new_member_id(e: &mut Engine, now: Millis, client: &str) -> String {
    e.join_group(now, w(999), join_req("", client));
    match joins(e).remove(&w(999)) {
        Some(Err(EngineError::MemberIdRequired(id))) => id,
        other => panic!("expected MemberIdRequired, got {other:?}"),
    }
}

fn ok_join(results: &mut BTreeMap<Waiter, Result<JoinResult, EngineError>>, n: u64) -> JoinResult {
    results.remove(&w(n)).expect("answered").expect("joined")
}

/// Two members in a stable generation 2 with assignments "a1" / "a2"; returns their ids.
fn two_member_group(e: &mut Engine) -> (String, String) {
    let m1 = new_member_id(e, 0, "c1");
    assert!(m1.starts_with("c1-") && m1.len() == 3 + 32, "{m1}");
    e.join_group(0, w(1), join_req(&m1, "c1"));
    let r1 = ok_join(&mut joins(e), 1);
    assert_eq!(
        (r1.generation_id, r1.leader.as_str(), r1.members.len()),
        (1, m1.as_str(), 1)
    );
    e.sync_group(
        1,
        w(1),
        sync_req(&m1, 1, vec![(m1.clone(), Bytes::from("solo"))]),
    );
    assert_eq!(syncs(e)[&w(1)].as_ref().unwrap().assignment, "solo");
    assert_eq!(e.describe_group("g").state, GroupState::Stable);

    let m2 = new_member_id(e, 10, "c2");
    e.join_group(10, w(2), join_req(&m2, "c2"));
    assert!(drain(e).is_empty(), "waits for the first member to rejoin");
    assert!(matches!(
        e.heartbeat(20, "g", 1, &m1, None),
        Err(EngineError::RebalanceInProgress)
    ));
    e.join_group(30, w(1), join_req(&m1, "c1"));
    let mut res = joins(e);
    let (r1, r2) = (ok_join(&mut res, 1), ok_join(&mut res, 2));
    assert_eq!((r1.generation_id, r2.generation_id), (2, 2));
    assert_eq!((r1.leader.clone(), r2.leader), (m1.clone(), m1.clone()));
    assert_eq!(r1.protocol_name.as_deref(), Some("range"));
    let metas: Vec<_> = r1
        .members
        .iter()
        .map(|m| (m.member_id.clone(), m.metadata.clone()))
        .collect();
    assert_eq!(
        metas,
        [
            (m1.clone(), Bytes::from("meta-c1")),
            (m2.clone(), Bytes::from("meta-c2"))
        ]
    );
    assert!(r2.members.is_empty(), "only the leader gets the members");

    e.sync_group(40, w(2), sync_req(&m2, 2, vec![]));
    assert!(drain(e).is_empty(), "a follower waits for the leader");
    let assignments = vec![
        (m1.clone(), Bytes::from("a1")),
        (m2.clone(), Bytes::from("a2")),
    ];
    e.sync_group(50, w(1), sync_req(&m1, 2, assignments));
    let s = syncs(e);
    assert_eq!(s[&w(1)].as_ref().unwrap().assignment, "a1");
    assert_eq!(s[&w(2)].as_ref().unwrap().assignment, "a2");
    assert_eq!(e.describe_group("g").state, GroupState::Stable);
    (m1, m2)
}

#[test]
fn join_sync_and_rebalance_on_a_third_member() {
    let mut e = engine(0);
    let (m1, m2) = two_member_group(&mut e);
    e.heartbeat(100, "g", 2, &m1, None).unwrap();
    assert!(matches!(
        e.heartbeat(100, "g", 1, &m1, None),
        Err(EngineError::IllegalGeneration)
    ));
    assert!(matches!(
        e.heartbeat(100, "g", 2, "nobody", None),
        Err(EngineError::UnknownMemberId)
    ));

    let m3 = new_member_id(&mut e, 200, "c3");
    e.join_group(200, w(3), join_req(&m3, "c3"));
    assert!(drain(&mut e).is_empty());
    for m in [&m1, &m2] {
        assert!(matches!(
            e.heartbeat(210, "g", 2, m, None),
            Err(EngineError::RebalanceInProgress)
        ));
    }
    let s = sync_req(&m2, 2, vec![]);
    e.sync_group(210, w(2), s);
    assert!(matches!(
        syncs(&mut e)[&w(2)],
        Err(EngineError::RebalanceInProgress)
    ));
    e.join_group(220, w(1), join_req(&m1, "c1"));
    assert!(drain(&mut e).is_empty());
    e.join_group(230, w(2), join_req(&m2, "c2"));
    let mut res = joins(&mut e);
    assert_eq!(ok_join(&mut res, 1).members.len(), 3);
    assert_eq!(ok_join(&mut res, 2).generation_id, 3);
    assert_eq!(ok_join(&mut res, 3).leader, m1);
    assert_eq!(e.describe_group("g").state, GroupState::CompletingRebalance);
}

#[test]
fn stable_member_rejoining_with_same_metadata_gets_the_current_generation() {
    let mut e = engine(0);
    let (_, m2) = two_member_group(&mut e);
    e.join_group(60, w(2), join_req(&m2, "c2"));
    let r = ok_join(&mut joins(&mut e), 2);
    assert_eq!(r.generation_id, 2);
    assert_eq!(e.describe_group("g").state, GroupState::Stable);
}

#[test]
fn session_timeout_removes_a_silent_member() {
    let mut e = engine(0);
    let (m1, m2) = two_member_group(&mut e);
    // m2 stays silent; m1 heartbeats.
    e.heartbeat(5_000, "g", 2, &m1, None).unwrap();
    assert_eq!(
        e.poll_timeout(),
        Some(40 + SESSION),
        "m2's session deadline"
    );
    e.handle_timeout(40 + SESSION - 1);
    assert_eq!(e.describe_group("g").members.len(), 2);
    e.handle_timeout(40 + SESSION);
    assert_eq!(e.describe_group("g").members.len(), 1);
    assert!(matches!(
        e.heartbeat(10_100, "g", 2, &m2, None),
        Err(EngineError::UnknownMemberId)
    ));
    assert!(matches!(
        e.heartbeat(10_100, "g", 2, &m1, None),
        Err(EngineError::RebalanceInProgress)
    ));
    e.join_group(10_200, w(1), join_req(&m1, "c1"));
    let r = ok_join(&mut joins(&mut e), 1);
    assert_eq!((r.generation_id, r.members.len()), (3, 1));
}

#[test]
fn rebalance_timeout_drops_members_that_do_not_rejoin() {
    let mut e = engine(0);
    let (m1, m2) = two_member_group(&mut e);
    e.join_group(1_000, w(1), join_req(&m1, "c1"));
    assert!(drain(&mut e).is_empty());
    // m2 keeps heartbeating but never rejoins.
    for t in (2_000..REBALANCE).step_by(3_000) {
        let _ = e.heartbeat(t, "g", 2, &m2, None);
        e.handle_timeout(t);
    }
    assert!(drain(&mut e).is_empty());
    assert_eq!(e.poll_timeout(), Some(1_000 + REBALANCE));
    e.handle_timeout(1_000 + REBALANCE);
    let r = ok_join(&mut joins(&mut e), 1);
    assert_eq!((r.generation_id, r.members.len()), (3, 1));
    assert!(matches!(
        e.heartbeat(31_001, "g", 3, &m2, None),
        Err(EngineError::UnknownMemberId)
    ));
}

#[test]
fn leaving_members_rebalance_and_empty_the_group() {
    let mut e = engine(0);
    let (m1, m2) = two_member_group(&mut e);
    let res = e
        .leave_group(100, "g", &[(m2.clone(), None), ("ghost".into(), None)])
        .unwrap();
    assert!(res[0].is_ok() && matches!(res[1], Err(EngineError::UnknownMemberId)));
    assert_eq!(e.describe_group("g").state, GroupState::PreparingRebalance);
    e.leave_group(110, "g", &[(m1, None)]).unwrap();
    let d = e.describe_group("g");
    assert_eq!((d.state, d.members.len()), (GroupState::Empty, 0));
    assert_eq!(e.poll_timeout(), None);
    assert!(matches!(
        e.leave_group(0, "", &[]),
        Err(EngineError::InvalidGroupId)
    ));
}

#[test]
fn initial_rebalance_delay_collects_members() {
    let mut e = engine(3_000);
    let m1 = new_member_id(&mut e, 0, "c1");
    e.join_group(0, w(1), join_req(&m1, "c1"));
    let m2 = new_member_id(&mut e, 100, "c2");
    e.join_group(100, w(2), join_req(&m2, "c2"));
    assert!(drain(&mut e).is_empty());
    assert_eq!(e.poll_timeout(), Some(3_000));
    e.handle_timeout(3_000);
    let mut res = joins(&mut e);
    assert_eq!(ok_join(&mut res, 1).members.len(), 2);
    assert_eq!(ok_join(&mut res, 2).generation_id, 1);
}

#[test]
fn join_validation() {
    let mut e = engine(0);
    let mut bad = join_req("", "c");
    bad.session_timeout_ms = 10;
    e.join_group(0, w(1), bad);
    assert!(matches!(
        joins(&mut e)[&w(1)],
        Err(EngineError::InvalidSessionTimeout)
    ));
    let mut bad = join_req("", "c");
    bad.group_id.clear();
    e.join_group(0, w(1), bad);
    assert!(matches!(
        joins(&mut e)[&w(1)],
        Err(EngineError::InvalidGroupId)
    ));
    e.join_group(0, w(1), join_req("unknown", "c"));
    assert!(matches!(
        joins(&mut e)[&w(1)],
        Err(EngineError::UnknownMemberId)
    ));
    assert_eq!(e.describe_group("g").state, GroupState::Dead);
    let (_, _) = two_member_group(&mut e);
    let mut other = join_req("", "c3");
    other.protocols = vec![("roundrobin".into(), Bytes::new())];
    e.join_group(0, w(3), other);
    assert!(matches!(
        joins(&mut e)[&w(3)],
        Err(EngineError::InconsistentGroupProtocol)
    ));
    let mut no_check = join_req("", "c4");
    no_check.require_known_member_id = false;
    e.join_group(60, w(4), no_check);
    assert!(
        drain(&mut e).is_empty(),
        "joined directly and started a rebalance"
    );
    assert_eq!(e.describe_group("g").members.len(), 3);
}

#[test]
fn connection_close_drops_parked_requests() {
    let mut e = engine(0);
    let (m1, m2) = two_member_group(&mut e);
    let m3 = new_member_id(&mut e, 100, "c3");
    e.join_group(
        100,
        Waiter {
            conn: 3,
            request: 1,
        },
        join_req(&m3, "c3"),
    );
    e.connection_closed(3);
    e.join_group(110, w(1), join_req(&m1, "c1"));
    e.join_group(120, w(2), join_req(&m2, "c2"));
    let res = joins(&mut e);
    assert_eq!(res.keys().copied().collect::<Vec<_>>(), [w(1), w(2)]);
    assert_eq!(
        res[&w(1)].as_ref().unwrap().members.len(),
        3,
        "the member itself stays"
    );
}

fn commit(
    e: &mut Engine,
    generation: i32,
    member: &str,
    offset: i64,
) -> Result<CommitResults, EngineError> {
    let tp = TopicPartition {
        topic: "t".into(),
        partition: 0,
    };
    e.commit_offsets(
        0,
        77,
        "g",
        generation,
        member,
        vec![(tp, offset, -1, Some("m".into()))],
    )
}

#[test]
fn commits_check_generation_and_member() {
    let mut e = engine(0);
    commit(&mut e, -1, "", 5).unwrap();
    let fetched = e.fetch_offsets("g", None);
    assert_eq!(fetched[0].1.as_ref().unwrap().offset, 5);
    assert_eq!(fetched[0].1.as_ref().unwrap().commit_timestamp, 77);
    assert_eq!(e.list_groups()[0].state, GroupState::Empty);
    let (m1, _) = two_member_group(&mut e);
    assert!(matches!(
        commit(&mut e, -1, "", 6),
        Err(EngineError::UnknownMemberId)
    ));
    assert!(matches!(
        commit(&mut e, 1, &m1, 6),
        Err(EngineError::IllegalGeneration)
    ));
    assert!(matches!(
        commit(&mut e, 2, "x", 6),
        Err(EngineError::UnknownMemberId)
    ));
    commit(&mut e, 2, &m1, 7).unwrap();
    let tps = [
        TopicPartition {
            topic: "t".into(),
            partition: 0,
        },
        TopicPartition {
            topic: "t".into(),
            partition: 1,
        },
    ];
    let fetched = e.fetch_offsets("g", Some(&tps));
    assert_eq!(fetched[0].1.as_ref().unwrap().offset, 7);
    assert!(fetched[1].1.is_none());
    let bad = vec![(
        TopicPartition {
            topic: "nope".into(),
            partition: 0,
        },
        1,
        -1,
        None,
    )];
    let res = e.commit_offsets(0, 0, "g", 2, &m1, bad).unwrap();
    assert!(matches!(
        res[0].1,
        Err(EngineError::UnknownTopicOrPartition)
    ));
}

#[test]
fn delete_group_rules() {
    let mut e = engine(0);
    assert!(matches!(
        e.delete_group("g"),
        Err(EngineError::GroupIdNotFound)
    ));
    let (m1, m2) = two_member_group(&mut e);
    commit(&mut e, 2, &m1, 3).unwrap();
    assert!(matches!(
        e.delete_group("g"),
        Err(EngineError::NonEmptyGroup)
    ));
    e.leave_group(0, "g", &[(m1, None), (m2, None)]).unwrap();
    e.delete_group("g").unwrap();
    assert!(e.fetch_offsets("g", None).is_empty());
    assert_eq!(e.describe_group("g").state, GroupState::Dead);
    assert!(e.list_groups().is_empty());
}

#[test]
fn committed_offsets_survive_reopen() {
    let s = MemStorage::new();
    let mut e = Engine::open(EngineConfig::default(), Box::new(s.clone()), 0).unwrap();
    e.create_topic("t", 1, BTreeMap::new()).unwrap();
    commit(&mut e, -1, "", 9).unwrap();
    let e2 = Engine::open(EngineConfig::default(), Box::new(s), 0).unwrap();
    assert_eq!(e2.fetch_offsets("g", None)[0].1.as_ref().unwrap().offset, 9);
}

#[test]
fn static_member_restart_keeps_its_assignment() {
    let mut e = engine(0);
    let mut req = join_req("", "s1");
    req.group_instance_id = Some("inst-1".into());
    e.join_group(0, w(1), req.clone());
    let r = ok_join(&mut joins(&mut e), 1);
    let first_id = r.member_id.clone();
    e.sync_group(
        1,
        w(1),
        sync_req(&first_id, 1, vec![(first_id.clone(), Bytes::from("p0"))]),
    );
    drain(&mut e);
    // Restarted with the same instance id: it gets a new member id and the old one is gone.
    // It was the leader, so its rejoin rebalances (at once, being the only member).
    e.join_group(10, w(2), req);
    let r2 = ok_join(&mut joins(&mut e), 2);
    assert_ne!(r2.member_id, first_id);
    assert_eq!(r2.leader, r2.member_id);
    assert!(matches!(
        e.heartbeat(20, "g", r2.generation_id, &first_id, None),
        Err(EngineError::UnknownMemberId)
    ));
    assert_eq!(e.describe_group("g").members.len(), 1);
    let left = e
        .leave_group(30, "g", &[(String::new(), Some("inst-1".into()))])
        .unwrap();
    assert!(left[0].is_ok());
    assert_eq!(e.describe_group("g").state, GroupState::Empty);
}
