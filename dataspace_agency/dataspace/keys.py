"""Hashable keys for Preserves values, with Preserves equality.

The index hashes assertions, literals and captures. Python's own equality is wrong for
that: ``True == 1 == 1.0``, ``0.0 == -0.0``, ``NaN != NaN``, and lists and dicts cannot be
hashed at all. So every value entering the index is converted once, by :func:`to_key`, into
a *key*: a plain hashable Python object whose ``==`` is exactly Preserves equality.

The key form is a bijection, so :func:`from_key` gives the value back, frozen (sequences as
tuples, dictionaries as :class:`preserves.ImmutableDict`, sets as frozensets), which is the
form preserves' own decoder produces.

Key form, one line per kind of value::

    str, int, bytes                 the value itself (no two kinds compare equal)
    Symbol(name)                    ("y", name)
    bool                            ("b", value)
    double                          ("f", the 64 bits as an int)   0.0 and -0.0 differ, NaN == NaN
    Embedded(x)                     ("e", x)                       x compared with ==
    Record(label, fields)           ("r", key(label), key(f0), key(f1), ...)
    sequence (list or tuple)        ("s", key(item0), key(item1), ...)
    dictionary                      ("d", frozenset {(key(k), key(v))})  a DictKey
    set                             ("S", frozenset {key(item)})

Every non-atomic key is a tuple whose first item is a tag string, and no atom is a tuple,
so keys of different kinds never collide. A dictionary's key is a :class:`DictKey`, a
tuple that also keeps the dictionary it was made from if that was marked deeply frozen.

Why only tuples, strings, numbers and frozensets: the index hashes a fact's key a dozen
times on its way through (the bag, each trie node, each leaf), and these types hash in C.
preserves' own ``Symbol`` and ``ImmutableDict`` hash in Python, a call each time: symbols,
being in every record's label, were the commonest call of an assertion-mode request.
"""

from __future__ import annotations

import struct
from typing import Any, Hashable

from preserves import Embedded, ImmutableDict, Record, Symbol
from preserves.values import is_annotated, preserve

Key = Hashable
"""A hashable stand-in for a Preserves value; see the module docstring."""

_PLAIN_ATOMS = (str, int, bytes)


def _double_bits(value: float) -> int:
    return struct.unpack(">q", struct.pack(">d", value))[0]


def _double_from_bits(bits: int) -> float:
    return struct.unpack(">d", struct.pack(">q", bits))[0]


def to_key(value: Any) -> Key:
    """Convert a Preserves value (as syndicate-py and preserves represent it) to its key.

    Raises ``TypeError`` for Python objects that are not Preserves values.
    """
    kind = type(value)
    # The common atoms first: they are their own key. Below, a record's fields and a
    # dictionary's entries test for them inline too (plain loops, no comprehension):
    # every fact entering the index is walked here, and a call per item is most of the
    # cost of a walk.
    if kind is str or kind is int or kind is bytes:
        return value
    if kind is Symbol:
        return ("y", value.name)
    if kind is Record:
        label = value.key
        key = ["r", ("y", label.name) if type(label) is Symbol else to_key(label)]
        for item in value.fields:
            t = type(item)
            key.append(item if t is str or t is int or t is bytes else to_key(item))
        return tuple(key)
    if kind is tuple or kind is list:
        key = ["s"]
        for item in value:
            t = type(item)
            key.append(item if t is str or t is int or t is bytes else to_key(item))
        return tuple(key)
    if kind is bool:
        return ("b", value)
    if kind is float:
        return ("f", _double_bits(value))
    if kind is Embedded:
        return ("e", value.embeddedValue)
    if isinstance(value, dict):
        entries = {}
        for k, v in value.items():
            t = type(k)
            if not (t is str or t is int or t is bytes):
                k = to_key(k)
            t = type(v)
            entries[k] = v if t is str or t is int or t is bytes else to_key(v)
        kept = value if kind is ImmutableDict and getattr(value, _FROZEN_MARK, False) else None
        return DictKey(entries, kept)
    if isinstance(value, (set, frozenset)):
        return ("S", frozenset(to_key(item) for item in value))
    if kind is bytearray:
        return bytes(value)
    if is_annotated(value):
        return to_key(value.item)
    if hasattr(value, "__preserve__"):
        # A parsed schema value (e.g. an Observe record built with syndicate.schema).
        return to_key(preserve(value))
    if isinstance(value, Symbol):
        return ("y", value.name)
    if isinstance(value, _PLAIN_ATOMS):
        # Subclasses of the plain atoms (e.g. an IntEnum) stand for the base value.
        for base in _PLAIN_ATOMS:
            if isinstance(value, base):
                return base(value)
    raise TypeError(f"not a Preserves value: {value!r} (of type {kind.__name__})")


