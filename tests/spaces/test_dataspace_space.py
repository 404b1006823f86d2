"""What the dataspace adds to the classic agent API (DataspaceSpace only).

Assertion mode holds a point-to-point request as a fact until it is answered, so:
a late joiner is answered, a responder that leaves or crashes fails the request at once
(an ActionError naming it, not a timeout), a requester that leaves withdraws its request,
and nothing is left behind. Message mode is queue-like and loses what nobody hears.
Agents are discoverable from facts, and classic agents and native syndicate-py actors
see each other's facts and messages.

Synchronisation is on events only (queues and threading.Events with timeouts); "at once"
is asserted by the kind of outcome with a long timeout, never by measuring time.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import pytest
from preserves import Record, Symbol
from syndicate import dataspace, turn
from syndicate import patterns as P

from dataspace_agency import ActionError, Agent, DataspaceSpace, action, during, on_message
from dataspace_agency.classic.message import make_reply
from dataspace_agency.classic.values import from_preserves, to_preserves
from helpers import Blocker


WAIT = 5.0


# --- fixtures -------------------------------------------------------------------------

@pytest.fixture(params=["assertion", "message"], ids=lambda m: f"dataspace-{m}")
def mode(request) -> str:
    return request.param


@pytest.fixture
def space(mode):
    made = DataspaceSpace(mode=mode)
    try:
        yield made
    finally:
        made.destroy()


@pytest.fixture
def assertion_space():
    made = DataspaceSpace(mode="assertion")
    try:
        yield made
    finally:
        made.destroy()


@pytest.fixture
def message_space():
    made = DataspaceSpace(mode="message")
    try:
        yield made
    finally:
        made.destroy()


@pytest.fixture
def pool():
    with ThreadPoolExecutor(max_workers=4) as executor:
        yield executor


# --- helpers --------------------------------------------------------------------------

def rec(label: str, *fields) -> Record:
    return Record(Symbol(label), list(fields))


def msg(to: str, name: str, /, **args) -> dict:
    return {"to": to, "action": {"name": name, "args": args}}


def get(q: queue.Queue, timeout: float = WAIT):
    try:
        return q.get(timeout=timeout)
    except queue.Empty:
        pytest.fail("an expected event did not come")


def collect_until(q: queue.Queue, done: Callable[[list], bool],
                  timeout: float = WAIT) -> list:
    """Events from ``q`` until ``done(events so far)``; fails if they stop coming."""
    got: list = []
    while not done(got):
        try:
            got.append(q.get(timeout=timeout))
        except queue.Empty:
            pytest.fail(f"events stopped before the expected ones came: {got!r}")
    return got


def spawn_native_ready(space, boot: Callable) -> None:
    """Start a native actor and return once the dataspace has processed its first turn
    (so the observers it registered are in place)."""
    ready = threading.Event()

    def wrapped(ds_ref):
        boot(ds_ref)
        turn.sync(ds_ref, ready.set)

    space.spawn_native(wrapped)
    assert ready.wait(WAIT), "the native actor's first turn was not processed"


def wait_for_flag(predicate: Callable[[], bool], timeout: float) -> bool:
    """Poll a flag the API only exposes as a bool (``Agent.cancelled()``)."""
    pause = threading.Event()
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        pause.wait(0.005)
    return True


# --- agents ---------------------------------------------------------------------------

class Probe(Agent):
    def __init__(self, id, *args, events=None, **kwargs):
        super().__init__(id, *args, **kwargs)
        self.events = events if events is not None else queue.Queue()

    @action
    def echo(self, value):
        self.events.put(("echo", self.id, value))
        return value

    @action
    def say(self, content: str):
        """Say something.

        Args:
            content: What to say.
        """
        self.events.put(("say", self.id, content))


class Crashable(Blocker):
    """Its actor crashes when ``<crash-now its-id>`` is asserted."""

    @during(P.rec("crash-now", P.CAPTURE))
    def crash_now(self, who):
        if who == self.id:
            raise RuntimeError("deliberate crash in a during handler")


class Patient(Agent):
    """``wait_for_cancel`` reports (cancelled at start, cancelled within 20 s)."""

    def __init__(self, id, *args, started, outcome, **kwargs):
        super().__init__(id, *args, **kwargs)
        self.started = started
        self.outcome = outcome

    @action
    def wait_for_cancel(self):
        at_start = self.cancelled()
        self.started.set()
        seen = wait_for_flag(self.cancelled, timeout=20)
        self.outcome.put((at_start, seen))
        return "not cancelled"


class Asker(Agent):
    def __init__(self, id, *args, outcome, **kwargs):
        super().__init__(id, *args, **kwargs)
        self.outcome = outcome

    @action
    def go(self, to: str):
        try:
            self.outcome.put(("answered", self.request(msg(to, "wait_for_cancel"),
                                                       timeout=30)))
        except BaseException as error:  # noqa: BLE001 - only reported
            self.outcome.put(("raised", repr(error)))


class Watcher(Agent):
    def __init__(self, id, *args, events, **kwargs):
        super().__init__(id, *args, **kwargs)
        self.events = events

    @during(P.rec("temperature", P.CAPTURE, P.CAPTURE))
    def temperature(self, room, degrees):
        self.events.put(("added", room, degrees))
        return lambda: self.events.put(("removed", room, degrees))

    @on_message(P.rec("alarm", P.CAPTURE))
    def alarm(self, text):
        self.events.put(("alarm", text))


class Publisher(Agent):
    def __init__(self, id, *args, **kwargs):
        super().__init__(id, *args, **kwargs)
        self.handles = {}

    @action
    def announce(self, room: str, degrees: int):
        self.handles[room] = self.publish(rec("temperature", room, degrees))

    @action
    def withdraw(self, room: str):
        self.retract(self.handles.pop(room))


# --- late joiners ---------------------------------------------------------------------

def test_request_to_a_late_joiner_is_answered_when_it_joins(assertion_space, pool):
    space = assertion_space
    seen = queue.Queue()

    def watcher(ds):
        @dataspace.during(ds, P.rec("request", P.lit("late"), P.CAPTURE, P.CAPTURE))
        def request(request_id, body):
            seen.put(from_preserves(body))

    spawn_native_ready(space, watcher)
    client = space.add_foreground(Agent, "client")
    answer = pool.submit(client.request, msg("late", "echo", value="hello"), timeout=10)

    body = get(seen)  # the request stands in the dataspace before "late" exists
    assert body["to"] == "late" and body["from"] == "client"
    events = queue.Queue()
    space.add(Probe, "late", events=events)

    assert answer.result(timeout=15) == "hello"
    assert get(events) == ("echo", "late", "hello")


def test_request_to_a_late_joiner_is_lost_in_message_mode(message_space, pool):
    space = message_space
    seen = queue.Queue()

    def watcher(ds):
        @dataspace.on_message(ds, P.rec("message", P.lit("late"), P.CAPTURE))
        def message(body):
            seen.put(from_preserves(body))

    spawn_native_ready(space, watcher)
    client = space.add_foreground(Agent, "client")
    answer = pool.submit(client.request, msg("late", "echo", value="hello"), timeout=2)

    body = get(seen)  # the request went by before "late" existed
    assert body["to"] == "late" and body["action"]["name"] == "echo"
    events = queue.Queue()
    space.add(Probe, "late", events=events)

    with pytest.raises(TimeoutError):
        answer.result(timeout=15)
    assert events.empty()


# --- responders that leave or crash ---------------------------------------------------

def test_responder_removed_mid_action(space, mode, pool):
    started, release = threading.Event(), threading.Event()
    space.add(Blocker, "responder", started=started, release=release)
    client = space.add_foreground(Agent, "client")
    timeout = 10 if mode == "assertion" else 1.5
    answer = pool.submit(client.request, msg("responder", "block"), timeout=timeout)
    remover = None
    try:
        assert started.wait(WAIT)
        remover = pool.submit(space.remove, "responder")  # may wait for the action
        if mode == "assertion":
            with pytest.raises(ActionError) as caught:
                answer.result(timeout=15)
            assert "responder" in str(caught.value)
        else:
            with pytest.raises(TimeoutError):
                answer.result(timeout=15)
    finally:
        release.set()
        if remover is not None:
            remover.result(timeout=15)


def test_a_burst_of_sends_fails_whole_when_the_responder_is_removed(assertion_space, pool):
    """Requests held together (a burst of sends: one turn, confirmed by one sync at its
    end) all fail at once when their responder leaves, none left waiting."""
    space = assertion_space
    started, release = threading.Event(), threading.Event()
    space.add(Blocker, "responder", started=started, release=release)
    me = space.connect("me")
    for _ in range(5):
        me.send("responder", "block")
    remover = None
    try:
        assert started.wait(WAIT)
        remover = pool.submit(space.remove, "responder")  # may wait for the action
        errors = [me.receive(timeout=15) for _ in range(5)]
        assert [e["action"]["name"] for e in errors] == ["[error]"] * 5
        assert all('agent "responder" stopped before answering "block"'
                   in e["action"]["args"]["error"] for e in errors), errors
    finally:
        release.set()
        if remover is not None:
            remover.result(timeout=15)
        me.close()


def test_responder_crash_in_a_during_handler_fails_the_request(assertion_space, pool):
    space = assertion_space
    started, release = threading.Event(), threading.Event()
    space.add(Crashable, "responder", started=started, release=release)
    space.add(Crashable, "bystander", started=threading.Event(), release=release)
    client = space.add_foreground(Probe, "client")
    answer = pool.submit(client.request, msg("responder", "block"), timeout=10)
    try:
        assert started.wait(WAIT)
        space.spawn_native(lambda ds: turn.publish(ds, rec("crash-now", "responder")))
        with pytest.raises(ActionError) as caught:
            answer.result(timeout=15)
        assert "responder" in str(caught.value)
    finally:
        release.set()
    # Only the crashed agent's facts went: the bystander is still there.
    agents = space.agents()
    assert "responder" not in agents
    assert "bystander" in agents


def test_requester_removed_mid_request_cancels_the_action(assertion_space, pool):
    space = assertion_space
    started, outcome, asked = threading.Event(), queue.Queue(), queue.Queue()
    space.add(Patient, "responder", started=started, outcome=outcome)
    space.add(Asker, "asker", outcome=asked)
    space._route({"from": "driver", "to": "asker", "action": {"name": "go",
                                                                "args": {"to": "responder"}}})
    assert started.wait(WAIT)
    remover = pool.submit(space.remove, "asker")  # may wait for the asker's action

    at_start, seen = get(outcome, timeout=25)
    assert at_start is False
    assert seen is True, "the responder never saw cancelled() become True"
    remover.result(timeout=35)


# --- no leaks -------------------------------------------------------------------------

def test_no_facts_remain_after_destroy(mode):
    space = DataspaceSpace(mode=mode)
    try:
        events = queue.Queue()
        space.add(Probe, "p1", events=events)
        space.add(Probe, "p2", events=events)
        space.add(Publisher, "publisher")
        client = space.add_foreground(Probe, "client", events=events)
        assert client.request(msg("p1", "echo", value=1)) == 1
        assert client.request(msg("publisher", "announce", room="hall", degrees=19)) is None
        client.send(msg("*", "say", content="bye"))
        client.send(msg("nobody", "echo", value="held"))  # a request nobody answers
        assert space.fact_count() > 0
    finally:
        space.destroy()
    assert space.fact_count() == 0


def test_no_routed_request_facts_remain_after_destroy(mode):
    space = DataspaceSpace(mode=mode)
    try:
        space.add(Probe, "p1")
        space._route({"from": "outside", "to": "nobody",
                      "action": {"name": "echo", "args": {"value": "routed"}}})
        assert space.fact_count() > 0
    finally:
        space.destroy()
    assert space.fact_count() == 0


def test_no_native_actor_facts_remain_after_destroy(mode):
    space = DataspaceSpace(mode=mode)
    try:
        space.add(Probe, "p1")
        spawn_native_ready(space, lambda ds: turn.publish(ds, rec("native-fact", 1)))
        assert space.fact_count() > 0
    finally:
        space.destroy()
    assert space.fact_count() == 0


def test_context_manager_destroys_the_space():
    with DataspaceSpace(mode="assertion") as space:
        space.add(Probe, "p1")
        client = space.add_foreground(Probe, "client")
        assert client.request(msg("p1", "echo", value="x")) == "x"
        assert space.fact_count() > 0
    assert space.fact_count() == 0


# --- discovery ------------------------------------------------------------------------

def test_agents_and_actions_are_discoverable_from_facts(space):
    space.add(Probe, "p1")
    client = space.add_foreground(Agent, "client")
    agents = space.agents()
    assert {"p1", "client"} <= set(agents)
    assert {"echo", "say"} <= set(agents["p1"])
    assert agents["p1"]["say"]["description"] == "Say something."
    assert agents["p1"]["say"]["args"] == {"content": {"type": "string",
                                                       "description": "What to say."}}
    # The same as the help action says.
    assert client.request(msg("p1", "help", action_name="say"))["say"] == agents["p1"]["say"]

    space.remove("p1")
    assert "p1" not in space.agents()
    assert "client" in space.agents()


def test_a_native_observer_sees_presence_and_actions(space):
    events = queue.Queue()

    def observer(ds):
        @dataspace.during(ds, P.rec("agent", P.CAPTURE))
        def present(who):
            events.put(("joined", who))
            turn.on_stop(lambda: events.put(("left", who)))

        @dataspace.during(ds, P.rec("action", P.lit("p1"), P.CAPTURE, P.CAPTURE))
        def offers(name, help_value):
            events.put(("action", name, from_preserves(help_value)))

    spawn_native_ready(space, observer)
    space.add(Probe, "p1")

    def complete(got):
        names = {e[1] for e in got if e[0] == "action"}
        return ("joined", "p1") in got and {"echo", "say"} <= names

    got = collect_until(events, complete)
    (say_help,) = [e[2] for e in got if e[:2] == ("action", "say")]
    assert say_help["description"] == "Say something."

    space.remove("p1")
    collect_until(events, lambda later: ("left", "p1") in later)


@pytest.mark.parametrize("looks_into_the_body", [False, True])
def test_a_native_observer_of_message_mode_traffic_gets_preserves_values(looks_into_the_body):
    # In message mode a classic message to an agent of this process is routed before it
    # is made a Preserves value (adapter.LocalBody): an observer that needs the value, a
    # native one capturing the body or one whose pattern looks into it, gets it made.
    # (One observer per run: a pattern looking into the body has the whole message made
    # for every observer, which would hide the other case.)
    events = queue.Queue()
    with DataspaceSpace(mode="message") as space:
        space.add(Probe, "p1", events=events)

        def observer(ds):
            if looks_into_the_body:
                @dataspace.on_message(ds, P.rec("message", P.lit("p1"), P.dict(
                    ("action", P.dict(("name", P.lit("echo")),
                                      ("args", P.dict(("value", P.CAPTURE))))))))
                def value(v):
                    events.put(("value", v))
            else:
                @dataspace.on_message(ds, P.rec("message", P.lit("p1"), P.CAPTURE))
                def whole(body):
                    events.put(("whole", type(body).__name__, from_preserves(body)))
        spawn_native_ready(space, observer)
        client = space.add_foreground(Agent, "client")
        assert client.request(msg("p1", "echo", value=[1, "two"])) == [1, "two"]
        got = collect_until(events, lambda g: any(e[0] in ("value", "whole") for e in g))
    if looks_into_the_body:
        assert ("value", (1, "two")) in got  # frozen: the list as a tuple, as decoded
    else:
        (whole,) = [e for e in got if e[0] == "whole"]
        assert whole[1] == "ImmutableDict"
        assert whole[2]["from"] == "client" and whole[2]["action"] == {
            "name": "echo", "args": {"value": [1, "two"]}}


# --- classic agents and native actors -------------------------------------------------

def test_during_and_on_message_on_an_agent_see_a_native_actors_facts_and_messages(space):
    events = queue.Queue()
    space.add(Watcher, "watcher", events=events)

    def sensor(ds):
        turn.publish(ds, rec("temperature", "kitchen", 21))

        @dataspace.on_message(ds, P.rec("sensor-stop"))
        def stop():
            turn.stop_actor()

    space.spawn_native(sensor)
    assert get(events) == ("added", "kitchen", 21)

    space.spawn_native(lambda ds: turn.send(ds, rec("alarm", "fire")))
    assert get(events) == ("alarm", "fire")

    space.spawn_native(lambda ds: turn.send(ds, rec("sensor-stop")))
    assert get(events) == ("removed", "kitchen", 21)


def test_published_facts_are_seen_by_others_and_retracted_with_the_agent(space):
    classic, native = queue.Queue(), queue.Queue()

    def observer(ds):
        @dataspace.during(ds, P.rec("temperature", P.CAPTURE, P.CAPTURE))
        def temperature(room, degrees):
            native.put(("added", room, degrees))
            turn.on_stop(lambda: native.put(("removed", room, degrees)))

    spawn_native_ready(space, observer)
    space.add(Watcher, "watcher", events=classic)
    space.add(Publisher, "publisher")
    client = space.add_foreground(Agent, "client")

    client.request(msg("publisher", "announce", room="kitchen", degrees=20))
    assert get(classic) == ("added", "kitchen", 20)
    assert get(native) == ("added", "kitchen", 20)

    client.request(msg("publisher", "withdraw", room="kitchen"))
    assert get(classic) == ("removed", "kitchen", 20)
    assert get(native) == ("removed", "kitchen", 20)

    client.request(msg("publisher", "announce", room="hall", degrees=18))
    assert get(classic) == ("added", "hall", 18)
    assert get(native) == ("added", "hall", 18)
    space.remove("publisher")
    assert get(classic) == ("removed", "hall", 18)
    assert get(native) == ("removed", "hall", 18)


def test_a_native_actor_answers_a_classic_request(assertion_space):
    space = assertion_space
    seen = queue.Queue()

    def doubler(ds):
        @dataspace.during(ds, P.rec("request", P.lit("native"), P.CAPTURE, P.CAPTURE))
        def request(request_id, body):
            message = from_preserves(body)
            seen.put(("request", message))
            reply = make_reply(message, "native", value=message["action"]["args"]["n"] * 2)
            turn.publish(ds, rec("reply", to_preserves(message["from"]), request_id,
                                 "native", to_preserves(reply)))
            turn.on_stop(lambda: seen.put(("withdrawn", message["meta"]["id"])))

    spawn_native_ready(space, doubler)
    client = space.add_foreground(Agent, "client")

    assert client.request(msg("native", "double", n=21), timeout=10) == 42

    kind, message = get(seen)
    assert kind == "request"
    assert message["from"] == "client"
    assert message["action"] == {"name": "double", "args": {"n": 21}}
    # Once answered, the requester withdraws its request.
    assert get(seen) == ("withdrawn", message["meta"]["id"])
    reply = client._message_log[-1]
    assert reply["from"] == "native"
    assert reply["meta"]["parent_id"] == message["meta"]["id"]
    assert reply["action"] == {"name": "[response]", "args": {"value": 42}}
