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


def decode_pattern(pattern: Any) -> Any:
    """A ``dataspacePatterns.Pattern`` from either a parsed pattern or its Preserves value."""
    if isinstance(pattern, schema.Pattern._ALL):  # the parsed variants share this base
        return pattern
    decoded = schema.Pattern.try_decode(pattern)
    if decoded is None:
        raise InvalidPattern(f"not a dataspace pattern: {pattern!r}")
    return decoded


def compile_pattern(pattern: Any) -> CompiledPattern:
    """Analyse a pattern (parsed or as a Preserves value). Raises :class:`InvalidPattern`."""
    shape: list[tuple[Path, Key]] = []
    const_paths: list[Path] = []
    const_values: list[Key] = []
    exist_paths: list[Path] = []
    capture_paths: list[Path] = []

    def walk(path: Path, p: Any) -> None:
        variant = p.VARIANT.name
        if variant == "discard":
            if path:  # the whole assertion always exists
                exist_paths.append(path)
        elif variant == "bind":
            capture_paths.append(path)
            walk(path, p.pattern)
        elif variant == "lit":
            const_paths.append(path)
            atom = p.value
            # The schema unwraps embedded atoms; assertions hold them as Embedded(x).
            const_values.append(("e", atom.value) if atom.VARIANT.name == "embedded"
                                else to_key(atom.value))
        elif variant == "group":
            kind = p.type.VARIANT.name
            if kind == "rec":
                shape.append((path, ("r", to_key(p.type.label))))
            else:
                shape.append((path, "s" if kind == "arr" else "d"))
            for step, entry in _ordered_entries(kind, p.entries):
                walk(path + (step,), entry)
        else:  # pragma: no cover - the schema admits no other variant
            raise InvalidPattern(f"unknown pattern variant {variant!r}")

    walk((), decode_pattern(pattern))
    return CompiledPattern(tuple(shape), tuple(const_paths), tuple(const_values),
                           tuple(exist_paths), tuple(capture_paths))


def _ordered_entries(kind: str, entries: dict) -> list[tuple[Key, Any]]:
    """Group entries as (step, pattern) in capture order: by index for records and
    sequences, by Preserves order of the keys for dictionaries (as syndicate-rs does)."""
    if kind == "dict":
        steps = sorted(((to_key(k), p) for k, p in entries.items()),
                       key=lambda entry: order_key(entry[0]))
        return steps
    for index in entries:
        if type(index) is not int or index < 0:
            raise InvalidPattern(f"{kind} pattern entry index must be a non-negative int,"
                                 f" got {index!r}")
    return sorted(entries.items())

