"""Preserves values as Zenoh key expressions, and patterns as the narrowest key expression
that can hold their matches.

A liveliness token carries nothing but its key, so an assertion's key must hold the whole
value; routers route on keys, so the key also starts with what patterns test most: the
label and the literal fields. An assertion of ``<Present "alice" 3>`` under handle 7 of a
session becomes::

    dsa/a/*/ryPresent/96/salice/07/i3/1f/=v<base64url of the Preserves binary>/u<session id>.7
    |   | | |         |  |      |  |  |  |                                    + unique per handle
    |   | | |         |  |      |  |  |  + the whole value (or =h<digest>, see below)
    |   | | |         |  |      |  |  + its bucket
    |   | | |         |  |      + each top-level field: an atom chunk, or "_" if compound,
    |   | | |         |  |        each after its bucket chunk (see below)
    |   | | |         + the root: r<label> (record), q (sequence), m (dictionary), a<atom>
    |   | | + a wildcard chunk, in every token and every observed key (see below)
    |   | + "a" assertions, "m" messages, "v" large values
    |   + the namespace (several dataspaces can share routers)

A pattern observes the same layout up to its last literal top-level field, then ``**``:
``<Present $who _>`` observes ``dsa/a/*/ryPresent/**`` and ``<reply "bob" "m1" $ $>``
observes ``dsa/a/*/ryreply/<b>/sbob/<b>/sm1/**``, so routers send an observer only
assertions that agree with its label and literal fields; the rest of the pattern is
matched locally. Messages use the same root and field chunks under ``m`` (no wildcard
chunk); their value is the payload.

Bucket chunks: two hex digits of the CRC-32 of the chunk that follows. Zenoh keeps every
declared key in a tree and, to register a new one, compares it with every child of each
node on its path (``Resource::get_matches``): a node with N children makes each new key
under it cost O(N), so 10,000 ``<Item i>`` facts (or 10,000 requests' ids under one
responder) cost O(N^2) in the declaring session, the router and every observing session
(a new observer's replay above all). A bucket level caps the children of a field's node
at 256 buckets, each holding about 1/256th of the values.

The ``*`` chunk. Zenoh (1.10) keeps, for the life of a session (and of a router's link to
it), a key-expression mapping for the non-wildcard prefix of every key it declares or
forwards as a declaration, never released (eclipse-zenoh/zenoh#1518), and finds a free
mapping number by counting up from 1: each declaration of a new key costs time growing
with the number of distinct keys ever declared (0.3 ms per token after 3,000 here, several
after 10,000). Every assertion is a new key, so a session carrying requests slowed down
by the message. With a wildcard chunk right after ``a`` the non-wildcard prefix of every
token key is ``<namespace>/a``: one mapping for all. The chunk sits at the same place in
every token key and every observed key expression, so which tokens an observer's key
expression intersects is unchanged.

Atom chunks: ``s`` string, ``y`` symbol, ``i`` integer, ``d`` double (its 64 bits in hex,
so 0.0 and -0.0 differ), ``b`` bytes (hex), ``T``/``F`` booleans: Preserves equality, so
``1``, ``1.0`` and ``true`` give three different chunks. Characters outside
``[A-Za-z0-9_.-]`` are written ``%XX`` (UTF-8), which keeps Zenoh's reserved ``* $ ? # /``
out of keys. An atom chunk longer than :data:`MAX_ATOM_CHUNK` becomes ``h`` + a digest of
it: still exact for routing (a literal in a pattern digests the same way).

Large values. Zenoh writes a declaration in one batch (64 KiB; a larger key makes the
engine panic), so a value whose encoding is over :data:`INLINE_LIMIT` bytes travels as
``=h<sha256>`` and the asserting session serves the bytes from a queryable at
``<ns>/v/<session id>/<n>`` (``proxy.py``). Values over :data:`MAX_VALUE_BYTES` are
refused with :class:`ValueTooLarge`. Embedded references (Syndicate refs) are local to a
process and cannot cross: :class:`NotTransferable`.
"""

from __future__ import annotations

import base64
import hashlib
import re
import zlib
from dataclasses import dataclass
from typing import Any

from preserves import ImmutableDict, Record, Symbol

