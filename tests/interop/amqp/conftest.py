"""Fixtures for the AMQP 0-9-1 interop suite.

The target broker is chosen by the environment:

- ``AMQP_TARGET=portask`` (default): every test gets its own ``$PORTASK_BIN serve``
  process (the parent conftest's ``broker_factory``: free loopback ports, a fresh data
  directory, the log attached to failures) and waits until the AMQP port accepts
  connections and the log says ``amqp listener ready``. ``amqp.restart()`` stops the
  broker with SIGTERM and starts it again on the same data directory and ports.
- ``AMQP_TARGET=rabbitmq`` with ``AMQP_URL=amqp://guest:guest@127.0.0.1:5672/``: a
  running RabbitMQ. Queues and exchanges a test declares have unique names and are
  deleted at teardown. ``amqp.restart()`` runs ``$RABBITMQ_RESTART_CMD`` (for example
  ``rabbitmqctl stop_app && rabbitmqctl start_app``) or skips the test when unset.

Every test is bounded in time by pytest-timeout (``AMQP_TEST_TIMEOUT_S``, default 120 s).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from amqputil import Target, run_restart_cmd, target_kind

HERE = Path(__file__).resolve().parent
AMQP_READY_TIMEOUT_S = 30.0
TEST_TIMEOUT_S = float(os.environ.get("AMQP_TEST_TIMEOUT_S", "120"))

# Set when a Portask broker's AMQP listener never became ready: the remaining tests then
# fail at once instead of each waiting the full readiness timeout.
_not_ready: str | None = None


def pytest_collection_modifyitems(config, items):
    if not config.pluginmanager.hasplugin("timeout"):
        return
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents and \
                item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(TEST_TIMEOUT_S))


def wait_amqp_ready(broker, timeout: float = AMQP_READY_TIMEOUT_S) -> None:
    """Waits for the readiness line and an accepting AMQP port (bounded)."""
    import socket

    global _not_ready
    if _not_ready is not None:
        raise AssertionError(f"AMQP listener not ready (as in an earlier test): {_not_ready}")

    want = f"amqp listener ready on 127.0.0.1:{broker.amqp_port}"
    deadline = time.monotonic() + timeout
    while True:
        if not broker.alive():
            raise AssertionError(f"broker exited during startup; log:\n{broker.log_tail()}")
        if want in broker.log_text():
            try:
                with socket.create_connection(("127.0.0.1", broker.amqp_port), timeout=0.5):
                    return
            except OSError:
                pass
        if time.monotonic() > deadline:
            _not_ready = f"no '{want}' within {timeout}s"
            raise AssertionError(f"no '{want}' / accepting AMQP port within {timeout}s; "
                                 f"log:\n{broker.log_tail()}")
        time.sleep(0.05)


@pytest.fixture
def amqp(request) -> Target:
    """The broker under test (see the module docstring)."""
    kind = target_kind()
    if kind == "rabbitmq":
        url = os.environ.get("AMQP_URL")
        if not url:
            pytest.fail("AMQP_TARGET=rabbitmq needs AMQP_URL, e.g. amqp://guest:guest@127.0.0.1:5672/")
        target = Target.from_url(url, kind)
        cmd = os.environ.get("RABBITMQ_RESTART_CMD")
        if cmd:
            target.restart_fn = lambda: run_restart_cmd(cmd, target)
    else:
        make = request.getfixturevalue("broker_factory")
        broker = make(start=False)
        broker.start()
        wait_amqp_ready(broker)

        def restart() -> None:
            broker.stop()
            broker.start()
            wait_amqp_ready(broker)

        target = Target(kind, "127.0.0.1", broker.amqp_port, broker=broker, restart_fn=restart)
    yield target
    target.cleanup()


@pytest.fixture
def amqp_tools():
    """Paths of the amqp-tools CLI programs; skips when they are missing, unless
    AMQP_TOOLS_REQUIRED=1 (set by scripts/test, which installs them)."""
    names = ["amqp-declare-queue", "amqp-publish", "amqp-consume", "amqp-delete-queue"]
    found = {n: shutil.which(n) for n in names}
    missing = [n for n, p in found.items() if p is None]
    if missing:
        msg = f"amqp-tools not installed (missing {', '.join(missing)}; apt-get install amqp-tools)"
        if os.environ.get("AMQP_TOOLS_REQUIRED") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    return found
