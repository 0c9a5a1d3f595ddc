"""``x-max-priority`` queues deliver the highest priority first.

How: a queue declared with ``x-max-priority: 10`` receives, with no consumer attached
and publisher confirms on, messages of priorities 1, 3, none (= 0), 7, 10, 3, 255
(above the maximum: treated as 10) and 7. A consumer (prefetch 1, manual acks) then
gets them by priority, highest first, and in publish order among equal priorities:
10, 255, 7, 7, 3, 3, 1, none. basic.get on a second filled queue gives the same order.
"""

from __future__ import annotations

import pika

from amqputil import consume_n, get_all

PUBLISH = [("p1", 1), ("p3a", 3), ("none", None), ("p7a", 7), ("p10", 10), ("p3b", 3),
           ("p255", 255), ("p7b", 7)]
EXPECTED = [b"p10", b"p255", b"p7a", b"p7b", b"p3a", b"p3b", b"p1", b"none"]


def fill(ch, q):
    ch.queue_declare(q, arguments={"x-max-priority": 10})
    for body, prio in PUBLISH:
        ch.basic_publish("", q, body.encode(), pika.BasicProperties(priority=prio))


def test_priority_order_consume_and_get(amqp):
    q1, q2 = amqp.queue("prio-consume"), amqp.queue("prio-get")
    conn = amqp.connect()
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        fill(ch, q1)
        fill(ch, q2)
        ch.basic_qos(prefetch_count=1)
        got = consume_n(ch, q1, len(PUBLISH), timeout=20)
        assert [b for _, _, b in got] == EXPECTED
        assert [p.priority for _, p, _ in got] == [10, 255, 7, 7, 3, 3, 1, None]
        assert [b for _, _, b in get_all(ch, q2)] == EXPECTED
    finally:
        conn.close()
