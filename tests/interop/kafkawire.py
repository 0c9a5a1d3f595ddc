"""Hand-encoded Kafka protocol frames for raw-socket tests (no client library).

Only what the malformed-input tests need: request framing, ApiVersions, Produce
v3-v8 (non-flexible), v2 record batches with CRC-32C, and a zstd frame made of RLE
blocks that decompresses to a large run of zero bytes from a few KiB.
"""

from __future__ import annotations

import socket
import struct
import time

# -- CRC-32C (Castagnoli), table-driven, reflected polynomial 0x82F63B78 --------------

_CRC32C_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _CRC32C_TABLE.append(_c)


def crc32c(data: bytes) -> int:
    c = 0xFFFFFFFF
    table = _CRC32C_TABLE
    for b in data:
        c = table[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283

# -- primitives ----------------------------------------------------------------------


def i8(v: int) -> bytes:
    return struct.pack(">b", v)


def i16(v: int) -> bytes:
    return struct.pack(">h", v)


def i32(v: int) -> bytes:
    return struct.pack(">i", v)


def i64(v: int) -> bytes:
    return struct.pack(">q", v)


def string(s: str | None) -> bytes:
    if s is None:
        return i16(-1)
    b = s.encode()
    return i16(len(b)) + b


def kbytes(b: bytes | None) -> bytes:
    if b is None:
        return i32(-1)
    return i32(len(b)) + b


def array(items: list[bytes]) -> bytes:
    return i32(len(items)) + b"".join(items)


def uvarint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def varint(n: int) -> bytes:
    """Zigzag-encoded signed varint (as in v2 records)."""
    return uvarint((n << 1) ^ (n >> 63))


def varbytes(b: bytes | None) -> bytes:
    if b is None:
        return varint(-1)
    return varint(len(b)) + b


# -- requests ------------------------------------------------------------------------

API_PRODUCE = 0
API_VERSIONS = 18


def request(api_key: int, api_version: int, correlation_id: int, body: bytes = b"",
            client_id: str | None = "it-raw", flexible_header: bool = False) -> bytes:
    """A size-prefixed request; header v1, or v2 (empty tagged fields) if flexible."""
    header = i16(api_key) + i16(api_version) + i32(correlation_id) + string(client_id)
    if flexible_header:
        header += b"\x00"
    payload = header + body
    return i32(len(payload)) + payload


def record(offset_delta: int, key: bytes | None, value: bytes | None,
           headers: list[tuple[str, bytes]] = (), timestamp_delta: int = 0) -> bytes:
    body = (i8(0) + varint(timestamp_delta) + varint(offset_delta) + varbytes(key)
            + varbytes(value) + varint(len(headers)))
    for hk, hv in headers:
        body += varbytes(hk.encode()) + varbytes(hv)
    return varint(len(body)) + body


def record_batch(records: bytes, count: int, attributes: int = 0, last_offset_delta: int | None = None,
                 timestamp_ms: int | None = None, crc: int | None = None) -> bytes:
    """A v2 record batch. ``records`` is the (possibly compressed) records section;
    ``crc`` overrides the computed CRC-32C."""
    ts = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
    if last_offset_delta is None:
        last_offset_delta = count - 1
    after_crc = (i16(attributes) + i32(last_offset_delta) + i64(ts) + i64(ts)
                 + i64(-1) + i16(-1) + i32(-1) + i32(count) + records)
    c = crc32c(after_crc) if crc is None else crc
    after_length = i32(0) + i8(2) + struct.pack(">I", c) + after_crc  # leader epoch, magic, crc
    return i64(0) + i32(len(after_length)) + after_length


def produce_request(correlation_id: int, version: int, topic: str, partition: int,
                    records: bytes, acks: int = -1, timeout_ms: int = 30000) -> bytes:
    """Produce v3..v8 (non-flexible): one topic, one partition."""
    assert 3 <= version <= 8
    body = (string(None) + i16(acks) + i32(timeout_ms)
            + array([string(topic) + array([i32(partition) + kbytes(records)])]))
    return request(API_PRODUCE, version, correlation_id, body)


# -- zstd bomb -------------------------------------------------------------------------

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def zstd_zero_bomb(size: int, block: int = 128 * 1024, declare_size: bool = True) -> bytes:
    """A valid zstd frame that decompresses to ``size`` zero bytes, built from RLE
    blocks (4 bytes per 128 KiB): 512 MiB -> 16 KiB. With ``declare_size`` the frame
    header carries the content size, tempting decoders to allocate it up front."""
    assert size % block == 0 and block <= 128 * 1024
    n = size // block
    if declare_size:
        out = bytearray(ZSTD_MAGIC + bytes([0xC0, 0x38]) + struct.pack("<Q", size))
    else:
        out = bytearray(ZSTD_MAGIC + bytes([0x00, 0x38]))  # window 2^17, no content size
    for i in range(n):
        last = 1 if i == n - 1 else 0
        hdr = (block << 3) | (1 << 1) | last  # Block_Type 1 = RLE
        out += hdr.to_bytes(3, "little") + b"\x00"
    return bytes(out)


# -- responses -----------------------------------------------------------------------


class Reader:
    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def take(self, fmt: str):
        v = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return v[0] if len(v) == 1 else v

    def i16(self) -> int:
        return self.take(">h")

    def i32(self) -> int:
        return self.take(">i")

    def i64(self) -> int:
        return self.take(">q")

    def string(self) -> str | None:
        n = self.i16()
        if n < 0:
            return None
        s = self.data[self.pos:self.pos + n].decode()
        self.pos += n
        return s

    def remaining(self) -> int:
        return len(self.data) - self.pos


def parse_api_versions_v0(body: bytes) -> tuple[int, list[tuple[int, int, int]]]:
    """ApiVersions response v0 body (after the correlation id): error, [(key, min, max)]."""
    r = Reader(body)
    err = r.i16()
    n = r.i32()
    keys = [r.take(">hhh") for _ in range(max(n, 0))]
    assert r.remaining() == 0, f"{r.remaining()} trailing bytes after a v0 ApiVersions response"
    return err, keys


def parse_produce_response(body: bytes, version: int) -> dict[tuple[str, int], int]:
    """Produce response v3..v8 body (after the correlation id): {(topic, partition): error}."""
    r = Reader(body)
    out = {}
    for _ in range(r.i32()):
        name = r.string()
        for _ in range(r.i32()):
            partition = r.i32()
            err = r.i16()
            r.i64()  # base offset
            r.i64()  # log append time
            if version >= 5:
                r.i64()  # log start offset
            if version >= 8:
                for _ in range(max(r.i32(), 0)):  # record errors
                    r.i32()
                    r.string()
                r.string()  # error message
            out[(name, partition)] = err
    r.i32()  # throttle time
    return out


# -- socket helpers ------------------------------------------------------------------


def connect(bootstrap: str, timeout: float = 10.0) -> socket.socket:
    host, port = bootstrap.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def recv_exact(s: socket.socket, n: int, deadline: float) -> bytes | None:
    """n bytes, or None if the peer closed first. Raises TimeoutError past deadline."""
    buf = bytearray()
    while len(buf) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"got {len(buf)} of {n} bytes before the deadline")
        s.settimeout(left)
        try:
            chunk = s.recv(n - len(buf))
        except socket.timeout:
            raise TimeoutError(f"got {len(buf)} of {n} bytes before the deadline") from None
        except (ConnectionResetError, BrokenPipeError):
            return None
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def read_response(s: socket.socket, timeout: float = 15.0) -> tuple[int, bytes] | None:
    """(correlation id, rest of the body) of the next response frame, or None if the
    broker closed the connection."""
    deadline = time.monotonic() + timeout
    head = recv_exact(s, 4, deadline)
    if head is None:
        return None
    (size,) = struct.unpack(">i", head)
    assert 4 <= size <= 64 * 1024 * 1024, f"implausible response size {size}"
    payload = recv_exact(s, size, deadline)
    if payload is None:
        return None
    return struct.unpack_from(">i", payload)[0], payload[4:]


def wait_closed(s: socket.socket, timeout: float) -> tuple[bool, bytes]:
    """Reads until the peer closes (True) or ``timeout`` passes (False); also returns
    whatever bytes arrived meanwhile."""
    deadline = time.monotonic() + timeout
    got = bytearray()
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False, bytes(got)
        s.settimeout(left)
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            return False, bytes(got)
        except (ConnectionResetError, BrokenPipeError):
            return True, bytes(got)
        if not chunk:
            return True, bytes(got)
        got += chunk


def send_all(s: socket.socket, data: bytes) -> bool:
    """Sends ``data``; False if the broker already closed the connection."""
    try:
        s.sendall(data)
        return True
    except (ConnectionResetError, BrokenPipeError):
        return False
