"""Pipelined publishing on one connection (as fast clients do: many publishes written
back to back without waiting for anything).

How: a raw connection (amqpwire) declares a fresh queue and writes N basic.publish +
content header + body frames in large writes (500 messages per write, several MB in
total), never reading in between; then a passive queue.declare must be answered
within 30 s, and report message_count N (polled for up to 30 s: RabbitMQ answers
before its queue process has counted every message). With 1 KiB bodies and frame_max 4096 the bodies are
split over several body frames. In confirm mode (confirm.select first) the broker must
confirm every publish (basic.ack, multiple allowed) and the count must be N as well.
A pika basic.get then sees the first message intact.
"""

from __future__ import annotations

import struct
import time

import pytest

import amqpwire as w
from amqputil import get_one

CONFIRM_SELECT = (85, 10)
CONFIRM_SELECT_OK = (85, 11)
BASIC_ACK = (60, 80)
BATCH = 500


@pytest.mark.parametrize("count,size,frame_max,confirms", [
    (20_000, 100, None, False),
    (4_000, 1024, None, False),
    (2_000, 1024, 4096, False),
    (2_000, 10_000, 4096, False),
    (10_000, 100, None, True),
], ids=["20k-100B", "4k-1KiB", "2k-1KiB-frame4096", "2k-10KB-frame4096", "10k-100B-confirms"])
def test_pipelined_publish(amqp, count, size, frame_max, confirms):
    q = amqp.queue("pipelined")
    with w.RawConnection(amqp.host, amqp.port, timeout=30) as c:
        tune = c.handshake(amqp.user, amqp.password, amqp.vhost, frame_max=frame_max)
        c.open_channel(1)
        c.send(w.queue_declare(1, q))
        c.expect_method(w.QUEUE_DECLARE_OK)
        if confirms:
            c.send(w.method_frame(1, CONFIRM_SELECT, w.bits(False)))
            c.expect_method(CONFIRM_SELECT_OK)
        body = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
        one = w.publish_message(1, "", q, body, tune.frame_max)
        for start in range(0, count, BATCH):
            c.send(one * min(BATCH, count - start))
        if confirms:
            acked = 0
            deadline = time.monotonic() + 60
            while acked < count:
                assert time.monotonic() < deadline, f"only {acked} of {count} confirmed"
                f = c.read_method(timeout=30)
                assert f.method == BASIC_ACK, w.parse_close(f) or f
                (tag,) = struct.unpack(">Q", f.args[:8])
                acked = max(acked, tag)
            assert acked == count
        # The first passive declare proves the broker read everything before it; the
        # count may lag behind the channel for a moment (RabbitMQ's queue process), so
        # poll it (bounded).
        deadline = time.monotonic() + 30
        while True:
            c.send(w.queue_declare(1, q, passive=True))
            ok = c.expect_method(w.QUEUE_DECLARE_OK, timeout=30)
            name_len = ok.args[0]
            assert ok.args[1:1 + name_len].decode() == q
            msg_count, consumers = struct.unpack(">II", ok.args[1 + name_len:9 + name_len])
            if msg_count == count or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert (msg_count, consumers) == (count, 0)
    conn = amqp.connect()
    try:
        ch = conn.channel()
        _, _, got = get_one(ch, q)
        assert got == body
        ch.queue_delete(q)
    finally:
        conn.close()
