"""kafka-python (a pure-Python client with its own protocol code) against the broker.

Checks:
- version negotiation: clients are created without api_version, so kafka-python
  sends ApiVersions and infers a broker version from the reply; it must infer one
  that uses v2 record batches (>= 0.11);
- KafkaProducer (acks=all, no compression and gzip) -> KafkaConsumer in a group from
  the earliest offset returns the same keys, values and headers in order, at the
  offsets the producer was given;
- KafkaAdminClient create_topics (with 3 partitions, visible in the consumer's
  partitions_for_topic), list_topics, and delete_topics after which the topic is no
  longer listed.
"""

from __future__ import annotations

import time

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic

from kafkautil import unique_name

TIMEOUT_S = 60


def admin_client(broker) -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=broker.bootstrap, client_id="it-admin",
                            request_timeout_ms=30000)


def consume_n(consumer: KafkaConsumer, n: int, timeout: float = TIMEOUT_S) -> list:
    out = []
    deadline = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        batches = consumer.poll(timeout_ms=500)
        for records in batches.values():
            out.extend(records)
    return out


@pytest.mark.parametrize("compression", [None, "gzip"])
def test_producer_consumer_roundtrip(broker, topic, compression):
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all",
                             compression_type=compression, linger_ms=5,
                             request_timeout_ms=30000)
    try:
        assert producer.config["api_version"] >= (0, 11), producer.config["api_version"]
        n = 500
        futures = [producer.send(topic, key=f"k{i}".encode(), value=f"v{i}".encode() * 3,
                                 headers=[("idx", str(i).encode())])
                   for i in range(n)]
        producer.flush(timeout=TIMEOUT_S)
        metas = [f.get(timeout=TIMEOUT_S) for f in futures]
    finally:
        producer.close(timeout=10)
    assert [m.partition for m in metas] == [0] * n
    offsets = [m.offset for m in metas]
    assert offsets == list(range(offsets[0], offsets[0] + n)), "offsets not consecutive"

    consumer = KafkaConsumer(topic, bootstrap_servers=broker.bootstrap,
                             group_id=unique_name("kp-group"), auto_offset_reset="earliest",
                             enable_auto_commit=False, request_timeout_ms=40000,
                             session_timeout_ms=10000, heartbeat_interval_ms=1000)
    try:
        assert consumer.config["api_version"] >= (0, 11), consumer.config["api_version"]
        got = consume_n(consumer, n)
    finally:
        consumer.close()
    assert len(got) == n, f"consumed {len(got)} of {n}"
    assert [r.offset for r in got] == offsets
    assert [(r.key, r.value) for r in got] == [(f"k{i}".encode(), f"v{i}".encode() * 3)
                                               for i in range(n)]
    assert [list(r.headers) for r in got] == [[("idx", str(i).encode())] for i in range(n)]


def test_admin_create_list_delete(broker):
    name = unique_name("kp-admin")
    admin = admin_client(broker)
    try:
        admin.create_topics([NewTopic(name=name, num_partitions=3, replication_factor=1)],
                            timeout_ms=30000)
        deadline = time.monotonic() + 30
        while name not in admin.list_topics():
            assert time.monotonic() < deadline, f"{name} not listed after create"
            time.sleep(0.2)

        consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, request_timeout_ms=40000)
        try:
            parts = None
            deadline = time.monotonic() + 30
            while not parts and time.monotonic() < deadline:
                parts = consumer.partitions_for_topic(name)
                if not parts:
                    time.sleep(0.2)
            assert parts == {0, 1, 2}, parts
        finally:
            consumer.close()

        admin.delete_topics([name], timeout_ms=30000)
        deadline = time.monotonic() + 30
        while name in admin.list_topics():
            assert time.monotonic() < deadline, f"{name} still listed 30s after delete"
            time.sleep(0.2)
    finally:
        admin.close()
