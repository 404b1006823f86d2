"""AMQPSpace on a real RabbitMQ (the private broker of tests/rabbitmq.py, or
$DATASPACE_AGENCY_AMQP_URL): what the contract suite cannot see.

Id escaping, duplicate ids across spaces, one connection per space, acknowledgement only
after handling, recovery from a closed connection and from a broker restart (nothing
silently lost), and failure reports when the broker stays away.

Synchronisation is by events and queues with timeouts; broker-side facts are read with
``rabbitmqctl`` (the tests needing it use the ``rabbitmq_broker`` fixture, so they skip
with an external broker) and polled against a deadline where the broker updates them
asynchronously.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
import time
import urllib.parse
import uuid

import pytest

from dataspace_agency import ActionError, Agent, action
from dataspace_agency.spaces.amqp import AMQPSpace, escape_id
from dataspace_agency.spaces.amqp.names import Names

WAIT = 10.0  # seconds to wait for something that should come at once


def msg(to: str, name: str, /, **args) -> dict:
    return {"to": to, "action": {"name": name, "args": args}}


def unique_exchange(tag: str) -> str:
    return f"test-{tag}-{uuid.uuid4().hex}"


def take(q: queue.Queue, count: int, timeout: float = WAIT) -> list:
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < count:
        try:
            got.append(q.get(timeout=max(0.0, deadline - time.monotonic())))
        except queue.Empty:
            pytest.fail(f"expected {count} events, got {len(got)}: {got!r}")
    return got


class Recorder(Agent):
    """Records what reaches it on ``seen``; ``whoami`` answers its id."""

    def __init__(self, id, *args, seen, **kwargs):
        super().__init__(id, *args, **kwargs)
        self.seen = seen

    @action
    def note(self, n: int):
        self.seen.put((self.id, n, self.current_message()["meta"]["id"]))

    @action
    def whoami(self):
        return self.id

    @action
    def echo(self, value):
        return value


class Client(Agent):
    """Reports the replies to its ``send()``s on ``events``."""

    def __init__(self, id, *args, events=None, **kwargs):
        super().__init__(id, *args, **kwargs)
        self.events = events if events is not None else queue.Queue()

    def handle_action_value(self, value):
        self.events.put(("value", value, self.current_message()["meta"]["parent_id"]))

    def handle_action_error(self, error):
        self.events.put(("error", str(error), self.current_message()["meta"]["parent_id"]))


class Blocker(Agent):
    def __init__(self, id, *args, started, release, runs, **kwargs):
        super().__init__(id, *args, **kwargs)
        self.started, self.release, self.runs = started, release, runs

    @action
    def block(self):
        self.runs.put(self.current_message()["meta"]["id"])
        self.started.set()
        self.release.wait(30)
        return "released"

    @action
    def ping(self):
        return "pong"


class Sink(Agent):
    """Counts what it receives (by meta.id) for the fault test."""

    def __init__(self, id, *args, received, **kwargs):
        super().__init__(id, *args, **kwargs)
        self.received = received

    @action
    def take(self, n: int):
        self.received.put(self.current_message()["meta"]["id"])


# --- broker-side helpers ---------------------------------------------------------------

def ctl(broker, *args: str) -> str:
    result = broker._ctl("-q", *args, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def queue_counts(broker, name: str) -> tuple[int, int]:
    """(ready, unacknowledged) messages of queue ``name``."""
    for line in ctl(broker, "list_queues", "--no-table-headers", "name", "messages_ready",
                    "messages_unacknowledged").splitlines():
        queue_name, ready, unacked = line.rsplit("\t", 2)
        if queue_name == name:
            return int(ready), int(unacked)
    raise AssertionError(f"no queue {name!r} on the broker")


def connection_pids(broker, exchange: str) -> list[str]:
    """The broker's connections opened by spaces on ``exchange``."""
    pids = []
    for line in ctl(broker, "list_connections", "--no-table-headers", "pid",
                    "client_properties").splitlines():
        pid, properties = line.split("\t", 1)
        if f'"dataspace-agency {exchange}"' in properties:
            pids.append(pid)
    return pids


def eventually(check, timeout: float = 30.0):
    """Poll ``check()`` (a broker query, updated asynchronously) until it is truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value


def sockets_to(port: int) -> int:
    """TCP connections of this process to ``port`` on the loopback interface."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            established = fields[3] == "01"
            if remote_port == port and established and fields[9] in inodes:
                count += 1
    return count


def io_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("amqp-space")]


@pytest.fixture
def make_space(amqp_url):
    made: list[AMQPSpace] = []

    def make(exchange: str, **kwargs) -> AMQPSpace:
        space = AMQPSpace(amqp_url, exchange=exchange, **kwargs)
        made.append(space)
        return space

    yield make
    for space in made:
        space.destroy()


