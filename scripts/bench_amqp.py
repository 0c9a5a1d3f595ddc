#!/usr/bin/env python3
"""AMQP 0-9-1 throughput and latency benchmark against Portask or any AMQP broker.

For 100 B and 1 KiB transient messages, with and without publisher confirms, one
publisher and one consumer run at the same time on a fresh queue:
  - publisher: either pika BlockingConnection (``--publisher pika``: basic_publish in a
    loop; with confirms, pika waits for each basic.ack before the next publish, so one
    message is in flight), or a raw-socket pipelined publisher (``--publisher raw``,
    the default, because pika's per-message Python overhead caps it well below what a
    broker takes: frames built with tests/interop/amqp/amqpwire.py and written in
    batches of 64; with confirms up to ``--window`` unconfirmed messages in flight,
    acks read as they come, multiple=True honoured). ``--publisher both`` runs both.
  - consumer: pika BlockingConnection in a separate process, prefetch 1000, manual
    acks (multiple=True every 100 deliveries).
  - every message carries its publish time (``time.time_ns()``) in the header ``ts``;
    the consumer computes latency = receive time - ts, so latency includes any
    queueing while the publisher is ahead of the consumer.
Reported: publish msg/s (first publish until the last one was written, or confirmed),
consume msg/s (first publish until the last delivery), p50 and p99 latency in ms.
Each case is bounded by ``--timeout`` seconds. Prints a Markdown table and the
command line.

Usage (with the project's venv, which has pika):
    .venv/bin/python scripts/bench_amqp.py --url amqp://guest:guest@127.0.0.1:5672/
    cargo build --release -p portask-server
    .venv/bin/python scripts/bench_amqp.py [--bin target/release/portask] [--messages N]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "tests" / "interop" / "amqp"))

try:
    import pika
except ImportError:  # pragma: no cover
    sys.exit("pika is not installed; run scripts/test --install-only and use "
             ".venv/bin/python scripts/bench_amqp.py")

import amqpwire as w  # noqa: E402

CONFIRM_SELECT = (85, 10)
CONFIRM_SELECT_OK = (85, 11)
BASIC_ACK = (60, 80)
BASIC_NACK = (60, 120)


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


class Broker:
    """A `portask serve` on free loopback ports with a temporary data directory."""

    def __init__(self, binary: Path, workdir: Path):
        self.workdir = workdir
        self.data_dir = workdir / "data"
        self.data_dir.mkdir(parents=True)
        self.log_path = workdir / "broker.log"
        kafka, admin, amqp, portask = free_ports(4)
        self.amqp_port = amqp
        self.cmd = [str(binary), "serve", "--data-dir", str(self.data_dir),
                    "--kafka-addr", f"127.0.0.1:{kafka}", "--admin-addr", f"127.0.0.1:{admin}",
                    "--amqp-addr", f"127.0.0.1:{amqp}", "--portask-addr", f"127.0.0.1:{portask}"]
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> None:
        # PORTASK_* variables are config overrides for the broker: run it with defaults.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PORTASK_")}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=log, cwd=str(REPO_ROOT), env=env)
        want = f"amqp listener ready on 127.0.0.1:{self.amqp_port}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"broker exited with {self.proc.returncode}:\n{self.log_tail()}")
            if want in self.log_path.read_text(errors="replace"):
                try:
                    with socket.create_connection(("127.0.0.1", self.amqp_port), timeout=0.5):
                        return
                except OSError:
                    pass
            time.sleep(0.05)
        raise RuntimeError(f"no '{want}' after {timeout}s:\n{self.log_tail()}")

    def stop(self, timeout: float = 30.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def log_tail(self, n: int = 50) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except FileNotFoundError:
            return ""


class Url:
    def __init__(self, url: str):
        u = urlparse(url)
        self.host = u.hostname or "127.0.0.1"
        self.port = u.port or 5672
        self.user = unquote(u.username or "guest")
        self.password = unquote(u.password or "guest")
        path = u.path[1:] if u.path.startswith("/") else u.path
        self.vhost = unquote(path) if path else "/"

    def params(self) -> pika.ConnectionParameters:
        return pika.ConnectionParameters(self.host, self.port, self.vhost,
                                         pika.PlainCredentials(self.user, self.password),
                                         heartbeat=0, connection_attempts=1, socket_timeout=10)


# -- consumer (own process) -----------------------------------------------------------


def consumer_main(url: str, queue: str, count: int, timeout: float, ready, out) -> None:
    conn = pika.BlockingConnection(Url(url).params())
    ch = conn.channel()
    ch.basic_qos(prefetch_count=1000)
    lat_ns: list[int] = []
    state = {"last": None, "unacked": 0}

    def on_msg(c, method, props, body):
        now = time.time_ns()
        lat_ns.append(now - props.headers["ts"])
        state["unacked"] += 1
        if state["unacked"] >= 100 or len(lat_ns) == count:
            c.basic_ack(method.delivery_tag, multiple=True)
            state["unacked"] = 0
        if len(lat_ns) == count:
            state["last"] = now

    ch.basic_consume(queue, on_msg)
    ready.set()
    deadline = time.monotonic() + timeout
    while len(lat_ns) < count and time.monotonic() < deadline:
        conn.process_data_events(time_limit=0.1)
    try:
        conn.close()
    except Exception:
        pass
    out.put({"received": len(lat_ns), "last_ns": state["last"] or time.time_ns(),
             "lat_ns": sorted(lat_ns)})


# -- publishers ------------------------------------------------------------------------


def publish_pika(url: Url, queue: str, count: int, size: int, confirms: bool,
                 timeout: float) -> tuple[int, int]:
    conn = pika.BlockingConnection(url.params())
    ch = conn.channel()
    if confirms:
        ch.confirm_delivery()
    body = b"x" * size
    deadline = time.monotonic() + timeout
    sent = 0
    for i in range(count):
        ch.basic_publish("", queue, body,
                         pika.BasicProperties(delivery_mode=1, headers={"ts": time.time_ns()}))
        sent += 1
        if i % 1000 == 0 and time.monotonic() > deadline:
            break
    conn.close()
    return sent, time.time_ns()


def publish_raw(url: Url, queue: str, count: int, size: int, confirms: bool, timeout: float,
                window: int, batch: int = 64) -> tuple[int, int]:
    c = w.RawConnection(url.host, url.port, timeout=30)
    try:
        tune = c.handshake(url.user, url.password, url.vhost)
        c.open_channel(1)
        if confirms:
            c.send(w.method_frame(1, CONFIRM_SELECT, w.bits(False)))
            c.expect_method(CONFIRM_SELECT_OK)
        body = b"x" * size
        publish = w.basic_publish(1, "", queue)
        body_frames = b"".join(w.body_frame(1, body[i:i + tune.frame_max - 8])
                               for i in range(0, len(body), tune.frame_max - 8))
        flags = 0x2000 | 0x1000  # headers, delivery-mode

        def header() -> bytes:
            props = w.table({"ts": time.time_ns()}) + b"\x01"
            return w.header_frame(1, size, property_flags=flags, properties=props)

        acked = 0
        sent = 0

        def read_acks(block: bool) -> None:
            nonlocal acked
            while True:
                if not block and not c.buf:
                    c.sock.setblocking(False)
                    try:
                        chunk = c.sock.recv(65536)
                    except BlockingIOError:
                        chunk = None
                    finally:
                        c.sock.setblocking(True)
                    if chunk is None:
                        return
                    if not chunk:
                        raise RuntimeError("broker closed the connection")
                    c.buf += chunk
                f = c.read_method(timeout=30)
                if f.method == BASIC_ACK:
                    (tag,) = struct.unpack(">Q", f.args[:8])
                    # One queue, one channel: the broker confirms in publish order, so
                    # the highest tag seen (single or multiple) counts as confirmed.
                    acked = max(acked, tag)
                elif f.method == BASIC_NACK:
                    raise RuntimeError("broker nacked a publish")
                else:
                    raise RuntimeError(f"unexpected frame while publishing: "
                                       f"{w.parse_close(f) or f}")
                block = False
                if not c.buf:
                    return

        deadline = time.monotonic() + timeout
        while sent < count and time.monotonic() < deadline:
            n = min(batch, count - sent)
            if confirms:
                while sent + n - acked > window:
                    read_acks(block=True)
            c.send(b"".join(publish + header() + body_frames for _ in range(n)))
            sent += n
            if confirms:
                read_acks(block=False)
        if confirms:
            while acked < sent and time.monotonic() < deadline + 30:
                read_acks(block=True)
        else:
            # A synchronous round trip: every publish before it has been read.
            c.send(w.queue_declare(1, queue, passive=True))
            c.expect_method(w.QUEUE_DECLARE_OK)
        done = time.time_ns()
        c.send(w.method_frame(0, w.CONNECTION_CLOSE, struct.pack(">H", 200) + w.shortstr("bye")
                              + struct.pack(">HH", 0, 0)))
        return sent, done
    finally:
        c.close()


def run_case(url_s: str, size: int, confirms: bool, publisher: str, count: int,
             timeout: float, window: int) -> dict:
    url = Url(url_s)
    queue = f"bench-{size}-{int(confirms)}-{publisher}-{os.getpid()}-{time.time_ns() % 10**9}"
    conn = pika.BlockingConnection(url.params())
    ch = conn.channel()
    ch.queue_declare(queue, durable=False)
    ctx = mp.get_context("fork")
    ready, out = ctx.Event(), ctx.Queue()
    proc = ctx.Process(target=consumer_main, args=(url_s, queue, count, timeout + 30, ready, out))
    proc.start()
    try:
        if not ready.wait(30):
            raise RuntimeError("consumer did not start")
        start = time.time_ns()
        if publisher == "pika":
            sent, pub_done = publish_pika(url, queue, count, size, confirms, timeout)
        else:
            sent, pub_done = publish_raw(url, queue, count, size, confirms, timeout, window)
        res = out.get(timeout=timeout + 60)
    finally:
        proc.join(timeout=10)
        if proc.is_alive():
            proc.kill()
        try:
            ch.queue_delete(queue)
            conn.close()
        except Exception:
            pass
    lat = res["lat_ns"]

    def pct(p: float) -> float:
        return lat[min(len(lat) - 1, int(len(lat) * p))] / 1e6 if lat else float("nan")

    return {"size": size, "confirms": confirms, "publisher": publisher, "sent": sent,
            "received": res["received"],
            "pub_rate": sent / max(1e-9, (pub_done - start) / 1e9),
            "con_rate": res["received"] / max(1e-9, (res["last_ns"] - start) / 1e9),
            "p50": pct(0.50), "p99": pct(0.99)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", help="benchmark this broker (amqp://user:pass@host:port/vhost)")
    ap.add_argument("--bin", default=str(REPO_ROOT / "target" / "release" / "portask"),
                    help="portask binary to start when --url is not given "
                         "(default target/release/portask)")
    ap.add_argument("--messages", type=int, default=50_000, help="messages per case")
    ap.add_argument("--confirm-messages", type=int, default=None,
                    help="messages per case with confirms (default: --messages; pika with "
                         "confirms does one round trip per message)")
    ap.add_argument("--sizes", default="100,1024", help="body sizes in bytes, comma-separated")
    ap.add_argument("--publisher", choices=["raw", "pika", "both"], default="raw")
    ap.add_argument("--window", type=int, default=1000,
                    help="unconfirmed messages in flight for the raw publisher")
    ap.add_argument("--timeout", type=float, default=60.0,
                    help="seconds each case may publish for (cases stop early when it passes)")
    args = ap.parse_args()

    broker = workdir = None
    if args.url:
        url, target = args.url, args.url
    else:
        binary = Path(args.bin)
        if not (binary.is_file() and os.access(binary, os.X_OK)):
            sys.exit(f"{binary} not found; build it (cargo build --release -p portask-server) "
                     "or pass --bin/--url")
        workdir = Path(tempfile.mkdtemp(prefix="portask-bench-amqp-"))
        broker = Broker(binary, workdir)
        broker.start()
        url = f"amqp://guest:guest@127.0.0.1:{broker.amqp_port}/"
        target = f"portask ({binary})"
    publishers = ["raw", "pika"] if args.publisher == "both" else [args.publisher]
    rows = []
    try:
        for publisher in publishers:
            for size in [int(s) for s in args.sizes.split(",")]:
                for confirms in (False, True):
                    n = args.confirm_messages if (confirms and args.confirm_messages) \
                        else args.messages
                    r = run_case(url, size, confirms, publisher, n, args.timeout, args.window)
                    rows.append(r)
                    print(f"  {publisher} {size} B confirms={confirms}: {r['sent']} sent, "
                          f"{r['received']} received", file=sys.stderr, flush=True)
    finally:
        if broker is not None:
            broker.stop()
            shutil.rmtree(workdir, ignore_errors=True)

    print(f"\nTarget: {target}; one publisher and one pika consumer (prefetch 1000) at once; "
          "transient messages, non-durable queue.\n")
    print("| publisher | body | confirms | messages | publish msg/s | consume msg/s "
          "| p50 latency ms | p99 latency ms |")
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        pub = "raw pipelined" if r["publisher"] == "raw" else "pika blocking"
        if r["publisher"] == "raw" and r["confirms"]:
            pub += f" (window {args.window})"
        print(f"| {pub} | {r['size']} B | {'yes' if r['confirms'] else 'no'} "
              f"| {r['received']}/{r['sent']} | {r['pub_rate']:,.0f} | {r['con_rate']:,.0f} "
              f"| {r['p50']:.1f} | {r['p99']:.1f} |")
    print(f"\nCommand: {shlex.join([os.path.relpath(sys.executable)] + sys.argv)}")
    return 0 if all(r["received"] == r["sent"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
