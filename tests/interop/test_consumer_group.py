"""Consumer groups with confluent-kafka: assignment, committed offsets, rebalance.

How: a 4-partition topic is created with AdminClient.create_topics and 2,000 messages
are produced, 500 to each partition. All consumers use enable.auto.commit=False and
commit each processed message synchronously (commit(message=m)). One thread polls
the consumers alternately; every loop is bounded in time.

1. Two consumers join one group; polling continues until their assignments
   (assignment()) are disjoint, 2 partitions each, covering all 4, and about half of
   the data is processed. Both are closed. The group's committed offsets (read with
   committed() by a non-member) equal the last successful commit per partition, and
   every offset below them was delivered.
2. Two new consumers in the same group resume: for every partition, the first
   delivered offset is exactly the committed one and nothing below it is delivered
   again (re-delivery only beyond the committed position).
3. A third member joins; the rebalance completes with all three holding disjoint,
   non-empty assignments covering the 4 partitions; 400 more messages are produced
   and consumed. Over the whole run, every produced offset was delivered (no loss).
"""

from __future__ import annotations

import time

from confluent_kafka import OFFSET_INVALID, Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from kafkautil import consumer_conf, produce, unique_name

PARTS = 4
N = 2_000
MORE = 400


class Tracker:
    """What was delivered to and committed by the consumers of one group."""

    def __init__(self):
        self.delivered: dict[int, list[tuple[int, int]]] = {p: [] for p in range(PARTS)}  # (phase, offset)
        self.committed_ok: dict[int, int] = {}
        self.commit_failures = 0
        self.per_consumer: dict[str, int] = {}

    def process(self, name: str, c: Consumer, m, phase: int) -> None:
        self.delivered[m.partition()].append((phase, m.offset()))
        self.per_consumer[name] = self.per_consumer.get(name, 0) + 1
        try:
            c.commit(message=m, asynchronous=False)
        except KafkaException:
            # A commit racing a rebalance may be refused; the message then counts as
            # uncommitted and may be delivered again later.
            self.commit_failures += 1
        else:
            self.committed_ok[m.partition()] = m.offset() + 1

    def unique(self) -> set[tuple[int, int]]:
        return {(p, o) for p, lst in self.delivered.items() for _, o in lst}


def poll_round(consumers: dict[str, Consumer], tracker: Tracker, phase: int) -> None:
    for name, c in consumers.items():
        m = c.poll(0.05)
        if m is None:
            continue
        if m.error():
            if m.error().retriable() or m.error().code() < 0:
                continue
            raise KafkaException(m.error())
        tracker.process(name, c, m, phase)


def assignments(consumers: dict[str, Consumer], topic: str) -> dict[str, set[int]]:
    out = {}
    for name, c in consumers.items():
        parts = c.assignment()
        assert all(tp.topic == topic for tp in parts), parts
        out[name] = {tp.partition for tp in parts}
    return out


def balanced(asg: dict[str, set[int]], sizes: list[int]) -> bool:
    sets = list(asg.values())
    union = set().union(*sets)
    disjoint = sum(len(s) for s in sets) == len(union)
    return disjoint and union == set(range(PARTS)) and sorted(len(s) for s in sets) == sizes


