"""Fixtures for the Kafka client interop suite.

Each test gets its own broker process (``$PORTASK_BIN serve``) on free loopback
ports with a fresh temporary data directory. ``broker_factory`` makes brokers that
can be stopped and started again on the same data directory and ports (restart
tests); ``broker`` is one already-started broker.

Every wait here is bounded in time. On teardown the process is always killed and
the temporary directory removed; when a test fails, the tail of the broker log is
attached to the failure report.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from kafkautil import unique_name
from netutil import broker_bin, free_ports, port_accepts  # noqa: F401 (used by fixtures)

REPO_ROOT = Path(__file__).resolve().parents[2]

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 30.0
LOG_TAIL_LINES = 200


class Broker:
    """One broker installation: ports, data dir and log file; the process comes and goes."""

    def __init__(self, workdir: Path, env: dict[str, str] | None = None,
                 config: Path | None = None):
        self.workdir = workdir
        self.data_dir = workdir / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / "broker.log"
        self.kafka_port, self.admin_port, self.amqp_port, self.portask_port = free_ports(4)
        self.bootstrap = f"127.0.0.1:{self.kafka_port}"
        self.extra_env = dict(env or {})
        self.extra_env.update(_storage_env(self.extra_env, workdir))
        self.config = config
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    # -- process control -------------------------------------------------------------

    @property
    def pid(self) -> int:
        assert self.proc is not None, "broker not running"
        return self.proc.pid

    def command(self) -> list[str]:
        cmd = [
            str(broker_bin()), "serve",
            "--data-dir", str(self.data_dir),
            "--kafka-addr", f"127.0.0.1:{self.kafka_port}",
            "--admin-addr", f"127.0.0.1:{self.admin_port}",
            "--amqp-addr", f"127.0.0.1:{self.amqp_port}",
            "--portask-addr", f"127.0.0.1:{self.portask_port}",
        ]
        if self.config is not None:
            cmd += ["--config", str(self.config)]
        return cmd

    def start(self, timeout: float = START_TIMEOUT_S) -> "Broker":
        assert self.proc is None or self.proc.poll() is not None, "broker already running"
        binary = broker_bin()
        if not (binary.is_file() and os.access(binary, os.X_OK)):
            pytest.fail(f"broker binary {binary} not found or not executable "
                        "(build it with `cargo build -p portask-server` or set PORTASK_BIN)")
        # The broker reads PORTASK_* variables as config overrides (and rejects unknown
        # ones, such as PORTASK_BIN): pass only those the test asks for.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PORTASK_")}
        env.setdefault("RUST_BACKTRACE", "1")
        env.update(self.extra_env)
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(f"==== start #{self.starts}: {' '.join(self.command())}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.command(), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                env=env, cwd=str(REPO_ROOT),
            )
        deadline = time.monotonic() + timeout
        while True:
            code = self.proc.poll()
            if code is not None:
                raise AssertionError(
                    f"broker exited with code {code} during startup; log:\n{self.log_tail()}")
            if port_accepts(self.kafka_port):
                return self
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError(
                    f"broker kafka port {self.kafka_port} not accepting after {timeout}s; "
                    f"log:\n{self.log_tail()}")
            time.sleep(0.05)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT_S) -> int:
        """Sends ``sig`` and waits for exit; for SIGTERM/SIGINT asserts exit code 0."""
        assert self.proc is not None and self.proc.poll() is None, "broker not running"
        self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"broker did not exit within {timeout}s of signal {sig}; log:\n{self.log_tail()}")
        if sig in (signal.SIGTERM, signal.SIGINT):
            assert code == 0, f"broker exit code {code} after signal {sig}; log:\n{self.log_tail()}"
        return code

    def restart(self) -> "Broker":
        self.stop()
        return self.start()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # -- observation -----------------------------------------------------------------

    def _status_kb(self, field: str) -> int:
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        raise AssertionError(f"{field} not in /proc/{self.pid}/status")

    def rss_kb(self) -> int:
        """Current resident set size (VmRSS) in KiB."""
        return self._status_kb("VmRSS")

    def rss_peak_kb(self) -> int:
        """Peak resident set size of the current process (VmHWM) in KiB."""
        return self._status_kb("VmHWM")

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def cleanup(self) -> None:
        self.kill()
        shutil.rmtree(self.workdir, ignore_errors=True)


# -- PORTASK_TEST_STORAGE=redis: every broker on one shared redis-server -----------------
#
# With PORTASK_TEST_STORAGE=redis, the first broker made starts one redis-server for the
# session (stopped at session end) and every broker stores its data there, under its own
# namespace (the name of its work directory), unless the test chose a backend itself.

_session_redis = None


def _storage_env(extra_env: dict[str, str], workdir: Path) -> dict[str, str]:
    global _session_redis
    if os.environ.get("PORTASK_TEST_STORAGE", "") != "redis" \
            or "PORTASK_STORAGE_BACKEND" in extra_env:
        return {}
    if _session_redis is None:
        from redisutil import RedisServer, redis_server_bin
        if redis_server_bin() is None:
            pytest.fail("PORTASK_TEST_STORAGE=redis but redis-server is not installed")
        _session_redis = RedisServer(Path(tempfile.mkdtemp(prefix="portask-it-redis-")))
        _session_redis.start()
    return {
        "PORTASK_STORAGE_BACKEND": "redis",
        "PORTASK_STORAGE_REDIS_URL": _session_redis.url(),
        "PORTASK_STORAGE_REDIS_NAMESPACE": workdir.name,
    }


def pytest_sessionfinish(session, exitstatus):
    if _session_redis is not None:
        _session_redis.cleanup()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    brokers = getattr(item, "_portask_brokers", None)
    if rep.failed and brokers:
        for i, b in enumerate(brokers):
            rep.sections.append(
                (f"portask broker #{i} log ({b.log_path}, last {LOG_TAIL_LINES} lines)",
                 b.log_tail()))


@pytest.fixture
def broker_factory(request):
    """Returns ``make(env=None, config=None, start=True) -> Broker``; all made brokers
    are killed and their directories removed at teardown."""
    made: list[Broker] = []
    request.node._portask_brokers = made

    def make(env: dict[str, str] | None = None, config: Path | None = None,
             start: bool = True) -> Broker:
        workdir = Path(tempfile.mkdtemp(prefix="portask-it-"))
        b = Broker(workdir, env=env, config=config)
        made.append(b)
        if start:
            b.start()
        return b

    yield make
    for b in made:
        b.cleanup()


@pytest.fixture
def broker(broker_factory) -> Broker:
    """A started broker with default configuration."""
    return broker_factory()


@pytest.fixture
def topic(request) -> str:
    """A topic name unique to this test."""
    return unique_name(request.node.name)
