"""Faults (issue 9, part 2): what the system survives, shown with real parts.

* The server SIGKILLed and started again on the same address with the same key, while
  clients (native handles, ``RemoteDataspaceSpace``) reconnect with their state.
* A client that disappears (socket closed, process SIGKILLed) while its request is
  being handled: the responder sees it withdrawn, everyone else goes on.
* Agent processes SIGKILLed during a stream of requests, on both multiprocess spaces.

Real server processes (``ServerProcess``), sockets and child processes throughout; every
wait is on an event or a condition, with a timeout; nothing here asserts how long
anything took (``benchmarks/fault_campaign.py`` prints those figures).
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import pytest
import trio
from syndicate import patterns as P

from dataspace_agency import ActionError, Agent, action
from dataspace_agency.protocol.client import Reconnect, connect
from dataspace_agency.protocol.process import ServerProcess
from dataspace_agency.protocol.sturdy import mint
from helpers import pending, rec

WAIT = 15.0
FAST = Reconnect(initial=0.02, maximum=0.2)


class RestartableServer:
    """A server child process that can be SIGKILLed and started again on the same unix
    socket with the same key, so that the capability stays valid."""

    def __init__(self, directory: str) -> None:
        self.path = os.path.join(directory, "ds.sock")
        self.key = secrets.token_bytes(16)
        self.capability = mint(self.key)
        self.address = rec("unix", self.path)
        self.restarts = 0
        self.process: ServerProcess | None = None
        self.start()

    def start(self) -> None:
        self.process = ServerProcess.start(unix_path=self.path,
                                           extra_args=("--key", self.key.hex()))

    def kill(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.process.wait(WAIT)
        self.process.stop()  # closes its pipes; it has exited

    def restart(self) -> None:
        self.kill()
        self.start()
        self.restarts += 1

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()


@pytest.fixture
def server():
    with tempfile.TemporaryDirectory(prefix="faults-") as directory:
        running = RestartableServer(directory)
        try:
            yield running
        finally:
            running.stop()


async def next_kind(events, kind: str, timeout: float = WAIT):
    with trio.fail_after(timeout):
        while True:
            event = await events.receive()
            if event.kind == kind:
                return event


# --- the server restarted while clients reconnect ----------------------------------------

async def test_native_handle_observer_sees_the_facts_again_after_a_server_restart(server):
    async with connect(server.address, server.capability, reconnect=FAST) as one, \
            connect(server.address, server.capability, reconnect=FAST) as two:
        one.publish(rec("Present", "one"))
        async with two.observe(P.rec("Present", P.CAPTURE)) as events:
            assert (await next_kind(events, "added")).captures == ("one",)
            await trio.to_thread.run_sync(server.restart)
            # The old server's facts go with its connection ...
            assert (await next_kind(events, "removed")).captures == ("one",)
            # ... and come back once both clients have reconnected and re-asserted.
            assert (await next_kind(events, "added")).captures == ("one",)
            assert one.reconnections == 1 and two.reconnections == 1
            # The handles work as before on the new connection.
            two.publish(rec("Present", "two"))
            assert (await next_kind(events, "added")).captures == ("two",)
            with trio.fail_after(WAIT):
                await one.sync()
            assert sorted(await one.query(P.rec("Present", P.CAPTURE))) == [("one",), ("two",)]



async def test_messages_sent_while_disconnected_are_queued_bounded_and_sent_after(server):
    policy = Reconnect(initial=0.02, maximum=0.2, max_queued=1)
    async with connect(server.address, server.capability, reconnect=policy) as one:
        async with one.observe(P.rec("Say", P.CAPTURE)) as events:
            one.publish(rec("Present", "one"))
            await one.sync()
            old = one.connection
            await trio.to_thread.run_sync(server.kill)
            with trio.fail_after(WAIT):
                await old.wait_closed()
            one.message(rec("Say", "queued"))
            one.message(rec("Say", "dropped"))  # beyond max_queued
            # A message right after another is left to the runtime's drain task (the
            # client's burst coalescing), so it is counted once that task has run.
            with trio.fail_after(WAIT):
                while one.dropped_messages < 1:
                    await trio.sleep(0.005)
            assert one.dropped_messages == 1
            await trio.to_thread.run_sync(server.start)
            # The observer is asserted again before the queued message goes out, so it
            # hears it; the one beyond the bound is gone.
            assert (await next_kind(events, "message")).captures == ("queued",)
            with trio.fail_after(WAIT):
                await one.sync()
            assert [e for e in pending(events) if e.kind == "message"] == []

        # reconnect() on a reconnecting handle: a new connection, the same facts.
        before = one.connection
        with trio.fail_after(WAIT):
            await one.reconnect()
        assert one.connection is not before and one.connected
        assert await one.query(P.rec("Present", P.CAPTURE)) == [("one",)]


class Echo(Agent):
    @action
    def echo(self, text: str) -> str:
        """Answer with the text."""
        return f"{self.id}:{text}"


class Holder(Agent):
    """Holds each request until it is withdrawn (or ``seconds`` pass), and says which."""

    def __init__(self, id: str, started: threading.Event, withdrawn: threading.Event) -> None:
        super().__init__(id)
        self.started, self.withdrawn = started, withdrawn

    @action
    def hold(self, seconds: float) -> str:
        """Answer after ``seconds``, or give up as soon as the request is withdrawn."""
        self.started.set()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:  # a sync action learns of it by asking
            if self.cancelled():
                self.withdrawn.set()
                return "withdrawn"
            time.sleep(0.01)
        return "held to the end"

    @action
    def echo(self, text: str) -> str:
        """Answer with the text."""
        return f"{self.id}:{text}"


def echo(to: str, text: str) -> dict:
    return {"to": to, "action": {"name": "echo", "args": {"text": text}}}


def run_in_thread(fn) -> tuple[threading.Thread, dict]:
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - inspected by the test
            outcome["error"] = exc
    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def test_two_spaces_reconnect_after_a_server_restart_and_requests_are_answered(server):
    from dataspace_agency.spaces import RemoteDataspaceSpace
    started, withdrawn = threading.Event(), threading.Event()
    with RemoteDataspaceSpace(server.address, server.capability, reconnect=FAST) as one, \
            RemoteDataspaceSpace(server.address, server.capability, reconnect=FAST) as two:
        one.add(Holder, "holder", started, withdrawn)
        me = two.add_foreground(Agent, "me")
        assert me.request(echo("holder", "before"), timeout=WAIT) == "holder:before"

        # A request pending when the server dies: both sides learn at once that the
        # other has gone (the server's facts go with the connection): the requester gets
        # ActionError, the responder sees the request withdrawn. Nothing hangs.
        pending, outcome = run_in_thread(lambda: me.request(
            {"to": "holder", "action": {"name": "hold", "args": {"seconds": 60}}},
            timeout=WAIT))
        assert started.wait(WAIT)
        server.kill()
        pending.join(WAIT)
        assert isinstance(outcome.get("error"), ActionError), outcome
        assert withdrawn.wait(WAIT)

        # A request made while the server is down waits for the responder to be back.
        during, answer = run_in_thread(lambda: me.request(echo("holder", "during"),
                                                          timeout=WAIT))
        server.start()
        assert one.wait_connected(WAIT) and two.wait_connected(WAIT)
        during.join(WAIT)
        assert answer.get("value") == "holder:during", answer

        # Presence and actions are visible again, from both spaces; new requests work.
        assert {"holder", "me"} <= set(two.agents()) and "hold" in two.agents()["holder"]
        assert {"holder", "me"} <= set(one.agents())
        assert me.request(echo("holder", "after"), timeout=WAIT) == "holder:after"
        assert one.reconnections == 1 and two.reconnections == 1

        # A second restart, with no request in flight, is survived the same way.
        server.restart()
        assert one.wait_connected(WAIT) and two.wait_connected(WAIT)
        assert me.request(echo("holder", "again"), timeout=WAIT) == "holder:again"
        one.remove("holder")
        two.remove("me")
        one.fact_count(), two.fact_count()  # both removals have reached the server
        assert one.agents() == {} and two.agents() == {}


# --- a client disconnecting mid-request ---------------------------------------------------

_REQUESTER = """
import sys
from dataspace_agency import Agent
from dataspace_agency.spaces import RemoteDataspaceSpace
space = RemoteDataspaceSpace(sys.argv[1], sys.argv[2])
me = space.add_foreground(Agent, "doomed")
print("ready", flush=True)
me.request({"to": "holder", "action": {"name": "hold", "args": {"seconds": 120}}},
           timeout=300)