class DictKey(tuple):
    """The key of a dictionary: the tuple ``("d", frozenset of (key, value) pairs)``,
    which is what it equals and hashes as (in C, the frozenset's hash cached), with
    ``value``, the dictionary it was made from if that was marked deeply frozen
    (:func:`mark_deeply_frozen`), else None. :func:`from_key` gives such a dictionary
    back as it is, so a value inside an assertion comes out of the index as the same
    object, with whatever its builder attached to it (the classic adapter's message,
    say), instead of as a rebuilt copy.

    Attributes are set only when there is something to keep (``value``; ``_entries``, a
    dict of the pairs, on the first step into it): an object's attribute dict is made
    on its first attribute, and every dict is one more object for the garbage collector
    to walk for as long as the key lives (a fact held in the index)."""

    value: ImmutableDict | None = None
    _entries: dict | None = None

    def __new__(cls, entries: dict, value: ImmutableDict | None = None) -> "DictKey":
        key = super().__new__(cls, ("d", frozenset(entries.items())))
        if value is not None:
            key.value = value
        return key

    def entries(self) -> dict:
        """The pairs as a dict (made once, on the first call)."""
        entries = self._entries
        if entries is None:
            entries = self._entries = dict(self[1])
        return entries


def from_key(key: Key) -> Any:
    """The frozen Preserves value a key stands for (inverse of :func:`to_key`)."""
    kind = type(key)
    if kind is DictKey:
        if key.value is not None:
            return key.value
        return immutable_dict({from_key(k): from_key(v) for k, v in key[1]})
    if kind is not tuple:
        return key
    tag = key[0]
    if tag == "y":
        return Symbol(key[1])
    if tag == "r":
        return Record(from_key(key[1]), [from_key(f) for f in key[2:]])
    if tag == "s":
        return tuple(from_key(item) for item in key[1:])
    if tag == "b":
        return key[1]
    if tag == "f":
        return _double_from_bits(key[1])
    if tag == "e":
        return Embedded(key[1])
    if tag == "S":
        return frozenset(from_key(item) for item in key[1])
    raise ValueError(f"not a key: {key!r}")


def freeze(value: Any) -> Any:
    """The same value with every list, dict and set made immutable (and so hashable)."""
    return from_key(to_key(value))


# --- navigating keys -----------------------------------------------------------------------
# A path is a tuple of steps from the root of an assertion: an int index into a record's
# fields or a sequence's items, or a key (in key form) into a dictionary.

Step = Key
Path = tuple[Step, ...]

_MISSING = object()
"""Returned by :func:`step` when the position does not exist."""


def step(key: Key, where: Step) -> Key:
    """The key one step into ``key``, or ``_MISSING`` if there is no such position."""
    if type(key) is DictKey:
        return key.entries().get(where, _MISSING)
    if type(key) is tuple:
        tag = key[0]
        if tag == "r":
            # Records: ("r", label, f0, f1, ...); field i sits at i + 2.
            if type(where) is int and 0 <= where and where + 2 < len(key):
                return key[where + 2]
        elif tag == "s":
            if type(where) is int and 0 <= where and where + 1 < len(key):
                return key[where + 1]
    return _MISSING


