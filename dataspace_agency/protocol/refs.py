"""The relay's references: pinned table entries, proxies for the peer's objects, and the
walk that rewrites embedded refs in a value.

An export or import (:class:`Pinned`) is reference counted: pinned by every assertion
that mentions it, for as long as that assertion stands, and forgotten when its count
reaches zero. A :class:`Proxy` stands for one of the peer's objects: events to it become
packet events of its :class:`~.relay.Relay`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from preserves import Embedded, ImmutableDict, Record, Symbol
from preserves.values import preserve
from syndicate import turn
from syndicate.actor import Entity, Ref

from .wire_values import PlainJSON

if TYPE_CHECKING:
    from .relay import Relay

# PlainJSON: captures read straight into JSON (plain_json.py), which hold no refs.
_ATOMS = frozenset({str, int, bool, float, bytes, Symbol, PlainJSON})


class Pinned:
    """An export or import: an oid, the local ref, and how many things pin it."""

    __slots__ = ("oid", "ref", "count", "permanent", "table")

    def __init__(self, oid: int, ref: Ref, table: dict, permanent: bool = False) -> None:
        self.oid = oid
        self.ref = ref
        self.count = 0
        self.permanent = permanent
        self.table = table

    def grab(self, pins: list) -> None:
        if self.count == 0 and not self.permanent:
            self.table.setdefault(self.oid, self)  # re-registered after it was dropped
        self.count += 1
        pins.append(self)

    def drop(self) -> None:
        self.count -= 1
        if self.count <= 0 and not self.permanent and self.table.get(self.oid) is self:
            del self.table[self.oid]


def drop_all(pins: list) -> None:
    for entry in pins:
        entry.drop()


def map_embedded(value: Any, f: Callable[[Any], Any]) -> Any:
    """``value`` with every embedded object ``x`` replaced by ``f(x)``; parts without
    embeddeds are shared, not copied (so the common case, a value with no embedded at
    all, costs one walk and no allocation)."""
    t = type(value)
    if t in _ATOMS:
        return value
    if t is Embedded:
        return f(value.embeddedValue)
    if t is Record:
        key = value.key
        new_key = key if type(key) in _ATOMS else map_embedded(key, f)
        fields = _map_seq(value.fields, f)
        return value if new_key is key and fields is value.fields else Record(new_key, fields)
    if t is tuple or t is list:
        return _map_seq(value, f)
    if t is dict or t is ImmutableDict:
        changed = False
        items = []
        for k, v in value.items():
            k2, v2 = map_embedded(k, f), map_embedded(v, f)
            changed = changed or k2 is not k or v2 is not v
            items.append((k2, v2))
        return ImmutableDict(items) if changed else value
    if t is frozenset or t is set:
        return frozenset(map_embedded(item, f) for item in value)
    if hasattr(value, "__preserve__"):
        return map_embedded(preserve(value), f)
    return value


def _map_seq(items: Any, f: Callable[[Any], Any]) -> Any:
    mapped = None
    for index, item in enumerate(items):
        if type(item) in _ATOMS:
            continue
        new = map_embedded(item, f)
        if new is not item:
            if mapped is None:
                mapped = list(items)
            mapped[index] = new
    return items if mapped is None else tuple(mapped)


class NewRef(Exception):
    """A message would introduce a ref the peer does not hold."""


class Proxy(Entity):
    """Stands for one of the peer's objects: events to it become packet events."""

    __slots__ = ("relay", "oid", "entry")

    def __init__(self, relay: "Relay", oid: int) -> None:
        self.relay = relay
        self.oid = oid
        self.entry: Pinned | None = None

    def on_publish(self, value: Any, handle: int) -> None:
        self.relay._out_assert(self, value, handle)

    def on_retract(self, handle: int) -> None:
        self.relay._out_retract(self, handle)

    def on_message(self, value: Any) -> None:
        self.relay._out_message(self, value)

    def on_sync(self, peer: Ref) -> None:
        self.relay._out_sync(self, peer)

    def __repr__(self) -> str:
        return f"<remote {self.oid} via {self.relay.name}>"


class SyncReply(Entity):
    """What the peer answers our sync to; passes the answer on and unpins."""

    def __init__(self, peer: Ref, pins: list) -> None:
        self.peer = peer
        self.pins = pins

    def on_message(self, value: Any) -> None:
        if self.pins:
            drop_all(self.pins)
            self.pins = []
            turn.send(self.peer, value)
