"""Load limits (issue 9, part 3; docs/limits.md): bounded buffers and backpressure.

* Server: a raw-socket consumer that stops reading while a producer floods it. The
  server's buffer for it stays near its high-water mark, the server stops reading from
  the producer (whose own sends then wait), the stuck consumer is cut off after the
  stall timeout with an ``Error`` packet naming the reason, and everyone else goes on.
  The same against a server process, with the synchronous client, whose
  ``message()`` blocks while its buffer is over the high-water mark.
* In-process classic agents: a slow receiver's pending count never exceeds its
  ``inbox_limit``; a sender waits, then gets ``InboxFull`` naming the receiver and the
  limit; an agent sending to itself, and two agents sending to each other, at their
  limits do not deadlock.
* ``Agent._message_log`` is bounded.

No timed assertions: counts, limits and events, each waited for with a timeout.
"""

from __future__ import annotations

import threading

import pytest
import trio
from preserves import Embedded, Record, Symbol
from syndicate import patterns as P

from dataspace_agency.classic import Agent, InboxFull, action
from dataspace_agency.protocol.client import connect
from dataspace_agency.protocol.codec import (Assert, ErrorPacket, PacketReader, WireRef,
                                             encode_turn, parse_packet)
from dataspace_agency.protocol.relay import FlowControl
from dataspace_agency.protocol.server import open_server
from dataspace_agency.spaces import DataspaceSpace, QueueSpace

FLOOD = Symbol("flood")
HIGH_WATER = 256 * 1024
STALL = 3.0  # seconds; generous, as the producer must fill the pipe first
PAYLOAD = "x" * 1000
BURST = 64  # the producer yields to the scheduler after this many messages
READ = 65536  # transport.py's read size: one read's output is the allowed overshoot


# --- the server ----------------------------------------------------------------------------

async def _raw_consumer(address: tuple[str, int], cap: Record) -> tuple[trio.SocketStream,
                                                                       PacketReader]:
    """Resolve the cap and observe ``<flood _>`` by hand, reading only the answer to
    the resolve; after that this connection never reads (until told to)."""
    stream = await trio.open_tcp_stream(*address)
    stream.socket.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_RCVBUF, 4096)
    resolve = Record(Symbol("resolve"), [cap, Embedded(WireRef(True, 0))])
    await stream.send_all(encode_turn([(0, Assert(resolve, 0))]))
    reader = PacketReader()
    ds_oid = None
    with trio.fail_after(10):
        while ds_oid is None:
            reader.feed(await stream.receive_some(65536))
            for value in reader:
                for _oid, event in parse_packet(value):
                    accepted = event.value
                    assert accepted.key == Symbol("accepted"), accepted
                    ds_oid = accepted.fields[0].embeddedValue.oid
    observe = Record(Symbol("Observe"), [P.rec("flood", P.CAPTURE),
                                         Embedded(WireRef(True, 1))])
    await stream.send_all(encode_turn([(ds_oid, Assert(observe, 1))]))
    return stream, reader


async def _read_to_eof(stream: trio.SocketStream, reader: PacketReader) -> list:
    packets = []
    while True:
        try:
            chunk = await stream.receive_some(65536)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            break
        if not chunk:
            break
        reader.feed(chunk)
        packets.extend(parse_packet(value) for value in reader)
    return packets


