"""Malformed input on raw sockets (amqpwire) ends the offending connection only.

How: a pika connection with an open channel is made first and kept open; then each
case opens a raw socket, sends bad bytes and reads the server's reaction with a time
bound; afterwards the pika connection (and a fresh one) must still declare, publish
and get.
- garbage right after the protocol header (before start-ok) → the server closes the
  connection (RabbitMQ: socket closed, no close frame; a connection.close 501 is
  accepted as well);
- garbage after the handshake → connection.close 501 FRAME_ERROR;
- a wrong protocol header (another AMQP version, AMQP 1.0, HTTP) → the server answers
  ``AMQP\\x00\\x00\\x09\\x01`` and closes;
- a frame larger than the negotiated frame_max (tune-ok frame_max=4096; a method frame
  and a body frame of 5,000+ bytes) → connection.close 501 FRAME_ERROR;
- a bad frame-end octet → connection.close 501 FRAME_ERROR;
- a method on a channel that was never opened → connection.close 504 CHANNEL_ERROR
  ("CHANNEL_ERROR - expected 'channel.open'"); channel.open on an open channel → 504;
- more channels than the negotiated channel_max (tune-ok channel_max=2, then channel 3)
  → connection.close (RabbitMQ: 530 NOT_ALLOWED "number of channels opened (2) has
  reached the negotiated channel_max (2)"; 504 accepted);
- an unknown class or method id → the connection ends (RabbitMQ closes the socket
  without a close frame; connection.close 540 NOT_IMPLEMENTED or 503 COMMAND_INVALID
  accepted);
- a body longer than the content header announced, followed by a method → connection
  close 505 UNEXPECTED_FRAME (501 accepted); a content body frame without a publish →
  505; a method where the content header should be → 505.
"""

from __future__ import annotations

import pytest

import amqpwire as w
from amqputil import assert_works, get_one, unique


@pytest.fixture
def bystander(amqp):
    """A pika connection open during the bad input; must still work afterwards."""
    conn = amqp.connect()
    ch = conn.channel()
    ch.confirm_delivery()
    q = amqp.queue("bystander")
    ch.queue_declare(q)
    yield conn, ch, q
    assert conn.is_open, "the bystander connection was closed"
    ch.basic_publish("", q, b"still-here")
    _, _, body = get_one(ch, q)
    assert body == b"still-here"
    conn.close()
    assert_works(amqp)


def raw(amqp, **handshake) -> w.RawConnection:
    """A raw connection past connection.open-ok (handshake options: channel_max, frame_max)."""
    c = w.RawConnection(amqp.host, amqp.port, timeout=10)
    c.handshake(amqp.user, amqp.password, amqp.vhost, **handshake)
    return c


def expect_connection_close(c: w.RawConnection, codes: set[int], allow_eof: bool = False,
                            text_prefix: str | None = None) -> w.Close | None:
    close = c.expect_close()
    if close is None:
        assert allow_eof, f"connection dropped without connection.close (wanted {codes})"
        return None
    assert close.kind == "connection", close
    assert close.reply_code in codes, close
    if text_prefix is not None:
        assert close.reply_text.startswith(text_prefix), close
    return close


def test_garbage_before_start_ok(amqp, bystander):
    with w.RawConnection(amqp.host, amqp.port) as c:
        c.send(w.PROTOCOL_HEADER)
        c.expect_method(w.CONNECTION_START)
        c.send_tolerant(b"\x41" * 64)
        expect_connection_close(c, {501}, allow_eof=True)


def test_garbage_after_handshake(amqp, bystander):
    with raw(amqp) as c:
        # Frame type 'A', channel 0x4141, size 16, 16 bytes, then a wrong frame end.
        c.send(b"\x41\x41\x41\x00\x00\x00\x10" + b"x" * 40)
        expect_connection_close(c, {501}, text_prefix="FRAME_ERROR")


@pytest.mark.parametrize("header", [
    b"AMQP\x00\x00\x09\x02", b"AMQP\x00\x00\x0a\x00", b"AMQP\x00\x01\x00\x00",
    b"AMQP\x03\x01\x00\x00", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
], ids=["0-9-2", "0-10", "1.0", "1.0-sasl", "http"])
def test_wrong_protocol_header(amqp, bystander, header):
    with w.RawConnection(amqp.host, amqp.port) as c:
        c.send(header)
        assert c.read_until_eof(timeout=10) == w.PROTOCOL_HEADER


def test_frame_larger_than_frame_max(amqp, bystander):
    with raw(amqp, frame_max=4096) as c:
        c.open_channel(1)
        c.send(w.basic_publish(1, "", "q") + w.header_frame(1, 10000)
               + w.body_frame(1, b"y" * 10000))
        expect_connection_close(c, {501}, text_prefix="FRAME_ERROR")
    with raw(amqp, frame_max=4096) as c:
        c.send(w.method_frame(0, w.CONNECTION_OPEN, b"z" * 5000))
        expect_connection_close(c, {501}, text_prefix="FRAME_ERROR")


def test_bad_frame_end(amqp, bystander):
    with raw(amqp) as c:
        f = w.channel_open(1)
        c.send(f[:-1] + b"\x00")
        expect_connection_close(c, {501}, text_prefix="FRAME_ERROR")


def test_method_on_unopened_channel(amqp, bystander):
    with raw(amqp) as c:
        c.send(w.queue_declare(5, unique("unopened")))
        close = expect_connection_close(c, {504})
        assert close.reply_text == "CHANNEL_ERROR - expected 'channel.open'"
        assert (close.class_id, close.method_id) == (50, 10)
    with raw(amqp) as c:
        c.open_channel(1)
        c.send(w.channel_open(1))
        close = expect_connection_close(c, {504}, text_prefix="CHANNEL_ERROR")


def test_more_channels_than_channel_max(amqp, bystander):
    with raw(amqp, channel_max=2) as c:
        c.open_channel(1)
        c.open_channel(2)
        c.send(w.channel_open(3))
        close = expect_connection_close(c, {504, 530})
        if close.reply_code == 530:
            assert close.reply_text == ("NOT_ALLOWED - number of channels opened (2) has "
                                        "reached the negotiated channel_max (2)"), close


@pytest.mark.parametrize("method", [(60, 999), (77, 10)], ids=["unknown-method", "unknown-class"])
def test_unknown_method(amqp, bystander, method):
    with raw(amqp) as c:
        c.open_channel(1)
        c.send(w.method_frame(1, method))
        expect_connection_close(c, {503, 540}, allow_eof=True)


def test_body_longer_than_announced(amqp, bystander):
    with raw(amqp) as c:
        c.open_channel(1)
        c.send(w.basic_publish(1, "", "q") + w.header_frame(1, 10) + w.body_frame(1, b"y" * 20))
        # RabbitMQ notices at the next frame on the channel; send one.
        c.send_tolerant(w.queue_declare(1, "", exclusive=True))
        expect_connection_close(c, {501, 505})


def test_unexpected_content_frames(amqp, bystander):
    with raw(amqp) as c:
        c.open_channel(1)
        c.send(w.body_frame(1, b"stray"))
        close = expect_connection_close(c, {505})
        assert close.reply_text.startswith("UNEXPECTED_FRAME"), close
    with raw(amqp) as c:
        c.open_channel(1)
        c.send(w.basic_publish(1, "", "q") + w.basic_publish(1, "", "q"))
        close = expect_connection_close(c, {505})
        assert close.reply_text.startswith("UNEXPECTED_FRAME"), close
