"""Guards on the syndicate-py internals the trio hosting relies on.

The runtime replaces syndicate-py's System hooks and feeds Facet.linked_task a loop shim.
If an upgrade of syndicate-py moves any of this, these tests fail first and say what moved,
instead of actors quietly misbehaving.
"""

from __future__ import annotations

import importlib.metadata
import inspect

from syndicate import actor


def test_syndicate_py_is_the_pinned_version():
    assert importlib.metadata.version("syndicate-py") == "0.19.3"


def test_system_hooks_are_the_ones_we_replace():
    for hook in ("queue_task", "queue_task_threadsafe", "adjust_engine_inhabitant_count"):
        assert callable(getattr(actor.System, hook, None)), f"System.{hook} is gone"


def test_turn_delivery_goes_through_system_queue_task():
    # syndicate-py's own, and the leaner Turn.run of runtime/turns.py that does it inline.
    for deliver in (actor.Turn._deliver, actor.Turn.run):
        source = inspect.getsource(deliver)
        assert "_system.queue_task" in source, f"{deliver} no longer uses System.queue_task"


def test_spawn_queues_a_thunk_returning_the_new_actor():
    # TrioSystem tracks actors spawned by turn.spawn by looking at what thunks return.
    source = inspect.getsource(actor.Turn.spawn)
    assert "queue_task(lambda: Actor(" in source


def test_linked_task_reads_the_loop_from_the_system():
    assert "self.loop.create_task(" in inspect.getsource(actor.Facet.linked_task)
    assert "actor._system.loop" in inspect.getsource(actor.Facet.loop.fget)
    assert "asyncio.CancelledError" in inspect.getsource(actor.Facet.linked_task)


def test_turn_run_still_catches_everything():
    # Why the drain task is KI-protected: a bare except in Turn.run (the original, and
    # the leaner one of runtime/turns.py that replaces it).
    from dataspace_agency.runtime.turns import ORIGINALS
    assert "except:" in inspect.getsource(ORIGINALS["run"].__func__)
    assert "except:" in inspect.getsource(actor.Turn.run)


def test_facets_do_not_leak_loggers():
    # syndicate-py 0.19.3 made a logger per facet, kept forever by logging.
    import logging

    import trio
    from syndicate import turn

    from dataspace_agency.runtime import open_runtime

    async def churn():
        async with open_runtime() as runtime:
            host = runtime.spawn_host()
            before = len(logging.Logger.manager.loggerDict)
            for _ in range(200):
                facet = runtime.run_turn(host, lambda: turn.facet(lambda: None))
                runtime.run_turn(host, lambda: facet.log.debug("a facet logging"))
            return before, len(logging.Logger.manager.loggerDict)

    before, after = trio.run(churn)
    assert after - before < 5


# --- the repairs in runtime/repairs.py: the originals still look as described there, and
# --- the replacements do what they promise ---------------------------------------------


def test_the_repaired_originals_still_look_as_described():
    from dataspace_agency.runtime.repairs import ORIGINALS

    assert "getChild" in inspect.getsource(ORIGINALS["Facet.log"].fget)
    assert "class SyncContinuation(Entity)" in inspect.getsource(ORIGINALS["Turn.sync"])
    on_stop_or_crash = inspect.getsource(ORIGINALS["Facet.on_stop_or_crash"])
    assert "self.cancel_on_stop(cleanup)" in on_stop_or_crash
    terminate = inspect.getsource(ORIGINALS["Facet._terminate"])
    assert "for h in self.shutdown_actions:" in terminate
    # (syndicate.turn.sync calls it on the active turn: tests/runtime/test_turns.py.)
    from syndicate.actor import Turn

    from dataspace_agency.runtime.repairs import _sync
    assert Turn.sync is _sync
    for name in ("Turn.active", "turn.active"):  # staticproperties reading _active.turn
        original = ORIGINALS[name]
        assert type(original).__name__ == "staticproperty"
        assert "getattr(_active, 'turn', False)" in inspect.getsource(original.getter)


