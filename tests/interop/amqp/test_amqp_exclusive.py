"""Exclusive queues belong to their declaring connection.

How: connection A declares an exclusive queue (also a server-named one). While A is
open, connection B
- declaring the same name (passive or not) gets channel.close 405 RESOURCE_LOCKED
  (text starts with "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue");
- consuming from it gets 405 as well;
- A itself can use it from a second channel.
When A closes, the queue is deleted: a passive declare from B then gets channel.close
404 NOT_FOUND with the text "NOT_FOUND - no queue '<name>' in vhost '/'" (polled for
a bounded time, since deletion follows the close). The server-named queue is named
``amq.gen-...``.
"""

from __future__ import annotations

import time

import pika.exceptions

from amqputil import channel_error, wait_count


def test_exclusive_locked_then_deleted_on_close(amqp):
    q = amqp.queue("excl")
    a = amqp.connect()
    b = amqp.connect()
    try:
        ach = a.channel()
        ach.queue_declare(q, exclusive=True)
        gen = ach.queue_declare("", exclusive=True).method.queue
        assert gen.startswith("amq.gen-"), gen

        e = channel_error(b.channel().queue_declare, q, exclusive=True)
        assert e.reply_code == 405
        assert e.reply_text.startswith(
            "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue"), e.reply_text
        assert f"'{q}'" in e.reply_text
        e = channel_error(b.channel().queue_declare, q, passive=True)
        assert e.reply_code == 405
        e = channel_error(b.channel().queue_declare, q)
        assert e.reply_code == 405
        bch = b.channel()
        e = channel_error(bch.basic_consume, q, lambda *a: None)
        assert e.reply_code == 405

        a2 = a.channel()
        a2.confirm_delivery()
        a2.basic_publish("", q, b"mine")
        assert wait_count(a, q, 1) == 1

        a.close()
        deadline = time.monotonic() + 10
        while True:
            try:
                b.channel().queue_declare(q, passive=True)
            except pika.exceptions.ChannelClosedByBroker as err:
                assert err.reply_code == 404
                assert err.reply_text == f"NOT_FOUND - no queue '{q}' in vhost '/'"
                break
            assert time.monotonic() < deadline, "exclusive queue still exists after close"
            time.sleep(0.05)
        e = channel_error(b.channel().queue_declare, gen, passive=True)
        assert e.reply_code == 404
        # The name is free again.
        bch = b.channel()
        bch.queue_declare(q, exclusive=True)
        bch.queue_delete(q)
    finally:
        for c in (a, b):
            if c.is_open:
                c.close()
