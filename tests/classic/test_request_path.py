"""The one classic request path (classic/requests.py), as every caller meets it: agents,
foreground agents and client handles, from threads, trio and asyncio, on the in-process
backends (the same code serves the others; test_contract.py runs them all).

Synchronised on events with timeouts only; nothing here measures speed
(benchmarks/request_path.py does)."""

from __future__ import annotations

import asyncio
import queue
import threading

import pytest
import trio
from syndicate import patterns as P

from dataspace_agency import ActionError, Agent, DataspaceSpace, QueueSpace, action
from dataspace_agency.classic import InboxFull

WAIT = 5.0

BACKENDS = [
    pytest.param(lambda: DataspaceSpace(mode="assertion"), id="dataspace-assertion"),
    pytest.param(lambda: DataspaceSpace(mode="message"), id="dataspace-message"),
    pytest.param(QueueSpace, id="queue"),
]


@pytest.fixture(params=BACKENDS)
def space(request):
    made = request.param()
    try:
        yield made
    finally:
        made.destroy()


class Gate(Agent):
    """``hold`` blocks until released (telling ``started`` first); ``echo`` answers."""

    def __init__(self, id: str, started: threading.Event, release: threading.Event,
                 seen: "queue.Queue[tuple]", **kwargs) -> None:
        super().__init__(id, **kwargs)
        self.started, self.release, self.seen = started, release, seen

    @action
    def hold(self) -> str:
        self.started.set()
        self.release.wait(WAIT)
        self.seen.put(("hold", self.cancelled()))
        return "released"

    @action
    def echo(self, text: str) -> str:
        self.seen.put(("echo", self.current_message()["meta"]["id"]))
        return text

    @action
    def twice(self) -> str:
        self.respond_with("first")  # answered now: the return value is ignored
        return "second"


def gate(space, **kwargs) -> tuple[threading.Event, threading.Event, queue.Queue]:
    started, release, seen = threading.Event(), threading.Event(), queue.Queue()
    space.add(Gate, "gate", started, release, seen, **kwargs)
    return started, release, seen


# --- one admission for every sender -------------------------------------------------------


def test_inbox_limits_hold_for_client_handles(space):
    """Six handles requesting from a busy agent whose inbox holds two: two are admitted,
    four fail with InboxFull, as for agents (docs/limits.md)."""
    started, release, _seen = gate(space, inbox_limit=2)
    busy = space.connect("busy")
    held: "queue.Queue[object]" = queue.Queue()
    holding = threading.Thread(target=lambda: held.put(busy.request("gate", "hold",
                                                                    timeout=WAIT)))
    holding.start()
    assert started.wait(WAIT)  # gate's one slot is taken; its inbox is empty
    handles = [space.connect(f"h{i}") for i in range(6)]
    outcomes: "queue.Queue[object]" = queue.Queue()

    def ask(handle) -> None:
        try:
            outcomes.put(handle.request("gate", "echo", text=handle.id, timeout=0.6))
        except Exception as exc:  # noqa: BLE001 - the outcome is what is tested
            outcomes.put(exc)
    askers = [threading.Thread(target=ask, args=(h,)) for h in handles]
    for asker in askers:
        asker.start()
    # All six end after 0.6 s while the gate is still held: two were admitted (and
    # time out waiting for the answer), four found no room.
    ended = [outcomes.get(timeout=WAIT) for _ in range(6)]
    refused = [o for o in ended if isinstance(o, InboxFull)]
    assert len(refused) == 4, ended
    assert "inbox_limit" in str(refused[0])
    assert all(type(o) is TimeoutError and "has not answered" in str(o)
               for o in ended if o not in refused), ended
    release.set()
    holding.join(WAIT)
    assert held.get(timeout=WAIT) == "released"
    for asker in askers:
        asker.join(WAIT)


# --- stamping: compatible where agency is right ---------------------------------------------


def test_a_supplied_message_id_is_kept_and_answered(space):
    gate(space)
    me = space.add_foreground(Agent, "me")
    message = {"meta": {"id": "my-own-id", "trace": "t1"}, "to": "gate",
               "action": {"name": "echo", "args": {"text": "hi"}}}
    assert me.request(message, timeout=WAIT) == "hi"
    sent = next(m for m in me._message_log if m["meta"]["id"] == "my-own-id")
    assert sent["meta"]["trace"] == "t1"
    reply = next(m for m in me._message_log if m["meta"].get("parent_id") == "my-own-id")
    assert reply["action"]["args"]["value"] == "hi"
    handle = space.connect("h")
    assert handle.send({"meta": {"id": "handle-id"}, "to": "gate",
                        "action": {"name": "echo", "args": {"text": "x"}}}) == "handle-id"
    assert handle.receive(timeout=WAIT)["meta"]["parent_id"] == "handle-id"