from ..dataspace.keys import Key, to_key
from ..dataspace.patterns import compile_pattern
from ..protocol.codec import Preencoded
from ..protocol.codec import encode as _encode
from ..protocol.decoding import decode as _decode
from ..protocol.plain_json import decode_keeping_json

INLINE_LIMIT = 8 * 1024
"""Encoded values up to this many bytes travel inside the token's key."""

MAX_VALUE_BYTES = 4 * 1024 * 1024
"""The largest value (Preserves binary) an assertion or message may have."""

MAX_ATOM_CHUNK = 96
"""Atom chunks longer than this are replaced by a digest (routing stays exact)."""

DEFAULT_NAMESPACE = "dsa"

_SAFE = re.compile(r"[A-Za-z0-9_.\-]")
_ALL_SAFE = re.compile(r"[A-Za-z0-9_.\-]*")
_NAMESPACE = re.compile(r"[A-Za-z0-9_.\-]+(/[A-Za-z0-9_.\-]+)*")


class NotTransferable(TypeError):
    """A value that cannot be carried by Zenoh (an embedded reference, a non-Preserves
    object)."""


class ValueTooLarge(ValueError):
    """A value whose encoding is over :data:`MAX_VALUE_BYTES`."""


class MalformedKey(ValueError):
    """A key from a peer that is not a dataspace key (named in the message)."""


def check_namespace(namespace: str) -> str:
    if not _NAMESPACE.fullmatch(namespace):
        raise ValueError(f"namespace must be /-separated chunks of [A-Za-z0-9_.-], got "
                         f"{namespace!r}")
    return namespace


def _escape(text: str) -> str:
    # Most chunks (labels, ids, agent names) need no escaping: one match decides, instead
    # of one per character (2-3x the cost of building a request's whole key).
    if _ALL_SAFE.fullmatch(text):
        return text
    return "".join(c if _SAFE.match(c) else "".join(f"%{b:02X}" for b in c.encode())
                   for c in text)


def atom_chunk(key: Key) -> str | None:
    """The chunk of an atom (in key form, ``dataspace.keys``), None for compound values."""
    kind = type(key)
    if kind is str:
        chunk = "s" + _escape(key)
    elif kind is tuple and key[0] == "y":  # a symbol
        chunk = "y" + _escape(key[1])
    elif kind is int:
        chunk = f"i{key}"
    elif kind is bytes:
        chunk = "b" + key.hex()
    elif kind is tuple and key[0] == "b":
        chunk = "T" if key[1] else "F"
    elif kind is tuple and key[0] == "f":
        chunk = f"d{key[1] & 0xFFFF_FFFF_FFFF_FFFF:016x}"
    else:
        return None
    if len(chunk) > MAX_ATOM_CHUNK:
        chunk = "h" + hashlib.sha256(chunk.encode()).hexdigest()[:40]
    return chunk


def _field(key: Key) -> str:
    return atom_chunk(key) or "_"


def bucket(chunk: str) -> str:
    """The bucket chunk standing before ``chunk`` (see the module docstring)."""
    return f"{zlib.crc32(chunk.encode()) & 0xFF:02x}"


def _bucketed(chunks: Any) -> list[str]:
    return [part for chunk in chunks for part in (bucket(chunk), chunk)]


def shape_chunks(key: Key) -> list[str]:
    """Root and top-level field chunks of a value in key form, each field chunk after its
    bucket chunk."""
    if isinstance(key, tuple):  # (a dictionary's key is a subclass: keys.DictKey)
        tag = key[0]
        if tag == "r":
            return ["r" + _field(key[1]), *_bucketed(_field(f) for f in key[2:])]
        if tag == "s":
            return ["q", *_bucketed(_field(item) for item in key[1:])]
        if tag == "d":
            return ["m"]
        if tag == "S" or tag == "e":
            return ["x"]
    return ["a" + _field(key)]


class _EmbeddedValue(TypeError):
    pass


def _not_transferable(embedded: Any) -> Any:
    raise _EmbeddedValue(f"embedded {embedded!r:.100} cannot cross Zenoh")


_COMPOUND = ("s",)
"""Stands for a compound top-level field in :func:`_shape_key`: ``shape_chunks`` writes
``_`` for it, whatever it holds."""

