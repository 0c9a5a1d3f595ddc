"""basic.get and basic.qos.

How:
- basic.get: 5 messages are published (confirmed); successive basic.get-ok frames
  report message_count 4, 3, 2, 1, 0 (messages left after this one) and delivery tags
  1..5; the next basic.get answers get-empty (pika returns (None, None, None)).
  A basic.get without auto-ack leaves the message unacked: closing the channel
  requeues it, and the next get has redelivered=True.
- prefetch_count=N (per consumer, global=False): with 10 messages ready, a consumer
  receives exactly N deliveries and no more within 0.5 s; acking one lets exactly one
  more through; acking with multiple=True releases the rest.
- global=True (RabbitMQ: shared by all consumers on the channel) vs global=False (each
  consumer): two consumers on one channel, each on its own queue with 10 messages,
  get 3 deliveries in total with ``basic_qos(prefetch_count=3, global_qos=True)`` and
  3 each with global_qos=False.
"""

from __future__ import annotations

import time

from amqputil import get_one


def publish(ch, q, n, prefix="m"):
    for i in range(n):
        ch.basic_publish("", q, f"{prefix}{i}".encode())


def test_basic_get_message_count_and_empty(amqp):
    q = amqp.queue("get")
    conn = amqp.connect()
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        ch.queue_declare(q)
        method, props, body = ch.basic_get(q)
        assert (method, props, body) == (None, None, None)
        publish(ch, q, 5)
        counts, tags, bodies = [], [], []
        for _ in range(5):
            m, _, b = ch.basic_get(q, auto_ack=True)
            counts.append(m.message_count)
            tags.append(m.delivery_tag)
            bodies.append(b)
            assert m.redelivered is False and m.exchange == "" and m.routing_key == q
        assert counts == [4, 3, 2, 1, 0]
        assert tags == [1, 2, 3, 4, 5]
        assert bodies == [f"m{i}".encode() for i in range(5)]
        assert ch.basic_get(q) == (None, None, None)

        ch.basic_publish("", q, b"unacked")
        m, _, _ = ch.basic_get(q, auto_ack=False)
        assert m.redelivered is False
        ch.close()
        ch2 = conn.channel()
        m, _, b = get_one(ch2, q)
        assert (b, m.redelivered, m.message_count) == (b"unacked", True, 0)
    finally:
        conn.close()


def pump(conn, seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        conn.process_data_events(time_limit=0.05)


def wait_for(conn, pred, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "timed out"
        conn.process_data_events(time_limit=0.05)


def test_prefetch_limits_unacked(amqp):
    q = amqp.queue("qos")
    conn = amqp.connect()
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        ch.queue_declare(q)
        publish(ch, q, 10)
        ch.basic_qos(prefetch_count=3)
        got = []
        ch.basic_consume(q, lambda c, m, p, b: got.append((m, b)))
        wait_for(conn, lambda: len(got) >= 3)
        pump(conn, 0.5)
        assert [b for _, b in got] == [b"m0", b"m1", b"m2"]
        ch.basic_ack(got[0][0].delivery_tag)
        wait_for(conn, lambda: len(got) >= 4)
        pump(conn, 0.5)
        assert len(got) == 4
        ch.basic_ack(got[-1][0].delivery_tag, multiple=True)
        wait_for(conn, lambda: len(got) >= 7)
        pump(conn, 0.5)
        assert len(got) == 7
        ch.basic_ack(0, multiple=True)  # delivery tag 0 + multiple = everything so far
        wait_for(conn, lambda: len(got) >= 10)
        ch.basic_ack(0, multiple=True)
        assert [b for _, b in got] == [f"m{i}".encode() for i in range(10)]
        assert ch.queue_declare(q, passive=True).method.message_count == 0
    finally:
        conn.close()


def test_prefetch_global_vs_per_consumer(amqp):
    results = {}
    for global_qos in (False, True):
        qa, qb = amqp.queue(f"qos-a-{global_qos}"), amqp.queue(f"qos-b-{global_qos}")
        conn = amqp.connect()
        try:
            ch = conn.channel()
            ch.confirm_delivery()
            for q in (qa, qb):
                ch.queue_declare(q)
                publish(ch, q, 10)
            ch.basic_qos(prefetch_count=3, global_qos=global_qos)
            got = []
            ch.basic_consume(qa, lambda c, m, p, b: got.append(("a", b)))
            ch.basic_consume(qb, lambda c, m, p, b: got.append(("b", b)))
            wait_for(conn, lambda: len(got) >= 3)
            pump(conn, 0.7)
            results[global_qos] = got
        finally:
            conn.close()
    per_consumer = results[False]
    assert sorted(per_consumer) == sorted([("a", b"m0"), ("a", b"m1"), ("a", b"m2"),
                                           ("b", b"m0"), ("b", b"m1"), ("b", b"m2")])
    assert len(results[True]) == 3
