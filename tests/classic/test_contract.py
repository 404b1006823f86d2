"""The classic (agency-style) agent contract, run against every space backend.

The classic API is synchronous, so these are plain (non-async) test functions. They
synchronise only on events: ``queue.Queue`` / ``threading.Event`` fed by actions and reply
handlers, always waited on with a timeout, never ``time.sleep``. Nothing here measures
speed (that is the benchmarks' job).

Backends: add a factory to ``SPACE_FACTORIES`` and every test here runs on it too.
"""

from __future__ import annotations

import inspect
import multiprocessing
import queue
import threading
import types
import uuid
from typing import Any, Callable

import pytest
import trio

from dataspace_agency import (QueueSpace, ACCESS_DENIED, ACCESS_PERMITTED, ACCESS_REQUESTED, ActionError,
                              Agent, DataspaceSpace, action)
from dataspace_agency.spaces.amqp import AMQPSpace
from dataspace_agency.spaces.multiprocess_space import MultiprocessQueueSpace
from dataspace_agency.spaces.remote_process_space import MultiprocessDataspaceSpace
from dataspace_agency.spaces.remote_space import RemoteDataspaceSpace
from dataspace_agency.spaces.zenoh_space import ZenohDataspaceSpace
from helpers import Blocker
from zenoh_fixtures import fresh_namespace


WAIT = 5.0  # seconds to wait for an event that should come at once


# --- backends -------------------------------------------------------------------------

SPACE_FACTORIES: list = [
    pytest.param(lambda: DataspaceSpace(mode="assertion"), id="dataspace-assertion"),
    pytest.param(lambda: DataspaceSpace(mode="message"), id="dataspace-message"),
    pytest.param(lambda: QueueSpace(), id="queue"),
    pytest.param(lambda: MultiprocessQueueSpace(), id="multiprocess"),
    pytest.param(lambda: RemoteDataspaceSpace(mode="assertion"), id="remote-assertion"),
    pytest.param(lambda: RemoteDataspaceSpace(mode="message"), id="remote-message"),
    pytest.param(lambda: MultiprocessDataspaceSpace(mode="assertion"), id="remote-processes"),
    pytest.param(lambda request: zenoh_space(request, "assertion"), id="zenoh-assertion"),
    pytest.param(lambda request: zenoh_space(request, "message"), id="zenoh-message"),
    pytest.param(lambda request: AMQPSpace(request.getfixturevalue("amqp_url"), exchange=f"contract-{uuid.uuid4().hex}"), id="amqp"),
]


def zenoh_space(request: pytest.FixtureRequest, mode: str) -> ZenohDataspaceSpace:
    """A Zenoh space on the module's router, in a namespace of its own."""
    router = request.getfixturevalue("zenoh_router")  # conftest.py
    return ZenohDataspaceSpace(router.endpoints, mode=mode, namespace=fresh_namespace())


@pytest.fixture(params=SPACE_FACTORIES)
def space(request):
    factory: Callable[..., Any] = request.param
    # A factory taking an argument gets `request` (for fixtures such as amqp_url).
    made = factory(request) if inspect.signature(factory).parameters else factory()
    try:
        yield made
    finally:
        made.destroy()


# Queues, events, barriers and lists a test shares with agents added by `space.add()`:
# in-process ones, or multiprocessing.Manager proxies where such agents run in other
# processes (one Manager for the module: its server process must be gone after it, or the
# no-leak check in conftest.py reports it).
IN_PROCESS_SYNC = types.SimpleNamespace(Queue=queue.Queue, Event=threading.Event,
                                        Barrier=threading.Barrier, list=list)


@pytest.fixture(scope="module")
def sync_manager():
    manager = multiprocessing.get_context("spawn").Manager()
    try:
        yield manager
    finally:
        manager.shutdown()


@pytest.fixture
def sync(request, space):
    if isinstance(space, (MultiprocessQueueSpace, MultiprocessDataspaceSpace)):
        return request.getfixturevalue("sync_manager")
    return IN_PROCESS_SYNC


# --- helpers --------------------------------------------------------------------------

def take(q: queue.Queue, count: int, timeout: float = WAIT) -> list:
    """The next ``count`` items of ``q``; fails (rather than hangs) if they do not come."""
    got = []
    for _ in range(count):
        try:
            got.append(q.get(timeout=timeout))
        except queue.Empty:
            pytest.fail(f"expected {count} events, got {len(got)}: {got!r}")
    return got


def msg(to: str, name: str, /, **args) -> dict:
    return {"to": to, "action": {"name": name, "args": args}}


