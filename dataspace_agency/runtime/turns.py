"""syndicate-py's turn on its hot path, in fewer Python calls (applied on import).

Every effect an actor has (an assertion, a retraction, a message, a sync) is queued by the
turn that makes it and carried out in a turn of the receiving actor, so a classic request
in assertion mode is about seven turns and twenty effects. In syndicate-py 0.19.3
(pinned) most of the Python calls a turn makes are bookkeeping around the effect, not the
effect:

* each delivery writes a debug log line through three properties and ``Logger.debug``,
  five calls even with debug logging off;
* the deliveries for each receiving actor are queued as three nested closures;
* ``syndicate.turn.publish(...)`` and its siblings look the turn up through a wrapper and
  a staticproperty before calling the method;
* handles come from a Python iterator.

This module replaces those methods with versions keeping their contract (the same
arguments and results, the same effects in the same order, crashes handled the same
way), only cheaper. A delivery is traced to the facet's logger, as before, when the
``syndicate`` logger is enabled for DEBUG (checked as the effect is queued).
``tests/runtime/test_turns.py`` checks the originals still look as described here and
that the replacements keep the contract; ``benchmarks/request_calls.py`` counts the calls.

What is replaced:

``Turn.run``
    As the original, without the property reads (the active turn, ``Actor.alive``), the
    call to repair a dataflow graph the actor does not have, and the call to
    ``Turn._deliver``: the effects are handed on inline, one ``functools.partial`` per
    receiving actor where the original makes three closures.
``Turn.publish``, ``_publish``, ``retract``, ``_retract``, ``send``, ``_sync``
    The delivery closure does the effect; it logs only while tracing (known from the
    answer ``logging`` caches, see ``_TRACE_CACHE``).
``syndicate.turn.<method>``, ``syndicate.turn.active_facet``
    Each reads the thread's active turn directly.
``syndicate.actor._next_handle``
    An ``itertools.count`` (no Python frame per handle), continuing the same numbering.
"""

from __future__ import annotations

import functools
import itertools
import logging
import sys
import traceback
from types import FunctionType
from typing import Any, Callable

import syndicate
import syndicate.actor
from preserves import preserve
from syndicate.actor import Facet, OutboundAssertion, Ref, Turn

from . import repairs

_ACTIVE = repairs._ACTIVE  # the thread-local syndicate-py keeps the running turn in
_SYNDICATE_LOG = logging.getLogger("syndicate")
_DEBUG = logging.DEBUG
# Logger.isEnabledFor keeps its answers in the logger's ``_cache`` dict, which logging
# clears whenever a level changes: reading it is a dict lookup where the method is a
# Python call per effect. (Asked of the method when not cached, or if a logging version
# has no such dict.)
_TRACE_CACHE: dict = getattr(_SYNDICATE_LOG, "_cache", None)
if not isinstance(_TRACE_CACHE, dict):
    _TRACE_CACHE = {}


def _tracing() -> bool:
    return _SYNDICATE_LOG.isEnabledFor(_DEBUG)


_new_object = object.__new__

# What is replaced, for the tests (they check it still looks as described).
ORIGINALS = {name: Turn.__dict__[name] for name in (
    "run", "publish", "_publish", "retract", "_retract", "send", "_sync")}


def _run(cls: type, facet: Facet, action: Callable[[], Any], zombie_turn: bool = False) -> None:
    actor = facet.actor
    if not zombie_turn and (actor.exit_reason is not None or not facet.alive):
        return
    turn = _new_object(cls)  # Turn.__init__'s three fields, set here without its frame
    turn._facet = facet
    turn._system = actor._system
    turn.queues = {}
    try:
        saved = getattr(_ACTIVE, "turn", None)
        _ACTIVE.turn = turn
        try:
            action()
            if actor._dataflow_graph is not None:
                actor._repair_dataflow_graph()
        finally:
            _ACTIVE.turn = saved
    except:  # noqa: E722 - as the original: whatever the action raises crashes the actor
        exc_info = sys.exc_info()
        facet.log.error('%s', ''.join(traceback.format_exception(*exc_info)))
        Turn.run(actor.root, lambda: actor._terminate(exc_info[1]))
    else:
        # Turn._deliver, inline (a call per turn saved): one batch per receiving actor.
        queues = turn.queues
        if queues:
            turn.queues = {}
            queue_task = turn._system.queue_task
            for receiver, queue in queues.items():
                queue_task(functools.partial(Turn.run, receiver.root,
                                             functools.partial(_perform, queue)))