async def test_a_consumer_that_stops_reading_is_bounded_slows_the_producer_and_is_cut_off():
    async with open_server(tcp=("127.0.0.1", 0), high_water=HIGH_WATER,
                           stall_timeout=STALL) as server:
        address, cap = server.tcp_address, server.capability
        async with connect(address, cap) as producer, connect(address, cap) as bystander:
            stream, reader = await _raw_consumer(address, cap)
            # The consumer's relay on the server: the connection that resolved last (it
            # is registered before its first packet is read, so it is there by now).
            assert len(server.relays) == 3
            consumer = server.relays[max(server.relays)]
            await producer.sync()  # the Observe has reached the dataspace by now
            # The producer's own buffer: a small high-water mark so that it fills fast.
            relay = producer.connection.relay
            relay.flow = FlowControl(high_water=HIGH_WATER, stall_timeout=None)

            sent = blocked = 0
            with trio.fail_after(STALL + 60):
                while not consumer.closing.is_set() and sent < 200_000:
                    if relay.congested:
                        blocked += 1  # this send has to wait: the server is not reading
                    await producer.wait_writable()
                    producer.message(Record(FLOOD, [PAYLOAD]))
                    sent += 1
                    if sent % BURST == 0:
                        await trio.lowlevel.checkpoint()
                # The consumer is cut off after the stall timeout, with an Error packet.
                await consumer.closing.wait()
                packets = await _read_to_eof(stream, reader)
            await stream.aclose()

            assert "slow consumer cut off" in consumer.close_reason
            assert isinstance(packets[-1], ErrorPacket), packets[-1:]
            assert "the peer is not reading" in packets[-1].message
            assert all(not isinstance(p, ErrorPacket) for p in packets[:-1])
            # Its buffer stayed near the high-water mark: one read's output over, at most.
            assert HIGH_WATER < consumer.peak_out_bytes <= HIGH_WATER + 2 * READ
            # The server paused reading from the others; the producer had to wait, and
            # its own buffer stayed bounded too.
            assert server.flow.pauses > 0 and server.flow.cut_off == 1
            assert blocked > 0
            # (over by one burst at most: the messages made between two checkpoints go
            # out as one packet, and congestion is noticed when it is written)
            assert relay.peak_out_bytes <= HIGH_WATER + BURST * (len(PAYLOAD) + 100)
            assert not server.flow.congested
            # Everyone else goes on: the producer's messages reach another reader.
            async with bystander.observe(P.rec("after", P.CAPTURE)) as events:
                await bystander.sync()
                producer.message(Record(Symbol("after"), [sent]))
                with trio.fail_after(30):  # the producer's backlog drains first
                    event = await events.receive()
                assert event.captures == (sent,)
            assert producer.connected and bystander.connected


async def test_flow_control_limits_are_checked():
    with pytest.raises(ValueError, match="low_water"):
        FlowControl(high_water=100, low_water=200)
    with pytest.raises(ValueError, match="stall_timeout"):
        FlowControl(stall_timeout=0)
    with pytest.raises(ValueError, match="high_water"):
        async with open_server(tcp=("127.0.0.1", 0), high_water=0):
            pass


# --- in-process classic agents --------------------------------------------------------------

class Slow(Agent):
    """Handles ``work`` only once released; remembers the most it ever had pending."""

    def __init__(self, id: str, **kwargs) -> None:
        super().__init__(id, **kwargs)
        self.release = threading.Event()
        self.started = threading.Event()
        self.handled = 0
        self.lock = threading.Lock()

    @action
    def work(self) -> None:
        self.started.set()
        self.release.wait(30)
        with self.lock:
            self.handled += 1


def _space(kind: str):
    return QueueSpace() if kind == "queue" else DataspaceSpace(mode=kind)


def _call(space, fn):
    return space._background.call(lambda rt: fn())


@pytest.mark.parametrize("kind", ["message", "assertion", "queue"])
def test_a_slow_receiver_holds_at_its_limit_and_the_sender_waits_then_fails(kind):
    limit = 5
    with _space(kind) as space:
        slow = space.add_foreground(Slow, "slow", inbox_limit=limit)
        me = space.add_foreground(Agent, "me")
        work = {"to": "slow", "action": {"name": "work", "args": {}}}
        me.send(work)
        assert slow.started.wait(30)  # one running: not pending any more
        sent = 1
        with pytest.raises(InboxFull) as failure:
            for _ in range(limit + 10):  # `limit` pending, then it is full
                me.send(work, timeout=0.3)
                sent += 1
        assert sent == limit + 1
        assert failure.value.receiver == "slow" and failure.value.limit == limit
        assert '"slow"' in str(failure.value) and f"{limit} pending" in str(failure.value)
        assert isinstance(failure.value, TimeoutError)
        core = slow._core
        assert _call(space, lambda: core.inbox_pending) == limit
        assert core.inbox_peak == limit

        # A sender waiting at the limit goes ahead once the receiver catches up.
        done = threading.Event()
        waiter = threading.Thread(target=lambda: (me.send(work, timeout=30), done.set()))
        waiter.start()
        assert not done.wait(0.2)  # still full: it waits (not a timing claim: it cannot
        # go before the release below, as nothing is handled until then)
        slow.release.set()
        assert done.wait(30)
        waiter.join(30)
        me.request({"to": "slow", "action": {"name": "help", "args": {}}}, timeout=30)
        assert slow.handled == sent + 1
        assert core.inbox_peak == limit


