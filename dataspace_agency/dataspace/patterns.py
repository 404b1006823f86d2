"""Compiling Syndicate dataspace patterns into what the index needs.

Patterns are syndicate-py's ``dataspacePatterns.Pattern`` (build them with
``syndicate.patterns``: ``rec``, ``arr``, ``dict``, ``lit``, ``bind``, ``_``)::

    <_>                                 anything, but the position must exist
    <bind p>                            capture the value here, which must also match p
    <lit atom>                          equal to this atom (embedded refs included)
    <group <rec L>|<arr>|<dict> {k: p}> a record labelled L / a sequence / a dictionary
                                        whose entry k matches p; unlisted entries ignored

A pattern is split into four facts about positions (paths from the root, see ``keys``):

* ``shape``: each group's path and the class it requires, depth first. Patterns with the
  same shape share one trie node in the index.
* ``const_paths`` / ``const_values``: where the literals are and what they must be. The
  index keeps a hash map from literal values to subscribers, so a literal-keyed
  subscription costs one lookup however many there are.
* ``exist_paths``: where the discards are; those positions must exist.
* ``capture_paths``: where the binds are, in capture order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from preserves import Embedded, Record, Symbol
from syndicate.schema import dataspacePatterns as schema

from .keys import Key, Path, order_key, to_key


class InvalidPattern(ValueError):
    """A value that is not a valid dataspace pattern."""


@dataclass(frozen=True, slots=True)
class CompiledPattern:
    shape: tuple[tuple[Path, Key], ...]
    const_paths: tuple[Path, ...]
    const_values: tuple[Key, ...]
    exist_paths: tuple[Path, ...]
    capture_paths: tuple[Path, ...]

    @property
    def positions(self) -> tuple[tuple[Path, ...], tuple[Path, ...]]:
        """What the index groups subscriptions by before looking at literal values."""
        return (self.const_paths, self.exist_paths)


def compile_pattern(pattern: Any) -> CompiledPattern:
    """Analyse a pattern: a parsed ``dataspacePatterns.Pattern`` (what ``syndicate.patterns``
    builds) or its Preserves value (what arrives inside an ``Observe``). Raises
    :class:`InvalidPattern` naming the problem.

    Raw values are read directly rather than through the schema parser: parsing costs
    ~190 µs a pattern here, and every subscription reaching the dataspace is raw."""
    facts = _Facts()
    facts.walk((), pattern)
    return CompiledPattern(_interned(tuple(facts.shape)), _interned(tuple(facts.const_paths)),
                           tuple(facts.const_values), _interned(tuple(facts.exist_paths)),
                           _interned(tuple(facts.capture_paths)))


class _Facts:
    """The facts gathered by one walk over a pattern. A class rather than a recursive
    closure: a closure that calls itself is a reference cycle, garbage for the cyclic
    collector on every subscription."""

    __slots__ = ("shape", "const_paths", "const_values", "exist_paths", "capture_paths")

    def __init__(self) -> None:
        self.shape: list[tuple[Path, Key]] = []
        self.const_paths: list[Path] = []
        self.const_values: list[Key] = []
        self.exist_paths: list[Path] = []
        self.capture_paths: list[Path] = []

    def walk(self, path: Path, p: Any) -> None:
        variant, detail = _variant(p)
        if variant == "_":
            if path:  # the whole assertion always exists
                self.exist_paths.append(path)
        elif variant == "bind":
            self.capture_paths.append(path)
            self.walk(path, detail)
        elif variant == "lit":
            self.const_paths.append(path)
            self.const_values.append(detail)
        else:  # group
            kind, klass, entries = detail
            self.shape.append((path, klass))
            for step, entry in _ordered_entries(kind, entries):
                self.walk(path + (step,), entry)


# Shapes and paths recur across subscriptions (every agent's "messages to me" has the same
# shape and paths; only the literal differs): keep one copy of each.
_INTERNED: dict[tuple, tuple] = {}


def _interned(structure: tuple) -> tuple:
    return _INTERNED.setdefault(structure, structure)


_ATOMS = (bool, float, int, str, bytes, Symbol)


def _variant(p: Any) -> tuple[str, Any]:
    """``(variant, detail)`` of one pattern node, raw or parsed: ``("_", None)``,
    ``("bind", sub-pattern)``, ``("lit", key of the atom)`` or
    ``("group", (kind, class key, entries))``."""
    if isinstance(p, schema.Pattern._ALL):  # parsed by syndicate.patterns / the schema
        variant = p.VARIANT.name
        if variant == "discard":
            return "_", None
        if variant == "bind":
            return "bind", p.pattern
        if variant == "lit":
            atom = p.value  # the schema unwraps embedded atoms; assertions hold Embedded(x)
            return "lit", (("e", atom.value) if atom.VARIANT.name == "embedded"
                           else to_key(atom.value))
        kind = p.type.VARIANT.name
        label = p.type.label if kind == "rec" else None
        return "group", (kind, _class_key(kind, label), p.entries)

    if not isinstance(p, Record) or not isinstance(p.key, Symbol):
        raise InvalidPattern(f"not a dataspace pattern: {p!r}")
    label, fields = p.key.name, p.fields
    if label == "_" and not fields:
        return "_", None
    if label == "bind" and len(fields) == 1:
        return "bind", fields[0]
    if label == "lit" and len(fields) == 1:
        atom = fields[0]
        if not isinstance(atom, (*_ATOMS, Embedded)):
            raise InvalidPattern(f"a literal must be an atom, got {atom!r}")
        return "lit", to_key(atom)
    if label == "group" and len(fields) == 2 and isinstance(fields[1], dict):
        group_type, entries = fields
        if isinstance(group_type, Record) and isinstance(group_type.key, Symbol):
            kind, type_fields = group_type.key.name, group_type.fields
            if kind == "rec" and len(type_fields) == 1:
                return "group", (kind, _class_key(kind, type_fields[0]), entries)
            if kind in ("arr", "dict") and not type_fields:
                return "group", (kind, _class_key(kind, None), entries)
        raise InvalidPattern(f"not a group type: {group_type!r}")
    raise InvalidPattern(f"not a dataspace pattern: {p!r}")


def _class_key(kind: str, label: Any) -> Key:
    """What the index tests a group's value against (see ``keys.class_of``)."""
    if kind == "rec":
        return ("r", to_key(label))
    return "s" if kind == "arr" else "d"


def _ordered_entries(kind: str, entries: dict) -> list[tuple[Key, Any]]:
    """Group entries as (step, pattern) in capture order: by index for records and
    sequences, by Preserves order of the keys for dictionaries (as syndicate-rs does)."""
    if kind == "dict":
        return sorted(((to_key(k), p) for k, p in entries.items()),
                      key=lambda entry: order_key(entry[0]))
    for index in entries:
        if type(index) is not int or index < 0:
            raise InvalidPattern(f"{kind} pattern entry index must be a non-negative int,"
                                 f" got {index!r}")
    return sorted(entries.items())
