"""The Syndicate wire codec: Preserves binary values <-> bytes, and packets <-> values.

Why our own codec rather than ``preserves.encode`` / ``preserves.Decoder`` and the compiled
``syndicate.schema.protocol`` parser: measured here on a small message packet, preserves'
pure-Python codec took ~40 us to encode, ~80 us to decode and ~120 us more to parse the
packet with the schema; a round trip through a server crosses the codec eight times. The
encoder and decoder below handle the same binary syntax (machine-oriented Preserves, as in
preserves 0.996) with flat type dispatch and are checked against preserves itself by
property tests (``tests/test_protocol_codec.py``); packets are read straight from the
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
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from preserves import Annotated, Embedded, ImmutableDict, Record, Symbol
from preserves.values import preserve

__all__ = [
    "DEFAULT_MAX_DEPTH", "DEFAULT_MAX_PACKET", "SERVER_MAX_DEPTH", "Assert", "ErrorPacket", "Message", "ProtocolError", "PacketReader",
    "Retract", "Sync", "WireRef", "decode", "encode", "encode_error", "encode_event_into",
    "encode_turn",
    "parse_packet",
]

DEFAULT_MAX_PACKET = 16 * 1024 * 1024  # bytes; configurable per server/connection
DEFAULT_MAX_DEPTH = 200  # nested compounds, embeddeds and annotations in one value
# What a server accepts: a value it forwards may sit a level or two deeper in the packet
# that carries it on (a capture inside the captures sequence), and must still be readable
# by a client with the default limit.
SERVER_MAX_DEPTH = DEFAULT_MAX_DEPTH - 8


class ProtocolError(ValueError):
    """The peer sent something the protocol does not allow; the text names it."""


class _Short(Exception):
    """Not enough bytes yet for a complete value; ``args[0]``, if given, is the index in
    the buffer the value will reach at least (what a length prefix promised)."""


def show(value: Any, limit: int = 200) -> str:
    """``repr(value)`` cut to ``limit`` characters, for error messages about values a peer
    sent: never fails (a huge int has no repr, a deep value overflows the stack)."""
    try:
        text = repr(value)
    except (ValueError, RecursionError, MemoryError):
        text = f"<{type(value).__name__} too large or deep to show>"
    return text if len(text) <= limit else text[:limit] + "..."


@dataclass(frozen=True, slots=True)
class WireRef:
    """A ref as it travels: ``mine`` is from the *sender's* point of view (``[0 oid]``: an
    object the sender exports; ``[1 oid ...]``: one the receiver exported)."""

    mine: bool
    oid: int
    attenuation: tuple = ()

    def __preserve__(self) -> Any:
        return (0, self.oid) if self.mine else (1, self.oid, *self.attenuation)


# --- encoding -----------------------------------------------------------------------------

def _varint(n: int) -> bytes:
    if n < 128:
        return _BYTE[n]
    out = bytearray()
    while n >= 128:
        out.append((n & 127) | 128)
        n >>= 7
    out.append(n)
    return bytes(out)


_BYTE = [bytes((n,)) for n in range(256)]
_SMALL_INTS = {n: b"\xb0\x01" + n.to_bytes(1, "big", signed=True) for n in range(-128, 128)}
_SMALL_INTS[0] = b"\xb0\x00"
_SYMBOL_BYTES: dict[str, bytes] = {}  # symbol name -> its encoding (a few labels, reused)
_CACHE_LIMIT = 4096


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
            out += _varint(length)
            out += v.to_bytes(length, "big", signed=True)
    elif t is Record:
        out += b"\xb4"
        _encode_into(out, v.key, embed)
        for field in v.fields:
            _encode_into(out, field, embed)
        out += b"\x84"
    elif t is str:
        b = v.encode("utf-8")
        out += b"\xb1"
        out += _varint(len(b))
        out += b
    elif t is Symbol:
        name = v.name
        b = _SYMBOL_BYTES.get(name)
        if b is None:
            raw = name.encode("utf-8")
            b = b"\xb3" + _varint(len(raw)) + raw
            if len(_SYMBOL_BYTES) < _CACHE_LIMIT and len(raw) <= 64:
                _SYMBOL_BYTES[name] = b
        out += b
    elif t is bool:
        out += b"\x81" if v else b"\x80"
    elif t is dict or t is ImmutableDict:
        out += b"\xb7"
        for key, item in v.items():
            _encode_into(out, key, embed)
            _encode_into(out, item, embed)
        out += b"\x84"
    elif t is Embedded:
        out += b"\x86"
        _encode_into(out, embed(v.embeddedValue), embed)
    elif t is bytes:
        out += b"\xb2"
        out += _varint(len(v))
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


# --- decoding -----------------------------------------------------------------------------

def _wire_ref(value: Any) -> WireRef:
    # The 0.19.3 client sends a sync's peer embedded twice (`#:#:[0 n]`): unwrap it.
    if type(value) is Embedded:
        value = value.embeddedValue
        if isinstance(value, WireRef):
            return value
    if (type(value) is tuple and len(value) >= 2 and type(value[1]) is int
            and value[1] >= 0):
        if value[0] == 0 and type(value[0]) is int and len(value) == 2:
            return WireRef(True, value[1])
        if value[0] == 1 and type(value[0]) is int:
            return WireRef(False, value[1], tuple(value[2:]))
    raise ProtocolError(f"malformed wire ref {show(value)} (want [0 oid] or [1 oid caveat ...])")


_SYMBOLS: dict[bytes, Symbol] = {}  # encoded name -> Symbol (Symbols are not mutated)


def _long_length(buf: bytes, i: int) -> tuple[int, int]:
    """A varint of more than one byte at ``i``: (value, index after it)."""
    shift = 0
    n = 0
    while True:
        b = buf[i]
        i += 1
        n |= (b & 127) << shift
        if b < 128:
            return n, i
        shift += 7
        if shift > 63:
            raise ProtocolError("length prefix too long")


class _Decoding:
    """What one decode needs besides the bytes: how to make embedded objects, and
    whether any were seen."""

    __slots__ = ("embed", "saw_embedded", "max_depth")

    def __init__(self, embed: Callable[[Any], Any], max_depth: int) -> None:
        self.embed = embed
        self.saw_embedded = False
        self.max_depth = max_depth


def _decode_at(buf: bytes, i: int, d: _Decoding, room: int) -> tuple[Any, int]:
    """The value starting at ``buf[i]`` and the index after it; ``room``: how many more
    levels of nesting are allowed. Raises IndexError or :class:`_Short` if ``buf`` ends
    first."""
    tag = buf[i]
    i += 1
    if tag == 0xB5 or tag == 0xB4:  # sequence, record
        if not room:
            raise ProtocolError(f"value nested more than {d.max_depth} levels deep")
        room -= 1
        items = []
        while buf[i] != 0x84:
            item, i = _decode_at(buf, i, d, room)
            items.append(item)
        if tag == 0xB5:
            return tuple(items), i + 1
        if not items:
            raise ProtocolError("record without a label")
        return Record(items[0], items[1:]), i + 1
    if 0xB0 <= tag <= 0xB3:  # int, string, bytes, symbol: a length, then the bytes
        n = buf[i]
        i += 1
        if n >= 128:
            n, i = _long_length(buf, i - 1)
        end = i + n
        if end > len(buf):
            raise _Short(end)
        if tag == 0xB0:
            if n == 1:
                v = buf[i]
                return (v - 256 if v > 127 else v), end
            return (int.from_bytes(buf[i:end], "big", signed=True) if n else 0), end
        raw = buf[i:end]
        if tag == 0xB3:
            symbol = _SYMBOLS.get(raw)
            if symbol is None:
                try:
                    symbol = Symbol(raw.decode("utf-8"))
                except UnicodeDecodeError as exc:
                    raise ProtocolError(f"symbol is not UTF-8: {exc}") from None
                if len(_SYMBOLS) < _CACHE_LIMIT and n <= 64:
                    _SYMBOLS[raw] = symbol
            return symbol, end
        if tag == 0xB1:
            try:
                return raw.decode("utf-8"), end
            except UnicodeDecodeError as exc:
                raise ProtocolError(f"string is not UTF-8: {exc}") from None
        return raw, end
    if tag == 0x80:
        return False, i
    if tag == 0x81:
        return True, i
    if tag == 0xB7 or tag == 0xB6:  # dictionary, set
        if not room:
            raise ProtocolError(f"value nested more than {d.max_depth} levels deep")
        room -= 1
        items = []
        while buf[i] != 0x84:
            item, i = _decode_at(buf, i, d, room)
            items.append(item)
        if tag == 0xB6:
            result = frozenset(items)
            if len(result) != len(items):
                raise ProtocolError("set with a duplicate element")
            return result, i + 1
        if len(items) % 2:
            raise ProtocolError("dictionary with a key but no value")
        result = ImmutableDict(zip(items[0::2], items[1::2]))
        if 2 * len(result) != len(items):
            raise ProtocolError("dictionary with a duplicate key")
        return result, i + 1
    if tag == 0x86:
        if not room:
            raise ProtocolError(f"value nested more than {d.max_depth} levels deep")
        d.saw_embedded = True
        inner, i = _decode_at(buf, i, d, room - 1)
        return Embedded(d.embed(inner)), i
    if tag == 0x87:
        n = buf[i]
        i += 1
        if n >= 128:
            n, i = _long_length(buf, i - 1)
        if n != 8:
            raise ProtocolError(f"float of {n} bytes (only 8-byte doubles)")
        end = i + n
        if end > len(buf):
            raise _Short(end)
        return struct.unpack(">d", buf[i:end])[0], end
    if tag == 0x85:  # annotation: read and drop it
        if not room:
            raise ProtocolError(f"value nested more than {d.max_depth} levels deep")
        _, i = _decode_at(buf, i, d, room - 1)
        return _decode_at(buf, i, d, room - 1)
    if tag == 0x84:
        raise ProtocolError("unexpected end marker (0x84)")
    raise ProtocolError(f"invalid tag 0x{tag:02x}")


def decode(data: bytes, embed: Callable[[Any], Any] = _wire_ref, *,
           max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """Decode exactly one complete value from ``data`` (embeddeds become wire refs by
    default); raises :class:`ProtocolError` if it is malformed, incomplete, nested more
    than ``max_depth`` levels deep or followed by more bytes."""
    data = bytes(data)
    try:
        value, end = _decode_at(data, 0, _Decoding(embed, max_depth), max_depth)
    except (_Short, IndexError):
        raise ProtocolError("incomplete value") from None
    except RecursionError:
        raise ProtocolError("value nested too deeply") from None
    if end != len(data):
        raise ProtocolError(f"{len(data) - end} bytes after the value")
    return value


class _Partial:
    """A top-level sequence (a Turn packet) read so far: its items, and the bytes of it
    that came before the reader's buffer (already decoded and let go)."""

    __slots__ = ("items", "consumed", "decoding")

    def __init__(self, decoding: _Decoding) -> None:
        self.items: list = []
        self.consumed = 0
        self.decoding = decoding


