"""Shared helpers for the AMQP interop tests: the target broker (Portask started by
the test, or a running RabbitMQ), unique names, and bounded pika helpers."""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import quote, unquote, urlparse

import pika
import pika.exceptions

_counter = 0


def unique(base: str) -> str:
    """A queue/exchange name that no other test (or earlier run) uses."""
    global _counter
    _counter += 1
    clean = "".join(c if c.isalnum() or c in "-_." else "-" for c in base)[:60]
    return f"it-{clean}-{os.getpid()}-{_counter}-{int(time.time() * 1000) % 10**8}"


def target_kind() -> str:
    kind = os.environ.get("AMQP_TARGET", "portask").strip().lower()
    if kind not in ("portask", "rabbitmq"):
        raise ValueError(f"AMQP_TARGET must be 'portask' or 'rabbitmq', not {kind!r}")
    return kind


@dataclass
class Target:
    """Where the tests connect. ``broker`` is the Portask ``Broker`` (None for RabbitMQ)."""
    kind: str
    host: str
    port: int
    user: str = "guest"
    password: str = "guest"
    vhost: str = "/"
    broker: object | None = None
    restart_fn: Callable[[], None] | None = None
    _queues: list[str] = field(default_factory=list)
    _exchanges: list[str] = field(default_factory=list)

    @classmethod
    def from_url(cls, url: str, kind: str) -> "Target":
        u = urlparse(url)
        if u.scheme != "amqp":
            raise ValueError(f"AMQP_URL must be amqp://user:pass@host:port/vhost, not {url!r}")
        path = u.path[1:] if u.path.startswith("/") else u.path
        vhost = unquote(path) if path else "/"
        return cls(kind=kind, host=u.hostname or "127.0.0.1", port=u.port or 5672,
                   user=unquote(u.username or "guest"), password=unquote(u.password or "guest"),
                   vhost=vhost)

    @property
    def url(self) -> str:
        return (f"amqp://{quote(self.user, safe='')}:{quote(self.password, safe='')}"
                f"@{self.host}:{self.port}/{quote(self.vhost, safe='')}")

    @property
    def is_rabbitmq(self) -> bool:
        return self.kind == "rabbitmq"

    def params(self, **kw) -> pika.ConnectionParameters:
        kw.setdefault("connection_attempts", 1)
        kw.setdefault("socket_timeout", 10)
        kw.setdefault("blocked_connection_timeout", 30)
        kw.setdefault("heartbeat", 60)
        creds = kw.pop("credentials", pika.PlainCredentials(self.user, self.password))
        return pika.ConnectionParameters(host=self.host, port=self.port,
                                         virtual_host=self.vhost, credentials=creds, **kw)

    def connect(self, **kw) -> pika.BlockingConnection:
        return pika.BlockingConnection(self.params(**kw))

    # -- clean-up ------------------------------------------------------------------

    def queue(self, base: str) -> str:
        """A unique queue name, deleted at teardown."""
        name = unique(base)
        self._queues.append(name)
        return name

    def exchange(self, base: str) -> str:
        """A unique exchange name, deleted at teardown."""
        name = unique(base)
        self._exchanges.append(name)
        return name

    def cleanup(self) -> None:
        if not (self._queues or self._exchanges):
            return
        try:
            conn = self.connect()
        except Exception:
            return
        try:
            ch = conn.channel()
            for q in self._queues:
                try:
                    ch.queue_delete(q)
                except pika.exceptions.ChannelClosed:
                    ch = conn.channel()
            for e in self._exchanges:
                try:
                    ch.exchange_delete(e)
                except pika.exceptions.ChannelClosed:
                    ch = conn.channel()
        except Exception:
            pass
        finally:
            try:
                conn.close()
            except Exception:
                pass

    def restart(self) -> None:
        if self.restart_fn is None:
            import pytest
            pytest.skip("restarting RabbitMQ needs RABBITMQ_RESTART_CMD "
                        "(e.g. 'rabbitmqctl stop_app && rabbitmqctl start_app')")
        self.restart_fn()


def run_restart_cmd(cmd: str, target: Target, timeout: float = 180.0) -> None:
    """Runs RABBITMQ_RESTART_CMD and waits until a client can connect again."""
    res = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, f"{cmd!r} failed ({res.returncode}): {res.stdout}\n{res.stderr}"
    deadline = time.monotonic() + timeout
    while True:
        try:
            target.connect().close()
            return
        except pika.exceptions.AMQPError:
            if time.monotonic() > deadline:
                raise AssertionError(f"broker not accepting AMQP within {timeout}s after restart")
            time.sleep(0.5)


# -- bounded pika helpers ---------------------------------------------------------------


def consume_n(channel, queue: str, n: int, timeout: float = 30.0, ack: bool = True,
              inactivity: float = 10.0) -> list:
    """Consumes exactly n messages (manual acks unless ack=False) and cancels.
    Returns (method, properties, body) tuples; fails if they don't arrive in time."""
    out = []
    deadline = time.monotonic() + timeout
    for method, props, body in channel.consume(queue, inactivity_timeout=1.0):
        if method is None:
            if time.monotonic() > deadline:
                break
            continue
        out.append((method, props, body))
        if ack:
            channel.basic_ack(method.delivery_tag)
        if len(out) >= n or time.monotonic() > deadline:
            break
    channel.cancel()
    assert len(out) == n, f"got {len(out)} of {n} messages from {queue} within {timeout}s"
    return out


def get_all(channel, queue: str, limit: int = 10_000) -> list:
    """basic.get with auto-ack until get-empty; returns (method, properties, body)."""
    out = []
    for _ in range(limit):
        method, props, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            return out
        out.append((method, props, body))
    raise AssertionError(f"more than {limit} messages in {queue}")


def get_one(channel, queue: str, timeout: float = 10.0, auto_ack: bool = True):
    """Polls basic.get until a message arrives (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        method, props, body = channel.basic_get(queue, auto_ack=auto_ack)
        if method is not None:
            return method, props, body
        if time.monotonic() > deadline:
            raise AssertionError(f"no message in {queue} within {timeout}s")
        time.sleep(0.05)


def message_count(conn, queue: str) -> int:
    ch = conn.channel()
    try:
        return ch.queue_declare(queue, passive=True).method.message_count
    finally:
        if ch.is_open:
            ch.close()


def wait_count(conn, queue: str, want: int, timeout: float = 10.0) -> int:
    deadline = time.monotonic() + timeout
    while True:
        got = message_count(conn, queue)
        if got == want or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


def channel_error(fn, *args, **kwargs) -> pika.exceptions.ChannelClosedByBroker:
    """Runs fn, which must make the broker close the channel; returns the exception."""
    try:
        fn(*args, **kwargs)
    except pika.exceptions.ChannelClosedByBroker as e:
        return e
    raise AssertionError(f"{getattr(fn, '__name__', fn)} did not close the channel")


def connection_error(fn, *args, **kwargs) -> pika.exceptions.ConnectionClosedByBroker:
    """Runs fn, which must make the broker close the connection; returns the exception."""
    try:
        fn(*args, **kwargs)
    except pika.exceptions.ConnectionClosedByBroker as e:
        return e
    raise AssertionError(f"{getattr(fn, '__name__', fn)} did not close the connection")


def assert_works(target: Target) -> None:
    """A fresh pika connection can declare, publish, get and delete."""
    conn = target.connect()
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        q = unique("alive")
        ch.queue_declare(q, exclusive=True)
        ch.basic_publish("", q, b"ping")
        method, _, body = get_one(ch, q)
        assert body == b"ping"
        ch.queue_delete(q)
    finally:
        conn.close()
