"""The Syndicate wire codec: Preserves binary values <-> bytes, and packets <-> values.

Why our own codec rather than ``preserves.encode`` / ``preserves.Decoder`` and the compiled
``syndicate.schema.protocol`` parser: measured here on a small message packet, preserves'
pure-Python codec took ~40 us to encode, ~80 us to decode and ~120 us more to parse the
packet with the schema; a round trip through a server crosses the codec eight times. The
encoder and decoder below handle the same binary syntax (machine-oriented Preserves, as in
preserves 0.996) with flat type dispatch and are checked against preserves itself by
property tests (``tests/protocol/test_codec.py``); packets are read straight from the
decoded values.

What is on the wire (see syndicate.md): a stream of Preserves values with no framing.
A packet is a Turn ``[[oid event] ...]`` (events ``<A value handle>``, ``<R handle>``,
``<M body>``, ``<S #:peer>``), an ``<error message detail>``, an extension (any other
record) or ``#f`` (nop). Refs travel as embedded ``[0 oid]`` (the sender's object) or
``[1 oid caveat ...]`` (the receiver's); they decode to :class:`WireRef`.

:class:`PacketReader` is the streaming side: feed it bytes as they arrive, take complete
packets out; anything malformed, longer than the packet limit (a length prefix that
claims more is refused at once, before its bytes arrive) or nested deeper than
``max_depth`` raises :class:`ProtocolError` naming the problem.

Why a nesting limit: every part of the system that walks a value (the dataspace's keys,
pattern matching, the relay, the classic mapping) recurses, and a value nested as deeply
as Python's stack allows would crash the first of them that runs on a deeper stack than
the decoder, taking the server's dataspace with it. :data:`DEFAULT_MAX_DEPTH` leaves them
all room; it is above the classic JSON limit (``classic.values.MAX_DEPTH``) plus the
envelopes a classic message travels in.

The parts: ``wire_values.py`` (limits, ``ProtocolError``, ``WireRef``), this module
(encoding, packets), ``decoding.py`` (``decode``), ``packet_reader.py`` (``PacketReader``),
``plain_json.py`` (classic messages read straight into JSON).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, Callable

from preserves import Annotated, Embedded, ImmutableDict, Record, Symbol
from preserves.values import preserve

from .decoding import WIRE_BYTES, decode, varint_at
from .packet_reader import PacketReader
from .wire_values import (CACHE_LIMIT, DEFAULT_MAX_DEPTH, DEFAULT_MAX_PACKET,
                          SERVER_MAX_DEPTH, PlainJSON, ProtocolError, WireRef, show)

__all__ = [
    "DEFAULT_MAX_DEPTH", "DEFAULT_MAX_PACKET", "SERVER_MAX_DEPTH", "Assert", "ErrorPacket",
    "Message", "PacketReader", "PlainJSON", "Preencoded", "ProtocolError", "Retract", "Sync", "WireRef",
    "decode", "encode", "encode_error", "encode_event_into", "encode_turn", "parse_packet",
    "preencode_json", "varint", "varint_at",
]


# --- encoding -----------------------------------------------------------------------------

def varint(n: int) -> bytes:
    """``n`` (>= 0) as Preserves writes a length: 7 bits a byte, low first, the high bit
    set on every byte but the last (also the framing of Zenoh batches, zenoh/batch.py)."""
    if n < 128:
        return _BYTE[n]
    out = bytearray()
    while n >= 128:
        out.append((n & 127) | 128)
        n >>= 7
    out.append(n)
    return bytes(out)


_BYTE = [bytes((n,)) for n in range(256)]
_STRING_HEADS = [b"\xb1" + _BYTE[n] for n in range(128)]  # tag and length of a short string
_SMALL_INTS = {n: b"\xb0\x01" + n.to_bytes(1, "big", signed=True) for n in range(-128, 128)}
_SMALL_INTS[0] = b"\xb0\x00"
_SYMBOL_BYTES: dict[str, bytes] = {}  # symbol name -> its encoding (a few labels, reused)


def _wire_embedded(value: Any) -> Any:
    if isinstance(value, WireRef):
        return value.__preserve__()
    raise TypeError(f"cannot put {value!r} on the wire: only wire refs may be embedded "
                    f"(local refs must be rewritten by the relay first)")


# The encoder and decoder are written for speed (they are on every hop of every event):
# one function each, dispatching on the exact type / tag with the commonest first, no
# per-value method calls or helper objects, small ints and symbols from caches.

def _encode_into(out: bytearray, v: Any, embed: Callable[[Any], Any]) -> None:
    """Append the binary form of ``v`` to ``out``."""
    t = type(v)
    if t is tuple or t is list:
        out += b"\xb5"
        for item in v:
            _encode_into(out, item, embed)
        out += b"\x84"
    elif t is int:
        small = _SMALL_INTS.get(v)
        if small is not None:
            out += small
        else:
            length = ((~v if v < 0 else v).bit_length() + 8) // 8
            out += b"\xb0"
            out += varint(length)
            out += v.to_bytes(length, "big", signed=True)
    elif t is Record:
        out += b"\xb4"
        _encode_into(out, v.key, embed)
        for field in v.fields:
            # A preencoded body and a short string (a classic message's envelope
            # <message to body>) written here, without a call each.
            kind = type(field)
            if kind is Preencoded:
                out += field.data
            elif kind is str and len(field) < 32:
                b = field.encode("utf-8")
                out += _STRING_HEADS[len(b)]
                out += b
            else:
                _encode_into(out, field, embed)
        out += b"\x84"
    elif t is str:
        b = v.encode("utf-8")
        n = len(b)
        out += _STRING_HEADS[n] if n < 128 else b"\xb1" + varint(n)
        out += b
    elif t is Symbol:
        name = v.name
        b = _SYMBOL_BYTES.get(name)
        if b is None:
            raw = name.encode("utf-8")
            b = b"\xb3" + varint(len(raw)) + raw
            if len(_SYMBOL_BYTES) < CACHE_LIMIT and len(raw) <= 64:
                _SYMBOL_BYTES[name] = b
        out += b
    elif t is bool:
        out += b"\x81" if v else b"\x80"
    elif t is dict or t is ImmutableDict:
        if t is ImmutableDict:
            wire = getattr(v, WIRE_BYTES, None)
            if wire is not None:  # read by a server, forwarded as it came (decoding.py)
                out += wire
                return
        out += b"\xb7"
        for key, item in v.items():
            # Short strings (most of a classic message's keys and values) written here,
            # without a call each. Written out for the key and for the value: a loop
            # over the two costs 10 % of encoding a classic message (3.4 against 3.1 µs).
            if type(key) is str and len(key) < 32:
                b = key.encode("utf-8")
                out += _STRING_HEADS[len(b)]
                out += b
            else:
                _encode_into(out, key, embed)
            if type(item) is str and len(item) < 32:
                b = item.encode("utf-8")
                out += _STRING_HEADS[len(b)]
                out += b
            else:
                _encode_into(out, item, embed)
        out += b"\x84"
    elif t is Preencoded:
        out += v.data
    elif t is Embedded:
        out += b"\x86"
        _encode_into(out, embed(v.embeddedValue), embed)
    elif t is bytes:
        out += b"\xb2"
        out += varint(len(v))
        out += v
    elif t is float:
        out += b"\x87\x08"
        out += struct.pack(">d", v)
    elif t is frozenset or t is set:
        out += b"\xb6"
        for item in v:
            _encode_into(out, item, embed)
        out += b"\x84"
    else:
        _encode_into(out, _canonical(v), embed)


class Preencoded:
    """A value given by its binary form, ``data``, which the encoder writes as it is: for
    a value made only to be sent (a classic message through a server), written once,
    straight from what it was made of, without a Preserves form of it in this process
    (:func:`preencode_json`). It may hold no embedded refs: nothing in it is rewritten."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __repr__(self) -> str:
        return f"Preencoded({show(self.data, 100)})"


