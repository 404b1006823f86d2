"""Interactive use: client handles (``space.connect``), foreground agents, building agents
up while they run (``add_action``), and the opt-in ``eval`` action, on every space.

The handle is driven from the main thread (as a REPL would) against agents running in the
background. Synchronisation is on events and queues with timeouts, never sleeps. The one
timed assertion is the interrupt latency the issue demands (Ctrl-C within 100 ms).
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time

import pytest
import trio
from syndicate import patterns as P

from dataspace_agency import ACCESS_REQUESTED, ActionError, Agent, DataspaceSpace, action
from dataspace_agency.classic.eval_action import EvalAgent, EvalMixin
from dataspace_agency.dataspace.patterns import InvalidPattern

# The contract suite's backends and fixtures: every test taking `space` runs on all five.
from test_contract import (IN_PROCESS_SYNC, SPACE_FACTORIES, WAIT, space,  # noqa: F401
                                   sync, sync_manager, take)

DATASPACE_FACTORIES = [p for p in SPACE_FACTORIES if p.id.startswith("dataspace")]


class Calc(Agent):
    """Background agent the handle talks to."""

    def __init__(self, id, *args, **kwargs):
        super().__init__(id, *args, **kwargs)
        self.total = 0

    @action
    def add(self, a: int, b: int) -> int:
        """Add two numbers."""
        self.total += a + b
        return a + b

    @action
    def fail(self, text: str):
        raise ValueError(text)

    @action
    def echo_args(self, to, action, timeout):
        return [to, action, timeout]

    @action
    def notify(self, who: str, text: str):
        """Send `text` to `who` (a handle): it lands in the handle's inbox."""
        self.send({"to": who, "action": {"name": "note", "args": {"text": text}}})

    @action
    def announce(self, text: str):
        self.send({"to": "*", "action": {"name": "news", "args": {"text": text}}})

    @action
    def ask(self, who: str):
        """Request from `who` (a handle): a handle answers None, meaning delivered."""
        return self.request({"to": who, "action": {"name": "question", "args": {}}})


class Slow(Agent):
    """``wait`` blocks until ``release`` is set; it then reports whether it saw its
    request withdrawn."""

    def __init__(self, id, *args, started, release, events, **kwargs):
        super().__init__(id, *args, **kwargs)
        self.started, self.release, self.events = started, release, events

    @action
    def wait(self):
        self.started.set()
        self.release.wait(WAIT * 2)
        self.events.put(("done", self.cancelled()))
        return "late"


class Guarded(EvalMixin, Agent):
    """An agent with eval that lets only "admin" run code."""

    def __init__(self, id, *args, **kwargs):
        super().__init__(id, *args, **kwargs)
        self.secret = 41

    def request_permission(self, message):
        return message["from"] == "admin"


class Counter(Agent):
    """A foreground agent: its state is read from the REPL thread."""

    def __init__(self, id, *args, **kwargs):
        super().__init__(id, *args, **kwargs)
        self.count = 0

    @action
    def bump(self) -> int:
        self.count += 1
        return self.count

    def twice(self) -> int:
        """A plain method the person calls directly."""
        return self.bump() + self.bump()


# --- the sync handle, from the main thread ------------------------------------------------

def test_request_send_and_receive(space):
    space.add(Calc, "calc")
    me = space.connect("me")
    assert me.request("calc", "add", a=1, b=2) == 3
    message_id = me.send("calc", "add", a=20, b=22)
    reply = me.receive(WAIT)
    assert reply["action"] == {"name": "[response]", "args": {"value": 42}}
    assert reply["meta"]["parent_id"] == message_id and reply["from"] == "calc"
    me.send("calc", "fail", text="boom")
    error = me.receive(WAIT)
    assert error["action"]["name"] == "[error]"
    assert error["action"]["args"]["error"] == "ValueError: boom"
    assert me.inbox == [] and me.pending == 0


def test_request_raises_action_error_and_timeout_error(space):
    space.add(Calc, "calc")
    me = space.connect("me")
    with pytest.raises(ActionError, match="ValueError: no"):
        me.request("calc", "fail", text="no")
    with pytest.raises(ActionError, match='"nope" not found on "calc"'):
        me.request("calc", "nope")
    with pytest.raises(TimeoutError, match='no answer from "nobody"'):
        me.request("nobody", "add", timeout=0.3, a=1, b=1)
    assert me.pending == 0
    assert me.request("calc", "add", a=2, b=3) == 5  # still usable


