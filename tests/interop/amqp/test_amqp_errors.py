"""Protocol errors a client can provoke with ordinary calls, with RabbitMQ's reply codes
and the texts that client frameworks look for.

How (pika BlockingConnection unless noted; channel errors surface as
ChannelClosedByBroker, connection errors as ConnectionClosedByBroker):
- redeclaring a queue or exchange with different properties or arguments →
  406, text starting "PRECONDITION_FAILED - inequivalent arg '<name>'";
- declaring ``amq.foo`` (exchange or queue) → 403 "ACCESS_REFUSED - exchange|queue name
  'amq.foo' contains reserved prefix 'amq.*'"; deleting ``amq.direct`` → 403;
  passive declare of ``amq.direct`` → ok;
- passive declare / bind / consume / publish involving a missing queue or exchange →
  404 "NOT_FOUND - no queue|exchange '<name>' in vhost '/'";
- wrong password or unknown user → the connection is refused: pika raises
  ProbableAuthenticationError / AuthenticationError; on the wire (amqpwire) the server
  sends connection.close 403 "ACCESS_REFUSED - Login was refused using authentication
  mechanism PLAIN..." before closing;
- queue.delete / exchange.delete of a missing entity → delete-ok (idempotent);
  queue.delete-ok of a missing queue reports message_count 0;
- basic.ack of an unknown delivery tag → channel.close 406 "PRECONDITION_FAILED -
  unknown delivery tag 42" (seen on the next synchronous call);
- basic.recover(requeue=False) → connection.close 540 "NOT_IMPLEMENTED - requeue=false";
  basic.recover(requeue=True) → recover-ok;
- basic.publish with immediate=True (pika cannot express it: raw frames) →
  connection.close 540 "NOT_IMPLEMENTED - immediate=true", class 60 method 40.
After each connection-level error a new pika connection still works.
"""

from __future__ import annotations

import pika
import pika.exceptions
import pytest

import amqpwire as w
from amqputil import assert_works, channel_error, connection_error


@pytest.fixture
def conn(amqp):
    c = amqp.connect()
    yield c
    if c.is_open:
        c.close()


INEQUIVALENT = "PRECONDITION_FAILED - inequivalent arg"


@pytest.mark.parametrize("first,second,arg", [
    (dict(), dict(durable=True), "durable"),
    (dict(), dict(auto_delete=True), "auto_delete"),
    (dict(arguments={"x-message-ttl": 1000}), dict(arguments={"x-message-ttl": 2000}),
     "x-message-ttl"),
    (dict(arguments={"x-message-ttl": 1000}), dict(), "x-message-ttl"),
    (dict(), dict(arguments={"x-max-priority": 5}), "x-max-priority"),
    (dict(arguments={"x-dead-letter-exchange": "a"}),
     dict(arguments={"x-dead-letter-exchange": "b"}), "x-dead-letter-exchange"),
], ids=["durable", "auto_delete", "ttl-changed", "ttl-dropped", "priority-added", "dlx-changed"])
def test_queue_redeclare_inequivalent(amqp, conn, first, second, arg):
    q = amqp.queue("ineq")
    conn.channel().queue_declare(q, **first)
    e = channel_error(conn.channel().queue_declare, q, **second)
    assert e.reply_code == 406
    assert e.reply_text.startswith(f"{INEQUIVALENT} '{arg}' for queue '{q}' in vhost '/'"), \
        e.reply_text
    # The same declaration again is fine.
    ok = conn.channel().queue_declare(q, **first)
    assert ok.method.queue == q


@pytest.mark.parametrize("second,arg", [
    (dict(exchange_type="fanout"), "type"),
    (dict(exchange_type="direct", durable=True), "durable"),
    (dict(exchange_type="direct", auto_delete=True), "auto_delete"),
])
def test_exchange_redeclare_inequivalent(amqp, conn, second, arg):
    ex = amqp.exchange("ineq-ex")
    conn.channel().exchange_declare(ex, "direct")
    e = channel_error(conn.channel().exchange_declare, ex, **second)
    assert e.reply_code == 406
    assert e.reply_text.startswith(f"{INEQUIVALENT} '{arg}' for exchange '{ex}' in vhost '/'"), \
        e.reply_text


def test_reserved_amq_prefix(conn):
    e = channel_error(conn.channel().exchange_declare, "amq.foo", "direct")
    assert (e.reply_code, e.reply_text) == \
        (403, "ACCESS_REFUSED - exchange name 'amq.foo' contains reserved prefix 'amq.*'")
    e = channel_error(conn.channel().queue_declare, "amq.foo")
    assert (e.reply_code, e.reply_text) == \
        (403, "ACCESS_REFUSED - queue name 'amq.foo' contains reserved prefix 'amq.*'")
    e = channel_error(conn.channel().exchange_delete, "amq.direct")
    assert e.reply_code == 403
    assert e.reply_text.startswith("ACCESS_REFUSED - ")
    ch = conn.channel()
    ch.exchange_declare("amq.direct", "direct", passive=True)
    for name, kind in [("amq.fanout", "fanout"), ("amq.topic", "topic"),
                       ("amq.headers", "headers"), ("amq.match", "headers")]:
        ch.exchange_declare(name, kind, passive=True)