class Looper(Agent):
    """Sends ``count`` messages to ``target``'s ``noop`` from an action, at a small
    limit, and counts those it receives."""

    def __init__(self, id: str, **kwargs) -> None:
        super().__init__(id, inbox_limit=2, **kwargs)
        self.received = 0

    @action
    def blast(self, target: str, count: int) -> int:
        for _ in range(count):
            self.send({"to": target, "action": {"name": "noop", "args": {}}}, timeout=30)
        return count

    @action
    def volley(self, target: str, count: int) -> int:
        # Both agents run this at once, each filling the other's inbox.
        for _ in range(count):
            self.send({"to": target, "action": {"name": "noop", "args": {}}}, timeout=30)
        return count

    @action
    def noop(self) -> None:
        self.received += 1

    @action
    async def async_blast(self, target: str, count: int) -> list:
        message = {"to": target, "action": {"name": "noop", "args": {}}}
        errors = []
        for _ in range(count):
            try:
                self.send(message)  # on the runtime thread: cannot wait
            except InboxFull as exc:
                errors.append(exc.waited)
                await self.asend(message, timeout=30)  # awaits room instead
        return errors


@pytest.mark.parametrize("kind", ["message", "assertion", "queue"])
def test_sending_to_itself_at_the_limit_does_not_deadlock(kind):
    with _space(kind) as space:
        looper = space.add_foreground(Looper, "looper")
        me = space.add_foreground(Agent, "me")
        assert me.request({"to": "looper", "action": {"name": "blast", "args": {
            "target": "looper", "count": 50}}}, timeout=60) == 50
        me.request({"to": "looper", "action": {"name": "noop", "args": {}}}, timeout=60)
        assert looper.received == 51
        assert looper._core.inbox_peak <= 2


