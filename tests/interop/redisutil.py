"""A redis-server process for the Redis storage backend tests.

``redis-server`` is found on PATH (or named by ``PORTASK_REDIS_SERVER``). Each server runs
on a free loopback port with AOF on and ``appendfsync always`` in its own directory, so a
restart of the server keeps every write it acknowledged.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

START_TIMEOUT_S = 15.0


def redis_server_bin() -> str | None:
    return os.environ.get("PORTASK_REDIS_SERVER") or shutil.which("redis-server")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One server installation: port and directory stay, the process comes and goes."""

    def __init__(self, workdir: Path):
        binary = redis_server_bin()
        assert binary, "redis-server not found (scripts/test installs it)"
        self.binary = binary
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = _free_port()
        self.log_path = workdir / "redis.log"
        self.proc: subprocess.Popen | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> "RedisServer":
        assert self.proc is None or self.proc.poll() is not None, "redis-server running"
        cmd = [
            self.binary, "--bind", "127.0.0.1", "--port", str(self.port),
            "--save", "", "--appendonly", "yes", "--appendfsync", "always",
            "--protected-mode", "no", "--daemonize", "no",
            "--dir", str(self.workdir), "--logfile", str(self.log_path),
            "--pidfile", str(self.workdir / "redis.pid"),
        ]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _ping(self.port):
            if self.proc.poll() is not None:
                raise AssertionError(f"redis-server exited with {self.proc.returncode}: "
                                     f"{self.log_tail()}")
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"redis-server not answering on {self.port}: "
                                     f"{self.log_tail()}")
            time.sleep(0.05)
        return self

    def kill(self) -> None:
        """Ends the process at once (SIGKILL): what it acknowledged is in its AOF."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def cleanup(self) -> None:
        self.kill()
        shutil.rmtree(self.workdir, ignore_errors=True)