def test_not_found(amqp, conn):
    q, ex = amqp.queue("missing"), amqp.exchange("missing")
    e = channel_error(conn.channel().queue_declare, q, passive=True)
    assert (e.reply_code, e.reply_text) == (404, f"NOT_FOUND - no queue '{q}' in vhost '/'")
    e = channel_error(conn.channel().exchange_declare, ex, passive=True)
    assert (e.reply_code, e.reply_text) == (404, f"NOT_FOUND - no exchange '{ex}' in vhost '/'")
    e = channel_error(conn.channel().queue_bind, q, "amq.direct", "k")
    assert (e.reply_code, e.reply_text) == (404, f"NOT_FOUND - no queue '{q}' in vhost '/'")
    e = channel_error(conn.channel().basic_consume, q, lambda *a: None)
    assert (e.reply_code, e.reply_text) == (404, f"NOT_FOUND - no queue '{q}' in vhost '/'")
    e = channel_error(conn.channel().basic_get, q)
    assert e.reply_code == 404
    ch = conn.channel()
    ch.basic_publish(ex, "k", b"x")  # asynchronous: the error arrives on the next call
    e = channel_error(ch.queue_declare, "", exclusive=True)
    assert (e.reply_code, e.reply_text) == (404, f"NOT_FOUND - no exchange '{ex}' in vhost '/'")


@pytest.mark.parametrize("user,password", [("guest", "wrong"), ("nobody", "guest")])
def test_wrong_credentials(amqp, user, password):
    with pytest.raises((pika.exceptions.ProbableAuthenticationError,
                        pika.exceptions.AuthenticationError)):
        amqp.connect(credentials=pika.PlainCredentials(user, password))
    with w.RawConnection(amqp.host, amqp.port) as raw:
        raw.send(w.PROTOCOL_HEADER)
        raw.expect_method(w.CONNECTION_START)
        raw.send(w.start_ok(user, password))
        close = raw.expect_close()
        assert close is not None and close.kind == "connection", close
        assert close.reply_code == 403
        assert close.reply_text.startswith("ACCESS_REFUSED - Login was refused using "
                                           "authentication mechanism PLAIN"), close.reply_text
    assert_works(amqp)


def test_delete_missing_is_ok(amqp, conn):
    ch = conn.channel()
    ok = ch.queue_delete(amqp.queue("never-declared"))
    assert isinstance(ok.method, pika.spec.Queue.DeleteOk) and ok.method.message_count == 0
    ok = ch.exchange_delete(amqp.exchange("never-declared"))
    assert isinstance(ok.method, pika.spec.Exchange.DeleteOk)
    ch.queue_declare("", exclusive=True)  # the channel is still open
    assert ch.is_open


def test_ack_unknown_delivery_tag(conn):
    ch = conn.channel()
    ch.basic_ack(42)
    e = channel_error(ch.queue_declare, "", exclusive=True)
    assert (e.reply_code, e.reply_text) == (406, "PRECONDITION_FAILED - unknown delivery tag 42")
    ch = conn.channel()
    ch.basic_nack(7, multiple=True)
    e = channel_error(ch.queue_declare, "", exclusive=True)
    assert (e.reply_code, e.reply_text) == (406, "PRECONDITION_FAILED - unknown delivery tag 7")
    assert conn.is_open


def test_basic_recover(amqp, conn):
    ch = conn.channel()
    ch.basic_recover(requeue=True)
    e = connection_error(conn.channel().basic_recover, requeue=False)
    assert (e.reply_code, e.reply_text) == (540, "NOT_IMPLEMENTED - requeue=false")
    assert not conn.is_open
    assert_works(amqp)


def test_publish_immediate_not_implemented(amqp):
    q = amqp.queue("immediate")
    with w.RawConnection(amqp.host, amqp.port) as raw:
        tune = raw.handshake(amqp.user, amqp.password, amqp.vhost)
        raw.open_channel(1)
        raw.send(w.queue_declare(1, q))
        raw.expect_method(w.QUEUE_DECLARE_OK)
        raw.send(w.publish_message(1, "", q, b"now-or-never", tune.frame_max, immediate=True))
        close = raw.expect_close()
        assert close is not None, "connection dropped without connection.close"
        assert (close.kind, close.reply_code, close.reply_text, close.class_id, close.method_id) == \
            ("connection", 540, "NOT_IMPLEMENTED - immediate=true", 60, 40)
    assert_works(amqp)
