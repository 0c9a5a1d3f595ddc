"""pika SelectConnection (asynchronous callbacks): declare, publish 1,000 with
confirms, consume them with manual acks, close cleanly.

How: a callback-driven state machine on pika's own ioloop: open connection → open
channel → confirm_select → queue.declare → publish 1,000 messages (confirms are
counted by delivery tag, honouring multiple=True) → when all are confirmed,
basic.consume with prefetch 100 and ack each delivery → after 1,000, basic.cancel →
queue.delete (message_count 0) → channel.close → connection.close. A timer bounds
the whole run. Checks: every publish acked (no nack), deliveries in order, none
redelivered, the channel closed with (0, 'Normal shutdown') and the connection with
ConnectionClosedByClient(200, 'Normal shutdown').
"""

from __future__ import annotations

import pika
import pika.exceptions
import pytest

N = 1_000
TIMEOUT_S = 60


class Flow:
    def __init__(self, params: pika.ConnectionParameters, queue: str):
        self.queue = queue
        self.acked: set[int] = set()
        self.nacked: list[int] = []
        self.published = 0
        self.bodies: list[bytes] = []
        self.redelivered = 0
        self.delete_count: int | None = None
        self.channel_close_reason = None
        self.connection_close_reason = None
        self.errors: list[str] = []
        self.timed_out = False
        self.consuming = False
        self.channel = None
        self.conn = pika.SelectConnection(
            params, on_open_callback=self.on_open,
            on_open_error_callback=self.on_open_error,
            on_close_callback=self.on_connection_closed)

    def run(self) -> None:
        self.conn.ioloop.call_later(TIMEOUT_S, self.on_timeout)
        self.conn.ioloop.start()

    def on_timeout(self) -> None:
        self.timed_out = True
        if self.conn.is_open:
            self.conn.close()
        else:
            self.conn.ioloop.stop()

    def on_open_error(self, _conn, err) -> None:
        self.errors.append(f"open error: {err!r}")
        self.conn.ioloop.stop()

    def on_connection_closed(self, _conn, reason) -> None:
        self.connection_close_reason = reason
        self.conn.ioloop.stop()

    def on_open(self, conn) -> None:
        conn.channel(on_open_callback=self.on_channel_open)

    def on_channel_open(self, ch) -> None:
        self.channel = ch
        ch.add_on_close_callback(self.on_channel_closed)
        ch.confirm_delivery(ack_nack_callback=self.on_confirm,
                            callback=lambda _f: ch.queue_declare(self.queue,
                                                                 callback=self.on_declared))

    def on_channel_closed(self, _ch, reason) -> None:
        self.channel_close_reason = reason
        if self.conn.is_open:
            self.conn.close()

    def on_declared(self, frame) -> None:
        assert frame.method.queue == self.queue
        for i in range(N):
            self.channel.basic_publish("", self.queue, f"select-{i}".encode(),
                                       pika.BasicProperties(delivery_mode=1))
            self.published += 1

    def on_confirm(self, frame) -> None:
        m = frame.method
        settled = self.acked | set(self.nacked)
        if m.multiple:
            tags = [t for t in range(1, m.delivery_tag + 1) if t not in settled]
        else:
            tags = [m.delivery_tag]
        if isinstance(m, pika.spec.Basic.Nack):
            self.nacked.extend(tags)
        else:
            self.acked.update(tags)
        if len(self.acked) + len(self.nacked) >= N and not self.consuming:
            self.consuming = True
            self.channel.basic_qos(prefetch_count=100, callback=lambda _f: self.channel.basic_consume(
                self.queue, self.on_message, consumer_tag="select-consumer"))

    def on_message(self, ch, method, props, body) -> None:
        self.bodies.append(body)
        if method.redelivered:
            self.redelivered += 1
        ch.basic_ack(method.delivery_tag)
        if len(self.bodies) == N:
            ch.basic_cancel("select-consumer", callback=self.on_cancelled)

    def on_cancelled(self, _frame) -> None:
        self.channel.queue_delete(self.queue, callback=self.on_deleted)

    def on_deleted(self, frame) -> None:
        self.delete_count = frame.method.message_count
        self.channel.close()


def test_select_connection_publish_consume_1000(amqp):
    q = amqp.queue("select-1k")
    flow = Flow(amqp.params(), q)
    flow.run()
    assert not flow.errors, flow.errors
    assert not flow.timed_out, (f"timed out after {TIMEOUT_S}s: published={flow.published} "
                                f"acked={len(flow.acked)} consumed={len(flow.bodies)}")
    assert flow.nacked == []
    assert flow.acked == set(range(1, N + 1))
    assert flow.bodies == [f"select-{i}".encode() for i in range(N)]
    assert flow.redelivered == 0
    assert flow.delete_count == 0
    assert isinstance(flow.channel_close_reason, pika.exceptions.ChannelClosedByClient)
    assert (flow.channel_close_reason.reply_code, flow.channel_close_reason.reply_text) == \
        (0, "Normal shutdown")
    reason = flow.connection_close_reason
    assert isinstance(reason, pika.exceptions.ConnectionClosedByClient), repr(reason)
    assert (reason.reply_code, reason.reply_text) == (200, "Normal shutdown")