_FIELD_ATOMS = (str, int, Symbol, bytes, bool, float)
_COMPOUNDS = (Record, tuple, list, dict, ImmutableDict, set, frozenset)


# Tags of a compound value's first byte (record, sequence, set, dictionary).
_COMPOUND_TAGS = frozenset(b"\xb4\xb5\xb6\xb7")


def _field_key(field: Any) -> Key:
    kind = type(field)
    if kind in _FIELD_ATOMS:
        return to_key(field)
    if kind is Preencoded:
        # A classic message's body given as its bytes (message mode, see
        # ZenohDataspaceSpace._wire_bodies): a dictionary, written as it is. Any other
        # pre-encoded value is read to find its chunk.
        if field.data[:1] and field.data[0] in _COMPOUND_TAGS:
            return _COMPOUND
        return to_key(_decode(field.data, _not_transferable))
    return _COMPOUND if kind in _COMPOUNDS else to_key(field)


def _shape_key(value: Any) -> Key:
    """The key form of ``value`` as far as :func:`shape_chunks` reads it: the root and
    its top-level atoms. Compound fields are not converted (a classic request's body is
    a nested dictionary: converting it cost half of encoding the request); whether the
    whole value is a Preserves value is the encoder's to check."""
    kind = type(value)
    if kind is Record:
        return ("r", to_key(value.key), *[_field_key(f) for f in value.fields])
    if kind is tuple or kind is list:
        return ("s", *[_field_key(item) for item in value])
    if kind is dict or kind is ImmutableDict:
        return ("d",)
    if kind is set or kind is frozenset:
        return ("S",)
    return to_key(value)


# Values are written and read with the package's own Preserves binary codec (the
# protocol's, checked against preserves by tests/protocol/test_codec.py: the same bytes):
# preserves' pure-Python codec took 16 us to encode a classic request fact and 24 us to
# decode it, the codec 4 and 8, and every message crosses both twice (request, reply).
# Embedded values are refused both ways: a ref is local to its process.


def encode_value(value: Any) -> tuple[Key, bytes]:
    """``(key form as far as shape_chunks reads it, Preserves binary)`` of a value that
    may cross Zenoh."""
    try:
        key = _shape_key(value)
    except TypeError as exc:
        raise NotTransferable(str(exc)) from None  # "not a Preserves value: ..."
    try:
        data = _encode(value, _not_transferable)
    except _EmbeddedValue as exc:
        raise NotTransferable(
            f"cannot carry {value!r:.200} over Zenoh ({exc}): embedded references "
            f"(Syndicate refs) are local to a process") from None
    except Exception as exc:  # noqa: BLE001 - any value the codec cannot write
        raise NotTransferable(f"cannot carry {value!r:.200} over Zenoh: {exc}") from None
    if len(data) > MAX_VALUE_BYTES:
        raise ValueTooLarge(f"value of {len(data)} bytes is over the Zenoh dataspace's "
                            f"limit of {MAX_VALUE_BYTES} bytes: {value!r:.120}")
    return key, data


@dataclass(frozen=True)
class AssertionKey:
    """An assertion's token key, parsed: the value inline, or the digest to fetch."""

    value: Any | None  # None when the value is served by a queryable (digest)
    digest: str | None
    owner: str  # the unique chunk: "u<session id>.<n>"


def assertions(namespace: str) -> str:
    """The prefix of every token key, and of every key expression observing them (see
    the module docstring on its ``*`` chunk)."""
    return f"{namespace}/a/*"


def assertion_key(namespace: str, key: Key, data: bytes, unique: str) -> tuple[str, bool]:
    """The token key of a value; ``True`` beside it when the value is too large to be
    inline and must be served (at :func:`value_key`)."""
    shape = "/".join(shape_chunks(key))
    prefix = assertions(namespace)
    if len(data) <= INLINE_LIMIT:
        body = "=v" + base64.urlsafe_b64encode(data).decode().rstrip("=")
        return f"{prefix}/{shape}/{bucket(body)}/{body}/{unique}", False
    body = f"=h{hashlib.sha256(data).hexdigest()}"
    return f"{prefix}/{shape}/{bucket(body)}/{body}/{unique}", True