# --- names ------------------------------------------------------------------------------

def test_escaping_makes_every_id_one_literal_word():
    assert escape_id("a.b") == "a%2Eb"
    assert escape_id("#") == "%23"
    assert escape_id("*") == "%2A"
    assert escape_id("a%2Eb") == "a%252Eb"  # distinct from the escaped "a.b"
    ids = ["#", "a.b", "a*b", "a%2Eb", "a%b", "x.#", "#.#", "*.a", "a.*", "é.ü", "x" * 255,
           "x" * 254 + "y", "." * 255, "#" * 255, "ü" * 255]
    names = Names("dataspace-agency")
    words = [names.word(i) for i in ids]
    assert len(set(words)) == len(ids)
    for agent_id, word in zip(ids, words):
        assert "#" not in word and "*" not in word
        assert word.count(".") <= 1  # one word, or a hashed long one ("<prefix>.h-<hash>")
        for name in (names.queue(agent_id), names.presence(agent_id), names.key(agent_id)):
            assert len(name.encode()) <= 255
    with pytest.raises(ValueError):
        Names("e" * 200)


def test_wildcard_ids_reach_only_their_own_agent(make_space, rabbitmq_broker, caplog):
    caplog.set_level(logging.WARNING, logger="dataspace_agency.spaces.amqp")
    exchange = unique_exchange("wild")
    space = make_space(exchange)
    ids = ["#", "a.b", "a*b", "a%2Eb", "x.#", "#.#", "*.a", "a.*", "a", "b"]
    seen = queue.Queue()
    for agent_id in ids:
        space.add(Recorder, agent_id, seen=seen)
    client = space.add_foreground(Client, "client")

    for agent_id in ids:
        assert client.request(msg(agent_id, "whoami")) == agent_id
    for n, agent_id in enumerate(ids):
        client.send(msg(agent_id, "note", n=n))
    got = take(seen, len(ids))
    assert sorted((who, n) for who, n, _ in got) == sorted((a, n) for n, a in enumerate(ids))
    # Every send is answered once; by then every note has been handled: nothing more.
    assert len(take(client.events, len(ids))) == len(ids)
    for agent_id in ids:
        assert client.request(msg(agent_id, "whoami")) == agent_id  # a barrier per queue
    assert seen.empty()
    # Nothing landed in a queue it was not addressed to (the space would drop and log it).
    assert not [r for r in caplog.records if "addressed to" in r.getMessage()]

    # On the broker: each queue has exactly its own literal key and the broadcast key.
    bindings: dict[str, set[str]] = {}
    for line in ctl(rabbitmq_broker, "list_bindings", "--no-table-headers", "source_name",
                    "destination_name", "routing_key").splitlines():
        source, destination, key = line.split("\t")
        if source == exchange:
            bindings.setdefault(destination, set()).add(key)
    for agent_id in ids + ["client"]:
        assert bindings.pop(f"{exchange}.{escape_id(agent_id)}") == {
            f"agent.{escape_id(agent_id)}", "broadcast"}
    assert bindings == {}


def test_broadcast_reaches_agents_of_every_space_on_the_exchange(make_space):
    exchange = unique_exchange("broadcast")
    one, two = make_space(exchange), make_space(exchange)
    other = make_space(unique_exchange("elsewhere"))  # another namespace: not reached
    seen = queue.Queue()
    one.add(Recorder, "r1", seen=seen)
    two.add(Recorder, "r2", seen=seen)
    other.add(Recorder, "r3", seen=seen)
    client = one.add_foreground(Client, "client")
    client.send(msg("*", "note", n=1))
    assert sorted(who for who, _, _ in take(seen, 2)) == ["r1", "r2"]
    # Requests cross spaces too; discovery does not.
    assert client.request(msg("r2", "whoami")) == "r2"
    assert set(one.agents()) == {"r1", "client"}
    with pytest.raises(TimeoutError):
        client.request(msg("r3", "whoami"), timeout=0.5)
    assert seen.empty()


# --- ids and spaces ---------------------------------------------------------------------

def test_duplicate_id_across_two_spaces_on_one_exchange_is_refused(make_space):
    exchange = unique_exchange("dup")
    first, second = make_space(exchange), make_space(exchange)
    seen = queue.Queue()
    first.add(Recorder, "dup", seen=seen)
    client = second.add_foreground(Client, "client")
    with pytest.raises(ValueError, match="already in another space"):
        second.add(Recorder, "dup", seen=seen)
    with pytest.raises(ValueError):
        second.add_foreground(Recorder, "dup", seen=seen)
    # The first keeps its agent, reachable from the second space; the second space is fine.
    assert client.request(msg("dup", "whoami")) == "dup"
    assert "dup" not in second.agents()
    # Once it has left, the id is free again (the removal waited for the broker).
    first.remove("dup")
    second.add(Recorder, "dup", seen=seen)
    assert client.request(msg("dup", "whoami")) == "dup"
    # Another exchange is another namespace.
    make_space(unique_exchange("dup-other")).add(Recorder, "dup", seen=seen)