def test_an_id_already_pending_from_the_same_sender_is_refused(space):
    started, release, _seen = gate(space)
    me = space.connect("me")
    message = {"meta": {"id": "dup"}, "to": "gate", "action": {"name": "hold", "args": {}}}
    assert me.send(message) == "dup"
    assert started.wait(WAIT)
    with pytest.raises(ValueError, match='id "dup" from "me" is already waiting'):
        me.send(message)
    release.set()
    assert me.receive(timeout=WAIT)["meta"]["parent_id"] == "dup"
    assert me.send(message) == "dup"  # answered: the id is free again


@pytest.mark.parametrize("bad", [{"meta": {"id": ""}}, {"meta": {"id": 7}}])
def test_a_bad_supplied_id_is_a_clear_error(space, bad):
    gate(space)
    me = space.connect("me")
    with pytest.raises(ValueError, match="meta.id must be a non-empty string"):
        me.send({**bad, "to": "gate", "action": {"name": "echo", "args": {"text": "x"}}})


def test_a_from_that_is_not_the_sender_is_refused(space):
    gate(space)
    me = space.add_foreground(Agent, "me")
    with pytest.raises(ValueError, match='says it is from "mallory", but agent "me"'):
        me.send({"from": "mallory", "to": "gate",
                 "action": {"name": "echo", "args": {"text": "x"}}})
    # Saying who one is, is fine.
    assert me.request({"from": "me", "to": "gate",
                       "action": {"name": "echo", "args": {"text": "x"}}}) == "x"


@pytest.mark.parametrize("timeout", ["x", None, True, [1]])
def test_a_timeout_of_the_wrong_type_is_named(space, timeout):
    gate(space)
    me = space.connect("me")
    with pytest.raises(TypeError, match="timeout must be a number of seconds"):
        me.request("gate", "echo", text="x", timeout=timeout)
    with pytest.raises(ValueError, match="timeout must be >= 0"):
        me.request("gate", "echo", text="x", timeout=-1)
    assert me.request("gate", "echo", text="still fine") == "still fine"


# --- errors that say what the space knows ---------------------------------------------------


def test_a_timeout_says_whether_the_responder_is_there(space):
    started, release, _seen = gate(space)
    me = space.connect("me")
    with pytest.raises(TimeoutError) as absent:
        me.request("nobody", "help", timeout=0.2)
    assert 'no answer from "nobody" to "help" within 0.2 s' in str(absent.value)
    assert 'no agent "nobody"' in str(absent.value)
    with pytest.raises(TimeoutError) as silent:
        me.request("gate", "hold", timeout=0.2)
    assert 'agent "gate"' in str(silent.value) and "has not answered" in str(silent.value)
    release.set()


# --- replies: matched once, late ones dropped ------------------------------------------------


def test_an_action_answers_exactly_once(space):
    gate(space)
    me = space.connect("me")
    assert me.request("gate", "twice") == "first"
    me.send("gate", "twice")
    assert me.receive(timeout=WAIT)["action"]["args"]["value"] == "first"
    assert me.request("gate", "echo", text="after") == "after"  # "second" never came
    assert me.inbox == []


def test_a_late_answer_to_an_abandoned_request_is_dropped(space):
    started, release, seen = gate(space)
    me = space.connect("me")
    with pytest.raises(TimeoutError):
        me.request("gate", "hold", timeout=0.2)
    release.set()
    assert seen.get(timeout=WAIT)[0] == "hold"  # the action finished and answered
    assert me.request("gate", "echo", text="next") == "next"  # the answer after it
    assert me.inbox == [] and me.pending == 0


def test_a_requester_that_leaves_withdraws_its_request(space):
    started, release, seen = gate(space)
    leaver = space.connect("leaver")
    asking = threading.Thread(target=lambda: pytest.raises(
        (RuntimeError, TimeoutError), leaver.request, "gate", "hold", timeout=WAIT))
    asking.start()
    assert started.wait(WAIT)
    leaver.close()
    asking.join(WAIT)
    assert not asking.is_alive()  # the request ended with the requester
    me = space.connect("me")
    if isinstance(space, DataspaceSpace):  # (a sync: the withdrawal has reached the gate)
        assert me.facts(P.rec("request", P.CAPTURE, P.CAPTURE, P.CAPTURE)) == []
    release.set()
    name, cancelled = seen.get(timeout=WAIT)
    if isinstance(space, DataspaceSpace) and space.mode == "assertion":
        assert cancelled  # the request fact went with its holder
    assert me.request("gate", "echo", text="ok") == "ok"  # the space goes on


