"""Requeue and dead-lettering: nack/reject, x-death headers, queue and message TTL.

How (pika BlockingConnection, publisher confirms so every message is enqueued before
the next step):
- basic.nack(requeue=True) of a delivered message → it is delivered again with
  redelivered=True, same body; after an ack the queue is empty.
- basic.reject(requeue=False) on a queue with ``x-dead-letter-exchange`` → the message
  arrives in the queue bound to the DLX with the header ``x-death`` = one table
  {count: 1, reason: 'rejected', queue: <source queue>, exchange: <exchange it was
  published to>, routing-keys: [<its routing key>], time: <timestamp>} and
  ``x-first-death-reason/queue/exchange``; the original headers are kept. A second
  rejection cycle through the same queue increments count to 2 in the same entry.
- per-queue ``x-message-ttl`` → the message is dead-lettered with reason 'expired',
  routed with ``x-dead-letter-routing-key`` when given (routing-keys keeps the
  original key).
- per-message ``expiration`` → reason 'expired', the entry carries
  ``original-expiration`` and the dead-lettered message has no expiration property.
"""

from __future__ import annotations

import datetime
import time

import pika

from amqputil import get_one, message_count


def setup_dlx(ch, amqp, src_args: dict | None = None, dlx_type: str = "fanout",
              bind_key: str = ""):
    dlx = amqp.exchange("dlx")
    dlq = amqp.queue("dlq")
    src = amqp.queue("src")
    ch.exchange_declare(dlx, dlx_type)
    ch.queue_declare(dlq)
    ch.queue_bind(dlq, dlx, routing_key=bind_key)
    args = {"x-dead-letter-exchange": dlx}
    args.update(src_args or {})
    ch.queue_declare(src, arguments=args)
    return src, dlx, dlq


def test_nack_requeue_sets_redelivered(amqp):
    q = amqp.queue("nack")
    conn = amqp.connect()
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        ch.queue_declare(q)
        ch.basic_publish("", q, b"again")
        m1, _, b1 = get_one(ch, q, auto_ack=False)
        assert (b1, m1.redelivered, m1.message_count) == (b"again", False, 0)
        ch.basic_nack(m1.delivery_tag, requeue=True)
        m2, _, b2 = get_one(ch, q, auto_ack=False)
        assert (b2, m2.redelivered) == (b"again", True)
        assert m2.delivery_tag == m1.delivery_tag + 1
        ch.basic_reject(m2.delivery_tag, requeue=True)
        # Through a consumer as well.
        got = []
        for method, _, body in ch.consume(q, inactivity_timeout=5):
            assert method is not None, "requeued message not redelivered to the consumer"
            got.append((body, method.redelivered))
            ch.basic_ack(method.delivery_tag)
            break
        ch.cancel()
        assert got == [(b"again", True)]
        assert message_count(conn, q) == 0
    finally:
        conn.close()


def check_death(entry: dict, reason: str, queue: str, exchange: str, keys: list[str],
                count: int = 1) -> None:
    assert entry["count"] == count
    assert entry["reason"] == reason
    assert entry["queue"] == queue
    assert entry["exchange"] == exchange
    assert entry["routing-keys"] == keys
    t = entry["time"]
    assert isinstance(t, datetime.datetime), f"x-death time is {type(t)}: {t!r}"
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    assert abs((now - t.replace(tzinfo=None)).total_seconds()) < 300


def test_reject_to_dlx_x_death(amqp):
    conn = amqp.connect()
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        src, dlx, dlq = setup_dlx(ch, amqp)
        ch.basic_publish("", src, b"doomed",
                         pika.BasicProperties(headers={"keep": "me"}, message_id="m-1"))
        m, _, _ = get_one(ch, src, auto_ack=False)
        ch.basic_reject(m.delivery_tag, requeue=False)
        dm, props, body = get_one(ch, dlq)
        assert body == b"doomed"
        assert props.message_id == "m-1"
        assert dm.exchange == dlx and dm.routing_key == src
        assert dm.redelivered is False
        h = props.headers
        assert h["keep"] == "me"
        assert isinstance(h["x-death"], list) and len(h["x-death"]) == 1
        entry = h["x-death"][0]
        assert set(entry) == {"count", "reason", "queue", "time", "exchange", "routing-keys"}
        check_death(entry, "rejected", src, "", [src])
        assert h["x-first-death-reason"] == "rejected"
        assert h["x-first-death-queue"] == src
        assert h["x-first-death-exchange"] == ""
        assert message_count(conn, src) == 0

        # Send it around again: the same (queue, reason) entry is counted up.
        ch.basic_publish("", src, body, pika.BasicProperties(headers=h))
        m, _, _ = get_one(ch, src, auto_ack=False)
        ch.basic_nack(m.delivery_tag, requeue=False)
        _, props2, _ = get_one(ch, dlq)
        deaths = props2.headers["x-death"]
        assert len(deaths) == 1
        check_death(deaths[0], "rejected", src, "", [src], count=2)
        assert props2.headers["x-first-death-queue"] == src
    finally:
        conn.close()


def test_queue_ttl_expires_to_dlx(amqp):
    conn = amqp.connect()
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        src, dlx, dlq = setup_dlx(ch, amqp, {"x-message-ttl": 200,
                                             "x-dead-letter-routing-key": "expired-key"},
                                  dlx_type="direct", bind_key="expired-key")
        ex = amqp.exchange("origin")
        ch.exchange_declare(ex, "direct")
        ch.queue_bind(src, ex, routing_key="orig-key")
        t0 = time.monotonic()
        ch.basic_publish(ex, "orig-key", b"short-lived")
        dm, props, body = get_one(ch, dlq, timeout=10)
        assert time.monotonic() - t0 >= 0.15, "expired before the queue TTL"
        assert body == b"short-lived"
        assert dm.exchange == dlx and dm.routing_key == "expired-key"
        entry = props.headers["x-death"][0]
        check_death(entry, "expired", src, ex, ["orig-key"])
        assert props.headers["x-first-death-reason"] == "expired"
        assert props.headers["x-first-death-queue"] == src
        assert props.headers["x-first-death-exchange"] == ex
        assert message_count(conn, src) == 0
    finally:
        conn.close()


def test_per_message_expiration(amqp):
    conn = amqp.connect()
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        src, dlx, dlq = setup_dlx(ch, amqp)
        ch.basic_publish("", src, b"keep", pika.BasicProperties(expiration="60000"))
        ch.basic_publish("", src, b"drop", pika.BasicProperties(expiration="100"))
        # The expired message sits behind an unexpired one; it still expires when it
        # reaches the head, so consume the first to let it get there.
        m, props, body = get_one(ch, src)
        assert body == b"keep" and props.expiration == "60000"
        dm, props, body = get_one(ch, dlq, timeout=10)
        assert body == b"drop"
        assert props.expiration is None
        entry = props.headers["x-death"][0]
        assert entry["original-expiration"] == "100"
        check_death({k: v for k, v in entry.items() if k != "original-expiration"},
                    "expired", src, "", [src])
        assert message_count(conn, src) == 0
        # An already-expired message is never delivered to a consumer.
        ch.basic_publish("", src, b"zero", pika.BasicProperties(expiration="0"))
        time.sleep(0.2)
        method, _, _ = ch.basic_get(src)
        assert method is None
        _, props, body = get_one(ch, dlq, timeout=10)
        assert body == b"zero" and props.headers["x-death"][0]["reason"] == "expired"
    finally:
        conn.close()
