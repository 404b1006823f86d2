"""The trio-hosted syndicate-py runtime: Ctrl-C, crashes, timers, linked tasks, shutdown,
and the background-thread runtime for synchronous callers."""

from __future__ import annotations

import asyncio
import signal
import threading

import pytest
import trio
from syndicate import patterns as P
from syndicate import turn
from syndicate.actor import Entity

from dataspace_agency import open_dataspace
from dataspace_agency.runtime import (BackgroundRuntime, RuntimeClosed, TurnFailed, after,
                                      linked_task, open_runtime)

from helpers import next_events, rec


def _ref_holder(entity: Entity, refs: list):
    """A boot function: keep the actor alive and hand out a ref to ``entity``."""
    def boot():
        turn.prevent_inert_check()
        refs.append(turn.ref(entity))
    return boot


def test_ctrl_c_during_a_turn_reaches_the_program_and_spares_the_actor(ctrl_c_raises):
    # syndicate-py's Turn.run catches everything (bare except): without KI protection a
    # Ctrl-C in a turn would crash the actor and never reach the program.
    outcome = {}

    class Interrupted(Entity):
        def on_message(self, _value):
            signal.raise_signal(signal.SIGINT)  # Ctrl-C arrives in the middle of this turn
            outcome["turn finished"] = True

    async def main():
        async with open_runtime() as runtime:
            refs = []
            actor = runtime.spawn(_ref_holder(Interrupted(), refs))
            host = runtime.spawn_host()
            try:
                runtime.run_turn(host, lambda: turn.send(refs[0], "go"))
                with trio.fail_after(5):
                    await trio.sleep_forever()
            except KeyboardInterrupt:
                outcome["interrupted"] = True
            outcome["actor alive"] = actor.alive

    trio.run(main)
    assert outcome == {"turn finished": True, "interrupted": True, "actor alive": True}


async def test_an_exception_crashes_only_its_actor_and_retracts_its_assertions(ds, caplog):
    class Fragile(Entity):
        def on_message(self, _value):
            raise ValueError("boom")

    fragile_refs = []

    def fragile_boot(ds_ref):
        _ref_holder(Fragile(), fragile_refs)()
        turn.publish(ds_ref, rec("Present", "fragile"))

    fragile = ds.spawn(fragile_boot)
    sturdy = ds.spawn(lambda ds_ref: turn.publish(ds_ref, rec("Present", "sturdy")))
    async with ds.observe(P.rec("Present", P.CAPTURE)) as events:
        assert {e.captures for e in await next_events(events, 2)} == {("fragile",),
                                                                      ("sturdy",)}
        ds.runtime.run_turn(ds.facet, lambda: turn.send(fragile_refs[0], "hit"))
        [event] = await next_events(events, 1)
    assert event.kind == "removed" and event.captures == ("fragile",)
    assert isinstance(fragile.exit_reason, ValueError)
    assert sturdy.alive and ds.ref.facet.actor.alive
    assert "boom" in caplog.text


async def test_run_turn_reports_a_failing_action():
    async with open_runtime() as runtime:
        host = runtime.spawn_host()
        with pytest.raises(TurnFailed, match="division by zero"):
            runtime.run_turn(host, lambda: 1 / 0)
        with pytest.raises(RuntimeClosed):
            runtime.run_turn(host, lambda: None)  # its actor crashed


async def test_timers_run_on_trio_time(autojump_clock):
    async with open_runtime() as runtime:
        fired = trio.Event()
        times = []

        def boot():
            turn.prevent_inert_check()

            @after(3600)
            def _an_hour_later():
                times.append(trio.current_time())
                fired.set()

        runtime.spawn(boot)
        start = trio.current_time()
        await fired.wait()
        assert times[0] - start >= 3600


async def test_a_timer_dies_with_its_facet(autojump_clock):
    async with open_runtime() as runtime:
        fired = []
        host = runtime.spawn_host()

        def start_timer():
            @turn.facet
            def timed():
                @after(60)
                def _():
                    fired.append(True)
            return timed

        timed = runtime.run_turn(host, start_timer)
        runtime.run_turn(host, lambda: turn.stop(timed))
        await trio.sleep(3600)
        assert fired == []
        assert runtime.statistics().nursery_tasks == 1  # only the turn-queue drain task


async def test_linked_task_is_cancelled_when_its_facet_stops():
    async with open_runtime() as runtime:
        host = runtime.spawn_host()
        started, cancelled = trio.Event(), trio.Event()

        async def wait_forever(_facet):
            started.set()
            try:
                await trio.sleep_forever()
            finally:
                cancelled.set()

        def start():
            @turn.facet
            def worker():
                linked_task(turn.active_facet(), wait_forever)
            return worker

        worker = runtime.run_turn(host, start)
        await started.wait()
        runtime.run_turn(host, lambda: turn.stop(worker))
        with trio.fail_after(5):
            await cancelled.wait()