def value_key(namespace: str, unique: str) -> str:
    """Where the session owning ``unique`` serves a large value."""
    return f"{namespace}/v/{unique}"


def replay_key(namespace: str, session: str) -> str:
    """Where a session answers new interests' replay queries (``proxy.py``)."""
    return f"{namespace}/r/{session}"


def presence_key(namespace: str, session: str) -> str:
    """A session's presence token (``*``: every session's)."""
    return f"{namespace}/s/{session}"


_MESSAGE_KEYS: dict[tuple[str, Key], str] = {}
_MESSAGE_KEYS_LIMIT = 4096


def message_key(namespace: str, key: Key) -> str:
    """The key a message is put at (``key``: as :func:`encode_value` gives it). Messages
    have few distinct keys (a classic message's is its label and addressee; its body is
    one ``_`` chunk), so they are remembered: building one (chunks, escaping, a CRC-32
    per bucket) was ~7 % of a message-mode message's Python time through Zenoh."""
    try:
        return _MESSAGE_KEYS[namespace, key]
    except KeyError:
        remember = True
    except TypeError:  # a key form holding something unhashable: never for a Preserves value
        remember = False
    made = f"{namespace}/m/" + "/".join(shape_chunks(key))
    if remember:
        if len(_MESSAGE_KEYS) >= _MESSAGE_KEYS_LIMIT:
            _MESSAGE_KEYS.clear()  # many distinct keys (atoms in the fields): start again
        _MESSAGE_KEYS[namespace, key] = made
    return made


def parse_assertion_key(key_expr: str) -> AssertionKey:
    """Read a token key back; :class:`MalformedKey` names the key if it is not one."""
    chunks = key_expr.split("/")
    if len(chunks) < 3 or not chunks[-1].startswith("u") or not chunks[-2].startswith("="):
        raise MalformedKey(f"not a dataspace assertion key: {key_expr!r:.300}")
    body = chunks[-2]
    if body.startswith("=h"):
        return AssertionKey(None, body[2:], chunks[-1])
    if body.startswith("=v"):
        return AssertionKey(decode_data(body[2:], key_expr), None, chunks[-1])
    raise MalformedKey(f"not a dataspace assertion key: {key_expr!r:.300}")


def decode_data(text: str | bytes, where: str, json_depth: int = 0) -> Any:
    """A value from base64url text (a key) or Preserves binary (a payload); with a
    ``json_depth``, a payload record's dictionary fields read as
    :class:`~dataspace_agency.protocol.plain_json.KeptJSON` where they can be."""
    try:
        data = (base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
                if isinstance(text, str) else text)
        # Dictionaries marked deeply frozen (nothing embedded can come: refused): the
        # mirror's index takes a message's captures and an assertion's value as they
        # are, instead of walking them to check (a classic message's body: ~18 calls a
        # delivery) or rebuilding them from their key.
        if json_depth:
            return decode_keeping_json(data, _not_transferable, json_depth=json_depth,
                                       frozen=True)
        return _decode(data, _not_transferable, frozen=True)
    except Exception as exc:  # noqa: BLE001 - any decoding failure is the peer's
        raise MalformedKey(f"malformed value in {where!r:.300}: {exc}") from None


def pattern_key(pattern: Any) -> str:
    """The narrowest key expression, below :func:`assertions` or
    ``<namespace>/m`` (messages), that holds every value ``pattern`` matches (see the
    module docstring). Raises ``InvalidPattern`` for a bad pattern."""
    compiled = compile_pattern(pattern)
    root = dict(compiled.shape).get(())
    consts = dict(zip(compiled.const_paths, compiled.const_values))
    if () in consts:  # the pattern is one literal
        return "/".join(shape_chunks(consts[()])) + "/**"
    if root is None:
        return "**"
    if root == "d":
        return "m/**"
    head = "q" if root == "s" else "r" + _field(root[1])
    fields = {path[0]: atom_chunk(value) for path, value in consts.items() if len(path) == 1}
    fields = {index: chunk for index, chunk in fields.items() if chunk is not None}
    chunks = [head]
    for i in range(max(fields, default=-1) + 1):
        chunk = fields.get(i)
        chunks += ["*", "*"] if chunk is None else [bucket(chunk), chunk]
    return "/".join(chunks) + "/**"
