"""ListOffsets by timestamp (librdkafka's offsets_for_times): the broker looks the
timestamp up in storage and answers with the first offset stamped at or after it, the
high watermark past the end, and the special earliest/latest offsets."""

from __future__ import annotations

from confluent_kafka import Consumer, Producer, TopicPartition

BASE_MS = 1_700_000_000_000


def test_offsets_for_times(broker, topic):
    p = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0})
    # Ten batches, one record each, stamped 1 s apart.
    for i in range(10):
        p.produce(topic, value=f"v{i}".encode(), partition=0, timestamp=BASE_MS + i * 1000)
        assert p.flush(30) == 0
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": topic})
    try:
        asked = {
            BASE_MS - 1: 0,
            BASE_MS: 0,
            BASE_MS + 3500: 4,
            BASE_MS + 9000: 9,
            BASE_MS + 60_000: 10,
        }
        for ts, want in asked.items():
            got = c.offsets_for_times([TopicPartition(topic, 0, ts)], timeout=30)
            assert got[0].error is None, got[0].error
            assert got[0].offset == want, (ts, got[0].offset, want)
        low, high = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=30)
        assert (low, high) == (0, 10)
    finally:
        c.close()
