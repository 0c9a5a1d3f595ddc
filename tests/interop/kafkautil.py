"""Shared helpers for the interop tests: unique names and bounded produce/consume
loops with confluent-kafka (librdkafka)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from confluent_kafka import (OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer,
                             TopicPartition)

_counter = 0


def unique_name(base: str) -> str:
    """A topic/group name that no other test (or earlier run) uses."""
    global _counter
    _counter += 1
    clean = "".join(c if c.isalnum() or c in "-_." else "-" for c in base)[:80]
    return f"it-{clean}-{os.getpid()}-{_counter}-{int(time.time() * 1000) % 10**8}"


@dataclass(frozen=True)
class Msg:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple = ()


def producer_conf(bootstrap: str, **extra) -> dict:
    conf = {
        "bootstrap.servers": bootstrap,
        "broker.address.family": "v4",
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 5,
        "message.timeout.ms": 60000,
    }
    conf.update(extra)
    return conf


def consumer_conf(bootstrap: str, group: str, **extra) -> dict:
    conf = {
        "bootstrap.servers": bootstrap,
        "broker.address.family": "v4",
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "session.timeout.ms": 10000,
        "heartbeat.interval.ms": 1000,
        "topic.metadata.refresh.interval.ms": 2000,
    }
    conf.update(extra)
    return conf


def produce(bootstrap: str, topic: str, records, timeout: float = 60.0, **conf) -> list[tuple[int, int]]:
    """Produces ``records`` (iterable of (key, value) or (key, value, partition)) and
    waits for every delivery report. Asserts none failed; returns (partition, offset)
    in produce order."""
    p = Producer(producer_conf(bootstrap, **conf))
    results: list = []
    errors: list = []

    def make_cb(i):
        def cb(err, msg):
            if err is not None:
                errors.append((i, err))
            else:
                results[i] = (msg.partition(), msg.offset())
        return cb

    deadline = time.monotonic() + timeout
    for i, rec in enumerate(records):
        key, value = rec[0], rec[1]
        kwargs = {}
        if len(rec) > 2 and rec[2] is not None:
            kwargs["partition"] = rec[2]
        results.append(None)
        while True:
            try:
                p.produce(topic, value=value, key=key, on_delivery=make_cb(i), **kwargs)
                break
            except BufferError:
                p.poll(0.05)
                assert time.monotonic() < deadline, "producer queue stayed full"
        if i % 1000 == 0:
            p.poll(0)
    remaining = p.flush(max(1.0, deadline - time.monotonic()))
    assert remaining == 0, f"{remaining} messages not delivered within {timeout}s"
    assert not errors, f"{len(errors)} delivery errors, first: {errors[:5]}"
    assert all(r is not None for r in results), "missing delivery reports"
    return results


def consume(consumer: Consumer, count: int, timeout: float = 60.0,
            idle_after_count: float = 0.0) -> list[Msg]:
    """Polls ``consumer`` until ``count`` messages arrived (then keeps polling for
    ``idle_after_count`` seconds to catch extras) or ``timeout`` passes."""
    out: list[Msg] = []
    deadline = time.monotonic() + timeout
    extra_deadline = None
    while time.monotonic() < deadline:
        if len(out) >= count:
            if extra_deadline is None:
                extra_deadline = time.monotonic() + idle_after_count
            if time.monotonic() >= extra_deadline:
                break
        m = consumer.poll(0.2)
        if m is None:
            continue
        if m.error():
            if m.error().code() == KafkaError._PARTITION_EOF:
                continue
            raise KafkaException(m.error())
        out.append(Msg(m.partition(), m.offset(), m.key(), m.value(),
                       tuple(m.headers() or ())))
    return out


def consume_topic(bootstrap: str, topic: str, count: int, group: str | None = None,
                  timeout: float = 60.0, idle_after_count: float = 0.5, **conf) -> list[Msg]:
    """Reads ``topic`` from the earliest offset with a fresh group until ``count``
    messages arrived (bounded by ``timeout``)."""
    c = Consumer(consumer_conf(bootstrap, group or unique_name("g-" + topic), **conf))
    try:
        c.subscribe([topic])
        return consume(c, count, timeout=timeout, idle_after_count=idle_after_count)
    finally:
        c.close()


def consume_assigned(bootstrap: str, topic: str, count: int, partitions=(0,),
                     timeout: float = 30.0, idle_after_count: float = 0.5) -> list[Msg]:
    """Reads ``partitions`` of ``topic`` from the beginning without group membership
    (assign(), no commits) until ``count`` messages arrived or ``timeout`` passes."""
    c = Consumer(consumer_conf(bootstrap, unique_name("assign-" + topic)))
    try:
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        return consume(c, count, timeout=timeout, idle_after_count=idle_after_count)
    finally:
        c.close()


def roundtrip_check(bootstrap: str, label: str = "health", timeout: float = 30.0) -> None:
    """Produces one message to a fresh topic and reads it back: the broker works."""
    t = unique_name(label)
    value = f"ping-{time.time()}".encode()
    produce(bootstrap, t, [(b"k", value)], timeout=timeout)
    got = consume_assigned(bootstrap, t, 1, timeout=timeout, idle_after_count=0)
    assert [m.value for m in got] == [value], f"round trip on {t} returned {got}"


def by_partition(msgs: list[Msg]) -> dict[int, list[Msg]]:
    out: dict[int, list[Msg]] = {}
    for m in msgs:
        out.setdefault(m.partition, []).append(m)
    return out
