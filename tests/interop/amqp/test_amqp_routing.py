"""Exchange routing: direct, fanout, topic (``*``, ``#``), headers (``x-match``
all/any), exchange-to-exchange bindings and alternate exchanges.

How: for each case fresh exchanges and queues are declared and bound; messages are
published on a confirm-mode channel (so routing is complete when basic_publish
returns) and every queue is drained with basic.get. Each queue must hold exactly the
expected bodies in publish order (a message matching several bindings of one queue is
delivered to it once).
"""

from __future__ import annotations

import pika
import pytest

from amqputil import get_all


@pytest.fixture
def ch(amqp):
    conn = amqp.connect()
    channel = conn.channel()
    channel.confirm_delivery()
    yield channel
    conn.close()


def bodies(ch, q) -> list[bytes]:
    return [b for _, _, b in get_all(ch, q)]


def test_direct(amqp, ch):
    ex = amqp.exchange("direct")
    ch.exchange_declare(ex, "direct")
    qa, qb = amqp.queue("direct-a"), amqp.queue("direct-b")
    for q in (qa, qb):
        ch.queue_declare(q)
    ch.queue_bind(qa, ex, "red")
    ch.queue_bind(qa, ex, "green")
    ch.queue_bind(qb, ex, "green")
    for key in ["red", "green", "blue", "Red", "red.x"]:
        ch.basic_publish(ex, key, key.encode())
    assert bodies(ch, qa) == [b"red", b"green"]
    assert bodies(ch, qb) == [b"green"]
    # The default exchange routes by queue name; amq.direct exists.
    ch.basic_publish("", qb, b"by-name")
    ch.queue_bind(qb, "amq.direct", qb)
    ch.basic_publish("amq.direct", qb, b"via-amq.direct")
    assert bodies(ch, qb) == [b"by-name", b"via-amq.direct"]


def test_fanout(amqp, ch):
    ex = amqp.exchange("fanout")
    ch.exchange_declare(ex, "fanout")
    qs = [amqp.queue(f"fan-{i}") for i in range(3)]
    for i, q in enumerate(qs):
        ch.queue_declare(q)
        ch.queue_bind(q, ex, routing_key=f"ignored-{i}")
    ch.basic_publish(ex, "any.key", b"one")
    ch.basic_publish(ex, "", b"two")
    for q in qs:
        assert bodies(ch, q) == [b"one", b"two"]


TOPIC_BINDINGS = {
    "star": ["a.*"],
    "hash": ["a.#"],
    "all": ["#"],
    "mid": ["*.b.#"],
    "tail": ["#.c"],
    "exact": ["a.b.c"],
    "two": ["*.*", "a.#"],
}
TOPIC_KEYS = ["a", "a.b", "a.b.c", "x.b", "x.b.y.c", "c", "", "b.a", "a..c", "aa.b"]
TOPIC_EXPECTED = {
    "star": ["a.b"],
    "hash": ["a", "a.b", "a.b.c", "a..c"],
    "all": TOPIC_KEYS,
    "mid": ["a.b", "a.b.c", "x.b", "x.b.y.c", "aa.b"],
    "tail": ["a.b.c", "x.b.y.c", "c", "a..c"],
    "exact": ["a.b.c"],
    "two": ["a", "a.b", "a.b.c", "x.b", "b.a", "a..c", "aa.b"],
}


def test_topic(amqp, ch):
    ex = amqp.exchange("topic")
    ch.exchange_declare(ex, "topic")
    queues = {}
    for name, patterns in TOPIC_BINDINGS.items():
        q = queues[name] = amqp.queue(f"topic-{name}")
        ch.queue_declare(q)
        for p in patterns:
            ch.queue_bind(q, ex, p)
    for key in TOPIC_KEYS:
        ch.basic_publish(ex, key, f"[{key}]".encode())
    for name, q in queues.items():
        assert bodies(ch, q) == [f"[{k}]".encode() for k in TOPIC_EXPECTED[name]], name