"""


@pytest.mark.parametrize("how", ["process SIGKILLed", "socket closed"])
def test_a_requester_vanishing_mid_request_withdraws_it_and_the_rest_go_on(server, how):
    from preserves import stringify

    from dataspace_agency.spaces import RemoteDataspaceSpace
    started, withdrawn = threading.Event(), threading.Event()
    with RemoteDataspaceSpace(server.address, server.capability) as responder, \
            RemoteDataspaceSpace(server.address, server.capability) as bystander:
        responder.add(Holder, "holder", started, withdrawn)
        other = bystander.add_foreground(Agent, "other")
        if how == "process SIGKILLed":
            child = subprocess.Popen(
                [sys.executable, "-c", _REQUESTER, stringify(server.address),
                 stringify(server.capability)], stdout=subprocess.PIPE)
            try:
                assert child.stdout.readline() == b"ready\n"
                assert started.wait(WAIT)  # the request is being handled
                child.kill()
                child.wait(WAIT)
            finally:
                child.kill()
                child.wait(WAIT)
                child.stdout.close()
        else:
            doomed_space = RemoteDataspaceSpace(server.address, server.capability)
            try:
                doomed = doomed_space.add_foreground(Agent, "doomed")
                asking, outcome = run_in_thread(lambda: doomed.request(
                    {"to": "holder", "action": {"name": "hold", "args": {"seconds": 60}}},
                    timeout=5))
                assert started.wait(WAIT)
                doomed_space._background.call(lambda rt: doomed_space._client.connection.close())
                assert withdrawn.wait(WAIT)
                asking.join(WAIT)
                # Its own side: no connection, so the request fails: at once (ActionError,
                # the responder's presence went with the connection) unless the sync
                # that confirms the request was in flight when the connection closed (the
                # relay drops it), in which case it waits for its timeout.
                assert isinstance(outcome.get("error"), (ActionError, TimeoutError)), outcome
                assert not doomed_space.connected
            finally:
                doomed_space.destroy()
        # The responder saw the request withdrawn (cancelled()) ...
        assert withdrawn.wait(WAIT)
        # ... and it, the server and the other clients go on.
        assert other.request(echo("holder", "next"), timeout=WAIT) == "holder:next"
        assert "doomed" not in bystander.agents()
        started.clear()
        withdrawn.clear()
        held, outcome = run_in_thread(lambda: other.request(
            {"to": "holder", "action": {"name": "hold", "args": {"seconds": 0.05}}},
            timeout=WAIT))
        held.join(WAIT)
        assert outcome.get("value") == "held to the end", outcome


# --- agent processes SIGKILLed during traffic ---------------------------------------------

class Stallable(Echo):
    @action
    def stall(self) -> str:
        """Say so to "me", then hold the request (until this process is killed)."""
        self.send({"to": "me", "action": {"name": "stalling", "args": {}}})
        threading.Event().wait(60)
        return "not killed"


class Pump(Agent):
    """Streams requests to some agents until told to stop; reports progress to "me"."""

    def __init__(self, id: str) -> None:
        super().__init__(id, max_concurrency=2)  # pump and stop at once
        self._stop = threading.Event()

    @action
    def stop(self) -> bool:
        """End the stream (pump returns)."""
        self._stop.set()
        return True

    @action
    def pump(self, targets: list, report_every: int, limit: int) -> dict:
        """Request echo from each target, round after round; return what was answered."""
        answered = {target: 0 for target in targets}
        wrong: list = []
        rounds = 0
        while rounds < limit and not self._stop.is_set():
            for target in targets:
                text = f"{self.id}-{rounds}"
                answer = self.request(echo(target, text), timeout=WAIT)
                if answer == f"{target}:{text}":
                    answered[target] += 1
                else:
                    wrong.append(answer)
            rounds += 1
            if rounds % report_every == 0:
                self.send({"to": "me", "action": {"name": "progress",
                                                  "args": {"pump": self.id, "round": rounds}}})
        return {"rounds": rounds, "answered": answered, "wrong": wrong}


class Watcher(Agent):
    def __init__(self, id: str, progress, stalling: threading.Event) -> None:
        super().__init__(id)
        self.progress_queue, self.stalling_event = progress, stalling

    @action
    def progress(self, pump: str, round: int) -> None:
        """A pump's progress report."""
        self.progress_queue.put((pump, round))

    @action
    def stalling(self) -> None:
        """The victim holds our request now."""
        self.stalling_event.set()


