"""Hypothesis strategies for fuzzing: bad wire input and bad classic values.

Shared by the bounded fuzz tests (``tests/protocol/test_fuzz_wire.py``,
``tests/classic/test_fuzz_classic.py``) and the long campaign (``benchmarks/fuzz_campaign.py``,
which puts ``tests/`` on its path). They live under ``tests/`` because they are test code:
the package does not ship them, and the tests must not depend on ``benchmarks/``.

Wire inputs (bytes a peer might send): random bytes; valid packets mutated (bytes flipped,
cut, inserted, spliced, length prefixes duplicated or lengthened); valid Preserves with the
wrong shape for a packet (events that are not events, unknown oids, handles that are floats,
negative or huge); deeply nested values; length prefixes claiming enormous sizes.

Classic inputs: JSON-like values (the mapping's domain, NaN and huge ints included), the
same with one non-JSON part planted at a known path, and classic messages with one field
made wrong.
"""

from __future__ import annotations

import math
import struct
from typing import Any

from hypothesis import strategies as st
from preserves import Embedded, ImmutableDict, Record, Symbol

from dataspace_agency.protocol.codec import (Assert, Message, PacketReader, ProtocolError,
                                             Retract, Sync, WireRef, encode, encode_turn)

# --- Preserves values -----------------------------------------------------------------------

atoms = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(),
    st.text(max_size=12),
    st.binary(max_size=12),
    st.sampled_from(["A", "R", "M", "S", "error", "Observe", "resolve", "Good", "_", "bind"])
    .map(Symbol),
)