def test_turn_active_is_the_turn_running_in_this_thread_or_none():
    import threading

    import trio

    from syndicate import turn
    from syndicate.actor import Turn

    from dataspace_agency.runtime import open_runtime

    seen = {}

    async def main() -> None:
        async with open_runtime() as runtime:
            def boot() -> None:
                seen["inside"] = (Turn.active, turn.active)
            runtime.spawn(boot)
    trio.run(main)
    inside, also = seen["inside"]
    assert inside is not None and inside is also and isinstance(inside, Turn)
    assert Turn.active is None and turn.active is None  # outside any turn

    def fresh_thread() -> None:  # a thread that never ran a turn
        seen["fresh"] = (Turn.active, turn.active)
    thread = threading.Thread(target=fresh_thread)
    thread.start()
    thread.join()
    assert seen["fresh"] == (None, None)


def _ours(objects: list) -> list[str]:
    """Type names of the objects that are syndicate-py's, ours, or classes."""
    names = []
    for o in objects:
        module = type(o).__module__ or ""
        if isinstance(o, type) or module.startswith(("syndicate", "dataspace_agency")):
            names.append(f"{module}.{type(o).__qualname__}")
    return names


def test_native_publish_retract_message_sync_leave_nothing_in_cycles():
    # Before the repair, every sync made a class: ten objects in cycles per sync.
    import gc

    import trio
    from preserves import Record, Symbol

    from dataspace_agency import open_dataspace

    value = Record(Symbol("Msg"), ["a", 1])

    async def main() -> list:
        async with open_dataspace() as ds:
            async def once() -> None:
                ds.retract(ds.publish(value))
                ds.message(value)
                await ds.sync()

            await once()  # first-use caches are not the point
            gc.collect()
            gc.set_debug(gc.DEBUG_SAVEALL)
            try:
                for _ in range(200):
                    await once()
                gc.collect()
                return list(gc.garbage)
            finally:
                gc.set_debug(0)
                gc.garbage.clear()

    assert _ours(trio.run(main)) == []


def test_stopping_a_facet_cancels_every_one_of_its_linked_tasks():
    # syndicate-py 0.19.3's on_stop_or_crash removed itself from the list being iterated,
    # so of three linked tasks only two were cancelled when their facet stopped.
    import trio
    from syndicate import turn

    from dataspace_agency.runtime import linked_task, open_runtime

    async def main() -> list:
        cancelled: list[int] = []
        async with open_runtime() as runtime:
            host = runtime.spawn_host()
            tasks = []

            def make(i: int):
                async def body(_facet):
                    try:
                        await trio.sleep_forever()
                    finally:
                        cancelled.append(i)
                return body

            def start():
                @turn.facet
                def worker():
                    tasks.extend(linked_task(turn.active_facet(), make(i)) for i in range(3))
                return worker

            worker = runtime.run_turn(host, start)
            await trio.lowlevel.checkpoint()
            runtime.run_turn(host, lambda: turn.stop(worker))
            with trio.fail_after(5):
                for task in tasks:
                    await task.done.wait()
            return sorted(cancelled)

    assert trio.run(main) == [0, 1, 2]


def test_on_stop_or_crash_runs_once_on_stop_and_once_on_crash():
    import trio
    from syndicate import turn

    from dataspace_agency.runtime import open_runtime

    async def main() -> tuple[list, list]:
        on_stop: list[str] = []
        on_crash: list[str] = []
        async with open_runtime() as runtime:
            host = runtime.spawn_host()

            def start():
                @turn.facet
                def worker():
                    turn.active_facet().on_stop_or_crash(lambda: on_stop.append("stopped"))
                return worker

            worker = runtime.run_turn(host, start)
            runtime.run_turn(host, lambda: turn.stop(worker))

            victim = runtime.spawn_host()
            victim.on_stop_or_crash(lambda: on_crash.append("crashed"))
            try:
                runtime.run_turn(victim, lambda: 1 / 0)
            except Exception:
                pass
            await runtime.settle()
        return on_stop, on_crash

    assert trio.run(main) == (["stopped"], ["crashed"])
