"""pika BlockingConnection: 10,000 messages with publisher confirms and manual acks.

How: one connection publishes 10,000 numbered persistent messages to a fresh durable
queue on a channel in confirm mode (``confirm_delivery()``: every basic_publish waits
for its basic.ack, so a nack or return would raise). A second connection consumes
with prefetch 500 and acks every message by its delivery tag. Every message must
arrive exactly once, in publish order, with redelivered=False, its body and
properties intact; afterwards the queue is empty (message_count 0).
"""

from __future__ import annotations

import pika

from amqputil import consume_n, message_count

N = 10_000


def test_blocking_publish_consume_10k_confirms_manual_acks(amqp):
    q = amqp.queue("blocking-10k")
    pub = amqp.connect()
    try:
        ch = pub.channel()
        ch.confirm_delivery()
        ok = ch.queue_declare(q, durable=True)
        assert ok.method.queue == q
        assert ok.method.message_count == 0 and ok.method.consumer_count == 0
        props = pika.BasicProperties(delivery_mode=2, content_type="text/plain",
                                     headers={"seq": 0})
        for i in range(N):
            props.headers = {"seq": i}
            ch.basic_publish("", q, f"message-{i}".encode(), props)
        assert message_count(pub, q) == N
    finally:
        pub.close()

    con = amqp.connect()
    try:
        ch = con.channel()
        ch.basic_qos(prefetch_count=500)
        got = consume_n(ch, q, N, timeout=90)
        for i, (method, props, body) in enumerate(got):
            assert body == f"message-{i}".encode(), f"out of order at {i}: {body!r}"
            assert method.redelivered is False
            assert method.routing_key == q and method.exchange == ""
            assert props.headers == {"seq": i}
            assert props.delivery_mode == 2 and props.content_type == "text/plain"
        tags = [m.delivery_tag for m, _, _ in got]
        assert tags == list(range(1, N + 1))
        assert message_count(con, q) == 0
        # Nothing more arrives.
        method, _, _ = ch.basic_get(q)
        assert method is None
        ch.queue_delete(q)
    finally:
        con.close()