def test_one_connection_per_space_and_nothing_left_after_destroy(make_space, amqp_url,
                                                                 rabbitmq_broker):
    port = urllib.parse.urlsplit(amqp_url).port
    exchange = unique_exchange("conn")
    before = sockets_to(port)
    threads_before = set(io_threads())
    space = AMQPSpace(amqp_url, exchange=exchange)
    try:
        seen = queue.Queue()
        for i in range(20):
            space.add(Recorder, f"r{i}", seen=seen)
        client = space.add_foreground(Client, "client")
        for i in range(20):
            assert client.request(msg(f"r{i}", "echo", value=i)) == i
        for i in range(200):
            client.send(msg(f"r{i % 20}", "note", n=i))
        take(seen, 200)
        take(client.events, 200)
        assert sockets_to(port) == before + 1
        assert len(connection_pids(rabbitmq_broker, exchange)) == 1
    finally:
        space.destroy()
    assert sockets_to(port) == before
    assert set(io_threads()) == threads_before
    assert not space._background.thread.is_alive()
    assert eventually(lambda: connection_pids(rabbitmq_broker, exchange) == [])
    # Its queues were deleted with its agents.
    names = ctl(rabbitmq_broker, "list_queues", "--no-table-headers", "name")
    assert exchange not in names


# --- acknowledgements and recovery ------------------------------------------------------

def test_a_delivery_is_acknowledged_only_after_it_was_handled(make_space, rabbitmq_broker):
    exchange = unique_exchange("ack")
    space = make_space(exchange)
    started, release, runs = threading.Event(), threading.Event(), queue.Queue()
    space.add(Blocker, "slow", started=started, release=release, runs=runs)
    client = space.add_foreground(Client, "client")
    try:
        mid = client.send(msg("slow", "block"))
        assert started.wait(WAIT)
        # Delivered (nothing ready) but not acknowledged while the action runs.
        assert queue_counts(rabbitmq_broker, f"{exchange}.slow") == (0, 1)
    finally:
        release.set()
    assert take(client.events, 1) == [("value", "released", mid)]
    assert eventually(lambda: queue_counts(rabbitmq_broker, f"{exchange}.slow") == (0, 0))


def test_a_connection_closed_mid_action_recovers_and_runs_the_action_once(
        make_space, rabbitmq_broker):
    exchange = unique_exchange("close")
    space = make_space(exchange)
    started, release, runs = threading.Event(), threading.Event(), queue.Queue()
    # Two slots: a redelivered copy, were it not dropped, would run beside the first.
    space.add(Blocker, "slow", started=started, release=release, runs=runs,
              max_concurrency=2)
    client = space.add_foreground(Client, "client")
    try:
        mid = client.send(msg("slow", "block"))
        assert started.wait(WAIT)
        (pid,) = connection_pids(rabbitmq_broker, exchange)
        ctl(rabbitmq_broker, "close_connection", pid, "test: closed mid-action")
        # The broker requeues the unacknowledged delivery; after reconnecting the space
        # receives it again and drops it as a duplicate.
        assert eventually(lambda: space._link.connections >= 2 and
                          len(connection_pids(rabbitmq_broker, exchange)) == 1)
        assert client.request(msg("slow", "ping"), timeout=WAIT) == "pong"
    finally:
        release.set()
    assert take(client.events, 1) == [("value", "released", mid)]
    assert client.request(msg("slow", "ping"), timeout=WAIT) == "pong"
    assert runs.get(timeout=WAIT) == mid
    assert runs.empty(), "the action ran twice"
    assert eventually(lambda: queue_counts(rabbitmq_broker, f"{exchange}.slow") == (0, 0))


def drop_connection_while_unconfirmed(space: AMQPSpace) -> threading.Event:
    """Fault injection on the space's I/O thread: as soon as publishes are in flight (not
    yet confirmed), cut its TCP connection as a network failure would."""
    link, dropped = space._link, threading.Event()

    def check() -> None:
        if link._unconfirmed and link._conn is not None:
            link._conn._transport._sock.shutdown(socket.SHUT_RDWR)  # pika internals
            dropped.set()
        elif not dropped.is_set():
            link._ioloop.call_later(0.0002, check)

    link._ioloop.add_callback_threadsafe(check)
    return dropped