def _multiprocess_space(kind: str):
    from dataspace_agency.spaces import MultiprocessDataspaceSpace, MultiprocessQueueSpace
    if kind == "dataspace":
        return MultiprocessDataspaceSpace(mode="assertion")
    return MultiprocessQueueSpace()


@pytest.mark.parametrize("kind", ["dataspace", "queue"])
def test_sigkill_of_an_agent_process_mid_stream(kind):
    import queue
    progress: queue.Queue = queue.Queue()
    stalling = threading.Event()
    pumps = ["pump-1", "pump-2"]
    with _multiprocess_space(kind) as space:
        for agent_id, agent_type in (("echo-a", Echo), ("echo-b", Echo),
                                     ("victim", Stallable), *((p, Pump) for p in pumps)):
            space.add(agent_type, agent_id)
        me = space.add_foreground(Watcher, "me", progress, stalling)
        streams = [run_in_thread(lambda p=p: me.request(
            {"to": p, "action": {"name": "pump", "args": {
                "targets": ["echo-a", "echo-b"], "report_every": 10, "limit": 100_000}}},
            timeout=300)) for p in pumps]

        def reports(count: int) -> None:
            """Wait for ``count`` more progress reports from every pump."""
            seen = {p: 0 for p in pumps}
            while min(seen.values()) < count:
                pump, _round = progress.get(timeout=WAIT)
                seen[pump] += 1

        reports(2)  # both streams are flowing
        held, outcome = run_in_thread(lambda: me.request(
            {"to": "victim", "action": {"name": "stall", "args": {}}}, timeout=WAIT))
        assert stalling.wait(WAIT)
        os.kill(space.pid_of("victim"), signal.SIGKILL)
        held.join(WAIT)
        # The request it held fails at once with ActionError, not at its timeout.
        assert isinstance(outcome.get("error"), ActionError), outcome
        # Its presence is gone, for everyone.
        assert "victim" not in space.agents()
        if kind == "queue":  # and later requests to it fail at once too
            with pytest.raises(ActionError, match="died"):
                me.request(echo("victim", "x"), timeout=WAIT)
        reports(3)  # the streams go on
        for pump in pumps:
            assert me.request({"to": pump, "action": {"name": "stop", "args": {}}},
                              timeout=WAIT) is True
        for thread, result in streams:
            thread.join(WAIT)
            summary = result.get("value")
            assert summary is not None, result
            # Nothing lost, nothing garbled: every round answered by both echoes.
            assert summary["wrong"] == []
            assert summary["answered"] == {"echo-a": summary["rounds"],
                                           "echo-b": summary["rounds"]}
            assert summary["rounds"] >= 50
        assert set(space.agents()) == {"echo-a", "echo-b", "me", *pumps}


