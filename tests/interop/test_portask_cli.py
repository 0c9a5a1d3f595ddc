"""The `portask` client commands against a real broker, with kcat and pika on the other side.

Each test starts a broker with the shared fixture (Kafka, AMQP and Portask listeners on free
loopback ports) and runs `$PORTASK_BIN <command> --addr 127.0.0.1:<portask port>` with a
bounded timeout. Checks:
- `portask topics create/list/describe/delete` manage topics (and the table shows them);
- `portask produce` with keys (`--key-separator`) and headers: `kcat -C` reads them intact;
- `kcat -P` with keys and headers: `portask consume --format json` reads them intact;
- `portask produce --exchange "" --routing-key Q` fills a queue that pika consumes;
- pika publishes to a queue and `portask consume --queue` prints and acknowledges them;
- a binary file (`--file F --raw`) round-trips byte for byte (kcat and JSON base64);
- exit codes: 3 on a closed port (naming the address, suggesting `portask serve`), 2 on bad
  usage, 1 on a broker error (with the error code's name);
- `portask bench --messages 2000` prints a msg/s figure.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import time

import pika
import pytest

from netutil import broker_bin, free_ports, port_accepts

KCAT = shutil.which("kcat")
RUN_TIMEOUT_S = 60
READY_TIMEOUT_S = 20


def run_portask(args: list[str], stdin: bytes | None = None,
                timeout: float = RUN_TIMEOUT_S) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTASK_")}
    cmd = [str(broker_bin()), *args]
    try:
        return subprocess.run(cmd, input=stdin, capture_output=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"{cmd} timed out after {timeout}s; stderr:\n"
                             f"{(e.stderr or b'').decode(errors='replace')[-4000:]}")


class Cli:
    """Runs `portask` commands against one broker's Portask listener."""

    def __init__(self, broker):
        self.broker = broker
        self.addr = f"127.0.0.1:{broker.portask_port}"

    def run(self, *args: str, stdin: bytes | None = None, expect: int = 0,
            timeout: float = RUN_TIMEOUT_S) -> subprocess.CompletedProcess:
        res = run_portask([*args, "--addr", self.addr], stdin=stdin, timeout=timeout)
        assert res.returncode == expect, (
            f"portask {' '.join(args)} exited {res.returncode}, expected {expect}\n"
            f"stdout: {res.stdout.decode(errors='replace')[-2000:]}\n"
            f"stderr: {res.stderr.decode(errors='replace')[-2000:]}")
        return res