def test_colliding_argument_names_go_through_args(space):
    space.add(Calc, "calc")
    me = space.connect("me")
    assert me.request("calc", "echo_args",
                      args={"to": "x", "action": "y", "timeout": 7}) == ["x", "y", 7]
    with pytest.raises(TypeError, match=r"\['a'\] given both"):
        me.request("calc", "add", args={"a": 1}, a=1, b=2)
    with pytest.raises(TypeError, match="action name must be a non-empty string"):
        me.send("calc", 12)


def test_messages_from_agents_land_in_the_inbox(space):
    space.add(Calc, "calc")
    me = space.connect("me")
    assert me.request("calc", "notify", who="me", text="hello") is None
    note = me.receive(WAIT)
    assert (note["from"], note["action"]) == ("calc", {"name": "note",
                                                       "args": {"text": "hello"}})
    me.request("calc", "announce", text="all")
    news = me.receive(WAIT)
    assert news["to"] == "*" and news["action"]["args"] == {"text": "all"}
    # A point-to-point request to a handle is answered None ("delivered").
    assert me.request("calc", "ask", who="me") is None
    assert me.receive(WAIT)["action"]["name"] == "question"
    with pytest.raises(TimeoutError):
        me.receive(0.2)  # the broadcast was not answered: nothing else came


def test_a_handle_is_an_address_duplicate_ids_are_refused_and_close_frees_it(space):
    space.add(Calc, "calc")
    me = space.connect("me")
    with pytest.raises(ValueError, match="already in this space"):
        space.connect("me")
    with pytest.raises(ValueError, match="already in this space"):
        space.connect("calc")
    assert "me" in space.agents() and space.agents()["me"] == {}  # an address, no actions
    me.close()
    with pytest.raises(RuntimeError, match="closed"):
        me.request("calc", "add", a=1, b=1)
    with space.connect("me") as again:
        assert again.request("calc", "add", a=1, b=1) == 2


def test_ctrl_c_while_blocked_in_request_cancels_cleanly(space, sync, ctrl_c_raises):
    started, release, events = sync.Event(), sync.Event(), sync.Queue()
    space.add(Slow, "slow", started=started, release=release, events=events)
    space.add(Calc, "calc")
    me = space.connect("me")
    sent_at: list[float] = []

    def interrupt() -> None:
        if started.wait(WAIT):  # the request has reached the agent: main is blocked
            sent_at.append(time.monotonic())
            os.kill(os.getpid(), signal.SIGINT)

    interrupter = threading.Thread(target=interrupt)
    interrupter.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            me.request("slow", "wait", timeout=WAIT * 2)
        raised_at = time.monotonic()
    finally:
        interrupter.join(WAIT)
    assert sent_at, "the slow action never started"
    # The bound: KeyboardInterrupt within 100 ms of the SIGINT.
    assert raised_at - sent_at[0] < 0.1
    assert me.pending == 0  # nothing left waiting
    if isinstance(space, DataspaceSpace):
        assert me.facts(P.rec("request", P.CAPTURE, P.CAPTURE, P.CAPTURE)) == []
    release.set()
    (_, cancelled), = take(events, 1)
    if isinstance(space, DataspaceSpace) and space.mode == "assertion":
        assert cancelled  # the responder saw the request withdrawn
    assert me.request("calc", "add", a=1, b=2) == 3  # the handle still works
    # The late answer is dropped, not filed: the next thing in the inbox is this reply
    # (the slow agent answered before it, and the handle files in arrival order).
    assert me.request("slow", "wait") == "late"
    sent_id = me.send("slow", "wait")
    assert me.receive(WAIT)["meta"]["parent_id"] == sent_id
    take(events, 2)


# --- async twins ------------------------------------------------------------------------

def test_arequest_under_asyncio(space):
    space.add(Calc, "calc")
    me = space.connect("me")

    async def main():
        value = await me.arequest("calc", "add", a=2, b=2)
        with pytest.raises(ActionError, match="ValueError: x"):
            await me.arequest("calc", "fail", text="x")
        with pytest.raises(TimeoutError):
            await me.arequest("nobody", "add", timeout=0.2)
        await me.asend("calc", "add", a=1, b=1)
        reply = await me.areceive(WAIT)
        return value, reply["action"]["args"]["value"]

    assert asyncio.run(main()) == (4, 2)
    assert me.pending == 0


def test_cancelling_arequest_withdraws_it(space, sync):
    started, release, events = sync.Event(), sync.Event(), sync.Queue()
    space.add(Slow, "slow", started=started, release=release, events=events)
    me = space.connect("me")

    async def main():
        task = asyncio.ensure_future(me.arequest("slow", "wait", timeout=WAIT * 2))
        await asyncio.get_running_loop().run_in_executor(None, started.wait, WAIT)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert me.pending == 0
    release.set()
    take(events, 1)