def project(key: Key, path: Path) -> Key:
    """The key at ``path`` inside ``key``, or ``_MISSING``."""
    found = project_all(key, (path,))
    return _MISSING if found is None else found[0]


def project_all(key: Key, paths: tuple[Path, ...]) -> tuple[Key, ...] | None:
    """The keys at each of ``paths`` inside ``key``, or None if one is missing: one call
    for a set of paths, with a record's field (the commonest step) read inline."""
    found = []
    for path in paths:
        at = key
        for where in path:
            if type(at) is tuple and at[0] == "r" and type(where) is int \
                    and 0 <= where and where + 2 < len(at):
                at = at[where + 2]
                continue
            at = step(at, where)
            if at is _MISSING:
                return None
        found.append(at)
    return tuple(found)


def class_of(key: Key) -> Key | None:
    """What a group pattern tests for: ("r", label) for records, "s" for sequences, "d" for
    dictionaries; None for atoms (and sets), which no group pattern matches."""
    if type(key) is DictKey:
        return "d"
    if type(key) is tuple:
        tag = key[0]
        if tag == "r":
            return ("r", key[1])
        if tag == "s":
            return tag
    return None


MISSING = _MISSING


# --- navigating values directly ------------------------------------------------------------
# A message is routed once and never stored, so converting all of it to a key would be
# wasted work: routing only needs the classes and literals at the pattern's positions.
# These functions read values as they are; where they cannot be sure to agree with the
# key form they raise Unsure, and the caller converts the whole value instead.

class Unsure(Exception):
    """Reading this value directly might not give Preserves semantics; use keys."""


_RAW_ATOMS = (str, int, float, bytes, Symbol, Embedded)  # bool is an int


def raw_step(value: Any, where: Step) -> Any:
    """The value one step into ``value`` (``where`` in key form), or ``MISSING``."""
    kind = type(value)
    if kind is Record:
        if type(where) is int and 0 <= where < len(value.fields):
            return value.fields[where]
        return _MISSING
    if kind is tuple or kind is list:
        if type(where) is int and 0 <= where < len(value):
            return value[where]
        return _MISSING
    if isinstance(value, dict):
        # Python's dict lookup conflates True, 1 and 1.0; strings and symbols cannot be
        # confused with anything else, so only they are looked up directly.
        if type(where) is str or type(where) is bytes:
            return value.get(where, _MISSING)
        if type(where) is tuple and where[0] == "y":
            return value.get(Symbol(where[1]), _MISSING)
        raise Unsure(where)
    if isinstance(value, _RAW_ATOMS) or isinstance(value, (set, frozenset)):
        return _MISSING
    raise Unsure(value)  # annotations, schema objects, non-Preserves values


def raw_project(value: Any, path: Path) -> Any:
    for where in path:
        # A record's field, the commonest step (every classic envelope), without a call.
        if type(value) is Record and type(where) is int and 0 <= where < len(value.fields):
            value = value.fields[where]
            continue
        value = raw_step(value, where)
        if value is _MISSING:
            return _MISSING
    return value


def raw_class_of(value: Any) -> Key | None:
    """:func:`class_of` for a value read directly."""
    kind = type(value)
    if kind is Record:
        return ("r", to_key(value.key))
    if kind is tuple or kind is list:
        return "s"
    if isinstance(value, dict):
        return "d"
    if value is _MISSING or isinstance(value, _RAW_ATOMS) or isinstance(value, (set, frozenset)):
        return None
    raise Unsure(value)


_FROZEN_MARK = "_dataspace_agency_deeply_frozen"


