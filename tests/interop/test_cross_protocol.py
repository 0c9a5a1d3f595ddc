"""Cross-protocol delivery with real clients on both sides.

A Kafka topic is, to AMQP clients, a stream queue of the same name (RabbitMQ's convention:
declared with ``x-queue-type: stream``, consumed with ``x-stream-offset``), and records
appended to topic T are also routed through an AMQP exchange named T when one exists. Each
test produces with one protocol's client and consumes with another's, and checks that keys,
headers and payload bytes (all 256 byte values included) arrive intact, as
docs/cross-protocol.md maps them: the Kafka key travels as the AMQP header ``x-key``.
"""

from __future__ import annotations

import subprocess
import time

import pika
from confluent_kafka import Consumer, Producer

from kafkautil import unique_name

BINARY = bytes(range(256))
DEADLINE_S = 20.0


def amqp(broker) -> pika.BlockingConnection:
    params = pika.ConnectionParameters("127.0.0.1", broker.amqp_port, blocked_connection_timeout=10)
    return pika.BlockingConnection(params)


def stream_messages(ch, queue: str, n: int, offset="first") -> list:
    """Consumes n messages of a stream queue from `offset` (manual acks, prefetch set)."""
    ch.queue_declare(queue, durable=True, arguments={"x-queue-type": "stream"})
    ch.basic_qos(prefetch_count=100)
    got = []
    deadline = time.monotonic() + DEADLINE_S
    for method, props, body in ch.consume(queue, arguments={"x-stream-offset": offset},
                                           inactivity_timeout=1):
        if method is not None:
            got.append((props, body))
            ch.basic_ack(method.delivery_tag)
        if len(got) >= n or time.monotonic() > deadline:
            break
    ch.cancel()
    return got


def test_kcat_produces_pika_consumes_stream(broker):
    topic = unique_name("xk")
    lines = "k1:hello\nk2:world\n"
    subprocess.run(["kcat", "-P", "-b", broker.bootstrap, "-t", topic, "-K:", "-H", "h1=v1"],
                   input=lines.encode(), check=True, timeout=30)
    conn = amqp(broker)
    got = stream_messages(conn.channel(), topic, 2)
    conn.close()
    assert [b for _, b in got] == [b"hello", b"world"]
    for (props, _), key in zip(got, [b"k1", b"k2"]):
        assert props.headers["x-key"] == key
        assert props.headers["h1"] == b"v1"
        assert isinstance(props.headers["x-stream-offset"], int)


def test_confluent_binary_to_pika_with_offsets(broker):
    topic = unique_name("xb")
    p = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all"})
    for i in range(3):
        p.produce(topic, key=bytes([i, 0, 255]), value=BINARY,
                  headers=[("bin", b"\x00\x01\xff"), ("n", str(i).encode())])
    assert p.flush(20) == 0
    conn = amqp(broker)
    got = stream_messages(conn.channel(), topic, 2, offset=1)
    conn.close()
    assert [b for _, b in got] == [BINARY, BINARY]
    assert [p.headers["x-key"] for p, _ in got] == [bytes([1, 0, 255]), bytes([2, 0, 255])]
    assert [p.headers["bin"] for p, _ in got] == [b"\x00\x01\xff"] * 2
    assert [p.headers["x-stream-offset"] for p, _ in got] == [1, 2]


def test_pika_publishes_kafka_consumes(broker):
    queue = unique_name("xp")
    conn = amqp(broker)
    ch = conn.channel()
    ch.confirm_delivery()
    ch.queue_declare(queue, durable=True, arguments={"x-queue-type": "stream"})
    for i in range(3):
        props = pika.BasicProperties(headers={"x-key": f"key{i}".encode(), "h": b"\x00\xff"},
                                     content_type="application/octet-stream", delivery_mode=2)
        ch.basic_publish("", queue, BINARY + bytes([i]), props)
    conn.close()
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": unique_name("g"),
                  "auto.offset.reset": "earliest"})
    c.subscribe([queue])
    got = []
    deadline = time.monotonic() + DEADLINE_S
    while len(got) < 3 and time.monotonic() < deadline:
        m = c.poll(1.0)
        if m is not None and m.error() is None:
            got.append(m)
    c.close()
    assert [m.value() for m in got] == [BINARY + bytes([i]) for i in range(3)]
    assert [m.key() for m in got] == [f"key{i}".encode() for i in range(3)]
    headers = dict(got[0].headers())
    assert headers["h"] == b"\x00\xff"
    assert headers["content-type"] == b"application/octet-stream"


def test_kafka_produce_routes_through_exchange_named_after_topic(broker):
    topic = unique_name("xe")
    queue = unique_name("q")
    conn = amqp(broker)
    ch = conn.channel()
    ch.exchange_declare(topic, "direct")
    ch.queue_declare(queue)
    ch.queue_bind(queue, topic, routing_key="orders")
    p = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all"})
    p.produce(topic, key=b"orders", value=b"routed", headers=[("h", b"1")])
    p.produce(topic, key=b"other", value=b"not routed")
    assert p.flush(20) == 0
    deadline = time.monotonic() + DEADLINE_S
    got = None
    while got is None and time.monotonic() < deadline:
        method, props, body = ch.basic_get(queue, auto_ack=True)
        if method is not None:
            got = (props, body)
        else:
            time.sleep(0.1)
    assert got is not None, "the Kafka record never reached the bound queue"
    props, body = got
    assert body == b"routed"
    assert props.headers["x-key"] == b"orders"
    assert props.headers["h"] == b"1"
    assert ch.basic_get(queue, auto_ack=True)[0] is None
    conn.close()
