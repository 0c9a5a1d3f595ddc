"""A tiny AMQP 0-9-1 frame encoder and reader for the raw-socket tests.

Only what the bad-input tests need: the protocol header, the connection handshake
(start-ok with PLAIN, tune-ok, open), channel.open, arbitrary method frames, content
header and body frames, and a reader that decodes incoming frames far enough to
recognise connection.close / channel.close (reply code, text, class and method id).

Frame layout (spec 4.2.3): type:octet channel:short size:long payload frame-end(0xCE).
"""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass, field

PROTOCOL_HEADER = b"AMQP\x00\x00\x09\x01"
FRAME_END = 0xCE

FRAME_METHOD = 1
FRAME_HEADER = 2
FRAME_BODY = 3
FRAME_HEARTBEAT = 8

# (class id, method id)
CONNECTION_START = (10, 10)
CONNECTION_START_OK = (10, 11)
CONNECTION_TUNE = (10, 30)
CONNECTION_TUNE_OK = (10, 31)
CONNECTION_OPEN = (10, 40)
CONNECTION_OPEN_OK = (10, 41)
CONNECTION_CLOSE = (10, 50)
CONNECTION_CLOSE_OK = (10, 51)
CHANNEL_OPEN = (20, 10)
CHANNEL_OPEN_OK = (20, 11)
CHANNEL_CLOSE = (20, 40)
CHANNEL_CLOSE_OK = (20, 41)
QUEUE_DECLARE = (50, 10)
QUEUE_DECLARE_OK = (50, 11)
BASIC_PUBLISH = (60, 40)
BASIC_GET = (60, 70)
BASIC_GET_OK = (60, 71)
BASIC_GET_EMPTY = (60, 72)
BASIC_RECOVER = (60, 110)

# -- encoding --------------------------------------------------------------------------


def shortstr(s: str | bytes) -> bytes:
    b = s.encode() if isinstance(s, str) else s
    assert len(b) < 256
    return struct.pack(">B", len(b)) + b


def longstr(s: str | bytes) -> bytes:
    b = s.encode() if isinstance(s, str) else s
    return struct.pack(">I", len(b)) + b


def _value(v) -> bytes:
    if isinstance(v, bool):
        return b"t" + struct.pack(">B", int(v))
    if isinstance(v, int):
        return b"l" + struct.pack(">q", v)
    if isinstance(v, (str, bytes)):
        return b"S" + longstr(v)
    if isinstance(v, dict):
        return b"F" + table(v)
    if isinstance(v, (list, tuple)):
        body = b"".join(_value(x) for x in v)
        return b"A" + struct.pack(">I", len(body)) + body
    if v is None:
        return b"V"
    raise TypeError(f"cannot encode {v!r} in a field table")


def table(d: dict) -> bytes:
    body = b"".join(shortstr(k) + _value(v) for k, v in d.items())
    return struct.pack(">I", len(body)) + body


def bits(*flags: bool) -> bytes:
    out = 0
    for i, f in enumerate(flags):
        if f:
            out |= 1 << i
    return struct.pack(">B", out)


def frame(ftype: int, channel: int, payload: bytes) -> bytes:
    return struct.pack(">BHI", ftype, channel, len(payload)) + payload + bytes([FRAME_END])


def method_frame(channel: int, method: tuple[int, int], args: bytes = b"") -> bytes:
    return frame(FRAME_METHOD, channel, struct.pack(">HH", *method) + args)


def header_frame(channel: int, body_size: int, class_id: int = 60,
                 property_flags: int = 0, properties: bytes = b"") -> bytes:
    return frame(FRAME_HEADER, channel,
                 struct.pack(">HHQH", class_id, 0, body_size, property_flags) + properties)


def body_frame(channel: int, body: bytes) -> bytes:
    return frame(FRAME_BODY, channel, body)


def start_ok(user: str, password: str, capabilities: dict | None = None) -> bytes:
    props = {"product": "portask-amqpwire",
             "capabilities": capabilities or {"authentication_failure_close": True}}
    return method_frame(0, CONNECTION_START_OK,
                        table(props) + shortstr("PLAIN")
                        + longstr(b"\x00" + user.encode() + b"\x00" + password.encode())
                        + shortstr("en_US"))


