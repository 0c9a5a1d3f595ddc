"""Durability across a broker restart.

How: before the restart, on a confirm-mode channel:
- a durable queue gets 50 persistent messages (delivery_mode=2) interleaved with 50
  transient ones (delivery_mode=1), plus one persistent message that is delivered and
  left unacked when the connection closes (so it is requeued, not lost);
- a durable topic exchange bound to the durable queue, and a durable queue with
  ``x-message-ttl``/``x-dead-letter-exchange`` arguments;
- a non-durable queue with persistent messages, and a non-durable exchange.
The broker is restarted (Portask: SIGTERM, exit code 0, start on the same data
directory and ports; RabbitMQ: ``$RABBITMQ_RESTART_CMD``, skipped when unset). After
it:
- the durable queue holds exactly the persistent messages, in publish order;
- the durable exchange still routes to it, and the durable queue's arguments are kept
  (redeclaring with the same arguments is ok, with different ones 406);
- the non-durable queue and exchange are gone (passive declare → 404).
"""

from __future__ import annotations

import pika

from amqputil import channel_error, get_all, get_one

N = 50


def test_durable_survives_restart(amqp):
    dq, tq, argq = amqp.queue("durable"), amqp.queue("transient"), amqp.queue("durable-args")
    dex, tex = amqp.exchange("durable-ex"), amqp.exchange("transient-ex")
    args = {"x-message-ttl": 3_600_000, "x-dead-letter-exchange": "some-dlx"}
    conn = amqp.connect()
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        ch.queue_declare(dq, durable=True)
        ch.queue_declare(argq, durable=True, arguments=args)
        ch.queue_declare(tq, durable=False)
        ch.exchange_declare(dex, "topic", durable=True)
        ch.exchange_declare(tex, "fanout", durable=False)
        ch.queue_bind(dq, dex, "orders.#")
        ch.basic_publish("", dq, b"unacked", pika.BasicProperties(delivery_mode=2))
        for i in range(N):
            ch.basic_publish("", dq, f"p{i}".encode(),
                             pika.BasicProperties(delivery_mode=2, message_id=f"id-{i}",
                                                  headers={"i": i}))
            ch.basic_publish("", dq, f"t{i}".encode(), pika.BasicProperties(delivery_mode=1))
        for i in range(5):
            ch.basic_publish("", tq, f"x{i}".encode(), pika.BasicProperties(delivery_mode=2))
        m, _, body = get_one(ch, dq, auto_ack=False)
        assert body == b"unacked"
        assert ch.queue_declare(dq, passive=True).method.message_count == 2 * N
    finally:
        conn.close()

    amqp.restart()

    conn = amqp.connect()
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        got = get_all(ch, dq)
        bodies = [b for _, _, b in got]
        assert bodies == [b"unacked"] + [f"p{i}".encode() for i in range(N)], bodies[:5]
        for i, (_, props, _) in enumerate(got[1:]):
            assert props.message_id == f"id-{i}" and props.headers == {"i": i}
            assert props.delivery_mode == 2

        ch.exchange_declare(dex, "topic", durable=True, passive=True)
        ch.basic_publish(dex, "orders.new", b"routed-after-restart")
        assert [b for _, _, b in get_all(ch, dq)] == [b"routed-after-restart"]

        ch.queue_declare(argq, durable=True, arguments=args)
        e = channel_error(ch.queue_declare, argq, durable=True,
                          arguments={"x-message-ttl": 1000, "x-dead-letter-exchange": "some-dlx"})
        assert e.reply_code == 406

        e = channel_error(conn.channel().queue_declare, tq, passive=True)
        assert (e.reply_code, e.reply_text) == (404, f"NOT_FOUND - no queue '{tq}' in vhost '/'")
        e = channel_error(conn.channel().exchange_declare, tex, passive=True)
        assert (e.reply_code, e.reply_text) == \
            (404, f"NOT_FOUND - no exchange '{tex}' in vhost '/'")
    finally:
        conn.close()


def test_long_durable_queue_drains_in_order_with_basic_get_after_restart(amqp):
    """More persistent messages than a queue keeps in memory (Portask pages the rest to its
    store): every basic.get after a restart answers the next message, never get-empty
    before the queue is empty, also when the head must be read back from the store."""
    q = amqp.queue("long")
    count = 6_000
    body = b"x" * 1000
    conn = amqp.connect()
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        ch.queue_declare(q, durable=True)
        for i in range(count):
            ch.basic_publish("", q, body + str(i).encode(),
                             pika.BasicProperties(delivery_mode=2))
    finally:
        conn.close()

    amqp.restart()

    conn = amqp.connect()
    try:
        ch = conn.channel()
        assert ch.queue_declare(q, durable=True, passive=True).method.message_count == count
        got = [b for _, _, b in get_all(ch, q, limit=count + 1)]
        assert len(got) == count
        assert got == [body + str(i).encode() for i in range(count)]
    finally:
        conn.close()
