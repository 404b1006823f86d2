"""The leaner turn of runtime/turns.py: the originals it replaces still look as it says,
and the replacements keep syndicate-py's contract (effects delivered in order, in turns of
the receiving actor, retracted once, handles unique, crashes retracting what the actor
held, deliveries traced when debug logging is on)."""

from __future__ import annotations

import inspect
import logging
from typing import Any

import syndicate.actor
import trio
from syndicate import turn
from syndicate.actor import Entity, Turn

from dataspace_agency.runtime import open_runtime
from dataspace_agency.runtime import turns


def test_the_replaced_originals_still_look_as_described():
    originals = turns.ORIGINALS
    assert "make_deliver_q" in inspect.getsource(Turn._deliver)  # not replaced: run does it
    for name in ("_publish", "_retract", "send", "_sync"):
        assert "self.log.debug(" in inspect.getsource(originals[name]), name
    assert "next(_next_handle)" in inspect.getsource(originals["publish"])
    assert "_pop_outbound(handle, clear_from_source_facet=True)" in \
        inspect.getsource(originals["retract"])
    run = inspect.getsource(originals["run"].__func__)
    assert "facet.actor._repair_dataflow_graph()" in run and "except:" in run
    for name, replacement in (("run", turns._run), ("publish", turns._publish_new),
                              ("send", turns._send)):
        installed = Turn.__dict__[name]
        assert getattr(installed, "__func__", installed) is replacement, name


class Recorder(Entity):
    """Records what it is told, and in which actor's turn."""

    def __init__(self) -> None:
        self.events: list[tuple] = []

    def _note(self, *event: Any) -> None:
        self.events.append((*event, Turn.active._facet.actor.name))

    def on_publish(self, value: Any, handle: int) -> None:
        self._note("publish", value, handle)

    def on_retract(self, handle: int) -> None:
        self._note("retract", handle)

    def on_message(self, value: Any) -> None:
        self._note("message", value)


def _two_actors(runtime: Any) -> tuple[Any, Recorder, Any]:
    """A recording entity in one actor and a host facet in another."""
    recorder = Recorder()
    refs = []

    def boot() -> None:
        turn.prevent_inert_check()
        refs.append(turn.ref(recorder))
    runtime.spawn(boot, name="receiver")
    return runtime.spawn_host("sender"), recorder, refs[0]


def test_effects_arrive_in_order_in_turns_of_the_receiver():
    async def main() -> tuple[list, list]:
        async with open_runtime() as runtime:
            sender, recorder, ref = _two_actors(runtime)
            handles = []

            def effects() -> None:
                handles.append(turn.publish(ref, "a"))
                turn.send(ref, "m")
                handles.append(turn.publish(ref, "b"))
                turn.retract(handles[0])
            runtime.run_turn(sender, effects)
            await runtime.settle()
            synced = []
            runtime.run_turn(sender, lambda: turn.sync(ref, lambda: synced.append(True)))
            await runtime.settle()
            assert synced == [True]
            runtime.run_turn(sender, lambda: turn.retract(handles[1]))
            await runtime.settle()
            return recorder.events, handles

    events, (a, b) = trio.run(main)
    assert a != b
    assert events == [("publish", "a", a, "receiver"), ("message", "m", "receiver"),
                      ("publish", "b", b, "receiver"), ("retract", a, "receiver"),
                      ("retract", b, "receiver")]


def test_published_and_retracted_in_one_turn_both_arrive_in_order():
    # As in syndicate-py: the publication is delivered (established), then its retraction.
    async def main() -> list:
        async with open_runtime() as runtime:
            sender, recorder, ref = _two_actors(runtime)
            runtime.run_turn(sender, lambda: turn.retract(turn.publish(ref, "x")))
            await runtime.settle()
            return recorder.events
    events = trio.run(main)
    assert [e[0] for e in events] == ["publish", "retract"]


def test_handles_are_drawn_from_one_count_shared_with_syndicate_py():
    async def main() -> list[int]:
        async with open_runtime() as runtime:
            sender, recorder, ref = _two_actors(runtime)
            mine = runtime.run_turn(sender, lambda: turn.publish(ref, 1))
            theirs = next(syndicate.actor._next_handle)  # what syndicate-py's code draws
            after = runtime.run_turn(sender, lambda: turn.publish(ref, 2))
            return [mine, theirs, after]
    mine, theirs, after = trio.run(main)
    assert mine < theirs < after


def test_a_crashing_turn_crashes_its_actor_and_retracts_what_it_held():
    async def main() -> tuple[list, Any]:
        async with open_runtime() as runtime:
            recorder = Recorder()
            refs = []

            def receiver() -> None:
                turn.prevent_inert_check()
                refs.append(turn.ref(recorder))
            runtime.spawn(receiver, name="receiver")
            crashing = runtime.spawn_host("crashing")
            runtime.run_turn(crashing, lambda: turn.publish(refs[0], "held"))
            await runtime.settle()

            def boom() -> None:
                raise ValueError("boom")
            Turn.run(crashing, boom)
            await runtime.settle()
            return recorder.events, crashing.actor.exit_reason
    events, reason = trio.run(main)
    assert [e[0] for e in events] == ["publish", "retract"]
    assert isinstance(reason, ValueError) and str(reason) == "boom"


def test_deliveries_are_traced_when_debug_logging_is_on(caplog):
    async def main() -> None:
        async with open_runtime() as runtime:
            sender, recorder, ref = _two_actors(runtime)
            runtime.run_turn(sender, lambda: turn.send(ref, "traced"))
            await runtime.settle()
            with caplog.at_level(logging.DEBUG, logger="syndicate"):
                runtime.run_turn(sender, lambda: turn.send(ref, "traced too"))
                await runtime.settle()
    trio.run(main)
    texts = [record.getMessage() for record in caplog.records]
    assert any("<-- message 'traced too'" in text for text in texts)
    assert not any("<-- message 'traced'" in text for text in texts)


def test_syndicate_turn_functions_act_on_the_running_turn():
    async def main() -> tuple:
        async with open_runtime() as runtime:
            host = runtime.spawn_host("host")
            return runtime.run_turn(host, lambda: (turn.active_facet(), Turn.active._facet,
                                                   turn.publish.__name__))
    facet, active, name = trio.run(main)
    assert facet is active and name == "publish"