async def test_a_linked_task_that_returns_stops_its_facet():
    async with open_runtime() as runtime:
        host = runtime.spawn_host()
        stopped = trio.Event()

        async def quick(_facet):
            return None

        def start():
            @turn.facet
            def worker():
                turn.on_stop(stopped.set)
                linked_task(turn.active_facet(), quick)

        runtime.run_turn(host, start)
        with trio.fail_after(5):
            await stopped.wait()


async def test_syndicate_linked_task_runs_on_trio_and_stops_quietly(capfd):
    # Native syndicate-py code uses turn.linked_task with asyncio-style cancellation; hosted
    # on trio it must see asyncio.CancelledError (not trio.Cancelled, which syndicate-py
    # would print as a traceback).
    async with open_runtime() as runtime:
        host = runtime.spawn_host()
        ticks, outcome = [], {}
        ticked, cancelled = trio.Event(), trio.Event()

        def start():
            @turn.facet
            def worker():
                @turn.linked_task()
                async def tick(facet):
                    try:
                        while True:
                            ticks.append(1)
                            ticked.set()
                            await trio.sleep(0.001)
                    except asyncio.CancelledError:
                        outcome["cancelled as asyncio"] = True
                        cancelled.set()
                        raise
            return worker

        worker = runtime.run_turn(host, start)
        await ticked.wait()
        runtime.run_turn(host, lambda: turn.stop(worker))
        with trio.fail_after(5):
            await cancelled.wait()
        await runtime.settle()
    assert outcome == {"cancelled as asyncio": True}
    assert "Traceback" not in capfd.readouterr().err


async def test_shutdown_stops_every_actor_and_task():
    threads_before = set(threading.enumerate())
    task_ended = trio.Event()
    async with open_runtime() as runtime:
        actors = [runtime.spawn_host(name=f"host-{i}").actor for i in range(5)]

        async def forever(_facet):
            try:
                await trio.sleep_forever()
            finally:
                task_ended.set()

        runtime.run_turn(runtime.spawn_host(), lambda: linked_task(turn.active_facet(),
                                                                   forever))
        await trio.sleep(0)
        assert runtime.statistics().live_actors == 6
    assert task_ended.is_set()
    assert not any(actor.alive for actor in actors)
    assert runtime.statistics().live_actors == 0
    assert runtime.statistics().nursery_tasks == 0
    assert set(threading.enumerate()) == threads_before
    with pytest.raises(RuntimeClosed):
        runtime.spawn(lambda: None)


async def test_spawned_actors_are_tracked_and_stopped_at_shutdown():
    children = []
    async with open_runtime() as runtime:
        def parent_boot():
            turn.prevent_inert_check()
            turn.spawn(lambda: (turn.prevent_inert_check(),
                                children.append(turn.active_facet().actor)))

        runtime.spawn(parent_boot)
        await runtime.settle()
        assert len(children) == 1 and children[0].alive
    assert not children[0].alive


def test_background_runtime_serves_synchronous_callers_and_leaves_no_thread():
    threads_before = set(threading.enumerate())
    with BackgroundRuntime() as background:
        assert background.thread in threading.enumerate()
        on_thread = background.call(lambda runtime: threading.current_thread())
        assert on_thread is background.thread
        host = background.call(lambda runtime: runtime.spawn_host())
        assert background.call(lambda runtime: runtime.run_turn(host, lambda: 6 * 7)) == 42
        with pytest.raises(ZeroDivisionError):
            background.call(lambda runtime: 1 / 0)
    assert not background.thread.is_alive()
    assert set(threading.enumerate()) == threads_before
    assert not host.actor.alive
    with pytest.raises(RuntimeClosed):
        background.call(lambda runtime: None)


def test_turn_external_from_another_thread_is_delivered():
    with BackgroundRuntime() as background:
        done = threading.Event()
        host = background.call(lambda runtime: runtime.spawn_host())
        worker = threading.Thread(
            target=lambda: background.runtime.external(host, done.set))
        worker.start()
        worker.join()
        assert done.wait(5)


async def test_native_code_runs_unchanged_via_open_dataspace():
    # A smoke test of the layering: the native API opens its own runtime.
    async with open_dataspace() as ds:
        ds.publish(rec("Ping"))
        await ds.sync()
        assert ds.entity.assertion_count == 1
