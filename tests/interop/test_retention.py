"""Topic retention and compaction through kafka-python's admin client, producer and consumer.

Checks:
- a topic with cleanup.policy=compact and small segments: keys written in several versions
  and a tombstone; once the retention timer (every 5 s) has compacted the closed segments, a
  consumer from the beginning sees only the latest value of each key, the tombstone (still
  within delete.retention.ms), and offsets that only increase;
- a keyless record to a compacted topic is refused (INVALID_RECORD);
- a topic with retention.ms=1000 and small segments: after a few seconds the earliest
  offset has moved forward, the end offset has not, and every record from the new earliest
  offset on is still there;
- invalid or unknown topic configs are refused with INVALID_CONFIG; DescribeConfigs shows
  the retention configs.
"""

from __future__ import annotations

import time

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
from kafka.errors import KafkaError

from kafkautil import unique_name

TIMEOUT_S = 40


def admin_client(broker) -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=broker.bootstrap, client_id="it-retention",
                            request_timeout_ms=30000)


def produce_each(broker, topic: str, records: list[tuple[bytes | None, bytes | None]]):
    """Sends every record in its own batch, so that small segments roll often."""
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", linger_ms=0,
                             retries=0)
    try:
        for key, value in records:
            producer.send(topic, key=key, value=value, partition=0).get(timeout=TIMEOUT_S)
    finally:
        producer.close()


def read_all(broker, topic: str) -> tuple[int, int, list]:
    """(earliest offset, end offset, records from the earliest offset to the end)."""
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False,
                             request_timeout_ms=40000)
    tp = TopicPartition(topic, 0)
    try:
        consumer.assign([tp])
        start = consumer.beginning_offsets([tp])[tp]
        end = consumer.end_offsets([tp])[tp]
        consumer.seek(tp, start)
        out = []
        deadline = time.monotonic() + TIMEOUT_S
        while consumer.position(tp) < end and time.monotonic() < deadline:
            for msgs in consumer.poll(timeout_ms=500).values():
                out.extend(msgs)
        return start, end, out
    finally:
        consumer.close()


def create(broker, name: str, configs: dict[str, str]):
    admin = admin_client(broker)
    try:
        admin.create_topics([NewTopic(name, 1, 1, topic_configs=configs)])
    finally:
        admin.close()


def test_compaction_keeps_latest_values_and_tombstones(broker, topic):
    create(broker, topic, {"cleanup.policy": "compact", "segment.bytes": "600",
                           "delete.retention.ms": "600000"})
    records = []
    for version in range(3):
        for k in range(5):
            records.append((f"k{k}".encode(), f"v{version}-{k}".encode()))
    records.append((b"k1", None))
    # Fillers with keys of their own push the versions above into closed segments.
    records += [(f"f{i}".encode(), b"x" * 50) for i in range(20)]
    produce_each(broker, topic, records)

    expected = {f"k{k}".encode(): f"v2-{k}".encode() for k in range(5)}
    expected[b"k1"] = None
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        start, end, got = read_all(broker, topic)
        assert end == len(records)
        keyed = [(m.key, m.value) for m in got if m.key.startswith(b"k")]
        if len(keyed) == len(expected) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert start == 0
    assert dict(keyed) == expected, keyed
    assert len(keyed) == len(expected), "older versions are gone"
    offsets = [m.offset for m in got]
    assert offsets == sorted(set(offsets)) and offsets[-1] == end - 1
    fillers = [m.key for m in got if m.key.startswith(b"f")]
    assert fillers == [f"f{i}".encode() for i in range(20)], "nothing else removed"

    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", retries=0)
    try:
        with pytest.raises(KafkaError):
            producer.send(topic, key=None, value=b"no key", partition=0).get(timeout=TIMEOUT_S)
    finally:
        producer.close()


def test_retention_ms_removes_old_segments(broker, topic):
    create(broker, topic, {"retention.ms": "1000", "segment.bytes": "600"})
    n = 30
    produce_each(broker, topic, [(None, f"r{i}".encode() * 10) for i in range(n)])
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        start, end, got = read_all(broker, topic)
        if start > 0 or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert 0 < start < n, start
    assert end == n
    assert [m.offset for m in got] == list(range(start, n))
    assert [m.value for m in got] == [f"r{i}".encode() * 10 for i in range(start, n)]


def test_topic_configs_are_validated_and_described(broker):
    admin = admin_client(broker)
    try:
        for configs in ({"cleanup.policy": "shred"}, {"retention.ms": "-7"},
                        {"segment.bytes": "1"}, {"no.such.config": "1"}):
            name = unique_name("bad-config")
            with pytest.raises(KafkaError) as err:
                admin.create_topics([NewTopic(name, 1, 1, topic_configs=configs)])
            assert "INVALID_CONFIG" in type(err.value).__name__.upper() or \
                getattr(err.value, "errno", None) == 40, err.value
        name = unique_name("described")
        admin.create_topics([NewTopic(name, 1, 1, topic_configs={
            "cleanup.policy": "compact,delete", "retention.bytes": "100000"})])
        responses = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
        # kafka-python 2.x: DescribeConfigs responses whose resources are tuples
        # (error_code, error_message, resource_type, resource_name, [config entries]), each
        # entry starting with (name, value, ...).
        entries = {e[0]: e[1] for r in responses for res in r.resources for e in res[4]}
        assert entries["cleanup.policy"] == "compact,delete"
        assert entries["retention.bytes"] == "100000"
        for key in ("retention.ms", "segment.bytes", "segment.ms", "delete.retention.ms"):
            assert key in entries, entries
    finally:
        admin.close()
