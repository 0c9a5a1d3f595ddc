"""Crash safety: acknowledged data survives SIGKILL, and a torn log tail is cut at start.

``test_kill_restart_under_load[policy]``, for ``storage.fsync`` = ``always`` (the default)
and ``interval_ms``: a broker takes load from two threads at once,

- a librdkafka producer (confluent-kafka, ``acks=all``, ``enable.idempotence=True``) that
  keeps one producer instance through every restart (librdkafka reconnects and retries
  what was not acknowledged), keyed records with unique ids over 2 partitions;
- a pika ``BlockingConnection`` publisher with ``confirm_delivery()`` sending persistent
  messages to a durable queue, one at a time; when the connection breaks it reconnects
  and publishes the unconfirmed message again (at-least-once publishing).

After each start, once both clients are acknowledged again, the broker is SIGKILLed at a
random moment 0.3-1.0 s later (the seed is printed and can be fixed with
``CRASH_TEST_SEED``) and started again on the same data directory, ``CYCLES`` times. Then the load stops, the producer flushes, the broker is
killed and started once more, and everything is read back:

- Kafka: every partition holds offsets 0..high watermark with no gap; every record whose
  delivery report succeeded is at the partition and offset the report gave; no record id
  appears twice (the idempotent producer may have retried records whose acknowledgement
  was lost in a kill: those may be stored, once); nothing appears that was not produced.
- AMQP: every confirmed message is in the queue. A message may be in the queue more than
  once only if it was published again because its confirm had not arrived before a kill
  (at-least-once); a message confirmed on its first attempt is there exactly once.

Both policies must pass this: SIGKILL ends the process but not the kernel, and every write
reaches the OS page cache before it is acknowledged. The policies differ on power loss
(see docs/ARCHITECTURE.md, "Durability"), which a test on one machine cannot produce.

``test_torn_tail_is_truncated[...]``: after a clean stop, the last segment of a partition
gets garbage appended, or loses the end of its last batch. The broker must start, log
``truncated torn tail of <file> at byte <position>``, serve every record before that
position, and append new records right after them. It exercises the disk log only and is
skipped with ``PORTASK_TEST_STORAGE=redis``.
"""

from __future__ import annotations

import collections
import os
import random
import threading
import time
from pathlib import Path

import pika
import pika.exceptions
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition

from kafkautil import consume_assigned, consumer_conf, produce, producer_conf, unique_name

CYCLES = int(os.environ.get("CRASH_TEST_CYCLES", "20"))
PARTS = 2
LOAD_MIN_S, LOAD_MAX_S = 0.3, 1.0
# Kafka load: a burst of this many records, then a short poll (a few thousand records/s).
KAFKA_BURST = 25
THREAD_JOIN_S = 90.0
FLUSH_S = 60.0
READ_BACK_S = 90.0
# Longest wait for both clients to be acknowledged again after a restart.
RESUME_S = 20.0


def _seed() -> int:
    env = os.environ.get("CRASH_TEST_SEED")
    return int(env) if env else random.SystemRandom().randrange(1 << 32)


class KafkaLoad(threading.Thread):
    """Produces records ``k-<n>`` until stopped, then flushes; records every outcome."""

    def __init__(self, bootstrap: str, topic: str, stop: threading.Event):
        super().__init__(daemon=True, name="kafka-load")
        self.bootstrap = bootstrap
        self.topic = topic
        self.stop_evt = stop
        self.produced = 0
        self.acked: dict[str, tuple[int, int]] = {}
        self.failed: dict[str, str] = {}
        self.fatal: list[str] = []
        self.unflushed: int | None = None
        self.crash: BaseException | None = None

    def run(self) -> None:
        try:
            self._run()
        except BaseException as e:  # reported by the test
            self.crash = e

    def _on_error(self, err) -> None:
        if err.fatal():
            self.fatal.append(str(err))

    def _on_delivery(self, err, msg) -> None:
        rid = msg.value().decode()
        if err is None:
            self.acked[rid] = (msg.partition(), msg.offset())
        else:
            self.failed[rid] = str(err)

    def _run(self) -> None:
        p = Producer(producer_conf(
            self.bootstrap,
            **{
                "acks": "all",
                "enable.idempotence": True,
                "linger.ms": 2,
                "message.timeout.ms": 120_000,
                "queue.buffering.max.messages": 20_000,
                "reconnect.backoff.ms": 20,
                "reconnect.backoff.max.ms": 200,
                "retry.backoff.ms": 20,
                "retry.backoff.max.ms": 200,
                "socket.connection.setup.timeout.ms": 5_000,
                "error_cb": self._on_error,
                **({"debug": os.environ["CRASH_TEST_RDKAFKA_DEBUG"]} if os.environ.get("CRASH_TEST_RDKAFKA_DEBUG") else {}),
            },
        ))
        n = 0
        while not self.stop_evt.is_set() and not self.fatal:
            for _ in range(KAFKA_BURST):
                rid = f"k-{n}"
                try:
                    p.produce(self.topic, key=rid.encode(), value=rid.encode(),
                              on_delivery=self._on_delivery)
                except BufferError:
                    break
                n += 1
                self.produced = n
            p.poll(0.005)
        self.unflushed = p.flush(FLUSH_S)