_NULL = b"\xb3\x04null"  # the symbol null: how the classic mapping writes None


def _json_into(out: bytearray, v: Any) -> None:
    t = type(v)
    if t is str:
        b = v.encode("utf-8")
        n = len(b)
        out += _STRING_HEADS[n] if n < 128 else b"\xb1" + varint(n)
        out += b
    elif t is dict:
        out += b"\xb7"
        for key, item in v.items():
            # A key's encoding from a cache: a classic message's keys are a few words,
            # repeated in every message ("meta", "id", "from", "action", "args", ...).
            b = _KEY_BYTES.get(key)
            if b is None:
                b = _json_key(key)
            out += b
            # Short strings, small ints and None inline, as in _encode_into.
            t = type(item)
            if t is str and len(item) < 32:
                b = item.encode("utf-8")
                out += _STRING_HEADS[len(b)]
                out += b
            elif t is int and item in _SMALL_INTS:
                out += _SMALL_INTS[item]
            elif item is None:
                out += _NULL
            else:
                _json_into(out, item)
        out += b"\x84"
    elif t is list or t is tuple:
        out += b"\xb5"
        for item in v:
            _json_into(out, item)
        out += b"\x84"
    elif v is None:
        out += _NULL
    elif t is int or t is float or t is bool:
        _encode_into(out, v, _wire_embedded)
    else:
        raise TypeError(f"not a plain JSON value: {v!r:.60}")


_KEY_BYTES: dict[str, bytes] = {}  # a dict key -> its encoding (str keys only: 1 != "1")


def _json_key(key: Any) -> bytes:
    if type(key) is not str:
        raise TypeError(f"dict key {key!r:.60} is not a str")
    out = bytearray()
    _json_into(out, key)
    b = bytes(out)
    if len(_KEY_BYTES) < CACHE_LIMIT and len(key) <= 32:
        _KEY_BYTES[key] = b
    return b


def preencode_json(value: Any) -> Preencoded:
    """A plain JSON-like value (exact ``dict`` with ``str`` keys, ``list``/``tuple``,
    ``str``, ``int``, ``float``, ``bool``, ``None``: a validated classic message) as the
    bytes of its Preserves form under the classic mapping (``classic/values.py``: None
    is the symbol ``null``): byte for byte what encoding ``values.to_preserves(value)``
    writes, at the cost of that encoding alone. Raises TypeError for any other type
    (the caller converts such a value the careful way), ValueError for a string that is
    not Unicode text."""
    out = bytearray()
    _json_into(out, value)
    return Preencoded(bytes(out))


