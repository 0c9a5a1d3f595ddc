"""Process and port helpers shared by the interop fixtures and tests.

They live outside ``conftest.py`` because the AMQP suite has a ``conftest.py`` of its own,
and a plain ``from conftest import ...`` would pick whichever was imported first.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_BIN = REPO_ROOT / "target" / "debug" / "portask"


def broker_bin() -> Path:
    return Path(os.environ.get("PORTASK_BIN", str(DEFAULT_BIN)))


def free_ports(n: int) -> list[int]:
    """Distinct free TCP ports on 127.0.0.1 (all held open at once, then released)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
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
