"""Idempotent confluent-kafka (librdkafka) producer with every compression codec.

For each of none, gzip, snappy, lz4 and zstd: a Producer with enable.idempotence=True,
acks=all, linger.ms=5 and that compression.type produces 5,000 keyed messages to an
auto-created topic with 3 partitions (the broker runs with
PORTASK_KAFKA_DEFAULT_PARTITIONS=3, which also checks the env override). Every
delivery callback must succeed, and delivered offsets must be unique and increasing
per partition. A Consumer with auto.offset.reset=earliest in a fresh group then reads
everything back: per partition, the same keys and values in produce order at the
reported offsets, nothing missing, no duplicates.
"""

from __future__ import annotations

import pytest

from kafkautil import by_partition, consume_topic, produce

N = 5_000
PARTITIONS = 3


@pytest.mark.parametrize("compression", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_idempotent_compressed_produce_then_consume(broker_factory, topic, compression):
    broker = broker_factory(env={"PORTASK_KAFKA_DEFAULT_PARTITIONS": str(PARTITIONS)})
    records = [(f"key-{i % 251}".encode(), f"value-{i:06d}-{compression}-".encode() * (1 + i % 7))
               for i in range(N)]
    delivered = produce(broker.bootstrap, topic, records, timeout=120,
                        **{"compression.type": compression, "enable.idempotence": True,
                           "acks": "all", "linger.ms": 5})

    # Delivery reports: unique, increasing offsets per partition; every partition used.
    expected: dict[int, list[tuple[int, bytes, bytes]]] = {}
    for (key, value), (part, off) in zip(records, delivered):
        assert 0 <= part < PARTITIONS, part
        assert off >= 0, off
        expected.setdefault(part, []).append((off, key, value))
    assert sorted(expected) == list(range(PARTITIONS)), sorted(expected)
    for part, rows in expected.items():
        offs = [o for o, _, _ in rows]
        assert offs == sorted(offs) and len(set(offs)) == len(offs), \
            f"partition {part}: delivered offsets not strictly increasing"

    got = consume_topic(broker.bootstrap, topic, N, timeout=90, idle_after_count=1.0)
    assert len(got) == N, f"consumed {len(got)} of {N}"
    per_part = by_partition(got)
    assert sorted(per_part) == sorted(expected)
    for part, msgs in per_part.items():
        offs = [m.offset for m in msgs]
        assert len(set(offs)) == len(offs), f"partition {part}: duplicate offsets"
        assert [(m.offset, m.key, m.value) for m in msgs] == expected[part], \
            f"partition {part}: consumed sequence differs from produced"