@pytest.mark.parametrize("factory", DATASPACE_FACTORIES[:1] + [
    p for p in SPACE_FACTORIES if p.id == "queue"])
async def test_arequest_under_trio(factory):
    made = factory()
    try:
        made.add(Calc, "calc")
        me = made.connect("me")
        assert await me.arequest("calc", "add", a=5, b=5) == 10
        with pytest.raises(TimeoutError):
            await me.arequest("nobody", "add", timeout=0.2)
        with trio.move_on_after(0.2):
            await me.areceive()  # cancellable; nothing arrives
    finally:
        await trio.to_thread.run_sync(made.destroy)


# --- facts and watches (dataspace spaces) ---------------------------------------------------

@pytest.mark.parametrize("factory", DATASPACE_FACTORIES)
def test_facts_and_watch(factory):
    with factory() as made:
        made.add(Calc, "calc")
        me = made.connect("me")
        assert sorted(me.facts(P.rec("agent", P.CAPTURE))) == [("calc",), ("me",)]
        with me.watch(P.rec("agent", P.CAPTURE)) as watch:
            assert {watch.get(WAIT).captures for _ in range(2)} == {("calc",), ("me",)}
            made.add(Agent, "newcomer")
            event = watch.get(WAIT)
            assert (event.kind, event.captures) == ("added", ("newcomer",))
            made.remove("newcomer")
            event = watch.get(WAIT)
            assert (event.kind, event.captures) == ("removed", ("newcomer",))
            with pytest.raises(TimeoutError):
                watch.get(0.1)
        assert list(watch) == []  # closed: iteration ends
        with pytest.raises(InvalidPattern):
            me.facts("not a pattern")


@pytest.mark.parametrize("factory", DATASPACE_FACTORIES[:1])
def test_closing_the_handle_stops_its_watches(factory):
    with factory() as made:
        me = made.connect("me")
        watch = me.watch(P.rec("agent", P.CAPTURE))
        assert watch.get(WAIT).captures == ("me",)
        me.close()
        assert list(watch) == []
        assert made.fact_count() == 0


# --- foreground agents ------------------------------------------------------------------

def test_foreground_agent_methods_state_and_request_from_this_thread(space):
    space.add(Calc, "calc")
    counter = space.add_foreground(Counter, "counter")
    assert counter.request({"to": "calc", "action": {"name": "add",
                                                      "args": {"a": 1, "b": 1}}}) == 2
    me = space.connect("me")
    assert me.request("counter", "bump") == 1
    assert counter.count == 1  # its state, read from this thread
    assert counter.twice() == 5  # a plain method, called here
    assert me.request("counter", "bump") == 4
    assert counter.count == 4


# --- building an agent up while it runs ---------------------------------------------------

def test_add_replace_and_remove_an_action_on_a_running_agent(space):
    counter = space.add_foreground(Counter, "counter")
    me = space.connect("me")

    def triple(self, x: int) -> int:
        """Three times x, plus the count.

        Args:
            x: The number.
        """
        return 3 * x + self.count

    assert counter.add_action(triple) == "triple"
    assert me.request("counter", "triple", x=2) == 6
    helps = me.request("counter", "help")
    assert helps["triple"]["description"] == "Three times x, plus the count."
    assert helps["triple"]["args"]["x"] == {"type": "number", "description": "The number."}
    assert space.agents()["counter"]["triple"] == helps["triple"]

    counter.add_action(lambda x: -x, name="triple", help={"description": "negate"})
    assert me.request("counter", "triple", x=2) == -2
    assert me.request("counter", "help", action_name="triple") == {
        "triple": {"description": "negate"}}
    assert space.agents()["counter"]["triple"] == {"description": "negate"}

    async def later(self) -> str:
        return f"async {self.id}"
    counter.add_action(later)
    assert me.request("counter", "later") == "async counter"

    counter.remove_action("triple")
    with pytest.raises(ActionError, match='"triple" not found on "counter"'):
        me.request("counter", "triple", x=1)
    assert "triple" not in space.agents()["counter"]
    counter.remove_action("bump")  # a class action, on this agent only
    with pytest.raises(ActionError, match='"bump" not found'):
        me.request("counter", "bump")
    other = space.add_foreground(Counter, "other")
    assert me.request("other", "bump") == 1  # other agents of the class keep theirs
    with pytest.raises(ValueError, match='no action "bump"'):
        counter.remove_action("bump")
    with pytest.raises(ValueError, match="action name"):
        counter.add_action(lambda: 1, name="[response]")


