"""Process and port helpers shared by the interop fixtures and tests.

They live outside ``conftest.py`` because the AMQP suite has a ``conftest.py`` of its own,
and a plain ``from conftest import ...`` would pick whichever was imported first.
"""

from __future__ import annotations

import os
import random
import socket
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_BIN = REPO_ROOT / "target" / "debug" / "portask"


def broker_bin() -> Path:
    return Path(os.environ.get("PORTASK_BIN", str(DEFAULT_BIN)))


def _ephemeral_low() -> int:
    """The first port the kernel hands out for outgoing connections."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_ports(n: int) -> list[int]:
    """Distinct free TCP ports on 127.0.0.1 (all held open at once, then released).

    They are chosen below the kernel's ephemeral range, so a client connection made later
    never takes one as its local port while a broker that was killed is restarted on it.
    """
    low, high = 20000, _ephemeral_low()
    socks = []
    rng = random.Random(os.getpid() ^ time.monotonic_ns())
    try:
        attempts = 0
        while len(socks) < n:
            attempts += 1
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            port = rng.randrange(low, high) if high - low > 1000 and attempts < 1000 else 0
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                s.close()
                continue
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def port_accepts(port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False