def sent_by(log: list[dict], sender: str, name: str) -> list[dict]:
    return [m for m in log if m["from"] == sender and m["action"]["name"] == name]


def replies_to(log: list[dict], message_id: str) -> list[dict]:
    return [m for m in log if m["meta"].get("parent_id") == message_id]


# --- agents ---------------------------------------------------------------------------

class Probe(Agent):
    """Reports everything that reaches it on ``events``.

    Events: ``("say", agent id, content, current message)``,
    ``("value", agent id, value, current message, parent message)``,
    ``("error", agent id, error, current message, parent message)``."""

    def __init__(self, id, *args, events=None, registry=None, **kwargs):
        super().__init__(id, *args, **kwargs)
        self.events = events if events is not None else queue.Queue()
        if registry is not None:
            registry[id] = self

    @action
    def say(self, content: str):
        self.events.put(("say", self.id, content, self.current_message()))

    @action
    def echo(self, value):
        return value

    @action
    def fail(self, text: str):
        raise ValueError(text)

    @action
    def whoami(self):
        return self.current_message()

    def handle_action_value(self, value):
        self.events.put(("value", self.id, value, self.current_message(),
                         self.parent_message()))

    def handle_action_error(self, error):
        self.events.put(("error", self.id, error, self.current_message(),
                         self.parent_message()))


class Documented(Agent):
    @action
    def shout(self, content: str, times: int, ratio: float, loud: bool, tags: list,
              options: dict) -> str:
        """Shout something.

        Args:
            content: What to shout.
            times: How many times.
            ratio: How much louder.
            loud: Whether to shout loudly.
            tags: Labels for the shout.
            options: Extra settings.

        Returns:
            The shouted text.
        """
        return content.upper() * times

    @action(name="renamed")
    def method_name(self) -> str:
        """Answers under its published name."""
        return "renamed-ok"

    @action(help={"description": "hand-written help",
                  "args": {"x": {"type": "number", "description": "an x"}}})
    def custom(self, x: int):
        return x

    @action(access_policy=ACCESS_DENIED)
    def secret(self):
        """Never advertised."""
        return "leaked"


class Guarded(Agent):
    def __init__(self, id, *args, permit=False, asked=None, **kwargs):
        super().__init__(id, *args, **kwargs)
        self.permit = permit
        self.asked = asked if asked is not None else queue.Queue()

    @action(access_policy=ACCESS_DENIED)
    def secret(self):
        return "leaked"

    @action(access_policy=ACCESS_REQUESTED)
    def ask(self, n: int):
        return n + 1

    @action(access_policy=ACCESS_PERMITTED)
    def open(self):
        return "open"

    def request_permission(self, message):
        self.asked.put(message)
        return self.permit


class DefaultPermission(Agent):
    """Does not override request_permission: the default refuses."""

    @action(access_policy=ACCESS_REQUESTED)
    def ask(self):
        return "granted"


class Hooked(Agent):
    def __init__(self, id, *args, hooks, **kwargs):
        super().__init__(id, *args, **kwargs)
        self.hooks = hooks

    def before_action(self, message):
        self.hooks.put(("before", message))

    def after_action(self, message, return_value, error):
        self.hooks.put(("after", message, return_value, error))

    @action
    def ok(self):
        return 42

    @action
    def bad(self):
        raise ValueError("bad")


class Lifecycle(Agent):
    def __init__(self, id, *args, calls, **kwargs):
        super().__init__(id, *args, **kwargs)
        self.calls = calls

    def after_add(self):
        self.calls.append("after_add")

    def before_remove(self):
        self.calls.append("before_remove")

    @action
    def ping(self):
        return "pong"


class RequestsTooEarly(Agent):
    def __init__(self, id, *args, outcome, **kwargs):
        super().__init__(id, *args, **kwargs)
        self.outcome = outcome

    def after_add(self):
        try:
            self.request(msg("echoer", "echo", value=1), timeout=1)
        except RuntimeError:
            self.outcome.append("RuntimeError")
        except BaseException as error:  # noqa: BLE001 - reported by the assertion
            self.outcome.append(type(error).__name__)
        else:
            self.outcome.append("answered")


class Early(Agent):
    def __init__(self, id, *args, release, finished, **kwargs):
        super().__init__(id, *args, **kwargs)
        self.release = release
        self.finished = finished

    @action
    def early_value(self):
        self.respond_with(7)
        self.release.wait(10)
        self.finished.put("early_value")
        return 8

    @action
    def early_error(self):
        self.raise_with(ValueError("early"))
        return 5

    @action
    def ping(self):
        return "pong"