def tune_ok(channel_max: int, frame_max: int, heartbeat: int = 0) -> bytes:
    return method_frame(0, CONNECTION_TUNE_OK, struct.pack(">HIH", channel_max, frame_max, heartbeat))


def connection_open(vhost: str = "/") -> bytes:
    return method_frame(0, CONNECTION_OPEN, shortstr(vhost) + shortstr("") + bits(False))


def connection_close_ok() -> bytes:
    return method_frame(0, CONNECTION_CLOSE_OK)


def channel_open(channel: int) -> bytes:
    return method_frame(channel, CHANNEL_OPEN, shortstr(""))


def queue_declare(channel: int, queue: str, passive=False, durable=False, exclusive=False,
                  auto_delete=False, nowait=False, arguments: dict | None = None) -> bytes:
    return method_frame(channel, QUEUE_DECLARE,
                        struct.pack(">H", 0) + shortstr(queue)
                        + bits(passive, durable, exclusive, auto_delete, nowait)
                        + table(arguments or {}))


def basic_publish(channel: int, exchange: str, routing_key: str, mandatory=False,
                  immediate=False) -> bytes:
    return method_frame(channel, BASIC_PUBLISH,
                        struct.pack(">H", 0) + shortstr(exchange) + shortstr(routing_key)
                        + bits(mandatory, immediate))


def basic_get(channel: int, queue: str, no_ack: bool = True) -> bytes:
    return method_frame(channel, BASIC_GET, struct.pack(">H", 0) + shortstr(queue) + bits(no_ack))


def publish_message(channel: int, exchange: str, routing_key: str, body: bytes,
                    frame_max: int = 131072, **flags) -> bytes:
    """basic.publish + content header + body frames split to fit frame_max."""
    out = basic_publish(channel, exchange, routing_key, **flags) + header_frame(channel, len(body))
    step = frame_max - 8
    for i in range(0, len(body), step):
        out += body_frame(channel, body[i:i + step])
    return out


# -- decoding --------------------------------------------------------------------------


class _Cursor:
    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ValueError("truncated")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def unpack(self, fmt: str):
        size = struct.calcsize(fmt)
        return struct.unpack(fmt, self.take(size))

    def shortstr(self) -> str:
        (n,) = self.unpack(">B")
        return self.take(n).decode(errors="replace")

    def longstr(self) -> bytes:
        (n,) = self.unpack(">I")
        return self.take(n)

    def table(self) -> dict:
        raw = self.longstr()
        c = _Cursor(raw)
        out = {}
        while c.pos < len(raw):
            k = c.shortstr()
            out[k] = c.value()
        return out

    def value(self):
        t = self.take(1)
        simple = {b"b": ">b", b"B": ">B", b"s": ">h", b"u": ">H", b"I": ">i", b"i": ">I",
                  b"l": ">q", b"L": ">Q", b"f": ">f", b"d": ">d", b"T": ">Q"}
        if t in simple:
            return self.unpack(simple[t])[0]
        if t == b"t":
            return bool(self.unpack(">B")[0])
        if t == b"S" or t == b"x":
            return self.longstr()
        if t == b"F":
            return self.table()
        if t == b"A":
            raw = self.longstr()
            c = _Cursor(raw)
            items = []
            while c.pos < len(raw):
                items.append(c.value())
            return items
        if t == b"D":
            scale, v = self.unpack(">BI")
            return v / (10 ** scale)
        if t == b"V":
            return None
        raise ValueError(f"unknown field type {t!r}")


@dataclass
class Frame:
    type: int
    channel: int
    payload: bytes
    method: tuple[int, int] | None = None
    args: bytes = b""

    def __repr__(self) -> str:
        if self.method is not None:
            return f"Frame(method {self.method[0]}.{self.method[1]} ch={self.channel})"
        return f"Frame(type={self.type} ch={self.channel} len={len(self.payload)})"


@dataclass
class Close:
    """A connection.close (channel 0) or channel.close received from the server."""
    kind: str  # "connection" or "channel"
    channel: int
    reply_code: int
    reply_text: str
    class_id: int
    method_id: int


class ConnectionEnded(Exception):
    """The server closed the TCP connection."""


@dataclass
class Tune:
    channel_max: int
    frame_max: int
    heartbeat: int
    server_properties: dict = field(default_factory=dict)