# --- every caller: threads, trio, asyncio ------------------------------------------------------


def test_agents_and_handles_request_from_trio_and_asyncio(space):
    gate(space)
    me = space.connect("me")

    async def ask() -> list:
        return [await me.arequest("gate", "echo", text=str(i)) for i in range(3)]
    assert trio.run(ask) == ["0", "1", "2"]
    assert asyncio.run(ask()) == ["0", "1", "2"]

    async def time_out() -> None:
        await me.arequest("nobody", "help", timeout=0.1)
    with pytest.raises(TimeoutError, match='no agent "nobody"'):
        asyncio.run(time_out())
    with pytest.raises(TimeoutError, match='no agent "nobody"'):
        trio.run(time_out)

    async def fail() -> None:
        await me.arequest("gate", "missing")
    with pytest.raises(ActionError, match='"missing" not found on "gate"'):
        asyncio.run(fail())
    assert me.pending == 0


class Relay(Agent):
    """An ``async def`` action requesting on: the runtime-thread path."""

    @action
    async def relay(self, to: str, text: str) -> str:
        return await self.arequest({"to": to, "action": {"name": "echo",
                                                         "args": {"text": text}}})

    @action
    async def ask_absent(self) -> str:
        try:
            await self.arequest({"to": "nobody", "action": {"name": "help", "args": {}}},
                                timeout=0.1)
        except TimeoutError as exc:
            return str(exc)
        return "answered?"


def test_async_actions_request_on_the_runtime(space):
    gate(space)
    space.add(Relay, "relay")
    me = space.connect("me")
    assert me.request("relay", "relay", args={"to": "gate", "text": "via"}) == "via"
    assert 'no agent "nobody"' in me.request("relay", "ask_absent")


def test_worker_threads_carry_no_invocation_from_one_action_to_the_next(space):
    """Plain actions run on cached worker threads; each sees its own current message."""
    _started, _release, seen = gate(space)
    me = space.connect("me")
    ids = [me.send("gate", "echo", text=str(i)) for i in range(20)]
    for _ in ids:
        me.receive(timeout=WAIT)
    assert [seen.get(timeout=WAIT)[1] for _ in ids] == ids


# --- a lost connection is named -----------------------------------------------------------------


@pytest.mark.parametrize("mode", ["message", "assertion"])
def test_requests_and_facts_say_when_the_server_connection_is_lost(mode):
    from syndicate import patterns as P

    from dataspace_agency import RemoteDataspaceSpace

    space = RemoteDataspaceSpace(mode=mode)
    try:
        started, release, _seen = gate(space)
        me = space.connect("me")
        assert me.request("gate", "echo", text="up") == "up"
        outcome: "queue.Queue[BaseException]" = queue.Queue()

        def ask() -> None:
            try:
                me.request("gate", "hold", timeout=2)
            except Exception as exc:  # noqa: BLE001 - the outcome is what is tested
                outcome.put(exc)
        asking = threading.Thread(target=ask)
        asking.start()
        assert started.wait(WAIT)
        space._server.stop()  # the server goes away mid-request
        error = outcome.get(timeout=WAIT)
        asking.join(WAIT)
        assert "connection to the dataspace server" in str(error), error
        assert "is lost" in str(error)
        with pytest.raises(ConnectionError, match="is lost"):
            me.facts(P.rec("agent", P.CAPTURE))
        release.set()
    finally:
        release.set()
        space.destroy()


class Leaver(Agent):
    """Says goodbye from before_remove, as a queue programmer would."""

    def before_remove(self) -> None:
        self.send({"to": "me", "action": {"name": "goodbye", "args": {}}})


def test_a_send_from_before_remove_is_delivered(space):
    """What an agent sends last goes out before it leaves. (Not in assertion mode: there a
    point-to-point message is a request held as a fact by its sender, and what outlives an
    agent there is nothing, so it is withdrawn with its holder.)"""
    if isinstance(space, DataspaceSpace) and space.mode == "assertion":
        pytest.skip("assertion mode: a request is withdrawn with the agent that holds it")
    space.add(Leaver, "leaver")
    me = space.connect("me")
    space.remove("leaver")
    got = me.receive(timeout=WAIT)
    assert got["from"] == "leaver" and got["action"]["name"] == "goodbye"