def wait_port(broker, port: int, what: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not port_accepts(port):
        if not broker.alive():
            raise AssertionError(f"broker exited; log:\n{broker.log_tail()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} port {port} not accepting after {READY_TIMEOUT_S}s; "
                                 f"log:\n{broker.log_tail()}")
        time.sleep(0.05)


@pytest.fixture
def cli(broker) -> Cli:
    wait_port(broker, broker.portask_port, "Portask")
    return Cli(broker)


def kcat(*args: str, stdin: bytes | None = None) -> bytes:
    assert KCAT is not None, "kcat is not installed (scripts/test installs it with apt-get)"
    cmd = [KCAT, "-X", "broker.address.family=v4", *args]
    res = subprocess.run(cmd, input=stdin, capture_output=True, timeout=RUN_TIMEOUT_S)
    assert res.returncode == 0, f"{cmd} exited {res.returncode}; stderr:\n{res.stderr.decode()}"
    return res.stdout


def pika_conn(broker) -> pika.BlockingConnection:
    wait_port(broker, broker.amqp_port, "AMQP")
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        try:
            return pika.BlockingConnection(pika.ConnectionParameters(
                "127.0.0.1", broker.amqp_port, "/", pika.PlainCredentials("guest", "guest"),
                connection_attempts=1, socket_timeout=10, blocked_connection_timeout=30))
        except pika.exceptions.AMQPConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def json_lines(out: bytes) -> list[dict]:
    return [json.loads(line) for line in out.decode().splitlines() if line.strip()]


# -- topics ---------------------------------------------------------------------------

def test_topics_create_list_describe_delete(cli, topic):
    out = cli.run("topics", "create", topic, "--partitions", "3").stdout.decode()
    assert topic in out and "3" in out, out

    listing = cli.run("topics", "list").stdout.decode().splitlines()
    assert listing[0].split() == ["TOPIC", "PARTITIONS", "MESSAGES"], listing
    rows = {line.split()[0]: line.split()[1:] for line in listing[1:]}
    assert rows.get(topic) == ["3", "0"], listing

    desc = cli.run("topics", "describe", topic).stdout.decode()
    assert f"topic {topic}: 3 partition(s)" in desc, desc
    assert len([l for l in desc.splitlines() if re.match(r"\s*[0-2]\s+0$", l)]) == 3, desc

    # Creating it again is a broker error, reported with the code's name.
    res = cli.run("topics", "create", topic, "--partitions", "3", expect=1)
    assert b"ALREADY_EXISTS" in res.stderr, res.stderr

    cli.run("topics", "delete", topic)
    listing = cli.run("topics", "list").stdout.decode()
    assert topic not in listing.split(), listing
    res = cli.run("topics", "delete", topic, expect=1)
    assert b"UNKNOWN_TOPIC" in res.stderr, res.stderr


# -- produce and consume with Kafka clients on the other side --------------------------

def test_produce_keys_and_headers_read_by_kcat(cli, broker, topic):
    cli.run("topics", "create", topic)
    rows = [(f"key-{i}", f"value {i} with: colon") for i in range(50)]
    stdin = "".join(f"{k}:{v}\n" for k, v in rows).encode()
    res = cli.run("produce", topic, "--key-separator", ":", "--header", "h1=v1",
                  "--header", "trace=abc-123", stdin=stdin)
    out = res.stdout.decode()
    assert "produced 50 messages" in out and "offsets 0..49" in out, out

    got = kcat("-C", "-b", broker.bootstrap, "-t", topic, "-e", "-o", "beginning", "-q",
               "-f", "%k|%s|%h\n").decode().splitlines()
    assert got == [f"{k}|{v}|h1=v1,trace=abc-123" for k, v in rows]


def test_kcat_produces_portask_consumes_json(cli, broker, topic):
    cli.run("topics", "create", topic)
    rows = [(f"k{i}", f"payload-{i}") for i in range(20)]
    kcat("-P", "-b", broker.bootstrap, "-t", topic, "-K:", "-H", "app=kcat", "-H", "n=1",
         stdin="".join(f"{k}:{v}\n" for k, v in rows).encode())

    out = cli.run("consume", topic, "--from-beginning", "--exit", "--format", "json").stdout
    msgs = json_lines(out)
    assert [(m["key"], m["payload"]) for m in msgs] == rows
    assert [m["offset"] for m in msgs] == list(range(20))
    for m in msgs:
        assert m["partition"] == 0 and m["topic"] == topic, m
        assert m["headers"] == [{"name": "app", "value": "kcat"}, {"name": "n", "value": "1"}], m
        assert isinstance(m["timestamp"], int) and m["timestamp"] > 1_600_000_000_000, m

    # Text output with keys and headers, and --max-messages.
    out = cli.run("consume", topic, "--from-beginning", "--max-messages", "3", "--print-key",
                  "--print-headers", "--key-separator", "|").stdout.decode().splitlines()
    assert out == [f"app=kcat,n=1|{k}|{v}" for k, v in rows[:3]]

    # --offset and --latest.
    out = cli.run("consume", topic, "--offset", "18", "--exit").stdout.decode().splitlines()
    assert out == ["payload-18", "payload-19"]
    assert cli.run("consume", topic, "--latest", "--exit").stdout == b""


def test_consume_with_group_commits(cli, topic):
    cli.run("topics", "create", topic, "--partitions", "2")
    cli.run("produce", topic, "--partition", "0", stdin=b"a\nb\n")
    cli.run("produce", topic, "--partition", "1", stdin=b"c\n")
    group = f"g-{topic}"
    out = cli.run("consume", topic, "--group", group, "--from-beginning", "--exit").stdout
    assert sorted(out.decode().splitlines()) == ["a", "b", "c"]
    # The group committed its progress: a second run starts after it.
    cli.run("produce", topic, "--partition", "1", stdin=b"d\n")
    out = cli.run("consume", topic, "--group", group, "--from-beginning", "--exit").stdout
    assert out.decode().splitlines() == ["d"]
    listing = cli.run("groups", "list").stdout.decode()
    assert group in listing, listing


# -- queues with pika on the other side ------------------------------------------------

def test_produce_to_exchange_pika_consumes(cli, broker, topic):
    queue = f"q-{topic}"
    cli.run("queues", "declare", queue)
    lines = [f"job {i}" for i in range(10)]
    res = cli.run("produce", "--exchange", "", "--routing-key", queue, "--header", "src=cli",
                  stdin=("\n".join(lines) + "\n").encode())
    assert "10 routed, 0 unroutable" in res.stdout.decode(), res.stdout

    conn = pika_conn(broker)
    try:
        ch = conn.channel()
        got = []
        deadline = time.monotonic() + 10
        while len(got) < len(lines) and time.monotonic() < deadline:
            method, props, body = ch.basic_get(queue, auto_ack=True)
            if method is None:
                time.sleep(0.05)
                continue
            assert props.headers == {"src": b"cli"} or props.headers == {"src": "cli"}, props
            got.append(body.decode())
        assert got == lines
    finally:
        conn.close()

    listing = cli.run("queues", "list").stdout.decode()
    assert queue in listing, listing


def test_pika_publishes_portask_consumes_queue(cli, broker, topic):
    queue = f"q-{topic}"
    conn = pika_conn(broker)
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        ch.queue_declare(queue)
        for i in range(5):
            ch.basic_publish("", queue, f"msg-{i}".encode())
    finally:
        conn.close()

    out = cli.run("consume", "--queue", queue, "--max-messages", "5").stdout.decode()
    assert out.splitlines() == [f"msg-{i}" for i in range(5)]

    # They were acknowledged: nothing is left (counts may trail the acks a little).
    deadline = time.monotonic() + 10
    while True:
        conn = pika_conn(broker)
        try:
            count = conn.channel().queue_declare(queue, passive=True).method.message_count
        finally:
            conn.close()
        if count == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert count == 0

    # JSON output for queue deliveries, and --exit when the queue stays empty.
    conn = pika_conn(broker)
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        ch.basic_publish("", queue, b"\xff\x00binary")
    finally:
        conn.close()
    msgs = json_lines(cli.run("consume", "--queue", queue, "--exit", "--format", "json").stdout)
    assert len(msgs) == 1, msgs
    assert base64.b64decode(msgs[0]["payload_base64"]) == b"\xff\x00binary"
    assert msgs[0]["routing_key"] == queue and msgs[0]["queue"] == queue


# -- binary payloads -------------------------------------------------------------------

def test_binary_file_round_trip(cli, broker, topic, tmp_path):
    cli.run("topics", "create", topic)
    data = bytes(range(256)) * 16 + b"\n\r\n\x00end"
    path = tmp_path / "payload.bin"
    path.write_bytes(data)
    res = cli.run("produce", topic, "--file", str(path), "--raw", "--key", "bin")
    assert "produced 1 message" in res.stdout.decode(), res.stdout

    msgs = json_lines(cli.run("consume", topic, "--from-beginning", "--exit",
                              "--format", "json").stdout)
    assert len(msgs) == 1, msgs
    assert "payload" not in msgs[0]
    assert base64.b64decode(msgs[0]["payload_base64"]) == data
    assert msgs[0]["key"] == "bin"

    out = kcat("-C", "-b", broker.bootstrap, "-t", topic, "-e", "-o", "beginning", "-q",
               "-f", "%s")
    assert out == data

    # Lines from a file: one message each.
    lines = tmp_path / "lines.txt"
    lines.write_bytes(b"one\ntwo\nthree")
    cli.run("produce", topic, "--file", str(lines))
    out = cli.run("consume", topic, "--offset", "1", "--exit").stdout
    assert out == b"one\ntwo\nthree\n"


# -- exit codes --------------------------------------------------------------------------

def test_exit_code_3_when_nothing_listens():
    (port,) = free_ports(1)
    addr = f"127.0.0.1:{port}"
    res = run_portask(["topics", "list", "--addr", addr])
    assert res.returncode == 3, res
    err = res.stderr.decode()
    assert addr in err and "portask serve" in err, err

    # PORTASK_ADDR is read too.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTASK_")}
    env["PORTASK_ADDR"] = addr
    res = subprocess.run([str(broker_bin()), "produce", "t"], input=b"x\n", capture_output=True,
                         timeout=RUN_TIMEOUT_S, env=env)
    assert res.returncode == 3 and addr in res.stderr.decode(), res


@pytest.mark.parametrize("args", [
    ["produce"],
    ["produce", "t", "--bogus"],
    ["produce", "t", "--header", "no-equals-sign"],
    ["consume", "t", "--format", "xml"],
    ["consume", "t", "--from-beginning", "--latest"],
    ["consume", "t", "--partition", "x"],
    ["topics"],
    ["topics", "frobnicate"],
    ["topics", "create"],
    ["exchanges", "declare", "x"],
    ["bench", "--messages", "-5"],
])
def test_exit_code_2_on_bad_usage(args):
    # Usage is checked before connecting: no broker is needed.
    res = run_portask([*args, "--addr", "127.0.0.1:1"])
    assert res.returncode == 2, (args, res)
    err = res.stderr.decode()
    assert err.startswith("error: ") and "Usage: portask" in err and "--help" in err, err


def test_help_and_serve_flags_unchanged():
    res = run_portask(["--help"])
    assert res.returncode == 0 and b"--portask-addr" in res.stdout and b"produce" in res.stdout
    res = run_portask(["produce", "--help"])
    assert res.returncode == 0 and b"--key-separator" in res.stdout and b"--addr" in res.stdout
    assert run_portask(["--version"]).returncode == 0
    assert run_portask(["serve", "--bogus"]).returncode == 2


# -- bench -------------------------------------------------------------------------------

def test_bench_prints_rates(cli, topic):
    out = cli.run("bench", "--messages", "2000", "--topic", topic, timeout=120).stdout.decode()
    m = re.search(r"publish: 2000 messages of 100 bytes in [\d.]+ s: (\d+) msg/s", out)
    assert m and int(m.group(1)) > 0, out
    assert re.search(r"p50 [\d.]+ ms, p99 [\d.]+ ms", out), out

    out = cli.run("bench", "--messages", "2000", "--queue", f"q-{topic}", "--consume",
                  timeout=120).stdout.decode()
    assert re.search(r"consume: 2000 messages .* msg/s", out), out
    assert "end-to-end latency" in out, out