class AsyncWorker(Agent):
    @action
    async def twice(self, n: int):
        await trio.sleep(0)
        return n * 2

    @action
    async def async_fail(self):
        await trio.sleep(0)
        raise ValueError("async boom")

    @action
    async def relay(self, to: str, n: int):
        return await self.arequest(msg(to, "twice", n=n))

    @action
    async def relay_failure(self, to: str):
        try:
            await self.arequest(msg(to, "async_fail"))
        except ActionError as error:
            return f"caught {error}"
        return "no error"


class SyncCaller(Agent):
    @action
    def ask(self, to: str, n: int):
        return self.request(msg(to, "twice", n=n)) + 1


class PingPong(Agent):
    @action
    def start(self, other: str):
        return self.request(msg(other, "bounce", back=self.id), timeout=5)

    @action
    def bounce(self, back: str):
        return "bounced:" + self.request(msg(back, "finish"), timeout=5)

    @action
    def finish(self):
        return "finished"


class Neighbour(Agent):
    def __init__(self, id, *args, neighbour, results, **kwargs):
        super().__init__(id, *args, **kwargs)
        self.neighbour = neighbour
        self.results = results

    @action
    def poke(self):
        try:
            self.results.put((self.id, self.request(msg(self.neighbour, "name"), timeout=20)))
        except BaseException as error:  # noqa: BLE001 - reported by the test
            self.results.put((self.id, repr(error)))

    @action
    def name(self):
        return self.id


# --- send and request -----------------------------------------------------------------

def test_send_answers_with_none_into_handle_action_value_message_for_message(space):
    registry = {}
    space.add_foreground(Probe, "echoer", registry=registry)
    client = space.add_foreground(Probe, "client")

    mid = client.send(msg("echoer", "say", content="hi"))

    assert isinstance(mid, str) and mid
    say = registry["echoer"].events.get(timeout=WAIT)
    kind, who, value, _, _ = client.events.get(timeout=WAIT)
    assert (kind, who, value) == ("value", "client", None)
    request = {"meta": {"id": mid}, "from": "client", "to": "echoer",
               "action": {"name": "say", "args": {"content": "hi"}}}
    assert say == ("say", "echoer", "hi", request)
    assert len(client._message_log) == 2
    reply = client._message_log[1]
    assert reply == {"meta": {"id": reply["meta"]["id"], "parent_id": mid},
                     "from": "echoer", "to": "client",
                     "action": {"name": "[response]", "args": {"value": None}}}
    assert isinstance(reply["meta"]["id"], str) and reply["meta"]["id"] != mid
    assert client._message_log == [request, reply]
    assert registry["echoer"]._message_log == [request, reply]


def test_send_delivers_a_return_value_to_handle_action_value(space):
    space.add(Probe, "echoer")
    client = space.add_foreground(Probe, "client")
    mid = client.send(msg("echoer", "echo", value={"n": 42, "xs": [1, "two", None]}))
    kind, _, value, _, _ = client.events.get(timeout=WAIT)
    assert kind == "value"
    assert value == {"n": 42, "xs": [1, "two", None]}
    assert client._message_log[-1]["meta"]["parent_id"] == mid


def test_send_delivers_an_error_to_handle_action_error(space):
    space.add(Probe, "echoer")
    client = space.add_foreground(Probe, "client")
    mid = client.send(msg("echoer", "fail", text="boom"))
    kind, _, error, _, _ = client.events.get(timeout=WAIT)
    assert kind == "error"
    assert isinstance(error, ActionError)
    assert str(error) == "ValueError: boom"
    reply = client._message_log[-1]
    assert reply == {"meta": {"id": reply["meta"]["id"], "parent_id": mid},
                     "from": "echoer", "to": "client",
                     "action": {"name": "[error]", "args": {"error": "ValueError: boom"}}}


def test_request_returns_the_value_and_bypasses_the_handlers(space):
    space.add(Probe, "echoer")
    client = space.add_foreground(Probe, "client")
    value = {"list": [1, 2.5, "three", None, True, False], "nested": {"k": "v"},
             "none": None, "empty": {}, "text": ""}

    assert client.request(msg("echoer", "echo", value=value)) == value
    assert client.request(msg("echoer", "say", content="x")) is None
    assert client.request(msg("echoer", "echo", value=0)) == 0

    assert client.events.empty(), "replies to request() must not reach the handlers"