def test_publishes_unconfirmed_when_the_connection_drops_are_sent_again(make_space):
    count = 3000
    exchange = unique_exchange("resend")
    sending, receiving = make_space(exchange), make_space(exchange)
    received: queue.Queue = queue.Queue()
    receiving.add(Sink, "receiver", received=received)
    sender = sending.add_foreground(Client, "sender")
    dropped = drop_connection_while_unconfirmed(sending)
    sent = [sender.send(msg("receiver", "take", n=n)) for n in range(count)]
    assert dropped.wait(WAIT)
    got = take(received, count, timeout=60)
    replies = take(sender.events, count, timeout=60)
    assert sending._link.resent > 0
    assert sending._link.connections == 2
    assert sorted(got) == sorted(sent)  # each exactly once
    assert sorted(parent for _, _, parent in replies) == sorted(sent)
    assert {kind for kind, _, _ in replies} == {"value"}
    # A barrier: a copy sent again was published before it, and the receiver handles its
    # queue in order, so nothing more can arrive after its answer.
    assert sender.request(msg("receiver", "take", n=-1), timeout=WAIT) is None
    assert received.qsize() == 1 and sender.events.empty()
    print(f"resend: {sending._link.resent} publish(es) sent again,"
          f" {receiving._link.duplicates} duplicate(s) dropped")


def test_a_request_the_broker_never_takes_fails_with_connection_error(make_space,
                                                                      rabbitmq_broker):
    space = make_space(unique_exchange("down"), delivery_timeout=1.0)
    space.add(Recorder, "echo", seen=queue.Queue())
    client = space.add_foreground(Client, "client")
    assert client.request(msg("echo", "echo", value=1)) == 1
    rabbitmq_broker.stop_node()
    try:
        started = time.monotonic()
        with pytest.raises(ActionError) as caught:
            client.request(msg("echo", "echo", value=2), timeout=30)
        assert str(caught.value).startswith("ConnectionError: ")
        assert time.monotonic() - started < 10
        mid = client.send(msg("echo", "echo", value=3))
        kind, text, parent = take(client.events, 1, timeout=30)[0]
        assert (kind, parent) == ("error", mid) and text.startswith("ConnectionError: ")
    finally:
        rabbitmq_broker.start()
    # The space reconnects by itself.
    assert space.wait_connected(60)
    assert space._link.connections == 2
    assert client.request(msg("echo", "echo", value=4), timeout=60) == 4


def test_broker_restart_while_streaming_loses_nothing(make_space, rabbitmq_broker):
    """2,000 send()s while the broker restarts: each was received exactly once or its
    sender got an error reply for it; none silently lost."""
    count = 2000
    exchange = unique_exchange("restart")
    sending, receiving = make_space(exchange), make_space(exchange)
    received: queue.Queue = queue.Queue()
    receiving.add(Sink, "receiver", received=received)
    sender = sending.add_foreground(Client, "sender")

    sent: list[str] = []
    got: list[str] = []
    failed: set[str] = set()

    def send_next() -> None:
        sent.append(sender.send(msg("receiver", "take", n=len(sent))))

    def drain_replies() -> None:
        while True:
            try:
                kind, text, parent = sender.events.get_nowait()
            except queue.Empty:
                return
            if kind == "error":
                assert text.startswith("ConnectionError: "), text
                failed.add(parent)

    for _ in range(500):
        send_next()
    got.extend(take(received, 100, timeout=30))  # flowing before the restart
    restart = threading.Thread(target=rabbitmq_broker.restart, name="restart broker")
    restart.start()
    try:
        # Keep streaming while the broker stops, is down and comes back (paced by the
        # restart thread: at most 20 sends per 0.1 s while it runs).
        while restart.is_alive() and len(sent) < count - 300:
            for _ in range(20):
                send_next()
            restart.join(timeout=0.1)
    finally:
        restart.join(timeout=180)
    assert not restart.is_alive(), "the broker did not restart"
    while len(sent) < count:
        send_next()

    deadline = time.monotonic() + 120
    while set(got) | failed != set(sent) and time.monotonic() < deadline:
        try:
            got.append(received.get(timeout=0.5))
        except queue.Empty:
            pass
        drain_replies()
    drain_replies()

    print(f"restart: {len(set(got))} received, {len(failed)} failed;"
          f" sender re-sent {sending._link.resent}, receiver re-sent {receiving._link.resent},"
          f" receiver dropped {receiving._link.duplicates} duplicate(s)")
    assert sending._link.connections >= 2 and receiving._link.connections >= 2, \
        "the broker restart was not noticed"
    assert len(got) == len(set(got)), "a message was received twice"
    assert set(got) | failed == set(sent), (
        f"{len(set(sent) - set(got) - failed)} of {count} messages silently lost")
    assert set(got) <= set(sent)