@pytest.mark.parametrize("kind", ["message", "assertion", "queue"])
def test_two_agents_sending_to_each_other_at_their_limits_do_not_deadlock(kind):
    with _space(kind) as space:
        a = space.add_foreground(Looper, "a")
        b = space.add_foreground(Looper, "b")
        me = space.add_foreground(Agent, "me")
        results: list = []

        def volley(source: str, target: str) -> None:
            results.append(me.request({"to": source, "action": {"name": "volley", "args": {
                "target": target, "count": 40}}}, timeout=60))
        threads = [threading.Thread(target=volley, args=pair)
                   for pair in (("a", "b"), ("b", "a"))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(90)
        assert results == [40, 40]
        for agent in (a, b):  # a final request goes behind every noop in the inbox
            me.request({"to": agent.id, "action": {"name": "noop", "args": {}}}, timeout=60)
        assert (a.received, b.received) == (41, 41)
        assert a._core.inbox_peak <= 2 and b._core.inbox_peak <= 2


def test_an_async_action_cannot_wait_in_send_but_awaits_in_asend():
    with DataspaceSpace(mode="message") as space:
        space.add(Looper, "looper")
        target = space.add_foreground(Looper, "target")
        me = space.add_foreground(Agent, "me")
        waited = me.request({"to": "looper", "action": {"name": "async_blast", "args": {
            "target": "target", "count": 30}}}, timeout=60)
        # Whenever send() found the inbox full it raised at once (waited None), and the
        # asend() that followed got through.
        assert len(waited) >= 1 and all(w is None for w in waited)
        me.request({"to": "target", "action": {"name": "noop", "args": {}}}, timeout=60)
        assert target.received == 31
        assert target._core.inbox_peak <= 2


def test_limits_are_checked():
    with pytest.raises(ValueError, match="inbox_limit"):
        Agent("a", inbox_limit=0)
    with pytest.raises(ValueError, match="message_log_limit"):
        Agent("a", message_log_limit=0)
    with pytest.raises(ValueError, match="send_timeout"):
        Agent("a", send_timeout=-1)


# --- the message log -----------------------------------------------------------------------

class Echo(Agent):
    @action
    def echo(self, text: str) -> str:
        return text


def test_the_message_log_is_bounded_and_parent_message_still_finds_recent_parents():
    assert Agent.message_log_limit == 1000
    with DataspaceSpace(mode="message") as space:
        space.add(Echo, "echo")
        me = space.add_foreground(Agent, "me", message_log_limit=10)
        for i in range(50):
            assert me.request({"to": "echo", "action": {"name": "echo", "args": {
                "text": str(i)}}}, timeout=30) == str(i)
        assert len(me._message_log) == 10
        last_reply = me._message_log[-1]
        assert last_reply["action"]["args"]["value"] == "49"
        assert me.parent_message(last_reply)["action"]["args"]["text"] == "49"
        # The oldest are forgotten: a reply to the first request no longer finds it.
        first = {"meta": {"parent_id": "never-kept"}}
        assert me.parent_message(first) is None


# --- the synchronous client blocks ---------------------------------------------------------

def test_the_sync_client_blocks_while_a_server_process_holds_it_back():
    import socket

    from dataspace_agency.protocol.sync_client import connect_sync
    from dataspace_agency.protocol.process import ServerProcess

    with ServerProcess.start(extra_args=("--high-water", str(HIGH_WATER),
                                         "--stall-timeout", str(STALL))) as server:
        path = server.address.fields[0]
        consumer = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        consumer.settimeout(30)
        consumer.connect(path)
        resolve = Record(Symbol("resolve"), [server.capability, Embedded(WireRef(True, 0))])
        consumer.sendall(encode_turn([(0, Assert(resolve, 0))]))
        reader = PacketReader()
        ds_oid = None
        while ds_oid is None:
            reader.feed(consumer.recv(65536))
            for value in reader:
                for _oid, event in parse_packet(value):
                    ds_oid = event.value.fields[0].embeddedValue.oid
        observe = Record(Symbol("Observe"), [P.rec("flood", P.CAPTURE),
                                             Embedded(WireRef(True, 1))])
        consumer.sendall(encode_turn([(ds_oid, Assert(observe, 1))]))
        # From here on the consumer does not read: the server holds everyone back, and
        # cuts it off after the stall timeout.
        with connect_sync(server.address, server.capability) as client:
            client.sync()  # the Observe has reached the dataspace by now (same server)
            relay = client.handle.connection.relay
            relay.flow = FlowControl(high_water=HIGH_WATER, stall_timeout=None)
            packets: list = []

            def read_consumer() -> None:
                while True:
                    chunk = consumer.recv(65536)
                    if not chunk:
                        break
                    reader.feed(chunk)
                    packets.extend(parse_packet(value) for value in reader)

            draining = threading.Thread(target=read_consumer)
            blocked = 0
            for _ in range(20_000):  # ~20 MB: far more than the socket buffers hold
                if relay.congested:
                    blocked += 1  # this message() will wait for room
                elif blocked and draining.ident is None:
                    # We were held back and are not any more: the server reads again,
                    # so it has cut the consumer off. Take its Error packet now.
                    draining.start()
                client.message(Record(FLOOD, [PAYLOAD]))
            client.sync()
            assert blocked > 0
            assert relay.peak_out_bytes <= HIGH_WATER + 2 * (len(PAYLOAD) + 100)
            assert client.connected
        draining.join(30)
        consumer.close()
        assert isinstance(packets[-1], ErrorPacket)
        assert "slow consumer cut off" in packets[-1].message