def test_request_and_its_reply_are_logged(space):
    space.add(Probe, "echoer")
    client = space.add_foreground(Probe, "client")
    assert client.request(msg("echoer", "echo", value="v")) == "v"
    sent, reply = client._message_log
    assert sent["from"] == "client" and sent["to"] == "echoer"
    assert sent["action"] == {"name": "echo", "args": {"value": "v"}}
    assert set(sent["meta"]) == {"id"}
    assert reply == {"meta": {"id": reply["meta"]["id"], "parent_id": sent["meta"]["id"]},
                     "from": "echoer", "to": "client",
                     "action": {"name": "[response]", "args": {"value": "v"}}}


def test_request_raises_action_error_with_the_remote_exception_text(space):
    space.add(Probe, "echoer")
    client = space.add_foreground(Probe, "client")
    with pytest.raises(ActionError) as caught:
        client.request(msg("echoer", "fail", text="boom"))
    assert str(caught.value) == "ValueError: boom"
    assert client.events.empty()


def test_request_times_out_with_the_builtin_timeout_error(space, sync):
    started, release = sync.Event(), sync.Event()
    space.add(Blocker, "slow", started=started, release=release, bound=10)
    client = space.add_foreground(Probe, "client")
    try:
        with pytest.raises(TimeoutError):
            client.request(msg("slow", "block"), timeout=0.5)
        assert started.is_set()
    finally:
        release.set()


def test_request_to_nobody_times_out(space):
    client = space.add_foreground(Probe, "client")
    with pytest.raises(TimeoutError):
        client.request(msg("nobody", "echo", value=1), timeout=0.5)


def test_unknown_action_error_text(space):
    space.add(Probe, "echoer")
    client = space.add_foreground(Probe, "client")
    with pytest.raises(ActionError) as caught:
        client.request(msg("echoer", "nope"))
    assert str(caught.value) == 'AttributeError: "nope" not found on "echoer"'


def test_unknown_action_via_send_answers_an_error_reply(space):
    space.add(Probe, "echoer")
    client = space.add_foreground(Probe, "client")
    client.send(msg("echoer", "nope"))
    kind, _, error, _, _ = client.events.get(timeout=WAIT)
    assert kind == "error"
    assert str(error) == 'AttributeError: "nope" not found on "echoer"'
    reply = client._message_log[-1]
    assert reply["action"] == {"name": "[error]",
                               "args": {"error": 'AttributeError: "nope" not found on "echoer"'}}


def test_wrong_arguments_answer_a_type_error(space):
    space.add(Probe, "echoer")
    client = space.add_foreground(Probe, "client")
    with pytest.raises(ActionError) as caught:
        client.request(msg("echoer", "say", wrong="x"))
    assert str(caught.value).startswith("TypeError: ")
    with pytest.raises(ActionError) as caught:
        client.request(msg("echoer", "say"))
    assert str(caught.value).startswith("TypeError: ")


def test_replies_are_never_answered(space):
    registry = {}
    space.add_foreground(Probe, "echoer", registry=registry)
    client = space.add_foreground(Probe, "client", registry=registry)
    first = client.send(msg("echoer", "echo", value=1))
    take(client.events, 1)
    second = client.send(msg("echoer", "fail", text="x"))
    take(client.events, 1)
    # A third exchange as a barrier: anything the first two caused has arrived by now.
    assert client.request(msg("echoer", "echo", value=3)) == 3

    echoer_log = registry["echoer"]._message_log
    received = [m for m in echoer_log if m["to"] == "echoer"]
    assert [m["action"]["name"] for m in received] == ["echo", "fail", "echo"]
    assert [m["meta"]["id"] for m in received[:2]] == [first, second]
    names = [m["action"]["name"] for m in client._message_log]
    assert names == ["echo", "[response]", "fail", "[error]", "echo", "[response]"]


# --- broadcast ------------------------------------------------------------------------

