"""AMQPSpace from a synchronous sender: ``send()`` does not wait for the broker, and
``flush()`` is where the sends before it are known to be confirmed (persisted by the
broker) -- across a connection the broker kills mid-stream, each arriving exactly once.

Real RabbitMQ (the private broker of tests/rabbitmq.py); the connection is closed by the
broker (``rabbitmqctl close_connection``), as an operator or a broker-side failure would.
"""

from __future__ import annotations

import queue

from hypothesis import given, settings
from hypothesis import strategies as st

from dataspace_agency.spaces.amqp.state import Acks
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


# --- acknowledgements in as few frames as is safe (no broker needed: a model of one) ------

@settings(max_examples=300, deadline=None)
@given(st.data())
def test_batched_acknowledgements_never_reach_an_unhandled_delivery(data):
    """A model of a channel on the broker: ``multiple`` acknowledges every outstanding tag
    up to its own, and acknowledging a tag that is not outstanding is a channel error.
    Deliveries are handled in rounds, mostly in order, some out of order, some never."""
    count = data.draw(st.integers(1, 200))
    order = data.draw(st.permutations(range(1, count + 1))) if data.draw(st.booleans()) \
        else list(range(1, count + 1))
    never = set(data.draw(st.lists(st.sampled_from(order), max_size=3)))
    acks = Acks()
    if data.draw(st.booleans()):
        acks.ABOVE_LIMIT = data.draw(st.integers(0, 8))  # the fallback to single frames
    outstanding, handled, frames = set(range(1, count + 1)), set(), 0
    position = 0
    while position < count:
        size = data.draw(st.integers(1, 30))
        for tag in order[position:position + size]:
            if tag not in never:
                acks.due.append(tag)
                handled.add(tag)
        position += size
        for tag, multiple in acks.take():
            frames += 1
            assert tag in outstanding, f"tag {tag} acknowledged twice"
            reached = {t for t in outstanding if t <= tag} if multiple else {tag}
            assert reached <= handled, f"acknowledged unhandled deliveries {reached - handled}"
            outstanding -= reached
    assert outstanding == never  # every handled delivery acknowledged, once
    assert frames <= len(handled)


def test_in_order_rounds_take_one_frame_each():
    acks = Acks()
    acks.due.extend(range(1, 101))
    assert acks.take() == [(100, True)]
    acks.due.extend([102, 101, 104])  # 103 still being handled
    assert acks.take() == [(102, True), (104, False)]
    acks.due.append(103)
    assert acks.take() == [(103, True)]  # 104 was acknowledged already: not outstanding