def _canonical(v: Any) -> Any:
    """A value of one of the exact types the encoder dispatches on, for anything else
    that stands for a Preserves value (schema objects, WireRef, subclasses)."""
    if hasattr(v, "__preserve__"):  # schema objects, WireRef
        return preserve(v)
    if isinstance(v, Annotated):
        return v.item  # annotations are not sent
    for kind in (bool, int, str, bytes, float):
        if isinstance(v, kind):
            return kind(v)
    if isinstance(v, Record):
        return Record(v.key, v.fields)
    if isinstance(v, dict):
        return dict(v)
    if isinstance(v, (tuple, list)):
        return tuple(v)
    if isinstance(v, (set, frozenset)):
        return frozenset(v)
    raise TypeError(f"cannot encode {v!r} as a Preserves value")


def encode(value: Any, embed: Callable[[Any], Any] = _wire_embedded) -> bytes:
    """The binary Preserves form of ``value``; ``embed`` maps an embedded object to the
    value written after the embedded tag (default: a :class:`WireRef`'s ``[0 oid]`` form)."""
    out = bytearray()
    _encode_into(out, value, embed)
    return bytes(out)




# --- packets ------------------------------------------------------------------------------

_ERROR = Symbol("error")


@dataclass(frozen=True, slots=True)
class Assert:
    value: Any
    handle: int


@dataclass(frozen=True, slots=True)
class Retract:
    handle: int


@dataclass(frozen=True, slots=True)
class Message:
    body: Any


@dataclass(frozen=True, slots=True)
class Sync:
    peer: WireRef


@dataclass(frozen=True, slots=True)
class ErrorPacket:
    message: str
    detail: Any


def _event(value: Any) -> Assert | Retract | Message | Sync:
    if type(value) is not Record:
        raise ProtocolError(f"event is not a record: {show(value)}")
    label, fields = value.key, value.fields
    # Symbol's == is Python code (three calls); its name compares in C.
    name = label.name if type(label) is Symbol else None
    if name == "M" and len(fields) == 1:
        return Message(fields[0])
    if name == "A" and len(fields) == 2 and type(fields[1]) is int:
        return Assert(fields[0], fields[1])
    if name == "R" and len(fields) == 1 and type(fields[0]) is int:
        return Retract(fields[0])
    if name == "S" and len(fields) == 1 and type(fields[0]) is Embedded:
        return Sync(fields[0].embeddedValue)
    raise ProtocolError(f"malformed event {show(value)}")


def parse_packet(value: Any) -> list[tuple[int, Any]] | ErrorPacket | None:
    """A decoded packet: a list of ``(oid, event)`` for a Turn, an :class:`ErrorPacket`,
    or None for a nop or an extension (both ignored, as the protocol says)."""
    if type(value) is tuple:
        events = []
        for item in value:
            if type(item) is not tuple or len(item) != 2 or type(item[0]) is not int:
                raise ProtocolError(f"malformed turn event {show(item)} (want [oid event])")
            events.append((item[0], _event(item[1])))
        return events
    if type(value) is Record:
        if value.key == _ERROR and len(value.fields) == 2 and type(value.fields[0]) is str:
            return ErrorPacket(*value.fields)
        return None  # an extension
    if value is False:
        return None  # nop
    raise ProtocolError(f"not a packet: {show(value)}")


def encode_event_into(out: bytearray, oid: int, event: Any,
                      embed: Callable[[Any], Any] = _wire_embedded) -> None:
    """Append one Turn event ``[oid event]`` to ``out`` (the relay builds its packets
    this way, event by event, with an ``embed`` that rewrites its refs as it goes)."""
    out += b"\xb5"
    small = _SMALL_INTS.get(oid)
    if small is not None and type(oid) is int:
        out += small
    else:
        _encode_into(out, oid, embed)
    t = type(event)
    if t is Message:
        out += b"\xb4\xb3\x01M"
        _encode_into(out, event.body, embed)
    elif t is Assert:
        out += b"\xb4\xb3\x01A"
        _encode_into(out, event.value, embed)
        _encode_into(out, event.handle, embed)
    elif t is Retract:
        out += b"\xb4\xb3\x01R"
        _encode_into(out, event.handle, embed)
    else:
        out += b"\xb4\xb3\x01S\x86"
        _encode_into(out, event.peer, embed)
    out += b"\x84\x84"


def encode_turn(events: list[tuple[int, Any]]) -> bytes:
    """A Turn packet; each event is ``(oid, Assert|Retract|Message|Sync)``."""
    out = bytearray(b"\xb5")
    for oid, event in events:
        encode_event_into(out, oid, event)
    out += b"\x84"
    return bytes(out)


def encode_error(message: str, detail: Any = False) -> bytes:
    """An ``<error message detail>`` packet."""
    return encode(Record(_ERROR, (message, detail)))