class AmqpLoad(threading.Thread):
    """Publishes ``a-<n>`` with confirms, one at a time, reconnecting after every break;
    an unconfirmed message is published again."""

    def __init__(self, port: int, queue: str, stop: threading.Event):
        super().__init__(daemon=True, name="amqp-load")
        self.port = port
        self.queue = queue
        self.stop_evt = stop
        self.attempts: collections.Counter[str] = collections.Counter()
        self.confirmed: set[str] = set()
        # Published at least once without a confirm (the connection broke, or a nack).
        self.unconfirmed_attempt: set[str] = set()
        self.reconnects = 0
        self.errors: collections.Counter[str] = collections.Counter()
        self.crash: BaseException | None = None

    def run(self) -> None:
        try:
            self._run()
        except BaseException as e:  # reported by the test
            self.crash = e

    def _connect(self):
        params = pika.ConnectionParameters(
            host="127.0.0.1", port=self.port, heartbeat=0, socket_timeout=5,
            stack_timeout=10, blocked_connection_timeout=10, connection_attempts=1)
        conn = pika.BlockingConnection(params)
        ch = conn.channel()
        ch.queue_declare(self.queue, durable=True)
        ch.confirm_delivery()
        return conn, ch

    def _run(self) -> None:
        n = 0
        conn = ch = None
        props = pika.BasicProperties(delivery_mode=2)
        while not self.stop_evt.is_set():
            if conn is None:
                try:
                    conn, ch = self._connect()
                    self.reconnects += 1
                except (pika.exceptions.AMQPError, OSError) as e:
                    self.errors[type(e).__name__] += 1
                    conn = ch = None
                    time.sleep(0.02)
                    continue
            rid = f"a-{n}"
            self.attempts[rid] += 1
            try:
                ch.basic_publish("", self.queue, rid.encode(), props)
            except (pika.exceptions.AMQPError, OSError) as e:
                self.errors[type(e).__name__] += 1
                self.unconfirmed_attempt.add(rid)
                try:
                    conn.close()
                except Exception:
                    pass
                conn = ch = None
                continue  # the same id again
            self.confirmed.add(rid)
            n += 1
        if conn is not None:
            try:
                conn.close()
            except Exception:
                pass


def _start_again(broker, attempts: int = 10) -> None:
    """Starts the broker on its ports again. While it was down, a client's outgoing
    connection may have been given one of them as its local port; that is retried."""
    for i in range(attempts):
        mark = len(broker.log_text())
        try:
            broker.start()
            return
        except AssertionError:
            if "Address already in use" not in broker.log_text()[mark:] or i + 1 == attempts:
                raise
            time.sleep(0.2)


def _read_topic(bootstrap: str, topic: str, timeout: float) -> dict[int, list[tuple[int, str]]]:
    """Every record of every partition, from offset 0 to the high watermark."""
    c = Consumer(consumer_conf(bootstrap, unique_name("crash-read"),
                               **{"enable.partition.eof": True}))
    out: dict[int, list[tuple[int, str]]] = {p: [] for p in range(PARTS)}
    try:
        hw = {}
        for p in range(PARTS):
            lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
            assert lo == 0, f"partition {p}: log start offset {lo}, expected 0"
            hw[p] = hi
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTS)])
        pending = {p for p in range(PARTS) if hw[p] > 0}
        deadline = time.monotonic() + timeout
        while pending:
            assert time.monotonic() < deadline, (
                f"read back incomplete after {timeout}s: "
                + ", ".join(f"p{p} {len(out[p])}/{hw[p]}" for p in range(PARTS)))
            for m in c.consume(num_messages=5000, timeout=0.5):
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        continue
                    raise AssertionError(f"consume error: {m.error()}")
                out[m.partition()].append((m.offset(), m.value().decode()))
                if m.offset() + 1 >= hw[m.partition()]:
                    pending.discard(m.partition())
        for p in range(PARTS):
            assert out[p] == [] or out[p][-1][0] == hw[p] - 1, f"partition {p} read past hw"
    finally:
        c.close()
    return out


