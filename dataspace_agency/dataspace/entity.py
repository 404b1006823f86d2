"""The Dataspace entity: a syndicate-py ``Entity`` holding a bag of assertions, on the index.

Semantics (as the reference implementations have them):

* ``on_publish(value, handle)``: add the value to the bag. If it was absent and is an
  ``<Observe pattern #:observer>``, register the observer: it is told of every current
  match at once (replay), then of every change.
* ``on_retract(handle)``: drop the value asserted under that handle. If it was the last
  copy of an Observe, unregister it (its captures are retracted from the observer).
* ``on_message(value)``: deliver to matching observers; nothing is stored. An observer
  entity marked ``routed_inline`` (trusted code of this process that only queues work,
  such as the classic adapter's inbox) is told inside the routing turn.
* ``on_sync(peer)``: answer ``#t`` to the peer (inherited from ``Entity``).

Observe records are ordinary assertions too, so patterns over ``Observe`` see interest.

Bad input never crashes the dataspace (a crash would retract every observer's view):
an Observe whose pattern is not a valid pattern, or whose observer is not a ref, stays an
ordinary assertion and a warning is logged; a value that is not a Preserves value (only
possible in-process) is ignored with a warning.
"""

from __future__ import annotations

import logging
from typing import Any

from syndicate import turn
from syndicate.actor import Entity, Ref
from preserves import Embedded, Record, Symbol, preserve

from ..runtime import collector
from .index import Index
from .keys import Key, class_of, frozen, to_key
from .patterns import CompiledPattern, InvalidPattern, compile_pattern

log = logging.getLogger(__name__)

_OBSERVE = Symbol("Observe")
_OBSERVE_CLASS = class_of(to_key(Record(_OBSERVE, [])))


class _TurnSink:
    """Tells observers through the active turn: captures become assertions and messages
    at the observer's ref."""

    def assert_captures(self, observer: Ref, captures: tuple) -> Any:
        return turn.publish(observer, captures)

    def retract_captures(self, observer: Ref, handle: Any) -> None:
        turn.retract(handle)

    def send_captures(self, observer: Ref, captures: tuple) -> None:
        entity = observer.entity
        if getattr(entity, "routed_inline", False):
            # A subscriber of this process that only queues work of its own (the
            # classic adapter's inbox): told inside this routing turn rather than in a
            # turn of its own actor, which would cost a turn per message. Skipped once
            # its facet has stopped, as a message to a stopped facet is.
            if observer.facet.alive:
                entity.on_message(captures)
        else:
            # Anything still standing for a value (see Index.send) is made one now.
            for capture in captures:
                if hasattr(capture, "__preserve__"):
                    captures = tuple(frozen(preserve(c)) for c in captures)
                    break
            turn.send(observer, captures)


def parse_observe(value: Any) -> tuple[CompiledPattern, Ref] | None:
    """``(pattern, observer)`` if ``value`` is a well-formed Observe, else None (with a
    warning if it looks like an Observe but is malformed)."""
    if not (isinstance(value, Record) and value.key == _OBSERVE):
        return None
    if len(value.fields) != 2:
        log.warning("ignoring malformed Observe (want 2 fields): %r", value)
        return None
    pattern, observer = value.fields
    if not (isinstance(observer, Embedded) and isinstance(observer.embeddedValue, Ref)):
        log.warning("ignoring Observe whose observer is not a ref: %r", observer)
        return None
    try:
        return compile_pattern(pattern), observer.embeddedValue
    except InvalidPattern as exc:
        log.warning("ignoring Observe with an invalid pattern: %s", exc)
        return None


class Dataspace(Entity):
    """A dataspace. Spawn an actor holding ``turn.ref(Dataspace())`` and hand out the ref."""

    def __init__(self) -> None:
        self.index = Index(_TurnSink())
        self._by_handle: dict[int, Key] = {}
        self._observers: dict[Key, tuple[CompiledPattern, Ref]] = {}

    @property
    def assertion_count(self) -> int:
        """Distinct assertions held."""
        return self.index.assertion_count

    @property
    def observer_count(self) -> int:
        return self.index.observer_count

    def holds(self, value: Any) -> bool:
        """Whether ``value`` is asserted now (on the dataspace's runtime thread)."""
        return self.index.holds(value)

    def on_publish(self, value: Any, handle: int) -> None:
        try:
            key = to_key(value)
        except TypeError as exc:
            log.warning("ignoring assertion that is not a Preserves value: %s", exc)
            return
        self._by_handle[handle] = key
        # Only an Observe record is looked at further (its class tested on the key: a
        # tuple compared in C, where the value's Symbol compares in Python).
        if self.index.insert_key(key) and class_of(key) == _OBSERVE_CLASS:
            observe = parse_observe(value)
            if observe is not None:
                self._observers[key] = observe
                self.index.add_observer(*observe)
                collector.after_setup()  # observers are mostly long-lived: freeze them

    def on_retract(self, handle: int) -> None:
        key = self._by_handle.pop(handle, None)
        if key is None:
            return  # an ignored (invalid) assertion, or a handle never published here
        if self.index.remove_key(key):
            observe = self._observers.pop(key, None)
            if observe is not None:
                self.index.remove_observer(*observe)

    def on_message(self, value: Any) -> None:
        # Routed without converting the whole message (Index.send): parts no pattern
        # looks at are not examined, so an in-process sender's non-Preserves object is
        # noticed only where a subscriber would see it.
        try:
            self.index.send(value)
        except TypeError as exc:
            log.warning("ignoring message that is not a Preserves value: %s", exc)
