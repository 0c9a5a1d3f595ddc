"""The Redis storage backend (``storage.backend = "redis"``) with real clients.

Each test starts its own redis-server (free loopback port, AOF with ``appendfsync always``,
see ``redisutil.py``) and a broker with ``PORTASK_STORAGE_BACKEND=redis``.

- ``test_round_trip_and_restart``: Kafka produce (confluent-kafka, acks=all, idempotent)
  and consume, a consumer group commit, an AMQP durable queue with persistent messages and
  publisher confirms (pika); the broker is restarted and everything is still there.
- ``test_redis_outage_under_load``: a Kafka producer keeps producing (librdkafka retries
  the storage errors) while redis-server is killed and, seconds later, started again; an
  AMQP publisher with confirms gets no confirm while it is down. The broker keeps running
  and resumes by itself; every acknowledged record and message is present afterwards, also
  after a broker restart.
"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path

import pika
import pika.exceptions
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from kafkautil import consume, consume_assigned, consumer_conf, produce, producer_conf, unique_name
from redisutil import RedisServer, redis_server_bin

pytestmark = pytest.mark.skipif(redis_server_bin() is None,
                                reason="redis-server not installed (scripts/test installs it)")

PARTS = 2


@pytest.fixture
def redis_server():
    server = RedisServer(Path(tempfile.mkdtemp(prefix="portask-it-redis-")))
    server.start()
    yield server
    server.cleanup()


def redis_broker(broker_factory, server: RedisServer):
    return broker_factory(env={
        "PORTASK_STORAGE_BACKEND": "redis",
        "PORTASK_STORAGE_REDIS_URL": server.url(),
        "PORTASK_STORAGE_REDIS_NAMESPACE": unique_name("ns"),
        "PORTASK_KAFKA_DEFAULT_PARTITIONS": str(PARTS),
    })


def amqp_channel(broker):
    params = pika.ConnectionParameters("127.0.0.1", broker.amqp_port,
                                       blocked_connection_timeout=30, socket_timeout=10)
    deadline = time.monotonic() + 30
    while True:
        try:
            conn = pika.BlockingConnection(params)
            break
        except pika.exceptions.AMQPConnectionError:
            assert time.monotonic() < deadline, "AMQP listener not accepting"
            time.sleep(0.1)
    return conn, conn.channel()


def queue_bodies(broker, queue: str) -> list[bytes]:
    conn, ch = amqp_channel(broker)
    try:
        ch.queue_declare(queue, durable=True, passive=True)
        out = []
        while True:
            method, _props, body = ch.basic_get(queue, auto_ack=False)
            if method is None:
                return out
            out.append(body)
    finally:
        conn.close()


def test_round_trip_and_restart(broker_factory, redis_server):
    broker = redis_broker(broker_factory, redis_server)
    topic, group, queue = unique_name("rt"), unique_name("g"), unique_name("q")

    records = [(f"k{i}".encode(), f"v{i}".encode(), i % PARTS) for i in range(200)]
    placed = produce(broker.bootstrap, topic, records)
    c = Consumer(consumer_conf(broker.bootstrap, group))
    c.subscribe([topic])
    got = consume(c, 200, timeout=60)
    assert sorted(m.value for m in got) == sorted(r[1] for r in records)
    c.commit(asynchronous=False)
    c.close()

    conn, ch = amqp_channel(broker)
    ch.queue_declare(queue, durable=True)
    ch.confirm_delivery()
    bodies = [f"m{i}".encode() for i in range(50)]
    for b in bodies:
        ch.basic_publish("", queue, b, pika.BasicProperties(delivery_mode=2))
    conn.close()

    broker.restart()

    got = consume_assigned(broker.bootstrap, topic, 200, partitions=range(PARTS), timeout=60)
    assert sorted((m.partition, m.offset, m.value) for m in got) == \
        sorted((p, o, r[1]) for (p, o), r in zip(placed, records))
    c = Consumer(consumer_conf(broker.bootstrap, group))
    committed = c.committed([TopicPartition(topic, p) for p in range(PARTS)], timeout=30)
    c.close()
    assert sorted(tp.offset for tp in committed) == [100, 100]
    assert queue_bodies(broker, queue) == bodies
    # And the broker still takes writes after the restart.
    produce(broker.bootstrap, topic, [(b"k", b"after", 0)])


class KafkaLoad(threading.Thread):
    """Produces ``r<n>`` records until stopped, then flushes; keeps every report."""

    def __init__(self, bootstrap: str, topic: str):
        super().__init__(daemon=True, name="kafka-load")
        self.bootstrap, self.topic = bootstrap, topic
        self.stop_evt = threading.Event()
        self.acked: dict[bytes, tuple[int, int]] = {}
        self.failed: dict[bytes, str] = {}
        self.remaining = -1

    def run(self) -> None:
        p = Producer(producer_conf(self.bootstrap, **{"message.timeout.ms": 120000,
                                                      "retry.backoff.max.ms": 500}))

        def report(err, msg):
            if err is None:
                self.acked[msg.value()] = (msg.partition(), msg.offset())
            else:
                self.failed[msg.value()] = str(err)

        n = 0
        while not self.stop_evt.is_set():
            for _ in range(20):
                try:
                    p.produce(self.topic, value=f"r{n}".encode(), partition=n % PARTS,
                              on_delivery=report)
                    n += 1
                except BufferError:
                    break
            p.poll(0.02)
        self.remaining = p.flush(120)


def test_redis_outage_under_load(broker_factory, redis_server):
    broker = redis_broker(broker_factory, redis_server)
    topic, queue = unique_name("outage"), unique_name("q")
    conn, ch = amqp_channel(broker)
    ch.queue_declare(queue, durable=True)
    ch.confirm_delivery()
    confirmed: list[bytes] = []
    props = pika.BasicProperties(delivery_mode=2)
    for i in range(10):
        ch.basic_publish("", queue, f"a{i}".encode(), props)
        confirmed.append(f"a{i}".encode())

    load = KafkaLoad(broker.bootstrap, topic)
    load.start()
    time.sleep(1.5)
    before = len(load.acked)
    assert before > 0, f"nothing acknowledged before the outage; failed: {list(load.failed.items())[:3]}"

    redis_server.kill()
    time.sleep(0.5)
    acked_at_kill = len(load.acked)
    # While Redis is down, a confirmed publish gets no ack.
    unconfirmed = b"during-outage"
    try:
        ch.basic_publish("", queue, unconfirmed, props)
        pytest.fail("a publish was confirmed while redis-server was down")
    except (pika.exceptions.NackError, pika.exceptions.ChannelClosedByBroker,
            pika.exceptions.ConnectionClosedByBroker):
        pass
    time.sleep(2.0)
    assert broker.alive(), f"broker died while redis was down:\n{broker.log_tail()}"
    # Nothing more got acknowledged while the store was unreachable (a reply may have been
    # in flight at the kill).
    assert len(load.acked) <= acked_at_kill + 50

    redis_server.start()
    deadline = time.monotonic() + 30
    while len(load.acked) <= acked_at_kill + 100:
        assert time.monotonic() < deadline, \
            f"producing did not resume: {len(load.acked)} acked; log:\n{broker.log_tail()}"
        time.sleep(0.1)
    load.stop_evt.set()
    load.join(150)
    assert not load.is_alive()
    assert load.remaining == 0 and not load.failed, \
        f"{load.remaining} unflushed, failed: {list(load.failed.items())[:3]}"
    assert "reachable again" in broker.log_text()

    if conn.is_open:
        conn.close()
    conn, ch = amqp_channel(broker)
    ch.confirm_delivery()
    for i in range(10, 20):
        ch.basic_publish("", queue, f"a{i}".encode(), props)
        confirmed.append(f"a{i}".encode())
    conn.close()

    for phase in ("running", "restarted"):
        if phase == "restarted":
            broker.restart()
        got = consume_assigned(broker.bootstrap, topic, len(load.acked),
                               partitions=range(PARTS), timeout=90)
        where = {m.value: (m.partition, m.offset) for m in got}
        missing = [v for v, at in load.acked.items() if where.get(v) != at]
        assert not missing, f"{phase}: {len(missing)} acknowledged records missing, e.g. {missing[:3]}"
        assert len(got) == len(where), f"{phase}: a record is stored twice"
        bodies = queue_bodies(broker, queue)
        assert bodies == confirmed, f"{phase}: queue holds {bodies}"