def _drain_queue(port: int, queue: str, timeout: float) -> list[str]:
    conn = pika.BlockingConnection(pika.ConnectionParameters(
        host="127.0.0.1", port=port, heartbeat=0, socket_timeout=10, stack_timeout=20,
        blocked_connection_timeout=20))
    try:
        ch = conn.channel()
        count = ch.queue_declare(queue, durable=True, passive=True).method.message_count
        ch.basic_qos(prefetch_count=1000)
        bodies: list[str] = []
        deadline = time.monotonic() + timeout
        last_tag = None
        for method, _props, body in ch.consume(queue, inactivity_timeout=2.0):
            if method is None:
                if len(bodies) >= count or time.monotonic() > deadline:
                    break
                continue
            bodies.append(body.decode())
            last_tag = method.delivery_tag
            if len(bodies) % 500 == 0:
                ch.basic_ack(last_tag, multiple=True)
            assert time.monotonic() < deadline, (
                f"draining {queue}: {len(bodies)} of {count} after {timeout}s")
        if last_tag is not None:
            ch.basic_ack(last_tag, multiple=True)
        ch.cancel()
        assert len(bodies) == count, f"queue said {count} messages, consumed {len(bodies)}"
        return bodies
    finally:
        conn.close()


@pytest.mark.timeout(200)
@pytest.mark.parametrize("policy", ["always", "interval_ms"])
def test_kill_restart_under_load(broker_factory, policy):
    seed = _seed()
    rng = random.Random(seed)
    print(f"crash test seed {seed} (set CRASH_TEST_SEED={seed} to repeat), policy {policy}")
    broker = broker_factory(env={
        "PORTASK_STORAGE_FSYNC": policy,
        "PORTASK_STORAGE_FSYNC_INTERVAL_MS": "100",
        "PORTASK_KAFKA_DEFAULT_PARTITIONS": str(PARTS),
    })
    topic = unique_name(f"crash-{policy}")
    queue = unique_name(f"crash-q-{policy}")
    stop = threading.Event()
    kafka = KafkaLoad(broker.bootstrap, topic, stop)
    amqp = AmqpLoad(broker.amqp_port, queue, stop)
    kafka.start()
    amqp.start()
    cycles = []  # (s until both clients were acked again, delay, kafka acks, amqp confirms)
    try:
        for i in range(CYCLES):
            delay = rng.uniform(LOAD_MIN_S, LOAD_MAX_S)
            k0, a0 = len(kafka.acked), len(amqp.confirmed)
            # The kill must hit a broker under load: wait until both clients are acked
            # again after the restart (their reconnect backoff is not the broker's).
            t0 = time.monotonic()
            while len(kafka.acked) == k0 or len(amqp.confirmed) == a0:
                assert kafka.crash is None and amqp.crash is None, (kafka.crash, amqp.crash)
                assert not kafka.fatal, f"cycle {i}: producer fatal error {kafka.fatal}; seed {seed}"
                assert time.monotonic() - t0 < RESUME_S, (
                    f"cycle {i}: no acks from both clients within {RESUME_S}s of a start "
                    f"(kafka {len(kafka.acked) - k0}, amqp {len(amqp.confirmed) - a0}); "
                    f"seed {seed}; cycles so far {cycles}")
                time.sleep(0.01)
            resumed = time.monotonic() - t0
            time.sleep(delay)
            assert broker.alive(), f"cycle {i}: broker died on its own; seed {seed}"
            broker.kill()
            cycles.append((round(resumed, 2), round(delay, 2), len(kafka.acked) - k0,
                           len(amqp.confirmed) - a0))
            _start_again(broker)
        time.sleep(1.0)  # load on the last start, then a clean end of the load
    finally:
        stop.set()
        kafka.join(THREAD_JOIN_S)
        amqp.join(THREAD_JOIN_S)
    summary = (f"seed {seed}, policy {policy}: cycles (s to resume, s of load, kafka acks, "
               f"amqp confirms) "
               f"{cycles}; kafka produced {kafka.produced}, acked {len(kafka.acked)}, failed "
               f"{len(kafka.failed)}, fatal {kafka.fatal}; amqp confirmed {len(amqp.confirmed)}, "
               f"republished {len(amqp.unconfirmed_attempt)}, reconnects {amqp.reconnects}, "
               f"errors {dict(amqp.errors)}")
    print(summary)
    assert not kafka.is_alive() and not amqp.is_alive(), f"load threads did not end; {summary}"
    assert kafka.crash is None, f"kafka load thread failed: {kafka.crash!r}; {summary}"
    assert amqp.crash is None, f"amqp load thread failed: {amqp.crash!r}; {summary}"
    assert not kafka.fatal, f"idempotent producer hit a fatal error; {summary}"
    assert kafka.unflushed == 0, f"{kafka.unflushed} records never delivered; {summary}"

    # Once more from disk, with no client around.
    broker.kill()
    _start_again(broker)

    parts = _read_topic(broker.bootstrap, topic, READ_BACK_S)
    where: dict[str, tuple[int, int]] = {}
    for p, recs in parts.items():
        offsets = [o for o, _ in recs]
        assert offsets == list(range(len(offsets))), (
            f"partition {p}: offsets are not dense 0..{len(offsets) - 1}; first gap near "
            f"{next((i for i, o in enumerate(offsets) if o != i), None)}; {summary}")
        for o, rid in recs:
            assert rid not in where, f"record {rid} stored twice: {where[rid]} and {(p, o)}; {summary}"
            where[rid] = (p, o)
    produced = {f"k-{n}" for n in range(kafka.produced)}
    assert set(where) <= produced, f"unknown records: {sorted(set(where) - produced)[:5]}"
    lost = [rid for rid in kafka.acked if rid not in where]
    assert not lost, f"{len(lost)} acknowledged records lost, e.g. {lost[:5]}; {summary}"
    moved = [(rid, at, where[rid]) for rid, at in kafka.acked.items() if where[rid] != at]
    assert not moved, f"{len(moved)} acknowledged records not where acked: {moved[:5]}; {summary}"

    bodies = _drain_queue(broker.amqp_port, queue, READ_BACK_S)
    counts = collections.Counter(bodies)
    missing = sorted(amqp.confirmed - set(counts))
    assert not missing, f"{len(missing)} confirmed messages lost, e.g. {missing[:5]}; {summary}"
    unknown = sorted(set(counts) - set(amqp.attempts))
    assert not unknown, f"messages never published: {unknown[:5]}"
    too_many = {rid: c for rid, c in counts.items() if c > amqp.attempts[rid]}
    assert not too_many, f"more copies than publishes: {list(too_many.items())[:5]}"
    bad_dups = sorted(rid for rid, c in counts.items()
                      if c > 1 and rid not in amqp.unconfirmed_attempt)
    assert not bad_dups, f"duplicates of messages confirmed on first publish: {bad_dups[:5]}"


