"""Brute-force reference matcher for dataspace patterns.

This module is the *oracle*: a deliberately simple implementation of the same
API as the fast skeleton index in :mod:`dataspace_agency.dataspace.index`.
The property tests run both side by side and demand identical events, and
the benchmarks use :class:`NaiveIndex` as the "naive scan" baseline.

Every operation scans every registered observer (and ``add_observer`` scans
every assertion), so cost grows linearly with the number of subscriptions.
That is on purpose: the code is meant to be obviously correct, not fast.
It shares no code with the fast index on purpose too, so a bug in one cannot
hide the same bug in the other.

Semantics implemented (Syndicate dataspace patterns):

* ``<_>`` matches anything; ``<bind p>`` captures the value and matches ``p``;
  ``<lit atom>`` compares by Preserves equality (``True != 1``,
  ``1 != 1.0``, ``0.0 != -0.0``, ``'a' != Symbol('a')``, embeddeds compare
  their wrapped objects with ``==``).
* ``<group <rec L> {i: p ...}>``, ``<group <arr> {...}>`` and
  ``<group <dict> {k: p ...}>`` check the container kind, that each mentioned
  position exists and matches; unmentioned fields, items and keys are ignored.
* Captures are listed depth first: sequence entries by increasing index, dict
  entries by Preserves order of their keys (:func:`order_key`), a bind before
  what it contains.
* Captured values are frozen (tuple / ImmutableDict / frozenset, recursively).
* Anything that is not a Preserves value (``None``, arbitrary objects not
  wrapped in ``Embedded``) is rejected with ``TypeError``.

All equality is decided by :func:`canonical_key`, a hashable encoding in which
two values are equal iff they are equal as Preserves values. Python's own
``==`` is unusable here because it conflates ``True``, ``1`` and ``1.0``.
"""

from __future__ import annotations

import struct
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any, Protocol

import preserves
from preserves import Embedded, ImmutableDict, Record, Symbol
from syndicate.schema import dataspacePatterns as DP

__all__ = ["InvalidPattern", "NaiveIndex", "Sink", "canonical_key", "freeze", "match", "order_key"]


class InvalidPattern(ValueError):
    """The pattern could not be decoded or is structurally invalid."""


class Sink(Protocol):
    """Receives the index's events for each observer."""

    def assert_captures(self, observer: Hashable, captures: tuple) -> Any: ...
    def retract_captures(self, observer: Hashable, handle: Any) -> None: ...
    def send_captures(self, observer: Hashable, captures: tuple) -> None: ...


# --- Preserves values: equality and freezing ---------------------------------


def canonical_key(value: Any) -> Hashable:
    """A hashable key such that ``canonical_key(a) == canonical_key(b)`` iff
    ``a`` and ``b`` are equal Preserves values.

    Every atom is tagged with its Preserves type so Python's cross-type
    equalities (``True == 1 == 1.0``, ``0.0 == -0.0``) cannot leak in; floats
    are keyed by their bit pattern so NaNs with the same bits are equal.
    Embedded values are keyed by the wrapped object itself, which gives
    exactly Preserves' rule (compare the wrapped objects with ``==``) and keeps
    the object alive for as long as the key is stored.
    """
    value = preserves.preserve(value)
    # bool before int: bool is a subclass of int in Python.
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, float):
        return ("double", struct.pack(">d", value))
    if isinstance(value, int):
        return ("int", value)
    if isinstance(value, str):
        return ("string", value)
    if isinstance(value, (bytes, bytearray)):
        return ("bytes", bytes(value))
    if isinstance(value, Symbol):
        return ("symbol", value.name)
    if isinstance(value, Record):
        return ("record", canonical_key(value.key), tuple(canonical_key(f) for f in value.fields))
    if isinstance(value, (list, tuple)):
        return ("sequence", tuple(canonical_key(v) for v in value))
    if isinstance(value, (set, frozenset)):
        # frozenset equality is order-independent, matching set semantics.
        return ("set", frozenset(canonical_key(v) for v in value))
    if isinstance(value, dict):
        return ("dict", frozenset((canonical_key(k), canonical_key(v)) for k, v in value.items()))
    if isinstance(value, Embedded):
        return ("embedded", value.embeddedValue)
    raise TypeError(f"not a Preserves value: {value!r}")


def freeze(value: Any) -> Any:
    """Return an immutable copy of ``value``: sequences become tuples, dicts
    ``ImmutableDict``, sets ``frozenset``, recursively (also inside Records)."""
    value = preserves.preserve(value)
    if isinstance(value, Record):
        return Record(freeze(value.key), tuple(freeze(f) for f in value.fields))
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    if isinstance(value, (set, frozenset)):
        return frozenset(freeze(v) for v in value)
    if isinstance(value, dict):
        return ImmutableDict((freeze(k), freeze(v)) for k, v in value.items())
    if isinstance(value, bytearray):
        return bytes(value)
    if isinstance(value, _ATOM_TYPES):
        return value
    # Reject early (also for send, which stores nothing) rather than deliver
    # something no observer could compare.
    raise TypeError(f"not a Preserves value: {value!r}")


