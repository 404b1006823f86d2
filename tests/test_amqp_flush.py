"""AMQPSpace from a synchronous sender: ``send()`` does not wait for the broker, and
``flush()`` is where the sends before it are known to be confirmed (persisted by the
broker) -- across a connection the broker kills mid-stream, each arriving exactly once.

Real RabbitMQ (the private broker of tests/rabbitmq.py); the connection is closed by the
broker (``rabbitmqctl close_connection``), as an operator or a broker-side failure would.
"""

from __future__ import annotations

import queue

from test_amqp_space import (WAIT, Sink, connection_pids, ctl, eventually,  # noqa: F401
                             make_space, msg, take, unique_exchange)


def test_every_send_confirmed_by_flush_arrives_exactly_once_across_a_killed_connection(
        make_space, rabbitmq_broker):
    count, kill_at = 3000, 1000
    exchange = unique_exchange("flush")
    sending, receiving = make_space(exchange), make_space(exchange)
    received: queue.Queue = queue.Queue()
    receiving.add(Sink, "receiver", received=received)
    me = sending.connect("me")  # the interactive, synchronous sender
    sent = []
    for n in range(count):
        sent.append(me.send("receiver", "take", n=n))
        if n == kill_at:  # mid-stream, with publishes in flight and more to come: both
            for pid in connection_pids(rabbitmq_broker, exchange):  # spaces' connections
                ctl(rabbitmq_broker, "close_connection", pid, "test: killed mid-stream")
    assert sending.flush(60), "flush() did not see every send confirmed"
    link = sending._link
    assert not link._outbox and not link._unconfirmed  # nothing left to confirm
    assert link.connections >= 2, "the sender's connection was not killed"
    # Confirmed means the broker holds them: the sender may go at once, and they arrive.
    sending.destroy()
    got = take(received, count, timeout=120)
    assert sorted(got) == sorted(sent), "lost or duplicated"  # each exactly once
    # A barrier: the receiver handles its queue in order; nothing more comes after it.
    with receiving.connect("late") as late:
        late.request("receiver", "take", n=-1, timeout=WAIT)
    assert received.qsize() == 1
    assert receiving._link.connections >= 2, "the receiver's connection was not killed"


def test_flush_with_nothing_sent_and_after_destroy(make_space):
    space = make_space(unique_exchange("flush-idle"))
    assert space.flush(WAIT)
    me = space.connect("me")
    space.add(Sink, "receiver", received=queue.Queue())
    assert me.request("receiver", "take", n=1, timeout=WAIT) is None
    assert space.flush(WAIT)
    space.destroy()
    assert space.flush(0)  # nothing can be outstanding once destroyed
