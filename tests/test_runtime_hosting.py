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
    source = inspect.getsource(actor.Turn._deliver)
    assert "_system.queue_task(" in source, "Turn._deliver no longer uses System.queue_task"


def test_spawn_queues_a_thunk_returning_the_new_actor():
    # TrioSystem tracks actors spawned by turn.spawn by looking at what thunks return.
    source = inspect.getsource(actor.Turn.spawn)
    assert "queue_task(lambda: Actor(" in source


def test_linked_task_reads_the_loop_from_the_system():
    assert "self.loop.create_task(" in inspect.getsource(actor.Facet.linked_task)
    assert "actor._system.loop" in inspect.getsource(actor.Facet.loop.fget)
    assert "asyncio.CancelledError" in inspect.getsource(actor.Facet.linked_task)


def test_turn_run_still_catches_everything():
    # Why the drain task is KI-protected: a bare except in Turn.run.
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
