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
``args.items[2]: dict keys must be strings, got 1 (int)``. So is a value nested more
than :data:`MAX_DEPTH` lists/dicts deep (a cycle is one such value): every layer below
recurses over values, and the wire refuses values much deeper than this (the limit
leaves room for the envelopes a message travels in; see ``protocol.codec``).
"""

from __future__ import annotations

import reprlib
from typing import Any

import preserves

from ..dataspace.keys import frozen_dict

__all__ = ["MAX_DEPTH", "MESSAGE_DEPTH", "NotJSON", "check_json", "is_unicode_text", "from_preserves", "json_copy", "plain_copy",
           "short_repr", "to_preserves"]

NULL = preserves.Symbol("null")
MAX_DEPTH = 128  # nested lists/dicts in one value (serde_json's default limit too)
# A whole classic message nests its args two levels deeper (message -> action -> args),
# and the limit applies from args down (message.validate_message).
MESSAGE_DEPTH = MAX_DEPTH + 2

# Error messages quote the offending value; cap its length so a huge blob
# cannot flood a log line.
_repr = reprlib.Repr()
_repr.maxstring = 60
_repr.maxother = 60


class NotJSON(TypeError):
    """A value has no place in the JSON <-> Preserves mapping."""


def short_repr(value: Any) -> str:
    """``repr(value)`` for an error message, cut to a few dozen characters. Never fails
    (ints over 4,300 digits have no repr; a deeply nested value overflows the stack)."""
    try:
        return _repr.repr(value)
    except (ValueError, RecursionError):
        return f"<{type(value).__name__} too large or deep to show>"


def _describe(value: Any) -> str:
    return f"{short_repr(value)} ({type(value).__name__})"


_TOO_DEEP = f"nested more than {MAX_DEPTH} lists/dicts deep (or it contains itself)"


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
        if len(path) > 160:  # a very deep value: its start and end say where
            path = f"{path[:80]}...{path[-60:]}"
        return NotJSON(f"{path}: {self.problem}")


_PRESERVES, _JSON, _CHECK = "preserves", "json", "check"


def _walk_json(value: Any, build: str, room: int = MAX_DEPTH) -> Any:
    """Validate a JSON-like value; build its Preserves form, a plain JSON copy, or
    nothing (``build`` is _PRESERVES, _JSON or _CHECK); ``room``: how many more levels
    of lists/dicts are allowed."""
    kind = type(value)
    # The common exact types first; then subclasses (bool before int: True is an int).
    # int()/float()/str() turn subclasses (IntEnum, ...) into the plain type, as
    # `json` does, so the result never depends on user classes.
    if kind is str:
        return value if value.isascii() or is_unicode_text(value) else _refuse_surrogate(value)
    if kind is int or kind is float or kind is bool:
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
        return _walk_json(str(value), build, room)
    if isinstance(value, (list, tuple)):
        items = _walk_items(_walk_json, value, build, room)
        return tuple(items) if build == _PRESERVES else items
    if isinstance(value, dict):
        out = _walk_entries(_walk_json, value, build, room)
        # ImmutableDict is hashable, so built values can sit inside
        # assertions and sets without further conversion.
        return frozen_dict(out) if build == _PRESERVES else out
    raise _Bad(f"not a JSON value: {_describe(value)}")


# The containers are walked alike in both directions; ``walk`` is the direction's walk,
# applied to each item one level down.

def _walk_items(walk: Any, value: Any, mode: str, room: int) -> list:
    """The walked items of a list or tuple, as a list."""
    if not room:
        raise _Bad(_TOO_DEEP)
    items = []
    for i, item in enumerate(value):
        try:
            items.append(walk(item, mode, room - 1))
        except _Bad as bad:
            raise bad.at(i) from None
    return items


def _walk_entries(walk: Any, value: Any, mode: str, room: int) -> dict:
    """The walked entries of a dict (its keys checked: strings, Unicode), as a plain dict
    with plain ``str`` keys."""
    if not room:
        raise _Bad(_TOO_DEEP)
    out = {}
    for key, item in value.items():
        if not isinstance(key, str):
            raise _Bad(f"dict keys must be strings, got {_describe(key)}")
        if not (key.isascii() or is_unicode_text(key)):
            _refuse_surrogate(key)
        try:
            out[str(key)] = walk(item, mode, room - 1)
        except _Bad as bad:
            raise bad.at(key) from None
    return out


def is_unicode_text(text: str) -> bool:
    """Whether ``text`` is a sequence of Unicode scalar values (no lone surrogates),
    as a Preserves string, UTF-8 and the wire require."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _refuse_surrogate(text: str) -> Any:
    at = next(i for i, ch in enumerate(text) if 0xD800 <= ord(ch) <= 0xDFFF)
    raise _Bad(f"a string with a lone surrogate (U+{ord(text[at]):04X} at index {at}) is"
               " not Unicode text: it has no UTF-8 or Preserves form")


