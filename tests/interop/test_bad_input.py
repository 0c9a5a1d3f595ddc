"""Malformed and hostile input on raw sockets.

How: Kafka frames are encoded by hand (kafkawire.py: struct, CRC-32C table, a zstd
frame of RLE blocks) and sent over plain TCP. Every read has a deadline. Before each
case a confluent-kafka producer connects and delivers a message; afterwards the same
producer delivers another, a fresh consumer reads both back, and the broker process
must still be running.

Cases and expected broker behaviour:
- garbage (an HTTP request, a tiny frame of random bytes, a zero-length frame, a
  Produce header followed by junk): the connection is closed within 10 s, or an
  error response arrives;
- a truncated frame followed by a client close: nothing breaks;
- size prefixes 0x7fffffff, 0x80000000 and 0xffffffff: closed within 5 s without the
  broker waiting for (or allocating) 2 GiB;
- an unknown API key (999): a response carrying the request's correlation id;
- ApiVersions v99: a v0-format ApiVersions response, error 35
  (UNSUPPORTED_VERSION), non-empty api_keys that include ApiVersions itself;
- Produce v3 / v7 / v8 with a record batch whose CRC is wrong: error 2
  (CORRUPT_MESSAGE) for that partition and nothing appended; the same batch with
  the right CRC is accepted (error 0) and readable, which checks the encoder;
- Produce v7 with a zstd batch that inflates to 512 MiB of zeros (16 KiB on the
  wire, with and without a declared content size): error 2 or a closed connection,
  and the broker's peak RSS (VmHWM) stays under 300 MB.
"""

from __future__ import annotations

import random
import socket
import struct
import time

import pytest
from confluent_kafka import Producer

import kafkawire as w
from kafkautil import consume_assigned, produce, producer_conf, unique_name

CORRUPT_MESSAGE = 2
UNSUPPORTED_VERSION = 35
RSS_LIMIT_KB = 300 * 1024


class Alongside:
    """A confluent producer connected before the bad input and used again after it."""

    def __init__(self, broker):
        self.broker = broker
        self.topic = unique_name("alongside")
        self.producer = Producer(producer_conf(broker.bootstrap))
        self.sent: list[bytes] = []
        self._send(b"before")

    def _send(self, value: bytes) -> None:
        errors = []
        self.producer.produce(self.topic, value=value,
                              on_delivery=lambda err, msg: err and errors.append(err))
        assert self.producer.flush(30) == 0, "alongside producer could not deliver"
        assert not errors, errors
        self.sent.append(value)

    def check(self) -> None:
        assert self.broker.alive(), f"broker died; log:\n{self.broker.log_tail()}"
        self._send(b"after")
        got = consume_assigned(self.broker.bootstrap, self.topic, len(self.sent), timeout=30)
        assert [m.value for m in got] == self.sent
        assert self.broker.alive()


@pytest.fixture
def alongside(broker):
    a = Alongside(broker)
    yield a
    a.producer.flush(5)


def _random_frame(seed: int) -> bytes:
    rnd = random.Random(seed)
    return w.i32(16) + bytes(rnd.getrandbits(8) for _ in range(16))


GARBAGE = {
    "http-request": b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n",
    "random-16-bytes": _random_frame(1),
    "random-16-bytes-2": _random_frame(2),
    "zero-length-frame": w.i32(0),
    "produce-header-junk-body": w.request(w.API_PRODUCE, 7, 77, bytes(range(200, 256)) * 3),
    "negative-client-id-length": w.i32(10) + w.i16(18) + w.i16(0) + w.i32(5) + w.i16(-7),
    "client-id-past-end": w.i32(10) + w.i16(18) + w.i16(0) + w.i32(5) + w.i16(500),
}


@pytest.mark.parametrize("name", list(GARBAGE))
def test_garbage_closes_or_errors(broker, alongside, name):
    s = w.connect(broker.bootstrap)
    try:
        w.send_all(s, GARBAGE[name])
        closed, data = w.wait_closed(s, timeout=10)
        assert closed or data, f"{name}: no response and connection still open after 10s"
    finally:
        s.close()
    alongside.check()


def test_truncated_frame_then_close(broker, alongside):
    for cut in (2, 6, 10, 40):
        full = w.produce_request(9, 7, "truncated", 0, w.record_batch(w.record(0, b"k", b"v"), 1))
        s = w.connect(broker.bootstrap)
        w.send_all(s, full[:cut])
        time.sleep(0.1)
        s.close()
    # A peer that resets instead of closing cleanly.
    s = w.connect(broker.bootstrap)
    w.send_all(s, w.i32(100) + b"\x00" * 10)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    alongside.check()


@pytest.mark.parametrize("prefix", [0x7FFFFFFF, 0x80000000, 0xFFFFFFFF],
                         ids=["0x7fffffff", "0x80000000", "0xffffffff"])
