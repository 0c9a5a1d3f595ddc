"""Transactions: tx.select / tx.commit / tx.rollback.

How (a transactional channel, and a second connection observing the queue):
- publishes on a transactional channel are invisible (message_count 0, get-empty)
  until tx.commit, then all appear in order;
- tx.rollback discards the publishes since the last commit;
- acks in a transaction take effect only on commit: messages fetched with basic.get
  and acked, then the channel closed without commit, are requeued (redelivered=True);
  acked then committed, they are gone; acked then rolled back, they stay unacked and
  come back when the channel closes;
- tx.commit / tx.rollback without tx.select → channel.close 406 PRECONDITION_FAILED
  ("PRECONDITION_FAILED - channel is not transactional").
"""

from __future__ import annotations

from amqputil import channel_error, get_all, message_count, wait_count


def test_publish_commit_rollback(amqp):
    q = amqp.queue("tx")
    conn, obs = amqp.connect(), amqp.connect()
    try:
        ch = conn.channel()
        ch.queue_declare(q)
        ch.tx_select()
        for i in range(3):
            ch.basic_publish("", q, f"c{i}".encode())
        ch.queue_declare(q, passive=True)  # a round trip: the publishes were read
        assert message_count(obs, q) == 0
        assert obs.channel().basic_get(q) == (None, None, None)
        ch.tx_commit()
        assert wait_count(obs, q, 3) == 3

        ch.basic_publish("", q, b"r0")
        ch.basic_publish("", q, b"r1")
        ch.tx_rollback()
        ch.basic_publish("", q, b"c3")
        ch.tx_commit()
        assert [b for _, _, b in get_all(obs.channel(), q)] == [b"c0", b"c1", b"c2", b"c3"]
    finally:
        conn.close()
        obs.close()


def test_acks_take_effect_on_commit(amqp):
    q = amqp.queue("tx-ack")
    conn, obs = amqp.connect(), amqp.connect()
    try:
        setup = obs.channel()
        setup.confirm_delivery()
        setup.queue_declare(q)
        for i in range(4):
            setup.basic_publish("", q, f"a{i}".encode())

        # Ack without commit, then close: both messages come back.
        ch = conn.channel()
        ch.tx_select()
        m0, _, _ = ch.basic_get(q)
        m1, _, _ = ch.basic_get(q)
        ch.basic_ack(m1.delivery_tag, multiple=True)
        assert message_count(obs, q) == 2
        ch.close()
        assert wait_count(obs, q, 4) == 4

        # Ack, rollback: still unacked; close: requeued.
        ch = conn.channel()
        ch.tx_select()
        m, _, b = ch.basic_get(q)
        assert (b, m.redelivered) == (b"a0", True)
        ch.basic_ack(m.delivery_tag)
        ch.tx_rollback()
        assert message_count(obs, q) == 3
        ch.close()
        assert wait_count(obs, q, 4) == 4

        # Ack, commit: gone for good.
        ch = conn.channel()
        ch.tx_select()
        m0, _, b0 = ch.basic_get(q)
        m1, _, b1 = ch.basic_get(q)
        assert (b0, b1) == (b"a0", b"a1")
        ch.basic_ack(m0.delivery_tag)
        ch.basic_ack(m1.delivery_tag)
        ch.tx_commit()
        ch.close()
        assert wait_count(obs, q, 2) == 2
        assert [b for _, _, b in get_all(obs.channel(), q)] == [b"a2", b"a3"]
    finally:
        conn.close()
        obs.close()


def test_commit_without_select(amqp):
    conn = amqp.connect()
    try:
        e = channel_error(conn.channel().tx_commit)
        assert (e.reply_code, e.reply_text) == \
            (406, "PRECONDITION_FAILED - channel is not transactional")
        e = channel_error(conn.channel().tx_rollback)
        assert (e.reply_code, e.reply_text) == \
            (406, "PRECONDITION_FAILED - channel is not transactional")
    finally:
        conn.close()