def _compounds(children: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(
        st.lists(children, max_size=4).map(tuple),
        st.frozensets(children, max_size=3),
        st.dictionaries(children, children, max_size=3).map(ImmutableDict),
        st.tuples(children, st.lists(children, max_size=3)).map(lambda lf: Record(*lf)),
    )


preserves_values = st.recursive(atoms, _compounds, max_leaves=12)
wire_refs = st.builds(WireRef, st.booleans(), st.integers(0, 8))
embeddeds = wire_refs.map(Embedded)

# An int beyond 4,300 digits: it has no repr (built lazily: hypothesis shows strategies).
_HUGE_INT = st.just(5000).map(lambda digits: 10**digits)
# Ints that are odd as handles or oids: negative, huge, beyond 4,300 digits (no repr).
odd_ints = st.one_of(st.integers(-5, 10), st.integers(2**62, 2**70),
                     st.just(-(2**200)), _HUGE_INT)
oids = st.one_of(st.sampled_from([0, 1]), odd_ints)  # 0: gatekeeper, 1: dataspace

# --- valid packets --------------------------------------------------------------------------

events = st.one_of(
    st.builds(Assert, preserves_values, st.integers(0, 20)),
    st.builds(Retract, st.integers(0, 20)),
    st.builds(Message, preserves_values),
    st.builds(Sync, st.builds(WireRef, st.just(True), st.integers(0, 8))),
)
turns = st.lists(st.tuples(st.sampled_from([0, 1]), events), min_size=1, max_size=4).map(
    encode_turn)
valid_packets = st.one_of(
    turns,
    st.just(encode(False)),  # nop
    st.builds(lambda v: encode(Record(Symbol("ext"), [v])), preserves_values),  # extension
)

# --- wrong shapes ---------------------------------------------------------------------------

_A, _R, _M, _S = Symbol("A"), Symbol("R"), Symbol("M"), Symbol("S")
odd_fields = st.one_of(preserves_values, odd_ints, st.floats(), embeddeds)
bad_events = st.one_of(
    preserves_values,  # not a record at all, mostly
    st.builds(lambda l, fs: Record(l, fs), st.sampled_from([_A, _R, _M, _S]),
              st.lists(odd_fields, max_size=3)),
    st.builds(lambda v, h: Record(_A, [v, h]), preserves_values, odd_fields),
    st.builds(lambda h: Record(_R, [h]), odd_fields),
    st.builds(lambda p: Record(_S, [p]), odd_fields),
)
wrong_shapes = st.one_of(
    st.lists(st.tuples(oids, bad_events).map(list), min_size=1, max_size=3).map(
        lambda items: encode(tuple(tuple(i) for i in items))),
    st.lists(odd_fields, min_size=1, max_size=3).map(lambda items: encode(tuple(items))),
    preserves_values.map(encode),  # not a packet (or an extension, or an error)
    st.builds(lambda m, d: encode(Record(Symbol("error"), [m, d])), odd_fields, odd_fields),
    st.lists(st.tuples(oids, events), min_size=1, max_size=3).map(
        lambda evs: encode_turn([(o, e) for o, e in evs])),
    # Asserts and retracts whose handles are huge or negative; duplicates.
    st.lists(st.one_of(st.builds(Assert, preserves_values, odd_ints),
                       st.builds(Retract, odd_ints)), min_size=1, max_size=4).map(
        lambda evs: encode_turn([(1, e) for e in evs])),
)

# --- deep nesting and huge sizes -------------------------------------------------------------

_OPEN = {"sequence": b"\xb5", "set": b"\xb6", "dictionary": b"\xb7",
         "record": b"\xb4\xb3\x01x", "embedded": b"\x86", "annotation": b"\x85\x80"}
_CLOSE = {"sequence": b"\x84", "set": b"\x84", "dictionary": b"\xb0\x00\x84",
          "record": b"\x84", "embedded": b"", "annotation": b""}


def nested(kind: str, depth: int, inner: bytes = b"\xb0\x00") -> bytes:
    """``depth`` levels of ``kind`` around ``inner`` (dictionaries: each level the key)."""
    return _OPEN[kind] * depth + inner + _CLOSE[kind] * depth


def in_turn(value: bytes, oid: int = 1, handle: int = 3) -> bytes:
    """``value`` (encoded) asserted at ``oid``: a Turn of one event."""
    return b"\xb5\xb5" + encode(oid) + b"\xb4\xb3\x01A" + value + encode(handle) + b"\x84\x84\x84"


deep_packets = st.builds(
    lambda kind, depth, wrap: in_turn(nested(kind, depth)) if wrap else nested(kind, depth),
    st.sampled_from(sorted(_OPEN)), st.one_of(st.integers(150, 1200), st.just(100_000)),
    st.booleans())


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 128:
        out.append((n & 127) | 128)
        n >>= 7
    out.append(n)
    return bytes(out)


huge_sizes = st.builds(
    lambda tag, bits, tail: bytes([tag]) + _varint(2**bits - 1) + tail,
    st.sampled_from([0xB0, 0xB1, 0xB2, 0xB3, 0x87]), st.integers(13, 63),
    st.binary(max_size=16))


# --- mutations ------------------------------------------------------------------------------

@st.composite
def mutated(draw: Any, base: st.SearchStrategy = valid_packets) -> bytes:
    """A valid packet, damaged one to three times."""
    data = bytearray(draw(base))
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "splice", "length", "repeat"]))
        at = draw(st.integers(0, len(data)))
        if kind == "flip" and data:
            at = min(at, len(data) - 1)
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "cut":
            del data[at:]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=4))
        elif kind == "splice":
            other = draw(base)
            data = data[:at] + other[draw(st.integers(0, len(other))):]
        elif kind == "length":
            # Find a length-prefixed atom and make its prefix longer (non-minimal varint)
            # or larger than what follows.
            spots = [i for i in range(len(data) - 1) if data[i] in (0xB0, 0xB1, 0xB2, 0xB3)]
            if spots:
                i = draw(st.sampled_from(spots))
                if draw(st.booleans()):
                    data[i + 1:i + 2] = bytes([data[i + 1] | 0x80, 0])  # same value, longer
                else:
                    data[i + 1] = min(255, data[i + 1] + draw(st.integers(1, 200)))
        elif kind == "repeat" and data:
            start = min(at, len(data) - 1)
            piece = data[start:start + draw(st.integers(1, 8))]
            data[start:start] = piece * draw(st.integers(1, 4))
        if not data:
            data = bytearray(b"\xb5")
    return bytes(data)


wire_inputs = st.one_of(
    st.binary(min_size=1, max_size=64),
    mutated(),
    wrong_shapes,
    mutated(wrong_shapes),
    deep_packets,
    huge_sizes,
    valid_packets,
)
"""Any of the above: what the wire fuzzers draw from."""

# --- classic (JSON-like) values -------------------------------------------------------------

json_atoms = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(-(2**200), 2**200),
    st.floats(),  # NaN and the infinities are in the mapping too
    st.text(max_size=12),
)
json_values = st.recursive(
    json_atoms,
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.lists(children, max_size=3).map(tuple),
                               st.dictionaries(st.text(max_size=6), children, max_size=4)),
    max_leaves=20)


class Opaque:
    """An object with no place in JSON."""

    def __repr__(self) -> str:
        return "Opaque()"


non_json = st.one_of(
    st.binary(max_size=4), st.frozensets(st.integers(), max_size=2),
    st.sets(st.integers(), max_size=2), st.builds(Opaque), st.just(Symbol("x")),
    st.just(object()), st.just(b"\x00" * 10),
    st.dictionaries(st.one_of(st.integers(), _HUGE_INT, st.none(), st.booleans()),
                    st.integers(), min_size=1, max_size=1),
)