def run_until(consumers, tracker, phase, topic, sizes, done, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        poll_round(consumers, tracker, phase)
        asg = assignments(consumers, topic)
        if balanced(asg, sizes) and done():
            return asg
    raise AssertionError(
        f"{what}: not reached in {timeout}s; assignments={assignments(consumers, topic)}, "
        f"delivered={len(tracker.unique())}, per consumer={tracker.per_consumer}, "
        f"commit failures={tracker.commit_failures}")


def test_group_assignment_commit_resume_rebalance(broker, topic):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap, "broker.address.family": "v4"})
    futs = admin.create_topics([NewTopic(topic, num_partitions=PARTS, replication_factor=1)],
                               operation_timeout=30, request_timeout=30)
    futs[topic].result(timeout=30)
    md = admin.list_topics(topic, timeout=30)
    assert len(md.topics[topic].partitions) == PARTS

    produced = produce(broker.bootstrap, topic,
                       [(f"k{i}".encode(), f"m{i}".encode(), i % PARTS) for i in range(N)])
    expected = set(produced)
    assert len(expected) == N
    assert {p for p, _ in produced} == set(range(PARTS))

    group = unique_name("group")
    conf = consumer_conf(broker.bootstrap, group)
    tracker = Tracker()

    # -- phase 1: two members, 2 partitions each; process about half, commit ---------
    cs = {"c1": Consumer(conf), "c2": Consumer(conf)}
    try:
        for c in cs.values():
            c.subscribe([topic])
        asg = run_until(cs, tracker, 1, topic, [2, 2], lambda: len(tracker.unique()) >= N // 2,
                        60, "phase 1 (two members)")
        assert asg["c1"].isdisjoint(asg["c2"])
    finally:
        for c in cs.values():
            c.close()

    probe = Consumer(conf)
    try:
        committed = probe.committed([TopicPartition(topic, p) for p in range(PARTS)], timeout=30)
    finally:
        probe.close()
    commit_pos = {tp.partition: tp.offset for tp in committed}
    for tp in committed:
        assert tp.error is None, tp
    # A partition without any successful commit has no committed offset (-1001) and
    # restarts from the earliest offset.
    want = {p: tracker.committed_ok.get(p, OFFSET_INVALID) for p in range(PARTS)}
    assert commit_pos == want, f"committed() {commit_pos} != last successful commits {want}"
    assert tracker.committed_ok, "no commit succeeded in phase 1"
    start = {p: max(pos, 0) for p, pos in commit_pos.items()}
    phase1 = {(p, o) for p, lst in tracker.delivered.items() for ph, o in lst if ph == 1}
    for p, pos in start.items():
        missing = [o for o in range(pos) if (p, o) not in phase1]
        assert not missing, f"partition {p}: offsets below committed {pos} never delivered: {missing[:10]}"

    # -- phase 2: two new members resume from the committed offsets ------------------
    cs = {"c3": Consumer(conf), "c4": Consumer(conf)}
    cs3: dict[str, Consumer] = {}
    try:
        for c in cs.values():
            c.subscribe([topic])
        run_until(cs, tracker, 2, topic, [2, 2],
                  lambda: len(tracker.unique()) >= (3 * N) // 4
                  and all(any(ph == 2 for ph, _ in tracker.delivered[p])
                          for p in range(PARTS) if start[p] < N // PARTS),
                  60, "phase 2 (resume)")
        for p in range(PARTS):
            phase2 = [o for ph, o in tracker.delivered[p] if ph == 2]
            if start[p] < N // PARTS:
                assert phase2, f"partition {p}: nothing delivered after restart"
                assert phase2[0] == start[p], \
                    f"partition {p}: resumed at {phase2[0]}, committed {commit_pos[p]}"
            assert all(o >= start[p] for o in phase2), \
                f"partition {p}: offsets below committed {commit_pos[p]} delivered again"

        # -- phase 3: a third member joins; rebalance; consumption continues ---------
        cs3 = dict(cs)
        cs3["c5"] = Consumer(conf)
        cs3["c5"].subscribe([topic])
        run_until(cs3, tracker, 3, topic, [1, 1, 2], lambda: True, 60, "phase 3 (third member)")
        more = produce(broker.bootstrap, topic,
                       [(f"k{i}".encode(), f"m{i}".encode(), i % PARTS) for i in range(N, N + MORE)])
        expected |= set(more)
        run_until(cs3, tracker, 3, topic, [1, 1, 2], lambda: tracker.unique() >= expected,
                  90, "phase 3 (consume everything)")
        assert tracker.per_consumer.get("c5", 0) > 0, f"third member got nothing: {tracker.per_consumer}"
    finally:
        for c in (cs3 or cs).values():
            c.close()

    lost = expected - tracker.unique()
    assert not lost, f"{len(lost)} produced messages never delivered, e.g. {sorted(lost)[:10]}"
    unexpected = tracker.unique() - expected
    assert not unexpected, f"delivered offsets that were never produced: {sorted(unexpected)[:10]}"
