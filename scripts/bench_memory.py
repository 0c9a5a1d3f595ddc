#!/usr/bin/env python3
"""Broker RSS with many messages held in a durable AMQP queue (also after a restart) or a topic.

100,000 x 1 KiB queued in a durable AMQP queue, and 100,000 x 1 KiB produced to a Kafka
topic, each on a fresh broker; then the queue's broker restarted on the same data.

Starts the given portask binary on free loopback ports with a temporary data directory,
fills it, waits until the messages are held (the queue's message count, the topic's high
watermark), then reads VmRSS from /proc. For the queue it then stops the broker, starts it
again on the same data directory, checks the message count and reads VmRSS again. Prints a
Markdown table and the command.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import pika
from confluent_kafka import Consumer, Producer, TopicPartition


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def start(binary: str, workdir: str) -> tuple[subprocess.Popen, dict[str, int]]:
    ports = {k: free_port() for k in ("kafka", "amqp", "admin", "portask")}
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTASK_")}
    proc = subprocess.Popen(
        [binary, "serve", "--data-dir", os.path.join(workdir, "data"),
         *[a for k, p in ports.items() for a in (f"--{k}-addr", f"127.0.0.1:{p}")]],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", ports["amqp"]), timeout=0.5).close()
            return proc, ports
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("broker did not start")


def fill_queue(port: int, n: int, body: bytes) -> None:
    conn = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", port))
    ch = conn.channel()
    ch.queue_declare("memq", durable=True)
    props = pika.BasicProperties(delivery_mode=2)
    for _ in range(n):
        ch.basic_publish("", "memq", body, props)
    deadline = time.monotonic() + 120
    while ch.queue_declare("memq", passive=True).method.message_count < n:
        if time.monotonic() > deadline:
            raise RuntimeError("queue never reached the count")
        time.sleep(0.2)
    conn.close()


def queue_count(port: int) -> int:
    conn = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", port))
    count = conn.channel().queue_declare("memq", durable=True, passive=True).method.message_count
    conn.close()
    return count


def fill_topic(port: int, n: int, body: bytes) -> None:
    p = Producer({"bootstrap.servers": f"127.0.0.1:{port}", "acks": "all",
                  "linger.ms": 5, "batch.size": 1000000})
    for _ in range(n):
        while True:
            try:
                p.produce("memt", value=body)
                break
            except BufferError:
                p.poll(0.05)
    if p.flush(120) != 0:
        raise RuntimeError("produce did not finish")
    c = Consumer({"bootstrap.servers": f"127.0.0.1:{port}", "group.id": "memcheck"})
    _, high = c.get_watermark_offsets(TopicPartition("memt", 0), timeout=10)
    c.close()
    if high < n:
        raise RuntimeError(f"topic holds {high}, expected {n}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default="target/release/portask")
    ap.add_argument("--messages", type=int, default=100_000)
    args = ap.parse_args()
    body = os.urandom(1024)
    rows = []
    for name, fill, port_key in [("AMQP durable queue (persistent)", fill_queue, "amqp"),
                                 ("Kafka topic", fill_topic, "kafka")]:
        workdir = tempfile.mkdtemp(prefix="portask-mem-")
        proc, ports = start(args.bin, workdir)
        try:
            idle = rss_mib(proc.pid)
            fill(ports[port_key], args.messages, body)
            time.sleep(1)
            rows.append((name, idle, rss_mib(proc.pid)))
            if fill is fill_queue:
                proc.terminate()
                proc.wait(30)
                proc, ports = start(args.bin, workdir)
                idle = rss_mib(proc.pid)
                count = queue_count(ports["amqp"])
                if count != args.messages:
                    raise RuntimeError(f"queue holds {count} after the restart")
                time.sleep(1)
                rows.append((f"{name}, after a restart", idle, rss_mib(proc.pid)))
        finally:
            proc.terminate()
            proc.wait(30)
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"| where | messages | RSS idle MiB | RSS holding them MiB |")
    print(f"| --- | ---: | ---: | ---: |")
    for name, idle, full in rows:
        print(f"| {name} | {args.messages:,} x 1 KiB | {idle:.1f} | {full:.1f} |")
    print(f"\nCommand: `{sys.executable} {' '.join(sys.argv)}`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