def test_broadcast_reaches_every_agent_including_the_sender(space):
    events = queue.Queue()
    registry = {}
    for name in ("b1", "b2"):
        space.add_foreground(Probe, name, events=events, registry=registry)
    client = space.add_foreground(Probe, "client", events=events, registry=registry)

    mid = client.send(msg("*", "say", content="all"))

    got = take(events, 6)  # three says, three replies to the sender
    says = [e for e in got if e[0] == "say"]
    values = [e for e in got if e[0] == "value"]
    assert sorted(e[1] for e in says) == ["b1", "b2", "client"]
    broadcast = {"meta": {"id": mid}, "from": "client", "to": "*",
                 "action": {"name": "say", "args": {"content": "all"}}}
    assert all(e[3] == broadcast for e in says)
    assert len(values) == 3
    assert all(e[1] == "client" and e[2] is None for e in values)
    replies = replies_to(client._message_log, mid)
    received = [r for r in replies if r["to"] == "client"]
    assert sorted(r["from"] for r in received) == ["b1", "b2", "client", "client"]
    assert all(r["action"] == {"name": "[response]", "args": {"value": None}}
               for r in received)
    for name in ("b1", "b2"):
        assert registry[name]._message_log[0] == broadcast
    # The sender logged its broadcast twice (sent, received), its own reply once (sent)
    # and three replies (received).
    names = [m["action"]["name"] for m in client._message_log]
    assert names.count("say") == 2
    assert names.count("[response]") == 4


def test_broadcast_skips_the_sender_when_it_does_not_receive_own_broadcasts(space, sync):
    events = sync.Queue()
    for name in ("b1", "b2"):
        space.add(Probe, name, events=events)
    client = space.add_foreground(Probe, "client", receive_own_broadcasts=False,
                                  events=events)

    mid = client.send(msg("*", "say", content="others"))

    got = take(events, 4)
    assert sorted(e[1] for e in got if e[0] == "say") == ["b1", "b2"]
    assert sorted(e[0] for e in got) == ["say", "say", "value", "value"]
    # A point-to-point barrier, then the sender's log holds no copy of its broadcast.
    assert client.request(msg("b1", "echo", value="barrier")) == "barrier"
    assert [m["action"]["name"] for m in client._message_log].count("say") == 1
    assert sorted(r["from"] for r in replies_to(client._message_log, mid)) == ["b1", "b2"]
    assert events.empty()


def test_broadcast_of_an_unknown_action_is_ignored_silently(space):
    events = queue.Queue()
    registry = {}
    for name in ("b1", "b2"):
        space.add_foreground(Probe, name, events=events, registry=registry)
    client = space.add_foreground(Probe, "client", events=events, registry=registry)

    unknown = client.send(msg("*", "no_such_action", x=1))
    # A known broadcast after it: once all its replies are in, every agent has handled
    # (and ignored) the unknown one.
    client.send(msg("*", "say", content="barrier"))
    got = take(events, 6)

    assert all(e[0] in ("say", "value") for e in got), got
    for name in ("b1", "b2", "client"):
        log = registry[name]._message_log
        received = [m for m in log if m["meta"]["id"] == unknown and m["to"] == "*"]
        assert received, f"{name} did not log the ignored broadcast"
        assert not [m for m in log if m["action"]["name"] == "[error]"], log
        assert not replies_to(log, unknown)
    assert events.empty()


# --- meta and ids ---------------------------------------------------------------------

def test_meta_extra_keys_travel_unchanged_and_parent_id_is_absent_on_requests(space):
    space.add(Probe, "echoer")
    client = space.add_foreground(Probe, "client")
    meta = {"trace": "t-1", "hops": 3, "tags": ["a", "b"], "nested": {"k": None}}
    received = client.request({"meta": dict(meta), "to": "echoer",
                               "action": {"name": "whoami", "args": {}}})
    assert received["from"] == "client"
    assert received["to"] == "echoer"
    assert received["action"] == {"name": "whoami", "args": {}}
    assert "parent_id" not in received["meta"]
    assert {k: v for k, v in received["meta"].items() if k != "id"} == meta
    sent = client._message_log[0]
    assert sent["meta"]["id"] == received["meta"]["id"]
    assert sent["meta"]["trace"] == "t-1"


def test_send_returns_a_fresh_id_each_time(space):
    space.add(Probe, "echoer")
    client = space.add_foreground(Probe, "client")
    ids = {client.send(msg("echoer", "echo", value=i)) for i in range(5)}
    take(client.events, 5)
    assert len(ids) == 5


# --- help -----------------------------------------------------------------------------

SHOUT_ARGS = {
    "content": {"type": "string", "description": "What to shout."},
    "times": {"type": "number", "description": "How many times."},
    "ratio": {"type": "number", "description": "How much louder."},
    "loud": {"type": "boolean", "description": "Whether to shout loudly."},
    "tags": {"type": "array", "description": "Labels for the shout."},
    "options": {"type": "object", "description": "Extra settings."},
}