@pytest.mark.parametrize("factory", DATASPACE_FACTORIES)
def test_added_action_appears_in_the_action_facts(factory):
    with factory() as made:
        counter = made.add_foreground(Counter, "counter")
        me = made.connect("me")
        with me.watch(P.rec("action", P.lit("counter"), P.CAPTURE, P.CAPTURE)) as watch:
            watch.sync()
            assert {e.captures[0] for e in watch.pending()} == {"bump", "help"}
            counter.add_action(lambda: 1, name="one", help={"description": "one"})
            event = watch.get(WAIT)
            assert event.kind == "added" and event.captures[0] == "one"
            counter.add_action(lambda: 2, name="one", help={"description": "two"})
            events = [watch.get(WAIT), watch.get(WAIT)]
            assert sorted((e.kind, e.captures[0]) for e in events) == [
                ("added", "one"), ("removed", "one")]
            counter.remove_action("one")
            event = watch.get(WAIT)
            assert (event.kind, event.captures[0]) == ("removed", "one")
            counter.add_action(lambda: 0, name="hidden", access_policy="denied")
            watch.sync()
            assert watch.pending() == []  # denied actions are not listed
        with pytest.raises(ActionError, match='"counter.hidden" not permitted'):
            me.request("counter", "hidden")


# --- eval ---------------------------------------------------------------------------------

def test_eval_is_denied_by_default(space):
    space.add(EvalAgent, "worker")
    me = space.connect("me")
    with pytest.raises(ActionError, match='PermissionError: "worker.eval" not permitted'):
        me.request("worker", "eval", code="1 + 1")
    assert me.request("worker", "help")["eval"]["args"]["code"]["type"] == "string"


def test_eval_runs_when_request_permission_says_so(space):
    space.add(Guarded, "worker")
    admin, guest = space.connect("admin"), space.connect("guest")
    assert admin.request("worker", "eval", code="self.secret + 1") == 42
    assert admin.request("worker", "eval", code="self.secret = 1\nx = 5\n[self.id, x]") \
        == ["worker", 5]
    assert admin.request("worker", "eval", code="x * self.secret") == 5  # namespace kept
    assert admin.request("worker", "eval", code="y = 1") is None
    with pytest.raises(ActionError, match="ZeroDivisionError"):
        admin.request("worker", "eval", code="1 / 0")
    with pytest.raises(ActionError, match="SyntaxError"):
        admin.request("worker", "eval", code="def (")
    with pytest.raises(ActionError, match="not JSON|JSON"):
        admin.request("worker", "eval", code="object()")
    with pytest.raises(ActionError, match="PermissionError"):
        guest.request("worker", "eval", code="self.secret")


def test_eval_policy_is_access_requested():
    assert Guarded._action_specs()["eval"].access_policy == ACCESS_REQUESTED
    assert "eval" not in Agent._action_specs()


def test_eval_and_facts_from_a_remote_handle():
    """The agent and the handle in two spaces, connected to one dataspace server (a child
    process): eval is refused to a guest and allowed to the admin across the wire."""
    from dataspace_agency.spaces.remote_space import RemoteDataspaceSpace

    with RemoteDataspaceSpace() as host:
        host.add(Guarded, "worker")
        with RemoteDataspaceSpace(host.address, host.cap) as elsewhere:
            admin, guest = elsewhere.connect("admin"), elsewhere.connect("guest")
            with pytest.raises(ActionError, match='"worker.eval" not permitted'):
                guest.request("worker", "eval", code="self.secret")
            assert admin.request("worker", "eval", code="[self.id, self.secret]") == [
                "worker", 41]
            assert sorted(admin.facts(P.rec("agent", P.CAPTURE))) == [
                ("admin",), ("guest",), ("worker",)]
            assert ("worker", "eval") in {
                tuple(c[:2]) for c in admin.facts(P.rec("action", P.CAPTURE, P.CAPTURE,
                                                        P.CAPTURE))}


@pytest.mark.parametrize("kind", ["dataspace", "queue"])
def test_the_interactive_example_runs(kind):
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "examples" / "interactive.py"
    done = subprocess.run([sys.executable, str(script), "--space", kind], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "request: 5"
    assert "send, then receive: 30 | answers what was sent: True" in lines
    assert "added action: pad: HELLO!" in lines
    assert 'eval as me: PermissionError: "calc.eval" not permitted' in lines
    assert "eval as admin: 37" in lines
    if kind == "dataspace":
        assert "pad offers: ['help', 'shout', 'write']" in lines
        assert "watch: removed shout" in lines
    assert lines[-1] == "done"