class RawConnection:
    """A raw socket to an AMQP broker with bounded reads."""

    def __init__(self, host: str, port: int, timeout: float = 10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.buf = b""
        self.tune: Tune | None = None

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_tolerant(self, data: bytes) -> bool:
        """Sends, returning False if the server already closed the connection."""
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError):
            return False

    def _fill(self, need: int, deadline: float) -> None:
        while len(self.buf) < need:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no data from server within {self.timeout}s "
                                   f"(have {len(self.buf)} of {need} bytes)")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            except socket.timeout:
                continue
            if not chunk:
                raise ConnectionEnded(f"connection closed by server ({len(self.buf)} bytes pending)")
            self.buf += chunk

    def read_raw(self, n: int, timeout: float | None = None) -> bytes:
        deadline = time.monotonic() + (timeout or self.timeout)
        self._fill(n, deadline)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_until_eof(self, timeout: float | None = None, limit: int = 1 << 20) -> bytes:
        """Everything until the server closes the connection (bounded in time and size)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        try:
            self._fill(limit, deadline)
        except ConnectionEnded:
            pass
        out, self.buf = self.buf, b""
        return out

    def read_frame(self, timeout: float | None = None) -> Frame:
        deadline = time.monotonic() + (timeout or self.timeout)
        self._fill(7, deadline)
        ftype, channel, size = struct.unpack(">BHI", self.buf[:7])
        self._fill(7 + size + 1, deadline)
        payload = self.buf[7:7 + size]
        end = self.buf[7 + size]
        self.buf = self.buf[8 + size:]
        if end != FRAME_END:
            raise ValueError(f"bad frame end 0x{end:02x}")
        f = Frame(ftype, channel, payload)
        if ftype == FRAME_METHOD:
            f.method = struct.unpack(">HH", payload[:4])
            f.args = payload[4:]
        return f

    def read_method(self, timeout: float | None = None) -> Frame:
        """Next method frame, skipping heartbeats."""
        while True:
            f = self.read_frame(timeout)
            if f.type == FRAME_HEARTBEAT:
                continue
            return f

    def expect_method(self, method: tuple[int, int], timeout: float | None = None) -> Frame:
        f = self.read_method(timeout)
        if f.method != method:
            close = parse_close(f)
            raise AssertionError(f"expected method {method}, got {close or f}")
        return f

    def handshake(self, user: str = "guest", password: str = "guest", vhost: str = "/",
                  channel_max: int | None = None, frame_max: int | None = None,
                  open_vhost: bool = True) -> Tune:
        """Protocol header, start/start-ok, tune/tune-ok and (unless told not to) open."""
        self.send(PROTOCOL_HEADER)
        start = self.expect_method(CONNECTION_START)
        c = _Cursor(start.args)
        c.unpack(">BB")
        server_props = c.table()
        self.send(start_ok(user, password))
        tune = self.expect_method(CONNECTION_TUNE)
        cmax, fmax, hb = struct.unpack(">HIH", tune.args[:8])
        use_cmax = channel_max if channel_max is not None else cmax
        use_fmax = frame_max if frame_max is not None else fmax
        self.send(tune_ok(use_cmax, use_fmax, 0))
        self.tune = Tune(use_cmax, use_fmax, 0, server_props)
        if open_vhost:
            self.send(connection_open(vhost))
            self.expect_method(CONNECTION_OPEN_OK)
        return self.tune

    def open_channel(self, channel: int) -> None:
        self.send(channel_open(channel))
        self.expect_method(CHANNEL_OPEN_OK)

    def expect_close(self, timeout: float | None = None) -> Close | None:
        """Reads until a connection.close or channel.close arrives (answering a
        connection.close with close-ok), or returns None if the server just closed
        the socket. Other frames are skipped."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no close from server")
            try:
                f = self.read_frame(left)
            except (ConnectionEnded, ValueError):
                return None
            close = parse_close(f)
            if close is not None:
                if close.kind == "connection":
                    self.send_tolerant(connection_close_ok())
                return close


def parse_close(f: Frame) -> Close | None:
    if f.type != FRAME_METHOD or f.method not in (CONNECTION_CLOSE, CHANNEL_CLOSE):
        return None
    c = _Cursor(f.args)
    (code,) = c.unpack(">H")
    text = c.shortstr()
    cls, meth = c.unpack(">HH")
    kind = "connection" if f.method == CONNECTION_CLOSE else "channel"
    return Close(kind, f.channel, code, text, cls, meth)