def test_help_lists_every_action_but_itself_and_denied_ones(space):
    space.add(Documented, "doc")
    client = space.add_foreground(Probe, "client")
    entries = client.request(msg("doc", "help"))
    assert set(entries) == {"shout", "renamed", "custom"}
    shout = entries["shout"]
    assert shout["description"] == "Shout something."
    assert shout["args"] == SHOUT_ARGS
    assert entries["renamed"]["description"] == "Answers under its published name."
    assert entries["custom"] == {"description": "hand-written help",
                                 "args": {"x": {"type": "number", "description": "an x"}}}


def test_help_returns_section_is_generated_from_the_docstring(space):
    space.add(Documented, "doc")
    client = space.add_foreground(Probe, "client")
    returns = client.request(msg("doc", "help", action_name="shout"))["shout"]["returns"]
    assert returns.get("type") == "string"
    assert returns.get("description") == "The shouted text."


def test_help_for_one_action(space):
    space.add(Documented, "doc")
    client = space.add_foreground(Probe, "client")
    one = client.request(msg("doc", "help", action_name="shout"))
    assert list(one) == ["shout"]
    assert one["shout"]["args"] == SHOUT_ARGS
    assert list(client.request(msg("doc", "help", action_name="renamed"))) == ["renamed"]


def test_action_name_override_dispatches_by_the_published_name(space):
    space.add(Documented, "doc")
    client = space.add_foreground(Probe, "client")
    assert client.request(msg("doc", "renamed")) == "renamed-ok"
    with pytest.raises(ActionError) as caught:
        client.request(msg("doc", "method_name"))
    assert str(caught.value) == 'AttributeError: "method_name" not found on "doc"'


def test_generated_action_still_runs(space):
    space.add(Documented, "doc")
    client = space.add_foreground(Probe, "client")
    value = client.request(msg("doc", "shout", content="hi", times=2, ratio=1.5, loud=True,
                               tags=["x"], options={"a": 1}))
    assert value == "HIHI"


# --- access policies ------------------------------------------------------------------

def test_denied_action_answers_permission_error(space, sync):
    asked = sync.Queue()
    space.add(Guarded, "guarded", permit=True, asked=asked)
    client = space.add_foreground(Probe, "client")
    with pytest.raises(ActionError) as caught:
        client.request(msg("guarded", "secret"))
    assert str(caught.value) == 'PermissionError: "guarded.secret" not permitted'
    assert client.request(msg("guarded", "open")) == "open"
    assert asked.empty(), "request_permission is only consulted for ACCESS_REQUESTED"


def test_requested_action_runs_when_request_permission_grants(space, sync):
    asked = sync.Queue()
    space.add(Guarded, "guarded", permit=True, asked=asked)
    client = space.add_foreground(Probe, "client")
    assert client.request(msg("guarded", "ask", n=1)) == 2
    message = asked.get(timeout=WAIT)
    assert message["from"] == "client"
    assert message["action"] == {"name": "ask", "args": {"n": 1}}


def test_requested_action_is_refused_when_request_permission_refuses(space, sync):
    asked = sync.Queue()
    space.add(Guarded, "guarded", permit=False, asked=asked)
    client = space.add_foreground(Probe, "client")
    with pytest.raises(ActionError) as caught:
        client.request(msg("guarded", "ask", n=1))
    assert str(caught.value) == 'PermissionError: "guarded.ask" not permitted'
    assert asked.get(timeout=WAIT)["action"]["name"] == "ask"


def test_request_permission_refuses_by_default(space):
    space.add(DefaultPermission, "strict")
    client = space.add_foreground(Probe, "client")
    with pytest.raises(ActionError) as caught:
        client.request(msg("strict", "ask"))
    assert str(caught.value) == 'PermissionError: "strict.ask" not permitted'


# --- callbacks ------------------------------------------------------------------------

def test_before_and_after_action_see_message_return_value_and_error(space, sync):
    hooks = sync.Queue()
    space.add(Hooked, "hooked", hooks=hooks)
    client = space.add_foreground(Probe, "client")

    assert client.request(msg("hooked", "ok")) == 42
    (before, message), after = take(hooks, 2)
    assert before == "before"
    assert message["from"] == "client" and message["action"] == {"name": "ok", "args": {}}
    assert after == ("after", message, 42, None)

    with pytest.raises(ActionError):
        client.request(msg("hooked", "bad"))
    (before, message), (after, message_after, value, error) = take(hooks, 2)
    assert (before, after) == ("before", "after")
    assert message["action"]["name"] == "bad"
    assert message_after == message
    assert value is None
    assert isinstance(error, BaseException) and "bad" in str(error)


