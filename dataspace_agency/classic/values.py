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

__all__ = ["NotJSON", "check_json", "from_preserves", "to_preserves"]

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


def _walk_json(value: Any, path: str, build: bool) -> Any:
    """Validate a JSON-like value; when `build`, also return its Preserves form."""
    # Order matters: bool is a subclass of int, so test it first.
    if value is None:
        return NULL
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        # int()/float()/str() turn subclasses (IntEnum, ...) into the plain
        # type, as `json` does, so the result never depends on user classes.
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, (list, tuple)):
        items = [_walk_json(item, f"{path}[{i}]", build) for i, item in enumerate(value)]
        return tuple(items) if build else None
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise NotJSON(f"{path}: dict keys must be strings, got {_describe(key)}")
            out[str(key)] = _walk_json(item, _key_path(path, key), build)
        # ImmutableDict is hashable, so built values can sit inside
        # assertions and sets without further conversion.
        return preserves.ImmutableDict(out) if build else None
    raise NotJSON(f"{path}: not a JSON value: {_describe(value)}")


def to_preserves(value: Any, path: str = "value") -> Any:
    """Convert a JSON-like value to its Preserves form (see the module table).

    Raises:
        NotJSON: if any part of `value` is not JSON-like; the message names its path.
    """
    return _walk_json(value, path, build=True)


def check_json(value: Any, path: str = "value") -> None:
    """Raise :class:`NotJSON` unless `value` is JSON-like; builds nothing."""
    _walk_json(value, path, build=False)


def from_preserves(value: Any, path: str = "value") -> Any:
    """Convert a Preserves value back to its JSON-like form (see the module table).

    Raises:
        NotJSON: if any part of `value` has no JSON form; the message names its path.
    """
    if isinstance(value, preserves.Symbol):
        if value == NULL:
            return None
        raise NotJSON(f"{path}: symbol {value!r} has no JSON form (only #null does)")
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
        return [from_preserves(item, f"{path}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, dict):  # includes ImmutableDict
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise NotJSON(f"{path}: dict keys must be strings, got {_describe(key)}")
            out[key] = from_preserves(item, _key_path(path, key))
        return out
    raise NotJSON(f"{path}: not a JSON value: {_describe(value)}")
