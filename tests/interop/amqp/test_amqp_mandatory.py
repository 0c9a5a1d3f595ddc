"""Mandatory publishing to an unroutable key → basic.return 312 NO_ROUTE.

How:
- blocking pika without confirms: ``add_on_return_callback`` receives basic.return
  with reply_code 312, reply_text 'NO_ROUTE', the exchange, routing key, body and
  properties of the message; a routable mandatory publish is not returned.
- blocking pika with ``confirm_delivery()``: ``basic_publish(mandatory=True)`` raises
  ``UnroutableError`` carrying the returned message (the return arrives before the
  basic.ack); a non-mandatory unroutable publish is confirmed and silently dropped.
- SelectConnection: the return callback gets the same values, then the publisher
  confirm arrives as basic.ack (not nack).
"""

from __future__ import annotations

import pika
import pika.exceptions
import pytest

from amqputil import get_all


def test_return_callback_312_no_route(amqp):
    ex = amqp.exchange("mand")
    q = amqp.queue("mand-q")
    conn = amqp.connect()
    try:
        ch = conn.channel()
        ch.exchange_declare(ex, "direct")
        ch.queue_declare(q)
        ch.queue_bind(q, ex, "routable")
        returned = []
        ch.add_on_return_callback(lambda c, method, props, body: returned.append((method, props, body)))
        ch.basic_publish(ex, "nowhere", b"lost", pika.BasicProperties(message_id="r1"),
                         mandatory=True)
        ch.basic_publish(ex, "routable", b"kept", mandatory=True)
        ch.basic_publish(ex, "nowhere", b"silently-dropped")
        ch.basic_publish("", q + "-missing", b"default-exchange", mandatory=True)
        # queue.declare is a round trip: any return for earlier publishes is in by now.
        ch.queue_declare(q, passive=True)
        conn.process_data_events(time_limit=0.3)
        assert len(returned) == 2
        m, props, body = returned[0]
        assert (m.reply_code, m.reply_text, m.exchange, m.routing_key) == \
            (312, "NO_ROUTE", ex, "nowhere")
        assert body == b"lost" and props.message_id == "r1"
        m, _, body = returned[1]
        assert (m.reply_code, m.reply_text, m.exchange, m.routing_key, body) == \
            (312, "NO_ROUTE", "", q + "-missing", b"default-exchange")
        assert [b for _, _, b in get_all(ch, q)] == [b"kept"]
    finally:
        conn.close()


def test_unroutable_error_under_confirms(amqp):
    ex = amqp.exchange("mand-confirm")
    conn = amqp.connect()
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        ch.exchange_declare(ex, "topic")
        with pytest.raises(pika.exceptions.UnroutableError) as info:
            ch.basic_publish(ex, "no.binding", b"bounced", mandatory=True)
        msgs = info.value.messages
        assert len(msgs) == 1
        assert msgs[0].method.reply_code == 312
        assert msgs[0].method.reply_text == "NO_ROUTE"
        assert msgs[0].body == b"bounced"
        # Without mandatory the broker confirms and drops it.
        ch.basic_publish(ex, "no.binding", b"dropped")
        assert ch.is_open
    finally:
        conn.close()


def test_select_connection_return_then_ack(amqp):
    ex = amqp.exchange("mand-select")
    events: list = []
    state = {"ch": None}

    def on_open(conn):
        conn.channel(on_open_callback=on_channel)

    def on_channel(ch):
        state["ch"] = ch
        ch.add_on_return_callback(
            lambda _c, m, p, b: events.append(("return", m.reply_code, m.reply_text, b)))
        ch.confirm_delivery(
            ack_nack_callback=lambda f: on_confirm(ch, f),
            callback=lambda _f: ch.exchange_declare(ex, "fanout", callback=lambda _f2: publish(ch)))

    def publish(ch):
        ch.basic_publish(ex, "k", b"nobody-bound", mandatory=True)

    def on_confirm(ch, frame):
        events.append(("confirm", type(frame.method).__name__, frame.method.delivery_tag))
        ch.connection.close()

    conn = pika.SelectConnection(amqp.params(), on_open_callback=on_open,
                                 on_open_error_callback=lambda c, e: c.ioloop.stop(),
                                 on_close_callback=lambda c, r: c.ioloop.stop())
    conn.ioloop.call_later(20, lambda: conn.close() if conn.is_open else conn.ioloop.stop())
    conn.ioloop.start()
    assert events == [("return", 312, "NO_ROUTE", b"nobody-bound"), ("confirm", "Ack", 1)]