def test_huge_size_prefix_closes_promptly(broker, alongside, prefix):
    s = w.connect(broker.bootstrap)
    try:
        start = time.monotonic()
        w.send_all(s, prefix.to_bytes(4, "big") + w.i16(18) + w.i16(0) + w.i32(1) + w.string("x"))
        closed, _ = w.wait_closed(s, timeout=5)
        assert closed, f"size prefix {prefix:#x}: connection still open after 5s"
        assert time.monotonic() - start < 5
    finally:
        s.close()
    assert broker.rss_peak_kb() < RSS_LIMIT_KB, f"peak RSS {broker.rss_peak_kb()} KiB"
    alongside.check()


def test_unknown_api_key_answers_with_correlation_id(broker, alongside):
    s = w.connect(broker.bootstrap)
    try:
        w.send_all(s, w.request(999, 0, 424242))
        resp = w.read_response(s, timeout=10)
        assert resp is not None, "connection closed without a response to API key 999"
        corr, _ = resp
        assert corr == 424242
    finally:
        s.close()
    alongside.check()


def test_api_versions_unsupported_version(broker, alongside):
    s = w.connect(broker.bootstrap)
    try:
        # Sanity: a v0 request is answered normally.
        w.send_all(s, w.request(w.API_VERSIONS, 0, 1))
        resp = w.read_response(s)
        assert resp is not None and resp[0] == 1
        err, keys = w.parse_api_versions_v0(resp[1])
        assert err == 0 and keys

        # v99 with a v2 header and a v3-style body (as a newer client would send).
        body = b"\x07it-raw" + b"\x041.0" + b"\x00"  # compact strings + tagged fields
        w.send_all(s, w.request(w.API_VERSIONS, 99, 2, body, flexible_header=True))
        resp = w.read_response(s)
        assert resp is not None, "connection closed instead of answering ApiVersions v99"
        corr, rest = resp
        assert corr == 2
        err, keys = w.parse_api_versions_v0(rest)
        assert err == UNSUPPORTED_VERSION, err
        assert keys, "empty api_keys in the UNSUPPORTED_VERSION response"
        by_key = {k: (lo, hi) for k, lo, hi in keys}
        assert w.API_VERSIONS in by_key and by_key[w.API_VERSIONS][0] == 0, by_key
        assert by_key[w.API_VERSIONS][1] >= 3, by_key
    finally:
        s.close()
    alongside.check()


def _produce_raw(broker, version: int, topic: str, batch: bytes, corr: int):
    s = w.connect(broker.bootstrap)
    try:
        if not w.send_all(s, w.produce_request(corr, version, topic, 0, batch)):
            return None
        resp = w.read_response(s, timeout=30)
        if resp is None:
            return None
        got_corr, body = resp
        assert got_corr == corr
        return w.parse_produce_response(body, version)
    finally:
        s.close()


@pytest.mark.parametrize("version", [3, 7, 8])
def test_produce_bad_crc_is_corrupt_message(broker, alongside, topic, version):
    produce(broker.bootstrap, topic, [(b"seed", b"seed")])  # create the topic, offset 0
    records = w.record(0, b"raw-key", b"raw-value", [("h", b"1")]) + w.record(1, None, b"second")
    good = w.record_batch(records, 2)
    crc = int.from_bytes(good[17:21], "big")
    bad = w.record_batch(records, 2, crc=crc ^ 0x5A5A5A5A)

    res = _produce_raw(broker, version, topic, bad, corr=31)
    assert res is not None, "connection closed instead of a Produce response"
    assert res == {(topic, 0): CORRUPT_MESSAGE}, res

    # The same batch with the right CRC is accepted and readable after the seed record.
    res = _produce_raw(broker, version, topic, good, corr=32)
    assert res == {(topic, 0): 0}, res
    got = consume_assigned(broker.bootstrap, topic, 3, timeout=30, idle_after_count=1.0)
    assert [(m.offset, m.key, m.value) for m in got] == [
        (0, b"seed", b"seed"), (1, b"raw-key", b"raw-value"), (2, None, b"second")]
    assert list(got[1].headers) == [("h", b"1")]
    alongside.check()


@pytest.mark.parametrize("declare_size", [True, False], ids=["with-size", "without-size"])
def test_produce_zstd_bomb(broker, alongside, topic, declare_size):
    produce(broker.bootstrap, topic, [(b"seed", b"seed")])
    bomb = w.zstd_zero_bomb(512 * 1024 * 1024, declare_size=declare_size)
    assert len(bomb) < 20_000
    batch = w.record_batch(bomb, 1, attributes=4)  # attributes: compression 4 = zstd
    res = _produce_raw(broker, 7, topic, batch, corr=41)
    assert res is None or res == {(topic, 0): CORRUPT_MESSAGE}, res
    peak = broker.rss_peak_kb()
    assert peak < RSS_LIMIT_KB, f"broker peak RSS {peak} KiB after the zstd bomb"
    # Nothing was appended after the seed record.
    got = consume_assigned(broker.bootstrap, topic, 1, timeout=30, idle_after_count=1.0)
    assert [(m.offset, m.value) for m in got] == [(0, b"seed")]
    alongside.check()