# --- known bugs fixed while here ----------------------------------------------------------

async def test_close_sends_the_handles_retractions_before_closing_the_socket(tmp_path):
    """A stand-in server that records every packet: the client's close() must send the
    retraction of what it asserted before the end of the stream (the server would retract
    it anyway on EOF, but a peer may well want to see the retraction itself)."""
    from preserves import Embedded

    from dataspace_agency.protocol.codec import (Assert, PacketReader, Retract, WireRef,
                                                 encode_turn, parse_packet)
    path = str(tmp_path / "fake.sock")
    seen: list = []
    ended = trio.Event()

    async def fake_server(stream: trio.SocketStream) -> None:
        reader = PacketReader()
        async with stream:
            while True:
                data = await stream.receive_some(65536)
                if not data:
                    break
                reader.feed(data)
                for value in reader:
                    for oid, event in parse_packet(value) or []:
                        seen.append((oid, event))
                        if oid == 0 and isinstance(event, Assert):  # <resolve _ #:observer>
                            observer = event.value.fields[1].embeddedValue
                            accepted = rec("accepted", Embedded(WireRef(True, 1)))
                            await stream.send_all(
                                encode_turn([(observer.oid, Assert(accepted, 1))]))
        ended.set()

    async with trio.open_nursery() as nursery:
        sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        await sock.bind(path)
        sock.listen(1)
        nursery.start_soon(trio.serve_listeners, fake_server, [trio.SocketListener(sock)])
        async with connect(rec("unix", path), mint(b"k" * 16)) as handle:
            handle.publish(rec("Present", "me"))
        with trio.fail_after(WAIT):
            await ended.wait()
        nursery.cancel_scope.cancel()
    to_ds = [event for oid, event in seen if oid == 1]
    assert isinstance(to_ds[0], Assert) and to_ds[0].value == rec("Present", "me")
    assert Retract(to_ds[0].handle) in to_ds[1:], seen


def test_multiprocess_dataspace_space_takes_address_and_cap_as_text(server, caplog):
    """Text address/cap reach the children as given (they used to arrive quoted); and a
    child that dies is noticed at once, with no call to the space needed."""
    from preserves import stringify

    from dataspace_agency.spaces import MultiprocessDataspaceSpace
    for address in (stringify(server.address), server.path):
        with MultiprocessDataspaceSpace(address, stringify(server.capability)) as space:
            space.add(Echo, "texty")
            me = space.add_foreground(Agent, "me")
            assert me.request(echo("texty", "hi"), timeout=WAIT) == "texty:hi"
            child = space._children["texty"]
            os.kill(child.process.pid, signal.SIGKILL)
            assert child.forgotten.wait(WAIT)  # by the watcher thread, unprompted
            with pytest.raises(ValueError, match="no agent"):
                space.pid_of("texty")
            assert "texty" not in space.agents()
            space.add(Echo, "texty")  # the id is free again
            assert me.request(echo("texty", "again"), timeout=WAIT) == "texty:again"
    assert any("died" in record.getMessage() for record in caplog.records)
