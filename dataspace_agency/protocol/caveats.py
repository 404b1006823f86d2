"""Caveats: what an attenuated sturdyref may say, and the entity that enforces it.

A sturdyref may carry caveats (``<ref {oid: ... sig: ... caveats: [c ...]}>``, the
signature chained over each, see ``sturdy.py``). The server hands the holder of such a ref
not the dataspace itself but an :class:`Attenuator` in front of it: every assertion and
message the holder makes goes through the caveats, which rewrite it or drop it. What this
server understands is the first-party subset of Syndicate's ``sturdy.prs``::

    <rewrite PATTERN TEMPLATE>   matches: the value becomes TEMPLATE, filled with the
                                 captures of PATTERN; does not match: dropped
    <reject PATTERN>             matches: dropped; does not match: passed on unchanged
    <or [<rewrite ...> ...]>     the first rewrite that matches (none: dropped);
                                 ``<alts [...]>`` is accepted as another spelling

PATTERN is a dataspace pattern in the form this repository uses everywhere (syndicate-py
0.19.3's ``dataspacePatterns``: ``<_>``, ``<bind p>``, ``<lit atom>``,
``<group <rec L>|<arr>|<dict> {key: p ...}>``). TEMPLATE is one of::

    <ref N>                      the N-th capture of the pattern (depth first, from 0)
    <lit v>                      the value v
    <group <rec L> {0: t ...}>   a record / sequence / dictionary built from templates
    <group <arr> {0: t ...}>     (record and sequence entries must be 0, 1, ... n-1)
    <group <dict> {k: t ...}>

A ref's caveats run right to left (the newest, added last by the most restricted holder,
first). Anything else (``<attenuate ...>`` templates, unknown caveats, malformed
patterns) makes the whole ref be rejected at the gatekeeper, naming the problem: a
restriction the server does not understand must never be silently ignored.

Syncs pass through (they say nothing). Observers are ordinary ``<Observe ...>``
assertions, so they pass only where a caveat lets them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable

from preserves import Embedded, ImmutableDict, Record, Symbol
from syndicate import turn
from syndicate.actor import Entity, Ref

from ..dataspace.keys import to_key

log = logging.getLogger(__name__)

__all__ = ["Attenuation", "AttenuationStats", "Attenuator", "InvalidCaveat"]

_ATOMS = (bool, float, int, str, bytes, Symbol, Embedded)


class InvalidCaveat(ValueError):
    """A caveat this server cannot enforce (malformed or not supported)."""


# --- patterns: compiled to closures (value, captures) -> bool ------------------------------

Matcher = Callable[[Any, list], bool]


def _label(value: Any) -> str | None:
    if isinstance(value, Record) and isinstance(value.key, Symbol):
        return value.key.name
    return None


def _compile_pattern(p: Any) -> Matcher:
    label = _label(p)
    fields = p.fields if label else ()
    if label == "_" and not fields:
        return lambda value, captures: True
    if label == "bind" and len(fields) == 1:
        inner = _compile_pattern(fields[0])

        def bind(value: Any, captures: list) -> bool:
            captures.append(value)
            return inner(value, captures)
        return bind
    if label == "lit" and len(fields) == 1:
        if not isinstance(fields[0], _ATOMS):
            raise InvalidCaveat(f"a pattern literal must be an atom, got {fields[0]!r:.80}")
        want = to_key(fields[0])
        return lambda value, captures: isinstance(value, _ATOMS) and to_key(value) == want
    if label == "group" and len(fields) == 2 and isinstance(fields[1], dict):
        kind, group_label = _group_type(fields[0])
        entries = _ordered(kind, fields[1], _compile_pattern)
        if kind == "dict":
            def match_dict(value: Any, captures: list) -> bool:
                if not isinstance(value, dict):
                    return False
                for key, sub in entries:
                    item = _dict_get(value, key)
                    if item is _ABSENT or not sub(item, captures):
                        return False
                return True
            return match_dict
        want_label = to_key(group_label) if kind == "rec" else None

        def match_sequence(value: Any, captures: list) -> bool:
            if kind == "rec":
                if not isinstance(value, Record) or to_key(value.key) != want_label:
                    return False
                items = value.fields
            elif isinstance(value, (tuple, list)):
                items = value
            else:
                return False
            for index, sub in entries:
                if index >= len(items) or not sub(items[index], captures):
                    return False
            return True
        return match_sequence
    raise InvalidCaveat(f"not a dataspace pattern: {p!r:.120}")


_ABSENT = object()


def _dict_get(value: dict, key: Any) -> Any:
    if type(key) in (str, bytes, Symbol):
        return value.get(key, _ABSENT)  # no Python-equality confusion for these
    want = to_key(key)
    for k, v in value.items():
        if to_key(k) == want:
            return v
    return _ABSENT


def _group_type(group_type: Any) -> tuple[str, Any]:
    kind = _label(group_type)
    if kind == "rec" and len(group_type.fields) == 1:
        return kind, group_type.fields[0]
    if kind in ("arr", "dict") and not group_type.fields:
        return kind, None
    raise InvalidCaveat(f"not a group type (want <rec L>, <arr> or <dict>): {group_type!r:.80}")


def _ordered(kind: str, entries: dict, compile_one: Callable) -> list[tuple[Any, Any]]:
    """Entries in capture order: by index for records and sequences, by Preserves order of
    the keys for dictionaries (as ``dataspace.patterns`` orders them)."""
    if kind == "dict":
        from ..dataspace.keys import order_key
        return [(k, compile_one(v)) for k, v in
                sorted(entries.items(), key=lambda kv: order_key(to_key(kv[0])))]
    for index in entries:
        if type(index) is not int or index < 0:
            raise InvalidCaveat(f"{kind} entry index must be a non-negative int, got {index!r}")
    return [(k, compile_one(v)) for k, v in sorted(entries.items())]


# --- templates: compiled to closures captures -> value -------------------------------------

Builder = Callable[[list], Any]


def _compile_template(t: Any, captures_available: int) -> Builder:
    label = _label(t)
    fields = t.fields if label else ()
    if label == "ref" and len(fields) == 1:
        n = fields[0]
        if type(n) is not int or not 0 <= n < captures_available:
            raise InvalidCaveat(f"<ref {n!r}> names no capture of the pattern"
                                f" ({captures_available} captures)")
        return lambda captures: captures[n]
    if label == "lit" and len(fields) == 1:
        value = fields[0]
        return lambda captures: value
    if label == "group" and len(fields) == 2 and isinstance(fields[1], dict):
        kind, group_label = _group_type(fields[0])
        entries = _ordered(kind, fields[1],
                           lambda sub: _compile_template(sub, captures_available))
        if kind == "dict":
            return lambda captures: ImmutableDict((k, b(captures)) for k, b in entries)
        if [index for index, _ in entries] != list(range(len(entries))):
            raise InvalidCaveat(f"a {kind} template needs entries 0..n-1, got"
                                f" {sorted(fields[1])!r:.80}")
        builders = [b for _, b in entries]
        if kind == "rec":
            return lambda captures: Record(group_label, [b(captures) for b in builders])
        return lambda captures: tuple(b(captures) for b in builders)
    if label == "attenuate":
        raise InvalidCaveat("<attenuate ...> templates are not supported by this server")
    raise InvalidCaveat(f"not a template: {t!r:.120}")


def _count_binds(p: Any) -> int:
    label = _label(p)
    if label == "bind":
        return 1 + _count_binds(p.fields[0])
    if label == "group" and len(p.fields) == 2 and isinstance(p.fields[1], dict):
        return sum(_count_binds(sub) for sub in p.fields[1].values())
    return 0


# --- caveats ---------------------------------------------------------------------------------

Rewrite = Callable[[Any], Any]  # value -> value, or _DROP
_DROP = object()


def _compile_rewrite(c: Any) -> Rewrite:
    pattern, template = c.fields
    match = _compile_pattern(pattern)
    build = _compile_template(template, _count_binds(pattern))

    def rewrite(value: Any) -> Any:
        captures: list = []
        return build(captures) if match(value, captures) else _DROP
    return rewrite


def _compile_caveat(c: Any) -> Rewrite:
    label = _label(c)
    if label == "rewrite" and len(c.fields) == 2:
        return _compile_rewrite(c)
    if label == "reject" and len(c.fields) == 1:
        match = _compile_pattern(c.fields[0])
        return lambda value: _DROP if match(value, []) else value
    if label in ("or", "alts") and len(c.fields) == 1 and isinstance(c.fields[0], (tuple, list)):
        alternatives = []
        for alternative in c.fields[0]:
            if not (_label(alternative) == "rewrite" and len(alternative.fields) == 2):
                raise InvalidCaveat(f"<{label} [...]> holds rewrites only, got"
                                    f" {alternative!r:.80}")
            alternatives.append(_compile_rewrite(alternative))

        def first(value: Any) -> Any:
            for alternative in alternatives:
                result = alternative(value)
                if result is not _DROP:
                    return result
            return _DROP
        return first
    raise InvalidCaveat(f"unsupported caveat (want <rewrite p t>, <reject p> or"
                        f" <or [...]>): {c!r:.120}")


class Attenuation:
    """A ref's caveats, compiled; :meth:`apply` is what the holder's value becomes."""

    def __init__(self, caveats: tuple | list = ()) -> None:
        self.caveats = tuple(caveats)
        # Right to left: the newest caveat (last) sees the holder's value first.
        self._steps = [_compile_caveat(c) for c in reversed(self.caveats)]

    def __bool__(self) -> bool:
        return bool(self._steps)

    def apply(self, value: Any) -> Any | None:
        """The value after every caveat, or None if one of them drops it."""
        for step in self._steps:
            value = step(value)
            if value is _DROP:
                return None
        return value


@dataclass
class AttenuationStats:
    """What attenuators passed and dropped (one per server, shared by its connections)."""

    passed: int = 0
    dropped: int = 0


class Attenuator(Entity):
    """Stands in front of a dataspace for the holder of an attenuated ref: rewrites or
    drops each assertion and message (see the module docstring). Made in the gatekeeper's
    turn, so it lives in the connection's relay actor and what it asserted is retracted
    with the connection."""

    def __init__(self, target: Ref, attenuation: Attenuation, peer: str,
                 stats: AttenuationStats | None = None) -> None:
        self.target = target
        self.attenuation = attenuation
        self.peer = peer
        self.stats = stats if stats is not None else AttenuationStats()
        self._handles: dict[int, int] = {}  # holder's handle -> ours on the target

    def _filter(self, value: Any, what: str) -> Any | None:
        result = self.attenuation.apply(value)
        if result is None:
            self.stats.dropped += 1
            log.warning("%s: the capability's caveats drop %s %s", self.peer, what,
                        _short(value))
        else:
            self.stats.passed += 1
        return result

    def on_publish(self, value: Any, handle: int) -> None:
        result = self._filter(value, "an assertion")
        if result is not None:
            self._handles[handle] = turn.publish(self.target, result)

    def on_retract(self, handle: int) -> None:
        ours = self._handles.pop(handle, None)
        if ours is not None:
            turn.retract(ours)

    def on_message(self, value: Any) -> None:
        result = self._filter(value, "a message")
        if result is not None:
            turn.send(self.target, result)

    def on_sync(self, peer: Ref) -> None:
        # Answered once everything sent before it has reached the target.
        turn.sync(self.target, lambda: turn.send(peer, True))


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 200 else text[:200] + "..."
