"""amqp-tools (rabbitmq-c command-line programs): declare, publish, consume round trip.

How: ``amqp-declare-queue -d`` declares a durable queue (it prints the queue name);
``amqp-publish`` sends 5 messages to it through the default exchange (one with
``-b``, four from standard input with ``-l``, one message per line, newline included, persistent, with a
content type and a header); pika checks the queue holds 5 and that the properties
arrived; ``amqp-consume -c 5 -p 2`` runs ``cat`` for each message and must print the 5
bodies in order and exit 0; ``amqp-delete-queue`` removes the queue. Connection
options are passed one by one (``--server --port --vhost --username --password``).
Every program runs with a timeout. When the programs are missing the test skips,
except under scripts/test (AMQP_TOOLS_REQUIRED=1), which installs them.
"""

from __future__ import annotations

import subprocess

from amqputil import message_count

RUN_TIMEOUT_S = 30


def conn_args(amqp) -> list[str]:
    return ["--server", amqp.host, "--port", str(amqp.port), "--vhost", amqp.vhost,
            "--username", amqp.user, "--password", amqp.password]


def run(cmd: list[str], input: bytes | None = None) -> subprocess.CompletedProcess:
    res = subprocess.run(cmd, input=input, capture_output=True, timeout=RUN_TIMEOUT_S)
    assert res.returncode == 0, (f"{cmd} exited {res.returncode}\nstdout: {res.stdout!r}\n"
                                 f"stderr: {res.stderr!r}")
    return res


def test_cli_declare_publish_consume(amqp, amqp_tools):
    q = amqp.queue("cli")
    c = conn_args(amqp)
    out = run([amqp_tools["amqp-declare-queue"], *c, "-q", q, "-d"])
    assert out.stdout.decode().strip() == q

    run([amqp_tools["amqp-publish"], *c, "-r", q, "-p", "-C", "text/plain",
         "-H", "origin: cli", "-b", "first"])
    run([amqp_tools["amqp-publish"], *c, "-r", q, "-l"], input=b"second\nthird\nfourth\nfifth\n")

    conn = amqp.connect()
    try:
        assert message_count(conn, q) == 5
        ch = conn.channel()
        method, props, body = ch.basic_get(q, auto_ack=False)
        assert body == b"first"
        assert props.content_type == "text/plain"
        assert props.delivery_mode == 2
        assert props.headers == {"origin": "cli"}
        ch.basic_nack(method.delivery_tag, requeue=True)
        ch.close()
    finally:
        conn.close()

    res = run([amqp_tools["amqp-consume"], *c, "-q", q, "-c", "5", "-p", "2", "cat"])
    # With -l each line, newline included, is one message body.
    assert res.stdout == b"firstsecond\nthird\nfourth\nfifth\n"

    conn = amqp.connect()
    try:
        assert message_count(conn, q) == 0
    finally:
        conn.close()
    run([amqp_tools["amqp-delete-queue"], *c, "-q", q])
