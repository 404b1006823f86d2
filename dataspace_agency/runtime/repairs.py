"""Repairs to syndicate-py 0.19.3 (pinned), applied once when the runtime is imported.

syndicate-py's actor core runs unchanged except for these five attributes, each replaced
by a version with the same contract. ``tests/runtime/test_hosting.py`` checks that the
originals still look as described here, so an upgrade that changes them fails loudly.

``Facet.log``
    The original makes a child logger per facet, and Python's ``logging`` keeps every
    logger for the life of the process: with a facet per request that is an unbounded
    leak (four loggers per request, measured). Facets log through their actor's logger
    instead; log records still name the facet in their text.

``Turn.sync(ref, k)``
    The original defines a new ``Entity`` subclass on every call: a class is a knot of
    reference cycles (its ``__mro__`` and ``__dict__`` point back at it), so every sync
    left ten objects, the caller's continuation among them, for the cyclic garbage
    collector. One module-level continuation class does the same job and is freed by
    reference counting the moment the answer has been delivered.

``Facet.on_stop_or_crash(action)``
    The original registers a closure that names itself (to unregister itself), which is
    a reference cycle per linked task, timer or ``on_stop_or_crash`` caller. It also
    removes itself from the very list its facet (or actor) is iterating while running it,
    so the *next* stop handler in that list is skipped: a facet with three linked tasks
    cancelled only two of them when it stopped (measured). The replacement is a small
    callable object: it runs ``action`` at most once, unregisters itself only from the
    list that is not being iterated, and once spent holds nothing, so a list still
    holding it forms no cycle.

``Facet._terminate``
    Unchanged, except that a facet, once stopped, drops its list of stop handlers: they
    have run (or, after a crash, never will), and a handler that refers back to its facet
    (``turn.on_stop(lambda: ...)`` capturing something that holds the facet, a common
    pattern) otherwise keeps the stopped facet in a cycle: with a facet per request, a
    cycle per request.

``Turn.active`` (and ``syndicate.turn.active``)
    The turn running in this thread, or None. The original is a ``staticproperty``
    whose ``__get__`` calls a getter: two Python calls per read, and turns read it
    dozens of times (57 reads per assertion-mode request between two agents, measured
    with ``sys.setprofile``). The replacement reads the same thread-local in one call.

What is left in syndicate-py and not repaired here (each measured with
``gc.DEBUG_SAVEALL``, see docs/performance.md): an actor and its root facet point at each
other (one small cycle per actor, at its death, not per message); a crashing turn keeps
its traceback in a cycle (per crash); building a pattern with ``syndicate.patterns.lit``
raises and catches schema errors, leaving ~40 objects of tracebacks per literal (per
pattern built, so build patterns once where it matters).
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import syndicate
from syndicate.actor import Entity, Facet, Ref, Turn


def _facet_log(facet: Facet) -> logging.Logger:
    return facet.actor.log


class SyncContinuation(Entity):
    """The peer of a sync: calls ``k()`` when the synced entity answers."""

    def __init__(self, k: Callable[[], Any]) -> None:
        self._k = k

    def on_message(self, _value: Any) -> None:
        self._k()


def _sync(self: Turn, ref: Ref, k: Callable[[], Any]) -> None:
    self._sync(ref, self.ref(SyncContinuation(k)))


class StopOrCrash:
    """Runs ``action`` once, when ``facet`` stops or its actor exits, whichever is first.

    ``facet.cancel_on_stop(it)`` and ``facet.actor.cancel_at_exit(it)`` unregister it,
    as they did the original's closure; calling it runs the action now (syndicate-py's
    own ``Facet.linked_task`` relies on that)."""

    __slots__ = ("_facet", "_action")

    def __init__(self, facet: Facet, action: Callable[[], Any]) -> None:
        self._facet: Facet | None = facet
        self._action: Callable[[], Any] | None = action

    def __call__(self) -> None:
        facet, action = self._facet, self._action
        if facet is None or action is None:
            return  # spent: it ran already
        self._facet = self._action = None  # hold nothing now: no cycle through the lists
        # A stopping facet is no longer alive while it runs its stop handlers, an exiting
        # actor no longer alive while it runs its exit hooks: leave the list being
        # iterated alone (removing from it would skip the next handler).
        if facet.alive:
            facet.cancel_on_stop(self)
        if facet.actor.alive:
            facet.actor.cancel_at_exit(self)
        action()


def _on_stop_or_crash(self: Facet, action: Callable[[], Any]) -> StopOrCrash:
    cleanup = StopOrCrash(self, action)
    self.on_stop(cleanup)
    self.actor.at_exit(cleanup)
    return cleanup


_ACTIVE = syndicate.actor._active  # the thread-local syndicate-py keeps the turn in


class ActiveTurn:
    """A descriptor for ``Turn.active``: the turn running in this thread, or None."""

    __slots__ = ()

    def __get__(self, instance: Any, owner: Any = None) -> Turn | None:
        try:
            return _ACTIVE.turn
        except AttributeError:  # a thread that has not run a turn yet, as the original
            _ACTIVE.turn = None
            return None


# What the repairs replace, for the hosting tests (they check it still looks as described).
ORIGINALS = {
    "Turn.active": Turn.__dict__["active"],
    "turn.active": syndicate.turn.__dict__["active"],
    "Facet.log": Facet.log,
    "Turn.sync": Turn.sync,
    "Facet.on_stop_or_crash": Facet.on_stop_or_crash,
    "Facet._terminate": Facet._terminate,
}
_original_terminate = ORIGINALS["Facet._terminate"]


def _terminate(self: Facet, orderly: bool) -> None:
    _original_terminate(self, orderly)
    if not self.alive:  # stopped: its stop handlers have run, or never will
        self.shutdown_actions.clear()


def apply() -> None:
    """Install the repairs (idempotent; done on import)."""
    Facet.log = property(_facet_log)
    Turn.sync = _sync  # (``syndicate.turn.sync`` is made anew from it by turns.py)
    Facet.on_stop_or_crash = _on_stop_or_crash
    Facet._terminate = _terminate
    Turn.active = ActiveTurn()
    syndicate.turn.active = ActiveTurn()


apply()