def test_after_add_runs_before_add_returns_and_before_remove_before_remove_returns(space, sync):
    calls = sync.list()
    space.add(Lifecycle, "life", calls=calls)
    assert list(calls) == ["after_add"]
    client = space.add_foreground(Probe, "client")
    assert client.request(msg("life", "ping")) == "pong"
    space.remove("life")
    assert list(calls) == ["after_add", "before_remove"]
    with pytest.raises(TimeoutError):
        client.request(msg("life", "ping"), timeout=0.5)


def test_request_in_after_add_raises_runtime_error(space, sync):
    space.add(Probe, "echoer")
    outcome = sync.list()
    space.add(RequestsTooEarly, "early", outcome=outcome)
    assert list(outcome) == ["RuntimeError"]


def test_respond_with_answers_early_and_only_once(space, sync):
    release, finished = sync.Event(), sync.Queue()
    space.add(Early, "early", release=release, finished=finished)
    client = space.add_foreground(Probe, "client")
    try:
        # Answered while the action is still running (release is not set yet).
        assert client.request(msg("early", "early_value"), timeout=WAIT) == 7
    finally:
        release.set()
    assert finished.get(timeout=WAIT) == "early_value"
    assert client.request(msg("early", "ping")) == "pong"  # barrier: nothing else pending
    (sent,) = sent_by(client._message_log, "client", "early_value")
    replies = replies_to(client._message_log, sent["meta"]["id"])
    assert [r["action"] for r in replies] == [{"name": "[response]", "args": {"value": 7}}]


def test_raise_with_answers_an_error_only_once(space, sync):
    space.add(Early, "early", release=sync.Event(), finished=sync.Queue())
    client = space.add_foreground(Probe, "client")
    with pytest.raises(ActionError) as caught:
        client.request(msg("early", "early_error"))
    assert str(caught.value) == "ValueError: early"
    assert client.request(msg("early", "ping")) == "pong"
    (sent,) = sent_by(client._message_log, "client", "early_error")
    replies = replies_to(client._message_log, sent["meta"]["id"])
    assert [r["action"] for r in replies] == [
        {"name": "[error]", "args": {"error": "ValueError: early"}}]


def test_respond_with_via_send_reaches_the_handler_once(space, sync):
    space.add(Early, "early", release=sync.Event(), finished=sync.Queue())
    client = space.add_foreground(Probe, "client")
    mid = client.send(msg("early", "early_error"))
    kind, _, error, _, _ = client.events.get(timeout=WAIT)
    assert kind == "error" and str(error) == "ValueError: early"
    assert client.request(msg("early", "ping")) == "pong"
    assert client.events.empty()
    assert len(replies_to(client._message_log, mid)) == 1


def test_current_message_while_handling_an_action_is_the_request(space):
    space.add(Probe, "echoer")
    client = space.add_foreground(Probe, "client")
    received = client.request(msg("echoer", "whoami"))
    assert received == client._message_log[0]
    assert client.current_message() is None  # not handling anything on the test thread


def test_parent_message_finds_what_a_message_answers(space):
    space.add(Probe, "echoer")
    client = space.add_foreground(Probe, "client")
    assert client.request(msg("echoer", "echo", value=1)) == 1
    request, reply = client._message_log
    assert client.parent_message(reply) == request
    assert client.parent_message(request) is None


def test_reply_handlers_see_the_reply_as_current_message_and_its_parent(space):
    space.add(Probe, "echoer")
    client = space.add_foreground(Probe, "client")
    mid = client.send(msg("echoer", "whoami"))
    kind, _, value, current, parent = client.events.get(timeout=WAIT)
    request = client._message_log[0]
    assert kind == "value"
    assert value == request
    assert current is not None, "current_message() is None inside handle_action_value"
    assert current["meta"]["parent_id"] == mid
    assert current["action"]["name"] == "[response]"
    assert parent == request


# --- async actions, nested requests ---------------------------------------------------

def test_async_actions_and_arequest(space):
    space.add(AsyncWorker, "worker")
    space.add(AsyncWorker, "other")
    client = space.add_foreground(Probe, "client")
    assert client.request(msg("worker", "twice", n=21)) == 42
    with pytest.raises(ActionError) as caught:
        client.request(msg("worker", "async_fail"))
    assert str(caught.value) == "ValueError: async boom"
    assert client.request(msg("worker", "relay", to="other", n=5)) == 10
    assert client.request(msg("worker", "relay_failure", to="other")) == \
        "caught ValueError: async boom"