def _last_segment(data_dir: Path, topic: str) -> Path:
    logs = sorted((data_dir / "topics" / topic / "0").glob("*.log"))
    assert logs, f"no segment of {topic} in {data_dir}"
    return logs[-1]


@pytest.mark.timeout(120)
@pytest.mark.skipif(os.environ.get("PORTASK_TEST_STORAGE") == "redis",
                    reason="damages the disk log's last segment file (topics/<t>/0/*.log); "
                           "the Redis backend has no segment files, each batch is stored "
                           "whole by one MULTI/EXEC")
@pytest.mark.parametrize("damage", ["garbage", "cut_batch"])
def test_torn_tail_is_truncated(broker_factory, topic, damage):
    broker = broker_factory(env={"PORTASK_KAFKA_DEFAULT_PARTITIONS": "1"})
    first = [(f"k{i}".encode(), f"v{i}".encode() * 10, 0) for i in range(200)]
    acked = produce(broker.bootstrap, topic, first)
    broker.stop()
    seg = _last_segment(broker.data_dir, topic)
    whole = seg.stat().st_size
    if damage == "garbage":
        with open(seg, "ab") as f:
            f.write(bytes(range(7, 7 + 61)))
        expect_at, keep = whole, first
    else:
        # One more batch, then lose its last bytes, as if power failed mid-write.
        broker.start()
        produce(broker.bootstrap, topic, [(b"last", b"x" * 300, 0)])
        broker.stop()
        size = seg.stat().st_size
        assert size > whole, "the extra batch did not reach the segment"
        os.truncate(seg, size - 17)
        expect_at, keep = whole, first
    broker.start()
    line = f"truncated torn tail of {seg} at byte {expect_at}"
    deadline = time.monotonic() + 10
    while line not in broker.log_text():
        assert time.monotonic() < deadline, f"no log line {line!r}; log:\n{broker.log_tail()}"
        time.sleep(0.05)
    assert seg.stat().st_size == expect_at, f"{seg} is {seg.stat().st_size} bytes, expected {expect_at}"
    got = consume_assigned(broker.bootstrap, topic, len(keep), timeout=30, idle_after_count=0.5)
    assert [(m.key, m.value) for m in got] == [(k, v) for k, v, _ in keep]
    assert [m.offset for m in got] == [o for _, o in acked]
    more = produce(broker.bootstrap, topic, [(b"after", b"torn", 0)])
    assert more == [(0, len(keep))], f"appended at {more}, expected offset {len(keep)}"