@st.composite
def json_with_one_bad_part(draw: Any) -> tuple[Any, str, Any]:
    """``(value, path, bad)``: a JSON-like value with ``bad`` planted at ``path``
    (as :class:`~dataspace_agency.classic.values.NotJSON` names it, from ``value``)."""
    bad = draw(non_json)
    value = bad
    path_steps: list[str] = []
    for _ in range(draw(st.integers(0, 4))):
        if draw(st.booleans()):
            before = draw(st.lists(json_atoms, max_size=2))
            value = [*before, value]
            path_steps.append(f"[{len(before)}]")
        else:
            key = draw(st.sampled_from(["a", "b_1", "x y", "9"]))
            value = {key: value}
            path_steps.append(f".{key}" if key.isidentifier() else f"[{key!r}]")
    return value, "value" + "".join(reversed(path_steps)), bad


def json_equal(a: Any, b: Any) -> bool:
    """Equality of JSON-like values as the mapping preserves them: NaN equals NaN, tuples
    and lists are the same, and types count (``True`` is not ``1``)."""
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a)
                                                      == math.copysign(1, b))
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def valid_message() -> dict:
    return {"meta": {"id": "m1", "extra": [1, {"k": None}]}, "from": "alice", "to": "bob",
            "action": {"name": "say", "args": {"content": "hi", "n": 3}}}


# Wrong values for each field of a message: what validate_message must refuse, naming it.
weird = st.one_of(non_json, odd_ints, st.floats(), st.none(), st.lists(st.integers(), max_size=2),
                  st.just(""), st.just("*"), st.just("amq.x"), st.just("x" * 300))
_not_a_nonempty_str = weird.filter(lambda v: not (isinstance(v, str) and v))
_not_a_dict = weird.filter(lambda v: not isinstance(v, dict))
# field -> (where it is in the message, wrong values, what the error must name)
FIELDS = {
    "from": (("from",), weird, "message.from"),
    "to": (("to",), weird.filter(lambda v: v != "*"), "message.to"),
    "meta": (("meta",), _not_a_dict, "message.meta"),
    "action": (("action",), _not_a_dict, "message.action"),
    "meta.id": (("meta", "id"), _not_a_nonempty_str, "meta.id"),
    "meta.parent_id": (("meta", "parent_id"), _not_a_nonempty_str, "meta.parent_id"),
    "action.name": (("action", "name"), _not_a_nonempty_str, "action.name"),
    "action.args": (("action", "args"), weird, "action.args"),
}


def safe_text(value: Any, limit: int = 120) -> str:
    """A short repr of a fuzz case for a report; never fails (huge ints, deep values)."""
    try:
        text = repr(value)
    except (ValueError, RecursionError):
        text = f"<{type(value).__name__} too large or deep to show>"
    return text if len(text) <= limit else text[:limit] + "..."


def error_kind(text: str) -> str:
    """A ProtocolError's text without the figures that depend on how the bytes were cut
    (a packet over the limit is refused while incomplete or once complete: same error)."""
    if "exceeds the limit" in text:
        return "exceeds the limit"
    return text.split(" (")[0]


def comparable(value: Any) -> Any:
    """``value`` with every NaN replaced by a marker holding its bits, so that two
    decodings of the same bytes compare equal (NaN != NaN, and since Python 3.10 a NaN's
    hash is its identity, so sets holding one would not match either)."""
    if isinstance(value, float):
        return ("NaN", struct.pack(">d", value)) if value != value else value
    if isinstance(value, Record):
        return Record(comparable(value.key), [comparable(f) for f in value.fields])
    if isinstance(value, (list, tuple)):
        return tuple(comparable(v) for v in value)
    if isinstance(value, (set, frozenset)):
        return frozenset(comparable(v) for v in value)
    if isinstance(value, dict):
        return frozenset((comparable(k), comparable(v)) for k, v in value.items())
    return value


def same_ending(one: str, other: str) -> bool:
    """Two endings of :func:`read_in_pieces` agree: both "ok", or errors of the same kind.
    A size error matches any error: a packet that is both over the limit and malformed
    is refused for its size when that shows first (bytes arriving in pieces) and for its
    fault when that does (all at once); either way the connection ends."""
    if "ok" in (one, other):
        return one == other
    kinds = {error_kind(one.removeprefix("error: ")), error_kind(other.removeprefix("error: "))}
    return len(kinds) == 1 or "exceeds the limit" in kinds


def read_in_pieces(data: bytes, cuts: list[int], max_packet: int) -> tuple[list, str]:
    """Values a reader yields for ``data`` fed in pieces cut at ``cuts``, made
    :func:`comparable`, and how it ended ("ok", or
    "error: " and the ProtocolError's text): the decoder's oracle is that this does not
    depend on where the bytes are cut."""
    reader = PacketReader(max_packet)
    got: list = []
    start = 0
    try:
        for cut in [*sorted(cuts), len(data)]:
            reader.feed(data[start:cut])
            start = cut
            got.extend(comparable(value) for value in reader)
    except ProtocolError as exc:
        return got, f"error: {exc}"
    return got, "ok"