_ATOM_TYPES = (bool, int, float, str, bytes, Symbol, Embedded)


def _preserves_eq(a: Any, b: Any) -> bool:
    return canonical_key(a) == canonical_key(b)


def order_key(value: Any) -> tuple:
    """A sort key realising the Preserves total order.

    Dict-pattern entries are visited in this order of their keys, which fixes
    the order of their captures. Values are ranked by type first (bool <
    double < int < string < bytes < symbol < record < sequence < set < dict <
    embedded), then within the type. Doubles use IEEE 754 totalOrder, so
    ``-1.0 < -0.0 < 0.0 < 1.0``. (``preserves.compare.cmp`` in preserves
    0.996.3 is not used: it ranks every negative double above every positive
    one.) Preserves leaves the order among embeddeds to the implementation;
    here it is the ``repr`` of the wrapped object.
    """
    value = preserves.preserve(value)
    if isinstance(value, bool):
        return (0, value)
    if isinstance(value, float):
        bits = struct.unpack(">q", struct.pack(">d", value))[0]
        # Negative doubles: flip the magnitude bits so larger magnitudes sort lower.
        return (2, bits ^ 0x7FFF_FFFF_FFFF_FFFF if bits < 0 else bits)
    if isinstance(value, int):
        return (3, value)
    if isinstance(value, str):
        return (4, value)  # code point order == UTF-8 byte order
    if isinstance(value, (bytes, bytearray)):
        return (5, bytes(value))
    if isinstance(value, Symbol):
        return (6, value.name)
    # Python compares tuples lexicographically, a proper prefix first, which is
    # exactly the Preserves rule for records (label, then fields) and sequences.
    if isinstance(value, Record):
        return (7, order_key(value.key), tuple(order_key(f) for f in value.fields))
    if isinstance(value, (list, tuple)):
        return (8, tuple(order_key(v) for v in value))
    if isinstance(value, (set, frozenset)):
        return (9, tuple(sorted(order_key(v) for v in value)))
    if isinstance(value, dict):
        return (10, tuple(sorted((order_key(k), order_key(v)) for k, v in value.items())))
    if isinstance(value, Embedded):
        return (11, repr(value.embeddedValue))
    raise TypeError(f"not a Preserves value: {value!r}")


# --- Patterns -----------------------------------------------------------------


# The schema's decoded patterns are instances of its per-variant classes.
_PATTERN_CLASSES = (DP.Pattern.discard, DP.Pattern.bind, DP.Pattern.lit, DP.Pattern.group)


def decode_pattern(pattern: Any) -> DP.Pattern:
    """Accept a decoded ``dataspacePatterns.Pattern`` or its raw Preserves
    form; validate it; return the decoded form."""
    if not isinstance(pattern, _PATTERN_CLASSES):
        try:
            pattern = DP.Pattern.decode(pattern)
        except Exception as exc:  # schema decoding raises several kinds
            raise InvalidPattern(f"cannot decode pattern: {pattern!r}") from exc
    _validate(pattern)
    return pattern


def _validate(p: DP.Pattern) -> None:
    kind = p.VARIANT.name
    if kind == "bind":
        _validate(p.pattern)
    elif kind == "group":
        if p.type.VARIANT.name in ("rec", "arr"):
            for k in p.entries:
                # bool is an int in Python but not in Preserves.
                if isinstance(k, bool) or not isinstance(k, int) or k < 0:
                    raise InvalidPattern(f"sequence pattern entry key must be a non-negative int, got {k!r}")
        for sub in p.entries.values():
            _validate(sub)


def _lit_value(atom: DP.AnyAtom) -> Any:
    # The schema unwraps embeddeds; put the wrapper back so the literal is an
    # ordinary Preserves value comparable with what appears in assertions.
    if atom.VARIANT.name == "embedded":
        return Embedded(atom.value)
    return atom.value


def _sorted_entries(p: DP.Pattern) -> list[tuple[Any, DP.Pattern]]:
    if p.type.VARIANT.name == "dict":
        return sorted(p.entries.items(), key=lambda kv: order_key(kv[0]))
    return sorted(p.entries.items())


def _walk(p: DP.Pattern, value: Any, captures: list) -> bool:
    """Match frozen ``value`` against decoded ``p``, appending captures."""
    kind = p.VARIANT.name
    if kind == "discard":
        return True
    if kind == "bind":
        captures.append(value)
        return _walk(p.pattern, value, captures)
    if kind == "lit":
        return _preserves_eq(_lit_value(p.value), value)
    # group
    group = p.type.VARIANT.name
    if group == "dict":
        if not isinstance(value, dict):
            return False
        for key, sub in _sorted_entries(p):
            # Linear search with Preserves equality: a Python lookup would let
            # pattern key 1 find a value's True or 1.0 key.
            found = [v for k, v in value.items() if _preserves_eq(k, key)]
            if not found or not _walk(sub, found[0], captures):
                return False
        return True
    if group == "rec":
        if not isinstance(value, Record) or not _preserves_eq(value.key, p.type.label):
            return False
        items = value.fields
    else:  # arr
        if not isinstance(value, (list, tuple)):
            return False
        items = value
    for index, sub in _sorted_entries(p):
        if index >= len(items) or not _walk(sub, items[index], captures):
            return False
    return True