def mark_deeply_frozen(value: ImmutableDict) -> ImmutableDict:
    """Promise that ``value`` holds only frozen values, all the way down, so that
    :func:`frozen` need not walk it. For builders that produce such values anyway
    (``classic.values.to_preserves``): routing a message otherwise re-walks its body for
    every delivery. An ImmutableDict cannot change, so the promise stays true."""
    setattr(value, _FROZEN_MARK, True)
    return value


def immutable_dict(items: dict) -> ImmutableDict:
    """``ImmutableDict(items)``, made without its Python ``__init__`` (a guard, then
    ``dict.__init__``, then its hash cache: 3-4x the cost of the same steps done here).
    Every classic message builds several on its way, and the wire decoder one per
    dictionary. The object is the one preserves' constructor makes (its hash slot unset;
    the pinned preserves version's layout, checked by tests/dataspace/test_keys.py)."""
    made = _new_dict(ImmutableDict)
    _fill_dict(made, items)
    made._ImmutableDict__hash = None
    return made


def frozen_dict(items: dict) -> ImmutableDict:
    """``mark_deeply_frozen(ImmutableDict(items))``, for ``items`` whose values are all
    frozen, made as :func:`immutable_dict` makes it."""
    made = immutable_dict(items)
    setattr(made, _FROZEN_MARK, True)
    return made


_new_dict = dict.__new__
_fill_dict = dict.update


def frozen(value: Any) -> Any:
    """``value`` itself if it holds no list, dict or set (as a capture must not), else a
    frozen copy. Raises ``TypeError`` for a non-Preserves value."""
    return value if is_frozen(value) else from_key(to_key(value))


def is_frozen(value: Any) -> bool:
    """Whether ``value`` is a Preserves value holding no list, dict or set anywhere."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or kind is Symbol or kind is float \
            or kind is bytes or kind is Embedded:
        return True
    # Plain loops: generator expressions cost about twice as much, on the message path.
    if kind is tuple:
        for item in value:
            if not is_frozen(item):
                return False
        return True
    if kind is Record:
        return is_frozen(value.key) and all(is_frozen(f) for f in value.fields)
    if kind is ImmutableDict:
        if getattr(value, _FROZEN_MARK, False):
            return True
        for k, v in value.items():
            if not (is_frozen(k) and is_frozen(v)):
                return False
        return True
    if kind is frozenset:
        return all(is_frozen(item) for item in value)
    return False  # lists, dicts, sets, and anything to_key must look at


# --- ordering ------------------------------------------------------------------------------

def order_key(key: Key) -> tuple:
    """A Python sort key giving the Preserves total order of the values keys stand for.

    Used to order a dictionary pattern's entries (and so its captures) as syndicate-rs
    does. Not preserves.compare: in preserves 0.996.3 it orders doubles by their unsigned
    bit patterns, putting every negative number after every positive one. Embedded values
    have no order of their own; they sort last, by ``repr``.
    """
    if type(key) is not tuple and type(key) is not DictKey:
        if isinstance(key, bool):  # only inside another key; kept for robustness
            return (0, key)
        if isinstance(key, int):
            return (2, key)
        if isinstance(key, str):
            return (3, key)
        return (4, key)  # bytes
    tag = key[0]
    if tag == "y":
        return (5, key[1])
    if tag == "b":
        return (0, key[1])
    if tag == "f":
        # IEEE 754 totalOrder on the signed bit pattern: flip the magnitude of negatives.
        bits = key[1]
        return (1, bits if bits >= 0 else bits ^ 0x7FFF_FFFF_FFFF_FFFF)
    if tag == "r":
        return (6, order_key(key[1]), tuple(order_key(f) for f in key[2:]))
    if tag == "s":
        return (7, tuple(order_key(item) for item in key[1:]))
    if tag == "S":
        return (8, tuple(sorted(order_key(item) for item in key[1])))
    if tag == "d":
        return (9, tuple(sorted((order_key(k), order_key(v)) for k, v in key[1])))
    return (10, repr(key[1]))  # embedded
