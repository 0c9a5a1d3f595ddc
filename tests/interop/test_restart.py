"""Durability across a clean restart on the same data directory.

How: a broker with 2 default partitions takes 3,000 keyed messages from an idempotent
confluent-kafka producer with acks=all (every delivery report must succeed). A group
consumer reads 1,000 of them and commits synchronously; committed() is recorded. The
broker is stopped with SIGTERM (or SIGINT) and must exit with code 0; it is started
again on the same data directory and ports. Then:
- a fresh consumer reads every acknowledged record, at its acknowledged partition
  and offset, with the same key and value, and nothing else;
- committed() for the group returns the same offsets as before the restart;
- a consumer in that group resumes exactly at the committed offsets and receives the
  remaining 2,000 records, none below them;
- new records produced after the restart get offsets after the old ones.
"""

from __future__ import annotations

import signal

import pytest
from confluent_kafka import Consumer, TopicPartition

from kafkautil import by_partition, consume, consume_topic, consumer_conf, produce, unique_name

N = 3_000
FIRST = 1_000
PARTS = 2


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_acked_records_and_offsets_survive_restart(broker_factory, topic, sig):
    broker = broker_factory(env={"PORTASK_KAFKA_DEFAULT_PARTITIONS": str(PARTS)})
    records = [(f"key-{i}".encode(), f"value-{i}".encode() * 4) for i in range(N)]
    delivered = produce(broker.bootstrap, topic, records, timeout=90)
    acked = {(p, o): (k, v) for (k, v), (p, o) in zip(records, delivered)}
    assert len(acked) == N
    assert {p for p, _ in acked} == set(range(PARTS)), "records did not spread over partitions"

    group = unique_name("restart-group")
    conf = consumer_conf(broker.bootstrap, group)
    tps = [TopicPartition(topic, p) for p in range(PARTS)]
    c = Consumer(conf)
    try:
        c.subscribe([topic])
        first = consume(c, FIRST, timeout=60)
        assert len(first) == FIRST, f"consumed {len(first)} of {FIRST} before restart"
        c.commit(asynchronous=False)
        before = {tp.partition: tp.offset for tp in c.committed(tps, timeout=30)}
    finally:
        c.close()
    expect_commit = {p: max(m.offset for m in msgs) + 1 for p, msgs in by_partition(first).items()}
    for p, off in expect_commit.items():
        assert before[p] == off, f"partition {p}: committed {before[p]}, processed up to {off}"

    broker.stop(sig)  # asserts exit code 0
    broker.start()

    # Every acknowledged record is there, once, where the producer was told it is.
    got = consume_topic(broker.bootstrap, topic, N, timeout=90, idle_after_count=1.0)
    assert len(got) == N, f"read {len(got)} of {N} acknowledged records after restart"
    assert {(m.partition, m.offset): (m.key, m.value) for m in got} == acked

    # Committed offsets survived.
    probe = Consumer(conf)
    try:
        after = {tp.partition: tp.offset for tp in probe.committed(tps, timeout=30)}
    finally:
        probe.close()
    assert after == before, f"committed offsets changed across restart: {before} -> {after}"

    # The group resumes from them.
    c = Consumer(conf)
    try:
        c.subscribe([topic])
        rest = consume(c, N - FIRST, timeout=90, idle_after_count=1.0)
    finally:
        c.close()
    assert len(rest) == N - FIRST, f"resumed consumer got {len(rest)} of {N - FIRST}"
    for p, msgs in by_partition(rest).items():
        start = max(before[p], 0)
        assert msgs[0].offset == start, f"partition {p}: resumed at {msgs[0].offset}, committed {start}"
        assert all(m.offset >= start for m in msgs)
    assert {(m.partition, m.offset) for m in first} | {(m.partition, m.offset) for m in rest} == set(acked)

    # Appends continue after the recovered end of each partition.
    ends = {p: max(o for pp, o in acked if pp == p) for p in range(PARTS)}
    more = produce(broker.bootstrap, topic, [(b"after", b"restart", p) for p in range(PARTS)])
    for p, o in more:
        assert o == ends[p] + 1, f"partition {p}: new record at offset {o}, previous end {ends[p]}"
