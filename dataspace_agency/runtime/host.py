"""The runtime: actors on trio, opened with ``async with open_runtime() as rt``.

``Runtime`` is the one small interface the rest of the package uses to run actors, so that
replacing syndicate-py's core with an own turn runtime would stay local to this package:

* ``spawn(boot)``: a new actor whose boot runs now, as its first turn.
* ``spawn_host(name)``: an actor with one long-lived facet, for code outside any actor (a
  trio task, another thread) that wants to publish, send and observe.
* ``run_turn(facet, action)``: run ``action`` as a turn in ``facet`` now, from the
  runtime's thread, and return its result; ``run_effects(facet, fn, arg)``, the same
  for ``fn(arg)`` when no result is wanted.
* ``external(facet, action)``: the same from any thread, queued.
* ``aclose()``: stop every actor, deliver their retractions, end every linked task.

Call everything but ``external`` from the runtime's own trio thread.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable

import trio
from syndicate.actor import Actor, Facet, Turn

from . import collector
from .registry import OPEN_RUNTIMES
from .system import RuntimeClosed, TrioSystem

log = logging.getLogger(__name__)


class TurnFailed(RuntimeError):
    """An action run with ``run_turn`` raised: its actor has crashed (syndicate semantics)."""


@dataclass(frozen=True)
class RuntimeStatistics:
    live_actors: int
    queued: int
    nursery_tasks: int


class Runtime:
    """Hosts syndicate-py actors on a trio nursery. Made by :func:`open_runtime`."""

    def __init__(self, system: TrioSystem) -> None:
        self.system = system

    # --- actors ------------------------------------------------------------------------

    @trio.lowlevel.enable_ki_protection
    def spawn(self, boot: Callable[[], Any], name: str | None = None,
              daemon: bool = False) -> Actor:
        """Start an actor; ``boot`` runs now as its first turn (use ``syndicate.turn``).

        As in syndicate-py, an actor whose boot leaves nothing behind (no assertions,
        observers, child facets or tasks) is stopped as inert right after boot."""
        self._check_open()
        actor = Actor(boot, system=self.system, name=name, daemon=daemon)
        self.system.track(actor)
        collector.after_setup()  # actors are mostly long-lived: see collector.py
        return actor

    def spawn_host(self, name: str | None = None) -> Facet:
        """An actor with a facet that stays up until stopped; returns the facet."""
        facets: list[Facet] = []

        def boot() -> None:
            Turn.active.prevent_inert_check()
            facets.append(Turn.active._facet)

        self.spawn(boot, name=name)
        return facets[0]

    @trio.lowlevel.enable_ki_protection
    def run_turn(self, facet: Facet, action: Callable[[], Any]) -> Any:
        """Run ``action`` as a turn in ``facet`` now; return its result.

        Raises :class:`TurnFailed` if the action raised (the facet's actor has then crashed
        and its assertions are being retracted), and :class:`RuntimeClosed` if the facet
        is no longer running."""
        self._check_open()
        if not (facet.alive and facet.actor.alive):
            raise RuntimeClosed(f"{facet!r} has stopped")
        results: list[Any] = []
        Turn.run(facet, lambda: results.append(action()))
        if not results:
            raise TurnFailed(f"turn in {facet!r} failed: {facet.actor.exit_reason!r}")
        return results[0]

    def run_effects(self, facet: Facet, fn: Callable[[Any], Any], arg: Any) -> None:
        """Run ``fn(arg)`` as a turn in ``facet`` now, for a caller that wants no result
        and has checked that the facet runs (a burst of effects an agent flushes, say).
        :meth:`run_turn` without its result box and checks: on every message's path, a
        few calls fewer. A failure is what it is in any turn: the facet's actor crashes
        (logged by the turn) and its assertions are retracted."""
        Turn.run(facet, functools.partial(fn, arg))

    def external(self, facet: Facet, action: Callable[[], Any]) -> None:
        """Queue ``action`` as a turn in ``facet``; callable from any thread."""
        self.system.queue_task_threadsafe(lambda: Turn.run(facet, action))

    def stop_actor(self, actor: Actor) -> None:
        """Stop an actor now (orderly: its facets' stop handlers run, assertions retract)."""
        if actor.alive:
            Turn.run(actor.root, lambda: Turn.active.stop(actor.root))

    # --- state ---------------------------------------------------------------------------

    async def settle(self) -> None:
        """Wait until every queued effect has been delivered (and what those queued)."""
        await self.system.wait_idle()

    def statistics(self) -> RuntimeStatistics:
        return RuntimeStatistics(
            live_actors=len(self.system.live_actors()),
            queued=len(self.system._queue),
            nursery_tasks=len(self.system.nursery.child_tasks),
        )

    def _check_open(self) -> None:
        if self.system.closed:
            raise RuntimeClosed("the runtime has shut down")

    # --- shutdown ------------------------------------------------------------------------

    @trio.lowlevel.enable_ki_protection
    def _stop_all_actors(self) -> None:
        # Stopping actors may spawn others (stop handlers) or wake linked tasks; repeat
        # until nothing is left, with a bound in case stop handlers spawn forever.
        for _ in range(100):
            live = self.system.live_actors()
            if not live and self.system.idle:
                return
            if not live:  # only deliveries to stopped actors are left: drain them
                self.system.drain_now()
                continue
            for actor in reversed(live):  # newest first; deliver what each retracts
                self.stop_actor(actor)
                self.system.drain_now()
        log.warning("actors kept spawning during shutdown; giving up waiting for them")

    async def aclose(self) -> None:
        """Stop every actor, deliver what that retracts, then end all tasks."""
        if self.system.closed:
            return
        with trio.CancelScope(shield=True):
            self._stop_all_actors()
            self.system.mark_closed()
            self.system.nursery.cancel_scope.cancel()
        if not any(OPEN_RUNTIMES):  # the last one: what was frozen for them can go now
            collector.release()


@contextlib.asynccontextmanager
async def open_runtime() -> AsyncIterator[Runtime]:
    """Run actors for the duration of the block; on exit every actor is stopped and every
    task the runtime started has ended."""
    async with trio.open_nursery() as nursery:
        system = TrioSystem(nursery)
        nursery.start_soon(system.drain_forever)
        runtime = Runtime(system)
        try:
            yield runtime
        finally:
            await runtime.aclose()