def _run(walk: Any, value: Any, mode: str, path: str, room: int = MAX_DEPTH) -> Any:
    try:
        return walk(value, mode, room)
    except _Bad as bad:
        raise bad.error(path) from None
    except RecursionError:  # only if called on an already deep stack
        raise NotJSON(f"{path}: {_TOO_DEEP}") from None


class _Unusual(Exception):
    """A fast walk met something it leaves to the careful walk (a subclass, an error)."""


def _fast_to_preserves(value: Any, room: int = MAX_DEPTH) -> Any:
    # Exact plain types only; anything else (subclasses, bad values, too deep) goes to the
    # careful walk, which also builds the error path. 23 % cheaper on a typical message
    # (6.7 against 8.7 µs; from_preserves's fast walk: 16 %), benchmarks/values_walks.py:
    # about 1 % of a request's round trip, kept because every message pays it.
    kind = type(value)
    if kind is str or kind is int or kind is float or kind is bool:
        return value
    if kind is dict:
        if not room:
            raise _Unusual
        room -= 1
        out = {}
        for key, item in value.items():
            if type(key) is not str:
                raise _Unusual
            # Atoms inline: most of a message's values are strings, and a call each
            # is a good part of the walk's cost.
            kind = type(item)
            if kind is str or kind is int or kind is float or kind is bool:
                out[key] = item
            else:
                out[key] = _fast_to_preserves(item, room)
        return frozen_dict(out)
    if kind is list or kind is tuple:
        if not room:
            raise _Unusual
        room -= 1
        return tuple([_fast_to_preserves(item, room) for item in value])
    if value is None:
        return NULL
    raise _Unusual


def to_preserves(value: Any, path: str = "value", depth: int = MAX_DEPTH) -> Any:
    """Convert a JSON-like value to its Preserves form (see the module table).
    ``depth``: the lists/dicts it may nest (a whole message: ``MESSAGE_DEPTH``).

    Raises:
        NotJSON: if any part of `value` is not JSON-like; the message names its path.
    """
    try:
        return _fast_to_preserves(value, depth)
    except (_Unusual, RecursionError):
        return _run(_walk_json, value, _PRESERVES, path, depth)


def check_json(value: Any, path: str = "value", depth: int = MAX_DEPTH) -> None:
    """Raise :class:`NotJSON` unless `value` is JSON-like; builds nothing."""
    _run(_walk_json, value, _CHECK, path, depth)


def plain_copy(value: Any) -> Any:
    """A fresh copy of a value already known to be plain JSON (dicts, lists, atoms), such
    as a validated message: no checks, one pass."""
    kind = type(value)
    if kind is dict:
        # Atoms are taken as they are, without a call each (most of a message).
        return {key: plain_copy(item) if type(item) in _CONTAINERS else item
                for key, item in value.items()}
    if kind is list:
        return [plain_copy(item) if type(item) in _CONTAINERS else item for item in value]
    return value


_CONTAINERS = (dict, list)


def json_copy(value: Any, path: str = "value") -> Any:
    """A fresh plain copy of a JSON-like value (tuples become lists, subclasses plain
    types), checked in the same single pass. Raises :class:`NotJSON`."""
    return _run(_walk_json, value, _JSON, path)


def _walk_preserves(value: Any, _mode: str, room: int = MAX_DEPTH) -> Any:
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
        return _walk_items(_walk_preserves, value, _mode, room)
    if isinstance(value, dict):  # includes ImmutableDict
        return _walk_entries(_walk_preserves, value, _mode, room)
    raise _Bad(f"not a JSON value: {_describe(value)}")


def _fast_from_preserves(value: Any, room: int = MAX_DEPTH) -> Any:
    kind = type(value)
    if kind is str or kind is int or kind is float or kind is bool:
        return value
    if kind is preserves.ImmutableDict or kind is dict:
        if not room:
            raise _Unusual
        room -= 1
        for key in value:
            if type(key) is not str:
                raise _Unusual
        return {key: _fast_from_preserves(item, room) for key, item in value.items()}
    if kind is tuple or kind is list:
        if not room:
            raise _Unusual
        room -= 1
        return [_fast_from_preserves(item, room) for item in value]
    if kind is preserves.Symbol and value == NULL:
        return None
    raise _Unusual


def from_preserves(value: Any, path: str = "value", depth: int = MAX_DEPTH) -> Any:
    """Convert a Preserves value back to its JSON-like form (see the module table).

    Raises:
        NotJSON: if any part of `value` has no JSON form; the message names its path.
    """
    try:
        return _fast_from_preserves(value, depth)
    except (_Unusual, RecursionError):
        return _run(_walk_preserves, value, "", path, depth)