def test_sync_action_can_call_request(space):
    space.add(AsyncWorker, "worker")
    space.add(SyncCaller, "caller")
    client = space.add_foreground(Probe, "client")
    assert client.request(msg("caller", "ask", to="worker", n=4)) == 9


def test_nested_requests_back_to_a_busy_agent_do_not_deadlock(space):
    space.add(PingPong, "a", max_concurrency=1)
    space.add(PingPong, "b", max_concurrency=1)
    client = space.add_foreground(Probe, "client")
    assert client.request(msg("a", "start", other="b"), timeout=10) == "bounced:finished"


# --- space ----------------------------------------------------------------------------

def test_duplicate_id_is_refused_and_the_existing_agent_keeps_answering(space):
    space.add(Probe, "echoer")
    client = space.add_foreground(Probe, "client")
    with pytest.raises(ValueError):
        space.add(Probe, "echoer")
    with pytest.raises(ValueError):
        space.add_foreground(Probe, "echoer")
    assert client.request(msg("echoer", "echo", value="still here")) == "still here"


@pytest.mark.parametrize("bad_id", ["", "x" * 256, "*", "amq.foo", "amq."])
def test_invalid_agent_ids_are_refused(space, bad_id):
    with pytest.raises(ValueError):
        Agent(bad_id)
    with pytest.raises(ValueError):
        space.add(Probe, bad_id)


def test_longest_valid_id_is_accepted(space):
    long_id = "x" * 255
    assert Agent(long_id).id == long_id
    space.add(Probe, long_id)
    client = space.add_foreground(Probe, "client")
    assert client.request(msg(long_id, "echo", value=1)) == 1


@pytest.mark.parametrize("message, key", [
    ({"to": "echoer", "action": {"name": "echo", "args": {}}, "extra_key": 1}, "extra_key"),
    ({"to": "echoer", "action": {"name": "echo", "args": {}, "bogus_key": 1}}, "bogus_key"),
])
def test_invalid_messages_raise_message_error_naming_the_key(space, message, key):
    space.add(Probe, "echoer")
    client = space.add_foreground(Probe, "client")
    for call in (client.send, lambda m: client.request(m, timeout=0.5)):
        with pytest.raises(ValueError) as caught:
            call(dict(message))
        assert type(caught.value).__name__ == "MessageError"
        assert key in str(caught.value)
    routed = dict(message, **{"from": "outside"})
    with pytest.raises(ValueError) as caught:
        space._route(routed)
    assert type(caught.value).__name__ == "MessageError"
    assert key in str(caught.value)
    assert client._message_log == []


def test_route_needs_a_sender(space):
    space.add(Probe, "echoer")
    with pytest.raises(ValueError):
        space._route(msg("echoer", "echo", value=1))


def test_route_injects_a_message_from_outside_and_adds_an_id(space, sync):
    events = sync.Queue()
    space.add(Probe, "p1", events=events)
    space.add(Probe, "p2", events=events)
    space._route({"from": "outside", "to": "p1",
                  "action": {"name": "say", "args": {"content": "direct"}}})
    (kind, who, content, message), = take(events, 1)
    assert (kind, who, content) == ("say", "p1", "direct")
    assert message["from"] == "outside"
    assert isinstance(message["meta"]["id"], str) and message["meta"]["id"]

    space._route({"meta": {"id": "given-id", "note": "kept"}, "from": "outside", "to": "*",
                  "action": {"name": "say", "args": {"content": "everyone"}}})
    got = take(events, 2)
    assert sorted(e[1] for e in got) == ["p1", "p2"]
    assert all(e[3]["meta"] == {"id": "given-id", "note": "kept"} for e in got)


def test_add_foreground_returns_the_live_agent(space):
    registry = {}
    space.add(Probe, "echoer")
    client = space.add_foreground(Probe, "client", registry=registry)
    assert isinstance(client, Probe)
    assert client is registry["client"]
    assert client.id == "client"
    assert client.request(msg("echoer", "echo", value=[1, 2])) == [1, 2]


def test_many_agents_each_requesting_from_its_neighbour(space, sync):
    count = 200
    results = sync.Queue()
    names = [f"n{i}" for i in range(count)]
    for i, name in enumerate(names):
        space.add(Neighbour, name, neighbour=names[(i + 1) % count], results=results)
    for name in names:
        space._route({"from": "driver", "to": name, "action": {"name": "poke", "args": {}}})
    got = dict(take(results, count, timeout=30))
    assert got == {name: names[(i + 1) % count] for i, name in enumerate(names)}