def _match_decoded(p: DP.Pattern, frozen_value: Any) -> tuple | None:
    captures: list = []
    return tuple(captures) if _walk(p, frozen_value, captures) else None


def match(pattern: Any, value: Any) -> tuple | None:
    """Captures (frozen values) if ``value`` matches ``pattern``, else None."""
    return _match_decoded(decode_pattern(pattern), freeze(value))


# --- The index ------------------------------------------------------------------


@dataclass
class _Registration:
    pattern: DP.Pattern
    observer: Hashable
    count: int = 1  # how many times (pattern, observer) was added
    # canonical key of captures -> [captures, number of matching assertions, handle]
    bag: dict[Hashable, list] = field(default_factory=dict)


class NaiveIndex:
    """Assertion bag plus observer registrations, matched by brute force.

    See the module docstring for the semantics; the method contracts are the
    same as the fast index's.
    """

    def __init__(self, sink: Sink) -> None:
        self._sink = sink
        # canonical key -> [frozen value, count]
        self._assertions: dict[Hashable, list] = {}
        # (canonical key of pattern, observer) -> registration
        self._registrations: dict[tuple[Hashable, Hashable], _Registration] = {}

    @property
    def assertion_count(self) -> int:
        return len(self._assertions)

    @property
    def observer_count(self) -> int:
        return sum(r.count for r in self._registrations.values())

    def insert(self, value: Any) -> bool:
        """Add one copy of ``value``; True iff it went absent -> present."""
        value = freeze(value)
        key = canonical_key(value)
        entry = self._assertions.get(key)
        if entry is not None:
            entry[1] += 1
            return False
        self._assertions[key] = [value, 1]
        for reg in self._registrations.values():
            captures = _match_decoded(reg.pattern, value)
            if captures is not None:
                self._bag_add(reg, captures)
        return True

    def remove(self, value: Any) -> bool:
        """Remove one copy of ``value``; True iff it went present -> absent."""
        key = canonical_key(value)
        entry = self._assertions.get(key)
        if entry is None:
            raise KeyError(value)
        entry[1] -= 1
        if entry[1] > 0:
            return False
        del self._assertions[key]
        for reg in self._registrations.values():
            captures = _match_decoded(reg.pattern, entry[0])
            if captures is not None:
                self._bag_remove(reg, captures)
        return True

    def send(self, value: Any) -> int:
        """Deliver a message to every matching registration; store nothing."""
        value = freeze(value)
        deliveries = 0
        # Snapshot: a sink may react by changing registrations.
        for reg in list(self._registrations.values()):
            captures = _match_decoded(reg.pattern, value)
            if captures is not None:
                self._sink.send_captures(reg.observer, captures)
                deliveries += 1
        return deliveries

    def add_observer(self, pattern: Any, observer: Hashable) -> None:
        """Register ``observer``; replay captures of current assertions."""
        p = decode_pattern(pattern)
        reg_key = (canonical_key(p), observer)
        existing = self._registrations.get(reg_key)
        if existing is not None:
            # A duplicate registration is only counted; its captures were
            # already asserted to this very observer.
            existing.count += 1
            return
        reg = _Registration(p, observer)
        self._registrations[reg_key] = reg
        for value, _count in list(self._assertions.values()):
            captures = _match_decoded(p, value)
            if captures is not None:
                self._bag_add(reg, captures)

    def remove_observer(self, pattern: Any, observer: Hashable) -> None:
        """Undo one ``add_observer``; the last one retracts all its captures."""
        reg_key = (canonical_key(decode_pattern(pattern)), observer)
        reg = self._registrations.get(reg_key)
        if reg is None:
            raise KeyError((pattern, observer))
        reg.count -= 1
        if reg.count > 0:
            return
        del self._registrations[reg_key]
        for _captures, _count, handle in reg.bag.values():
            self._sink.retract_captures(observer, handle)

    # Bag of capture tuples per registration: only 0 <-> 1 transitions are
    # visible to the observer.

    def _bag_add(self, reg: _Registration, captures: tuple) -> None:
        key = canonical_key(captures)
        slot = reg.bag.get(key)
        if slot is not None:
            slot[1] += 1
            return
        slot = [captures, 1, None]
        reg.bag[key] = slot
        slot[2] = self._sink.assert_captures(reg.observer, captures)

    def _bag_remove(self, reg: _Registration, captures: tuple) -> None:
        key = canonical_key(captures)
        slot = reg.bag[key]
        slot[1] -= 1
        if slot[1] == 0:
            del reg.bag[key]
            self._sink.retract_captures(reg.observer, slot[2])
