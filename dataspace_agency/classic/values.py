"""The one mapping between classic (JSON-like) message values and Preserves values.

Classic agents exchange JSON-like arguments; the dataspace holds Preserves
values. This module converts between the two, losslessly, with this table:

    ===========================  ==============================================
    JSON-like Python value       Preserves value
    ===========================  ==============================================
    ``None``                     the symbol ``null`` (``Symbol("null")``)
    ``bool``                     boolean
    ``int`` (any size)           signed integer
    ``float`` (incl. NaN, ±inf)  double
    ``str``                      string
    ``list`` / ``tuple``         sequence (built as a tuple; read back as list)
    ``dict`` with ``str`` keys   dictionary with string keys (``ImmutableDict``
                                 when built; read back as a plain ``dict``)
    ===========================  ==============================================

Preserves has no null, so ``None`` borrows the symbol ``null``; JSON has no
symbols, so that can never collide with a real JSON value. Everything else
(bytes, sets, arbitrary objects, dicts with non-string keys, and on the
Preserves side records, other symbols, embedded references, annotations) is
rejected with :class:`NotJSON`, whose message names the offending path, e.g.
``args.items[2]: dict keys must be strings, got 1 (int)``.
"""

from __future__ import annotations

import reprlib
from typing import Any

import preserves

from ..dataspace.keys import mark_deeply_frozen

__all__ = ["NotJSON", "check_json", "from_preserves", "json_copy", "to_preserves"]

NULL = preserves.Symbol("null")

# Error messages quote the offending value; cap its length so a huge blob
# cannot flood a log line.
_repr = reprlib.Repr()
_repr.maxstring = 60
_repr.maxother = 60


class NotJSON(TypeError):
    """A value has no place in the JSON <-> Preserves mapping."""


def _describe(value: Any) -> str:
    return f"{_repr.repr(value)} ({type(value).__name__})"


def _key_path(path: str, key: str) -> str:
    # `meta.x` reads best; keys that are not identifiers get quoted so the
    # path stays unambiguous (`meta['a.b']` is not `meta.a.b`).
    return f"{path}.{key}" if key.isidentifier() else f"{path}[{key!r}]"


class _Bad(Exception):
    """Raised inside a walk; each level adds its step on the way out, so the path is
    built only when something is wrong (these walks run on every message)."""

    def __init__(self, problem: str) -> None:
        self.problem = problem
        self.steps: list[int | str] = []

    def at(self, step: int | str) -> "_Bad":
        self.steps.append(step)
        return self

    def error(self, path: str) -> NotJSON:
        for step in reversed(self.steps):
            path = f"{path}[{step}]" if isinstance(step, int) else _key_path(path, step)
        return NotJSON(f"{path}: {self.problem}")


_PRESERVES, _JSON, _CHECK = "preserves", "json", "check"


def _walk_json(value: Any, build: str) -> Any:
    """Validate a JSON-like value; build its Preserves form, a plain JSON copy, or
    nothing (``build`` is _PRESERVES, _JSON or _CHECK)."""
    kind = type(value)
    # The common exact types first; then subclasses (bool before int: True is an int).
    # int()/float()/str() turn subclasses (IntEnum, ...) into the plain type, as
    # `json` does, so the result never depends on user classes.
    if kind is str or kind is int or kind is float or kind is bool:
        return value
    if value is None:
        return NULL if build == _PRESERVES else None
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, (list, tuple)):
        items = []
        for i, item in enumerate(value):
            try:
                items.append(_walk_json(item, build))
            except _Bad as bad:
                raise bad.at(i) from None
        return tuple(items) if build == _PRESERVES else items
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise _Bad(f"dict keys must be strings, got {_describe(key)}")
            try:
                out[str(key)] = _walk_json(item, build)
            except _Bad as bad:
                raise bad.at(key) from None
        # ImmutableDict is hashable, so built values can sit inside
        # assertions and sets without further conversion.
        return mark_deeply_frozen(preserves.ImmutableDict(out)) if build == _PRESERVES else out
    raise _Bad(f"not a JSON value: {_describe(value)}")


