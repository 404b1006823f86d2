"""Messages batched into one Zenoh put (dataspace_agency/zenoh/batch.py): the framing, a
burst through a router arriving complete and in order (native and classic), and a
malformed batch from a peer reported without stopping later deliveries."""

from __future__ import annotations

import logging
import threading

import pytest
import trio
import zenoh
from syndicate import patterns as P

from dataspace_agency import Agent, action
from dataspace_agency.native import Event
from dataspace_agency.spaces.zenoh_space import ZenohDataspaceSpace
from dataspace_agency.zenoh import connect
from dataspace_agency.zenoh.batch import (BATCH_MAX_BYTES, BATCH_MAX_COUNT, MalformedBatch,
                                          is_batch, pack, unpack)
from dataspace_agency.zenoh.keys import decode_data, encode_value, message_key
from dataspace_agency.zenoh.session import open_session

from helpers import next_events, pending, rec
from zenoh_fixtures import ds, fresh_namespace, router  # noqa: F401 - fixtures


def test_a_batch_gives_back_its_messages_in_order():
    bodies = [encode_value(rec("Say", i, "x" * (i * 40)))[1] for i in range(6)]
    assert any(len(body) >= 128 for body in bodies)  # a length of two varint bytes
    payload = pack(bodies)
    assert is_batch(payload)
    assert not any(is_batch(body) for body in bodies)  # no single message looks like one
    assert unpack(payload) == bodies


@pytest.mark.parametrize("payload", [
    b"\x00",  # no messages
    b"\x00\x05ab",  # a length past the end
    b"\x00\x02ab\x80",  # a length cut short
    b"\x00\x00",  # an empty message
    b"\x00" + b"\xff" * 10 + b"\x01",  # a length prefix too long
])
def test_broken_framing_is_refused(payload):
    with pytest.raises(MalformedBatch):
        unpack(payload)


async def test_a_burst_to_one_key_is_few_puts_and_arrives_complete_and_in_order(ds, router):
    count = 3 * BATCH_MAX_COUNT + 10
    seen: list[bytes] = []  # message bodies as a raw Zenoh subscriber gets them
    puts: list[bool] = []  # per put: whether it was a batch
    all_seen = threading.Event()

    def raw(sample: zenoh.Sample) -> None:  # a Zenoh thread
        payload = sample.payload.to_bytes()
        puts.append(is_batch(payload))
        seen.extend(unpack(payload) if is_batch(payload) else [payload])
        if len(seen) >= count:
            all_seen.set()

    watcher = ds.session.declare_subscriber(f"{ds.namespace}/m/**", raw)
    try:
        async with connect(router.endpoints, namespace=ds.namespace) as other:
            async with ds.observe(P.rec("Take", P.lit("echo"), P.CAPTURE)) as events:
                await ds.sync()
                # One burst (no turn of the sender's runtime in between), to one key: a
                # compound field is one `_` chunk of the key, as a classic message's body.
                for i in range(count):
                    other.message(rec("Take", "echo", [i]))
                got = await next_events(events, count)
                assert got == [Event("message", ((i,),)) for i in range(count)]
                await other.sync()
                await ds.sync()
                assert pending(events) == []  # each once
            assert await trio.to_thread.run_sync(all_seen.wait, 10)
    finally:
        watcher.undeclare()
    assert [decode_data(body, "test").fields[1][0] for body in seen] == list(range(count))
    # Merged, within the caps: far fewer puts than messages.
    assert any(puts) and len(puts) < count // 10
    assert len(puts) >= -(-count // BATCH_MAX_COUNT)


async def test_a_message_alone_and_messages_to_other_keys_keep_their_order(ds, router):
    async with connect(router.endpoints, namespace=ds.namespace) as other:
        async with ds.observe(P.rec("Take", P.CAPTURE, P.CAPTURE)) as events:
            await ds.sync()
            sent = [("a", 1), ("a", 2), ("b", 3), ("a", 4), ("b", 5), ("b", 6),
                    ("c", "x" * (BATCH_MAX_BYTES + 10)), ("c", 7)]  # one too big to join
            for to, body in sent:
                other.message(rec("Take", to, [body]))  # per `to`, one key
            assert await next_events(events, len(sent)) == [
                Event("message", (to, (body,))) for to, body in sent]


async def test_a_malformed_batch_from_a_peer_is_reported_and_later_messages_arrive(ds, caplog):
    caplog.set_level(logging.WARNING)
    key = message_key(ds.namespace, encode_value(rec("Take", "echo", [0]))[0])
    async with ds.observe(P.rec("Take", P.lit("echo"), P.CAPTURE)) as events:
        await ds.sync()
        # A raw Zenoh session (not a dataspace proxy) puts broken batches at our key.
        ds.session.put(key, b"\x00\x40only-a-few-bytes")
        good = encode_value(rec("Take", "echo", ["kept"]))[1]
        ds.session.put(key, pack([good, b"\xb1\x05bad"]))  # framing fine, a value not
        ds.message(rec("Take", "echo", ["after"]))
        assert await next_events(events, 2) == [Event("message", (("kept",),)),
                                                Event("message", (("after",),))]
        await ds.sync()
        assert pending(events) == []
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and key in errors[0].getMessage()
    assert "malformed batch" in errors[0].getMessage()
    assert "ignoring a message from a peer" in caplog.text  # the bad value in the batch


class Receiver(Agent):
    """Keeps what it is sent (in ``got``); sets ``done`` once it has ``expected``."""

    expected = 0
    got: list[int] = []
    done = threading.Event()

    @action
    def take(self, i: int) -> None:
        Receiver.got.append(i)
        if len(Receiver.got) == self.expected:
            Receiver.done.set()


class Sender(Agent):
    @action
    def burst(self, count: int) -> None:
        for i in range(count):
            self.send({"to": "receiver", "action": {"name": "take", "args": {"i": i}}})


@pytest.mark.parametrize("mode", ["message", "assertion"])
def test_a_burst_of_messages_to_one_agent_arrives_complete_and_in_order(router, mode):
    count = 2 * BATCH_MAX_COUNT + 50
    Receiver.expected, Receiver.got, Receiver.done = count, [], threading.Event()
    namespace = fresh_namespace()
    batched = threading.Event()  # a raw session saw a batch put under our namespace

    def raw(sample: zenoh.Sample) -> None:  # a Zenoh thread
        if is_batch(sample.payload.to_bytes()):
            batched.set()

    watcher = open_session(router.endpoints, "client")
    try:
        watcher.declare_subscriber(f"{namespace}/m/**", raw)
        with ZenohDataspaceSpace(router.endpoints, mode=mode, namespace=namespace) as here, \
                ZenohDataspaceSpace(router.endpoints, mode=mode, namespace=namespace) as there:
            here.add(Receiver, "receiver")
            there.add(Sender, "sender")
            me = there.add_foreground(Agent, "me")
            me.request({"to": "sender", "action": {"name": "burst", "args": {"count": count}}},
                       timeout=30)
            assert Receiver.done.wait(30)
            assert Receiver.got == list(range(count))
            if mode == "message":  # classic messages are puts, the burst's batched
                assert batched.wait(10)
    finally:
        watcher.close()
