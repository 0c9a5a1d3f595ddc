"""aio-pika: robust connection, 1,000 messages with publisher confirms, consumed with
``message.process()`` acks.

How: ``aio_pika.connect_robust`` opens a channel with publisher confirms (aio-pika's
default: every ``exchange.publish`` awaits its basic.ack) and declares a fresh queue;
1,000 persistent messages with a correlation id and a header are published through the
default exchange. A ``queue.iterator()`` with prefetch 100 consumes them, each inside
``async with message.process()`` (acked on leaving the block). Checks: all arrive once,
in order, not redelivered, with their properties; the queue then reports
message_count 0 and is deleted; the connection closes cleanly. Bounded by
asyncio.wait_for.
"""

from __future__ import annotations

import asyncio

import aio_pika

N = 1_000
TIMEOUT_S = 60


async def run(url: str, queue_name: str) -> dict:
    conn = await aio_pika.connect_robust(url, timeout=10)
    result: dict = {}
    try:
        channel = await conn.channel(publisher_confirms=True)
        await channel.set_qos(prefetch_count=100)
        queue = await channel.declare_queue(queue_name, durable=False)
        for i in range(N):
            confirmation = await channel.default_exchange.publish(
                aio_pika.Message(f"aio-{i}".encode(), correlation_id=str(i),
                                 headers={"n": i},
                                 delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                routing_key=queue_name, timeout=10)
            assert confirmation is not None
        bodies, redelivered, correlations, headers = [], 0, [], []
        async with queue.iterator() as it:
            async for message in it:
                async with message.process():
                    bodies.append(message.body)
                    correlations.append(message.correlation_id)
                    headers.append(message.headers.get("n"))
                    redelivered += bool(message.redelivered)
                if len(bodies) == N:
                    break
        result["bodies"] = bodies
        result["redelivered"] = redelivered
        result["correlations"] = correlations
        result["headers"] = headers
        passive = await channel.declare_queue(queue_name, passive=True)
        result["remaining"] = passive.declaration_result.message_count
        result["deleted_count"] = (await queue.delete()).message_count
        await channel.close()
    finally:
        await conn.close()
    result["closed"] = conn.is_closed
    return result


def test_aio_pika_robust_publish_consume_1000(amqp):
    q = amqp.queue("aio-1k")
    res = asyncio.run(asyncio.wait_for(run(amqp.url, q), TIMEOUT_S))
    assert res["bodies"] == [f"aio-{i}".encode() for i in range(N)]
    assert res["correlations"] == [str(i) for i in range(N)]
    assert res["headers"] == list(range(N))
    assert res["redelivered"] == 0
    assert res["remaining"] == 0
    assert res["deleted_count"] == 0
    assert res["closed"]