def _run(walk: Any, value: Any, mode: str, path: str) -> Any:
    try:
        return walk(value, mode)
    except _Bad as bad:
        raise bad.error(path) from None


class _Unusual(Exception):
    """A fast walk met something it leaves to the careful walk (a subclass, an error)."""


def _fast_to_preserves(value: Any) -> Any:
    # Exact plain types only; anything else (subclasses, bad values) goes to the careful
    # walk, which also builds the error path. About 40% cheaper on typical messages.
    kind = type(value)
    if kind is str or kind is int or kind is float or kind is bool:
        return value
    if kind is dict:
        out = {}
        for key, item in value.items():
            if type(key) is not str:
                raise _Unusual
            out[key] = _fast_to_preserves(item)
        return mark_deeply_frozen(preserves.ImmutableDict(out))
    if kind is list or kind is tuple:
        return tuple([_fast_to_preserves(item) for item in value])
    if value is None:
        return NULL
    raise _Unusual


def to_preserves(value: Any, path: str = "value") -> Any:
    """Convert a JSON-like value to its Preserves form (see the module table).

    Raises:
        NotJSON: if any part of `value` is not JSON-like; the message names its path.
    """
    try:
        return _fast_to_preserves(value)
    except _Unusual:
        return _run(_walk_json, value, _PRESERVES, path)
    except RecursionError:
        raise NotJSON(f"{path}: nested too deeply") from None


def check_json(value: Any, path: str = "value") -> None:
    """Raise :class:`NotJSON` unless `value` is JSON-like; builds nothing."""
    _run(_walk_json, value, _CHECK, path)


def json_copy(value: Any, path: str = "value") -> Any:
    """A fresh plain copy of a JSON-like value (tuples become lists, subclasses plain
    types), checked in the same single pass. Raises :class:`NotJSON`."""
    return _run(_walk_json, value, _JSON, path)


def _walk_preserves(value: Any, _mode: str) -> Any:
    kind = type(value)
    if kind is str or kind is int or kind is float or kind is bool:
        return value
    if isinstance(value, preserves.Symbol):
        if value == NULL:
            return None
        raise _Bad(f"symbol {value!r} has no JSON form (only #null does)")
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    # The decoder produces tuples; accept lists too, since `preserves.encode`
    # does and values built in-process may use them.
    if isinstance(value, (tuple, list)):
        items = []
        for i, item in enumerate(value):
            try:
                items.append(_walk_preserves(item, _mode))
            except _Bad as bad:
                raise bad.at(i) from None
        return items
    if isinstance(value, dict):  # includes ImmutableDict
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise _Bad(f"dict keys must be strings, got {_describe(key)}")
            try:
                out[key] = _walk_preserves(item, _mode)
            except _Bad as bad:
                raise bad.at(key) from None
        return out
    raise _Bad(f"not a JSON value: {_describe(value)}")


def _fast_from_preserves(value: Any) -> Any:
    kind = type(value)
    if kind is str or kind is int or kind is float or kind is bool:
        return value
    if kind is preserves.ImmutableDict or kind is dict:
        for key in value:
            if type(key) is not str:
                raise _Unusual
        return {key: _fast_from_preserves(item) for key, item in value.items()}
    if kind is tuple or kind is list:
        return [_fast_from_preserves(item) for item in value]
    if kind is preserves.Symbol and value == NULL:
        return None
    raise _Unusual


def from_preserves(value: Any, path: str = "value") -> Any:
    """Convert a Preserves value back to its JSON-like form (see the module table).

    Raises:
        NotJSON: if any part of `value` has no JSON form; the message names its path.
    """
    try:
        return _fast_from_preserves(value)
    except _Unusual:
        return _run(_walk_preserves, value, "", path)
    except RecursionError:
        raise NotJSON(f"{path}: nested too deeply") from None