def test_headers(amqp, ch):
    ex = amqp.exchange("headers")
    ch.exchange_declare(ex, "headers")
    q_all, q_any, q_default = (amqp.queue("hdr-all"), amqp.queue("hdr-any"),
                               amqp.queue("hdr-default"))
    for q in (q_all, q_any, q_default):
        ch.queue_declare(q)
    ch.queue_bind(q_all, ex, arguments={"x-match": "all", "format": "pdf", "type": "report"})
    ch.queue_bind(q_any, ex, arguments={"x-match": "any", "format": "pdf", "type": "report"})
    # No x-match means all.
    ch.queue_bind(q_default, ex, arguments={"format": "zip"})
    cases = [
        ("both", {"format": "pdf", "type": "report"}),
        ("both+extra", {"format": "pdf", "type": "report", "size": 3}),
        ("format-only", {"format": "pdf"}),
        ("type-only", {"type": "report"}),
        ("wrong-values", {"format": "doc", "type": "memo"}),
        ("zip", {"format": "zip"}),
        ("none", None),
    ]
    for body, headers in cases:
        ch.basic_publish(ex, "rk-ignored", body.encode(), pika.BasicProperties(headers=headers))
    assert bodies(ch, q_all) == [b"both", b"both+extra"]
    assert bodies(ch, q_any) == [b"both", b"both+extra", b"format-only", b"type-only"]
    assert bodies(ch, q_default) == [b"zip"]


def test_exchange_to_exchange_binding(amqp, ch):
    up, down = amqp.exchange("e2e-up"), amqp.exchange("e2e-down")
    ch.exchange_declare(up, "topic")
    ch.exchange_declare(down, "direct")
    q_down, q_up = amqp.queue("e2e-down-q"), amqp.queue("e2e-up-q")
    ch.queue_declare(q_down)
    ch.queue_declare(q_up)
    # Messages flow from `up` (source) to `down` (destination) when the key matches.
    ch.exchange_bind(destination=down, source=up, routing_key="orders.*")
    ch.queue_bind(q_down, down, "orders.new")
    ch.queue_bind(q_up, up, "#")
    for key in ["orders.new", "orders.old", "payments.new"]:
        ch.basic_publish(up, key, key.encode())
    assert bodies(ch, q_down) == [b"orders.new"]
    assert bodies(ch, q_up) == [b"orders.new", b"orders.old", b"payments.new"]
    ch.exchange_unbind(destination=down, source=up, routing_key="orders.*")
    ch.basic_publish(up, "orders.new", b"after-unbind")
    assert bodies(ch, q_down) == []
    assert bodies(ch, q_up) == [b"after-unbind"]


def test_alternate_exchange(amqp, ch):
    main, alt = amqp.exchange("ae-main"), amqp.exchange("ae-alt")
    ch.exchange_declare(alt, "fanout")
    ch.exchange_declare(main, "direct", arguments={"alternate-exchange": alt})
    q_main, q_alt = amqp.queue("ae-main-q"), amqp.queue("ae-alt-q")
    ch.queue_declare(q_main)
    ch.queue_declare(q_alt)
    ch.queue_bind(q_main, main, "known")
    ch.queue_bind(q_alt, alt, "")
    returned = []
    ch.add_on_return_callback(lambda *a: returned.append(a))
    ch.basic_publish(main, "known", b"routed")
    # mandatory: the alternate exchange counts as routed, so nothing is returned.
    ch.basic_publish(main, "unknown", b"to-alt", mandatory=True)
    ch.connection.process_data_events(time_limit=0.2)
    assert returned == []
    assert bodies(ch, q_main) == [b"routed"]
    msgs = get_all(ch, q_alt)
    assert [b for _, _, b in msgs] == [b"to-alt"]
    assert msgs[0][0].exchange == main and msgs[0][0].routing_key == "unknown"
