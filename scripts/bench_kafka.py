#!/usr/bin/env python3
"""Kafka-protocol throughput and memory benchmark for a built portask binary.

Starts `portask serve` on free loopback ports with a temporary data directory and
measures, with confluent-kafka (librdkafka):
  - produce throughput for 100 B and 1 KiB records (acks=all, linger.ms=5,
    batch.size=1000000, no compression), timed from the first produce() call until
    every delivery report has arrived (flush);
  - consume throughput of a fresh group consumer reading the same records from the
    earliest offset with default fetch settings;
  - broker RSS when idle after start, and peak RSS under load (VmRSS sampled every
    100 ms in a thread; VmHWM is reported too).
Prints a Markdown table and the exact command line.

Usage (with the project's venv, which has confluent-kafka):
    cargo build --release -p portask-server
    .venv/bin/python scripts/bench_kafka.py [--bin target/release/portask] [--messages N]
        [--fsync always|interval_ms|never] [--fsync-interval-ms MS] [--produce-only]
        [--redis-url redis://127.0.0.1:6379/0]

--fsync sets the broker's storage.fsync (PORTASK_STORAGE_FSYNC); without it the broker's
default applies. --redis-url runs the broker on the Redis backend against a server the
caller started (a fresh key namespace per run), instead of the embedded disk log.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

try:
    from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
except ImportError:  # pragma: no cover
    sys.exit("confluent-kafka is not installed; run scripts/test --install-only and use "
             ".venv/bin/python scripts/bench_kafka.py")

REPO_ROOT = Path(__file__).resolve().parent.parent


def free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def status_kb(pid: int, field: str) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


class RssSampler(threading.Thread):
    def __init__(self, pid: int, interval: float = 0.1):
        super().__init__(daemon=True)
        self.pid = pid
        self.interval = interval
        self.peak_kb = 0
        self.samples = 0
        self._stop_evt = threading.Event()

    def run(self) -> None:
        while not self._stop_evt.is_set():
            v = status_kb(self.pid, "VmRSS")
            if v is not None:
                self.peak_kb = max(self.peak_kb, v)
                self.samples += 1
            self._stop_evt.wait(self.interval)

    def stop(self) -> None:
        self._stop_evt.set()
        self.join(timeout=5)


class Broker:
    def __init__(self, binary: Path, workdir: Path, env: dict[str, str] | None = None):
        self.binary = binary
        self.extra_env = dict(env or {})
        self.workdir = workdir
        self.data_dir = workdir / "data"
        self.data_dir.mkdir(parents=True)
        self.log_path = workdir / "broker.log"
        kafka, admin, amqp, portask = free_ports(4)
        self.bootstrap = f"127.0.0.1:{kafka}"
        self.cmd = [str(binary), "serve", "--data-dir", str(self.data_dir),
                    "--kafka-addr", self.bootstrap, "--admin-addr", f"127.0.0.1:{admin}",
                    "--amqp-addr", f"127.0.0.1:{amqp}", "--portask-addr", f"127.0.0.1:{portask}"]
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> None:
        log = open(self.log_path, "ab")
        # PORTASK_* variables are config overrides for the broker: run it with defaults.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PORTASK_")}
        env.update(self.extra_env)
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                     cwd=str(REPO_ROOT), env=env)
        log.close()
        host, port = self.bootstrap.rsplit(":", 1)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"broker exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with socket.create_connection((host, int(port)), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"broker not ready after {timeout}s:\n{self.log_tail()}")

    def stop(self, timeout: float = 30.0) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            return None

    def log_tail(self, n: int = 50) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except FileNotFoundError:
            return ""


def produce_bench(bootstrap: str, topic: str, count: int, size: int, timeout: float) -> dict:
    conf = {
        "bootstrap.servers": bootstrap,
        "broker.address.family": "v4",
        "acks": "all",
        "linger.ms": 5,
        "batch.size": 1_000_000,
        "compression.type": "none",
        "queue.buffering.max.messages": 2_000_000,
        "queue.buffering.max.kbytes": 2_097_151,
        "message.timeout.ms": int(timeout * 1000),
    }
    p = Producer(conf)
    state = {"ok": 0, "err": 0, "first_err": None}

    def on_delivery(err, msg):
        if err is None:
            state["ok"] += 1
        else:
            state["err"] += 1
            if state["first_err"] is None:
                state["first_err"] = err

    # Warm-up: creates the topic and connects; not timed.
    p.produce(topic, value=b"warm-up", on_delivery=on_delivery)
    if p.flush(30) != 0 or state["err"]:
        raise RuntimeError(f"warm-up produce failed: {state['first_err']}")
    state["ok"] = 0

    payload = os.urandom(size)
    deadline = time.monotonic() + timeout
    t0 = time.perf_counter()
    for i in range(count):
        while True:
            try:
                p.produce(topic, value=payload, on_delivery=on_delivery)
                break
            except BufferError:
                p.poll(0.01)
                if time.monotonic() > deadline:
                    raise RuntimeError("produce timed out (queue full)")
        if i & 0x3FF == 0:
            p.poll(0)
    left = p.flush(max(1.0, deadline - time.monotonic()))
    elapsed = time.perf_counter() - t0
    if left or state["err"] or state["ok"] != count:
        raise RuntimeError(f"produce incomplete: {state['ok']} delivered, {state['err']} failed "
                           f"(first: {state['first_err']}), {left} still queued")
    return {"seconds": elapsed, "messages": count, "bytes": count * size}


def consume_bench(bootstrap: str, topic: str, count: int, timeout: float) -> dict:
    c = Consumer({
        "bootstrap.servers": bootstrap,
        "broker.address.family": "v4",
        "group.id": f"bench-{topic}",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    })
    total = count + 1  # the warm-up record
    got = 0
    nbytes = 0
    first_at = None
    try:
        t0 = time.perf_counter()
        c.subscribe([topic])
        deadline = time.monotonic() + timeout
        while got < total:
            if time.monotonic() > deadline:
                raise RuntimeError(f"consume timed out: {got} of {total}")
            for m in c.consume(num_messages=10_000, timeout=0.5):
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        continue
                    raise KafkaException(m.error())
                if first_at is None:
                    first_at = time.perf_counter()
                got += 1
                nbytes += len(m.value() or b"")
        end = time.perf_counter()
    finally:
        c.close()
    return {"seconds": end - t0, "seconds_from_first": end - (first_at or t0),
            "messages": got, "bytes": nbytes}


def fmt_rate(r: dict) -> tuple[str, str, str]:
    s = r["seconds"]
    return f"{s:.2f}", f"{r['messages'] / s:,.0f}", f"{r['bytes'] / s / 1e6:,.1f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default=str(REPO_ROOT / "target" / "release" / "portask"),
                    help="portask binary (default: target/release/portask)")
    ap.add_argument("--messages", type=int, default=500_000,
                    help="number of 100 B records; 1 KiB runs use 2/5 of it (default 500000)")
    ap.add_argument("--timeout", type=float, default=600.0,
                    help="upper bound in seconds for each produce or consume phase")
    ap.add_argument("--keep", action="store_true", help="keep the temporary data directory")
    ap.add_argument("--fsync", choices=["always", "interval_ms", "never"],
                    help="storage.fsync of the broker (default: the broker's default)")
    ap.add_argument("--fsync-interval-ms", type=int,
                    help="storage.fsync_interval_ms of the broker")
    ap.add_argument("--produce-only", action="store_true", help="skip the consume phases")
    ap.add_argument("--redis-url",
                    help="run the broker with storage.backend = \"redis\" on this server "
                         "(e.g. redis://127.0.0.1:6379/0; a fresh namespace per run)")
    args = ap.parse_args()
    broker_env = {}
    if args.redis_url:
        broker_env["PORTASK_STORAGE_BACKEND"] = "redis"
        broker_env["PORTASK_STORAGE_REDIS_URL"] = args.redis_url
        broker_env["PORTASK_STORAGE_REDIS_NAMESPACE"] = f"bench-{os.getpid()}-{int(time.time())}"
    if args.fsync:
        broker_env["PORTASK_STORAGE_FSYNC"] = args.fsync
    if args.fsync_interval_ms is not None:
        broker_env["PORTASK_STORAGE_FSYNC_INTERVAL_MS"] = str(args.fsync_interval_ms)

    binary = Path(args.bin)
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        print(f"binary {binary} not found (cargo build --release -p portask-server)", file=sys.stderr)
        return 2
    runs = [(100, args.messages), (1024, max(1, args.messages * 2 // 5))]

    workdir = Path(tempfile.mkdtemp(prefix="portask-bench-"))
    broker = Broker(binary, workdir, broker_env)
    rows = []
    exit_code = None
    sampler = None
    try:
        broker.start()
        time.sleep(1.0)
        idle_kb = status_kb(broker.proc.pid, "VmRSS")
        sampler = RssSampler(broker.proc.pid)
        sampler.start()
        for size, count in runs:
            topic = f"bench-{size}b-{os.getpid()}"
            print(f"producing {count:,} x {size} B ...", file=sys.stderr, flush=True)
            pr = produce_bench(broker.bootstrap, topic, count, size, args.timeout)
            rows.append(("produce", size, pr))
            if args.produce_only:
                continue
            print(f"consuming {count:,} x {size} B ...", file=sys.stderr, flush=True)
            cr = consume_bench(broker.bootstrap, topic, count, args.timeout)
            rows.append(("consume", size, cr))
        sampler.stop()
        hwm_kb = status_kb(broker.proc.pid, "VmHWM")
        exit_code = broker.stop()
    except BaseException:
        print(f"benchmark failed; broker log tail:\n{broker.log_tail()}", file=sys.stderr)
        raise
    finally:
        if sampler is not None:
            sampler.stop()
        if broker.proc is not None and broker.proc.poll() is None:
            broker.proc.kill()
            broker.proc.wait(timeout=10)
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    try:
        rev = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        rev = "?"
    import confluent_kafka
    print()
    print(f"portask Kafka benchmark — binary `{binary}`, commit {rev or '?'}, "
          f"confluent-kafka {confluent_kafka.__version__} / librdkafka {confluent_kafka.libversion()[0]}, "
          f"{os.cpu_count()} CPUs, storage.fsync {args.fsync or 'default'}"
          + (f", fsync_interval_ms {args.fsync_interval_ms}" if args.fsync_interval_ms else ""))
    print()
    print("| phase | record size | messages | seconds | msg/s | MB/s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for phase, size, r in rows:
        secs, mps, mbps = fmt_rate(r)
        print(f"| {phase} | {size} B | {r['messages']:,} | {secs} | {mps} | {mbps} |")
    print()
    print("| broker memory | MiB |")
    print("| --- | ---: |")
    print(f"| RSS idle (1 s after start) | {idle_kb / 1024:.1f} |")
    print(f"| RSS peak under load (VmRSS every 100 ms, {sampler.samples} samples) | "
          f"{sampler.peak_kb / 1024:.1f} |")
    if hwm_kb is not None:
        print(f"| VmHWM at end | {hwm_kb / 1024:.1f} |")
    print()
    print("Produce: acks=all, linger.ms=5, batch.size=1000000, no compression; timed from the "
          "first produce() to the last delivery report. Consume: a fresh group consumer from the "
          "earliest offset, default fetch settings, timed from subscribe() to the last record.")
    print(f"Broker exit code after SIGTERM: {exit_code}")
    print()
    print("Command: `" + " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]) + "`")
    return 0 if exit_code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
