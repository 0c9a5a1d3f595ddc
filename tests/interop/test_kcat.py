"""kcat (librdkafka's command-line client) against the broker.

Checks, each by running the real `kcat` binary with a bounded timeout:
- `kcat -P` produces 10,000 newline-separated values to a new (auto-created) topic and
  `kcat -C -e -o beginning` returns all 10,000 in the produced order;
- `kcat -L -J` metadata lists that topic and exactly one broker whose advertised
  address is the `--kafka-addr` the broker was started with;
- keys (`-K:`) and headers (`-H k=v`) survive a round trip, read back with
  `-f '%k|%s|%h\\n'`.
"""

from __future__ import annotations

import json
import shutil
import subprocess

KCAT = shutil.which("kcat")
TIMEOUT_S = 90


def kcat(*args: str, stdin: bytes | None = None, timeout: float = TIMEOUT_S) -> bytes:
    assert KCAT is not None, "kcat is not installed (scripts/test installs it with apt-get)"
    cmd = [KCAT, "-X", "broker.address.family=v4", *args]
    try:
        res = subprocess.run(cmd, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"{cmd} timed out after {timeout}s; stderr:\n"
                             f"{(e.stderr or b'').decode(errors='replace')[-4000:]}")
    assert res.returncode == 0, (f"{cmd} exited {res.returncode}; stderr:\n"
                                 f"{res.stderr.decode(errors='replace')[-4000:]}")
    return res.stdout


def test_produce_consume_10k_in_order(broker, topic):
    lines = [f"line-{i:05d}-{'x' * (i % 50)}" for i in range(10_000)]
    kcat("-P", "-b", broker.bootstrap, "-t", topic, stdin=("\n".join(lines) + "\n").encode())
    out = kcat("-C", "-b", broker.bootstrap, "-t", topic, "-e", "-o", "beginning", "-q")
    got = out.decode().splitlines()
    assert len(got) == len(lines), f"expected {len(lines)} lines, got {len(got)}"
    assert got == lines


def test_metadata_lists_topic_and_advertised_broker(broker, topic):
    kcat("-P", "-b", broker.bootstrap, "-t", topic, stdin=b"hello\n")
    md = json.loads(kcat("-L", "-J", "-b", broker.bootstrap))
    brokers = md["brokers"]
    assert len(brokers) == 1, brokers
    assert brokers[0]["name"] == broker.bootstrap, brokers
    topics = {t["topic"]: t for t in md["topics"]}
    assert topic in topics, sorted(topics)
    t = topics[topic]
    assert not t.get("error"), t
    assert len(t["partitions"]) == 1, t
    p = t["partitions"][0]
    assert p["partition"] == 0 and p["leader"] == brokers[0]["id"], p

    # The plain-text listing shows the same.
    text = kcat("-L", "-b", broker.bootstrap, "-t", topic).decode()
    assert f"at {broker.bootstrap}" in text, text
    assert f'topic "{topic}" with 1 partitions' in text, text


def test_keys_and_headers_roundtrip(broker, topic):
    rows = [(f"key-{i}", f"value-{i}") for i in range(100)]
    stdin = "".join(f"{k}:{v}\n" for k, v in rows).encode()
    kcat("-P", "-b", broker.bootstrap, "-t", topic, "-K:", "-H", "h1=v1", "-H", "trace=abc-123",
         stdin=stdin)
    out = kcat("-C", "-b", broker.bootstrap, "-t", topic, "-e", "-o", "beginning", "-q",
               "-f", "%k|%s|%h\n")
    got = out.decode().splitlines()
    assert got == [f"{k}|{v}|h1=v1,trace=abc-123" for k, v in rows]