def _perform(queue: list[tuple[Facet, Callable[[], Any]]]) -> None:
    """Inside the receiving actor's turn: each queued effect, in its target facet."""
    turn = _ACTIVE.turn
    saved = turn._facet
    for facet, action in queue:
        turn._facet = facet
        action()
    turn._facet = saved


def _trace(turn: Turn, text: str, *args: Any) -> None:
    turn.log.debug(text, *args)


def _publish(self: Turn, ref: Ref, assertion: Any, handle: int) -> None:
    if hasattr(assertion, "__preserve__"):
        assertion = preserve(assertion)
    facet = self._facet
    outbound = OutboundAssertion(facet, handle, ref)
    facet.actor.outbound[handle] = outbound
    facet.handles.add(handle)
    entity = ref.entity
    if _TRACE_CACHE.get(_DEBUG, None) is not False and _tracing():
        def action() -> None:
            outbound.established = True
            _trace(self, '%r <-- publish %r handle %r', ref, assertion, handle)
            entity.on_publish(assertion, handle)
    else:
        def action() -> None:
            outbound.established = True
            entity.on_publish(assertion, handle)
    self._enqueue(ref.facet, action)


def _publish_new(self: Turn, ref: Ref, assertion: Any) -> int:
    handle = next(_HANDLES)
    _publish(self, ref, assertion, handle)
    return handle


def _retract_outbound(self: Turn, outbound: OutboundAssertion) -> None:
    # As the original: ``outbound`` has already left its actor's outbound table.
    entity, handle = outbound.ref.entity, outbound.handle
    if _TRACE_CACHE.get(_DEBUG, None) is not False and _tracing():
        def action() -> None:
            if outbound.established:
                outbound.established = False
                _trace(self, '%r <-- retract handle %r', outbound.ref, handle)
                entity.on_retract(handle)
    else:
        def action() -> None:
            if outbound.established:
                outbound.established = False
                entity.on_retract(handle)
    self._enqueue(outbound.ref.facet, action)


def _retract_handle(self: Turn, handle: int | None) -> None:
    if handle is not None:
        # Actor._pop_outbound(handle, clear_from_source_facet=True), without its frame.
        outbound = self._facet.actor.outbound.pop(handle)
        if outbound:
            outbound.source_facet.handles.discard(handle)
            _retract_outbound(self, outbound)


def _send(self: Turn, ref: Ref, message: Any) -> None:
    _enqueue_call(self, ref, "message", ref.entity.on_message, message)


def _sync_peer(self: Turn, ref: Ref, peer: Any) -> None:
    _enqueue_call(self, ref, "sync peer", ref.entity.on_sync, peer)


def _enqueue_call(turn: Turn, ref: Ref, what: str, handler: Callable[[Any], Any],
                  value: Any) -> None:
    """A message or sync: ``handler(value)`` in a turn of the receiving actor; with no
    tracing, a ``functools.partial`` (called from C, no frame of its own)."""
    if hasattr(value, "__preserve__"):
        value = preserve(value)
    if _TRACE_CACHE.get(_DEBUG, None) is not False and _tracing():
        def action() -> None:
            _trace(turn, f"%r <-- {what} %r", ref, value)
            handler(value)
    else:
        action = functools.partial(handler, value)
    turn._enqueue(ref.facet, action)


def _on_active_turn(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    """``syndicate.turn.<name>``: ``method`` called on this thread's running turn."""
    def on_active_turn(*args: Any, **kwargs: Any) -> Any:
        return method(_ACTIVE.turn, *args, **kwargs)
    on_active_turn.__name__ = on_active_turn.__qualname__ = name
    return on_active_turn


_HANDLES: Any = None  # set by apply(): the itertools.count shared with syndicate-py


def apply() -> None:
    """Install the replacements (idempotent; done on import, after ``repairs``)."""
    global _HANDLES
    if Turn.__dict__["run"].__func__ is _run:
        return
    # syndicate-py reads the module-level generator too: both must draw from one count.
    _HANDLES = syndicate.actor._next_handle = itertools.count(next(syndicate.actor._next_handle))
    Turn.run = classmethod(_run)
    Turn.publish = _publish_new
    Turn._publish = _publish
    Turn.retract = _retract_handle
    Turn._retract = _retract_outbound
    Turn.send = _send
    Turn._sync = _sync_peer
    # syndicate.turn copied each public Turn method when syndicate was imported (as
    # wrappers reading the active turn through a staticproperty): make them anew.
    for name, definition in Turn.__dict__.items():
        if not name.startswith("_") and type(definition) is FunctionType:
            setattr(syndicate.turn, name, _on_active_turn(name, definition))
    syndicate.turn.active_facet = _active_facet


def _active_facet() -> Facet:
    return _ACTIVE.turn._facet


apply()