class PacketReader:
    """Streaming decoder for one connection: ``feed(bytes)`` then iterate complete values.

    A value longer than ``max_packet`` bytes (or a partial one already longer, or one
    whose length prefix promises more) raises :class:`ProtocolError`; so does malformed
    input, or a value nested more than ``max_depth`` levels deep. After an error the
    reader is useless: the connection must be closed.

    A top-level sequence (every Turn packet) is decoded item by item and resumed where
    it stopped when more bytes come: a packet of many events that arrives over many
    reads is decoded once, not again from its start at each read (that cost time
    quadratic in its length: 80% of a server's time for bursts of a few thousand
    classic messages, measured with ``benchmarks/remote_classic.py --profile``). The
    items decoded so far are kept and their bytes let go, so the buffer holds only the
    unfinished item. Other values are decoded whole once they have all arrived."""

    def __init__(self, max_packet: int = DEFAULT_MAX_PACKET,
                 max_depth: int = DEFAULT_MAX_DEPTH) -> None:
        self.max_packet = max_packet
        self.max_depth = max_depth
        self._buf = b""
        self._start = 0  # where the next value (or the partial's next item) begins
        self._partial: _Partial | None = None
        self.saw_embedded = False  # of the last value returned

    def feed(self, data: bytes) -> None:
        if self._start < len(self._buf):
            self._buf = self._buf[self._start:] + data
        else:
            self._buf = bytes(data)
        self._start = 0

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        buf = self._buf
        start = self._start
        if start >= len(buf):
            raise StopIteration
        partial = self._partial
        if partial is not None or (buf[start] == 0xB5 and self.max_depth > 0):
            return self._sequence(buf, start, partial)
        d = _Decoding(_wire_ref, self.max_depth)
        try:
            value, end = _decode_at(buf, start, d, self.max_depth)
        except (_Short, IndexError) as short:
            self._short(short, len(buf) - start)
            raise StopIteration from None
        except RecursionError:
            raise ProtocolError("packet nested too deeply") from None
        self._check_size(end - start)
        self._start = end
        self.saw_embedded = d.saw_embedded
        return value

    def _sequence(self, buf: bytes, start: int, partial: _Partial | None) -> tuple:
        """Go on with the top-level sequence at ``buf[start]`` (its first byte, or the
        next item of ``partial``); the whole sequence, or StopIteration until it is."""
        if partial is None:
            partial = _Partial(_Decoding(_wire_ref, self.max_depth))
            i = start + 1
        else:
            i = start
        d, items, room = partial.decoding, partial.items, self.max_depth - 1
        try:
            while buf[i] != 0x84:
                value, i = _decode_at(buf, i, d, room)
                items.append(value)
        except (_Short, IndexError) as short:
            # Keep what is decoded; the unfinished item is decoded again from its start.
            partial.consumed += i - start
            self._partial, self._start = partial, i
            self._short(short, partial.consumed + len(buf) - i)
            raise StopIteration from None
        except RecursionError:
            raise ProtocolError("packet nested too deeply") from None
        end = i + 1
        self._check_size(partial.consumed + end - start)
        self._partial, self._start = None, end
        self.saw_embedded = d.saw_embedded
        return tuple(items)

    def _short(self, short: Exception, buffered: int) -> None:
        """The value is incomplete (``buffered``: its bytes so far, up to the end of the
        buffer): refuse it if it is already too long, or if a length prefix says it
        will be (before its bytes arrive)."""
        promised = short.args[0] if type(short) is _Short and short.args else 0
        if promised:
            promised += buffered - len(self._buf)  # an index in the buffer -> a length
            if promised > self.max_packet:
                raise ProtocolError(f"packet exceeds the limit of {self.max_packet} bytes "
                                    f"(a length prefix promises at least {promised} bytes)")
        if buffered > self.max_packet:
            raise ProtocolError(f"packet exceeds the limit of {self.max_packet} bytes "
                                f"({buffered} bytes buffered and still incomplete)")

    def _check_size(self, size: int) -> None:
        if size > self.max_packet:
            raise ProtocolError(f"packet of {size} bytes exceeds the limit of "
                                f"{self.max_packet} bytes")


# --- packets ------------------------------------------------------------------------------

_A, _R, _M, _S = Symbol("A"), Symbol("R"), Symbol("M"), Symbol("S")
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
    if label == _M and len(fields) == 1:
        return Message(fields[0])
    if label == _A and len(fields) == 2 and type(fields[1]) is int:
        return Assert(fields[0], fields[1])
    if label == _R and len(fields) == 1 and type(fields[0]) is int:
        return Retract(fields[0])
    if label == _S and len(fields) == 1 and type(fields[0]) is Embedded:
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
