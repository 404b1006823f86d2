"""The decoding side of the wire codec: bytes -> Preserves values (``decode``, and
``decode_at``, the reader of one value inside a buffer that the streaming
:class:`~.packet_reader.PacketReader` and the JSON readers of ``plain_json.py`` build on).
See ``codec.py`` for the format, the limits and why the codec is our own.

The names here without a leading underscore but outside ``__all__`` (``decode_at``,
``Decoding``, ``Short``, ``wire_ref``) are this package's: the other
readers use them; nothing outside ``protocol/`` should."""

from __future__ import annotations

import struct
from typing import Any, Callable

from preserves import Embedded, ImmutableDict, Record, Symbol

from ..dataspace.keys import frozen_dict, immutable_dict  # ImmutableDicts without __init__
from .wire_values import CACHE_LIMIT, DEFAULT_MAX_DEPTH, ProtocolError, WireRef, show

__all__ = ["WIRE_BYTES", "decode", "varint_at"]


class Short(Exception):
    """Not enough bytes yet for a complete value; ``args[0]``, if given, is the index in
    the buffer the value will reach at least (what a length prefix promised)."""


def wire_ref(value: Any) -> WireRef:
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


def varint_at(buf: bytes, i: int) -> tuple[int, int]:
    """The varint at ``buf[i]`` (a length as Preserves writes it, ``codec.varint``):
    (value, index after it). Raises :class:`ProtocolError` past 64 bits, IndexError if
    ``buf`` ends first. The readers here call it for lengths of two bytes or more, the
    one-byte case being read inline."""
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


class Decoding:
    """What one decode needs besides the bytes: how to make embedded objects and
    dictionaries, and whether any embedded objects were seen. ``keep``: give each
    dictionary that is a record's field its bytes (see :data:`WIRE_BYTES`); ``odd``
    counts what was read that the encoder would not write back byte for byte."""

    __slots__ = ("embed", "saw_embedded", "max_depth", "make_dict", "keep", "odd")

    def __init__(self, embed: Callable[[Any], Any], max_depth: int,
                 frozen: bool = False, keep: bool = False) -> None:
        self.embed = embed
        self.saw_embedded = False
        self.max_depth = max_depth
        self.make_dict = frozen_dict if frozen else immutable_dict
        self.keep = keep
        self.odd = 0


# A dictionary that is a field of a record (a classic message's body in its envelope)
# read by a server's reader keeps the bytes it was read from in this attribute, if the
# encoder writes that dictionary back as exactly those bytes; the encoder then copies
# them (codec.py). A server forwards each message it routes: it used to write every
# body again, value by value, that it had just read (a third of its codec's time).
# Read otherwise ("odd"): an annotation (dropped), an embedded (rewritten for each
# connection), a set (written in its iteration order), an int or a length not in its
# shortest form, a NaN (its bits); a dictionary holding any of these keeps no bytes.
WIRE_BYTES = "_dataspace_agency_wire_bytes"


def too_deep(d: Decoding) -> ProtocolError:
    return ProtocolError(f"value nested more than {d.max_depth} levels deep")


def decode_at(buf: bytes, i: int, d: Decoding, room: int) -> tuple[Any, int]:
    """The value starting at ``buf[i]`` and the index after it; ``room``: how many more
    levels of nesting are allowed. Raises IndexError or :class:`Short` if ``buf`` ends
    first."""
    # The tags in order of how often a classic message has them (strings, then
    # dictionaries, ...); compounds are read by the loops here, not by a helper.
    tag = buf[i]
    i += 1
    if 0xB0 <= tag <= 0xB3:  # int, string, bytes, symbol: a length, then the bytes
        n = buf[i]
        i += 1
        if n >= 128:
            n, i = varint_at(buf, i - 1)
            if not buf[i - 1]:
                d.odd += 1  # a length in more bytes than it needs
        end = i + n
        if end > len(buf):
            raise Short(end)
        if tag == 0xB1:
            try:
                return buf[i:end].decode("utf-8"), end
            except UnicodeDecodeError as exc:
                raise ProtocolError(f"string is not UTF-8: {exc}") from None
        if tag == 0xB0:
            if n == 1:
                v = buf[i]
                if not v:
                    d.odd += 1  # 0 in a byte (its shortest form is no bytes)
                return (v - 256 if v > 127 else v), end
            if n:
                first, second = buf[i], buf[i + 1]
                if (first == 0 and second < 128) or (first == 255 and second >= 128):
                    d.odd += 1  # a sign byte it does not need
                return int.from_bytes(buf[i:end], "big", signed=True), end
            return 0, end
        raw = buf[i:end]
        if tag == 0xB3:
            symbol = _SYMBOLS.get(raw)
            if symbol is None:
                try:
                    symbol = Symbol(raw.decode("utf-8"))
                except UnicodeDecodeError as exc:
                    raise ProtocolError(f"symbol is not UTF-8: {exc}") from None
                if len(_SYMBOLS) < CACHE_LIMIT and n <= 64:
                    _SYMBOLS[raw] = symbol
            return symbol, end
        return raw, end
    if 0xB4 <= tag <= 0xB7:  # record, sequence, set, dictionary: items up to 0x84
        if not room:
            raise too_deep(d)
        room -= 1
        if tag == 0xB7:
            # Entries straight into a dict; a short string key or value (most of a
            # classic message) is read here, inline, rather than by a call (13% of the
            # decoding of a classic message, measured; a helper function loses half).
            entries: dict = {}
            while buf[i] != 0x84:
                if buf[i] == 0xB1 and buf[i + 1] < 128:
                    end = i + 2 + buf[i + 1]
                    if end > len(buf):
                        raise Short(end)
                    try:
                        key = buf[i + 2:end].decode("utf-8")
                    except UnicodeDecodeError as exc:
                        raise ProtocolError(f"string is not UTF-8: {exc}") from None
                    i = end
                else:
                    key, i = decode_at(buf, i, d, room)
                if buf[i] == 0x84:
                    raise ProtocolError("dictionary with a key but no value")
                if buf[i] == 0xB1 and buf[i + 1] < 128:
                    end = i + 2 + buf[i + 1]
                    if end > len(buf):
                        raise Short(end)
                    try:
                        value = buf[i + 2:end].decode("utf-8")
                    except UnicodeDecodeError as exc:
                        raise ProtocolError(f"string is not UTF-8: {exc}") from None
                    i = end
                else:
                    value, i = decode_at(buf, i, d, room)
                if key in entries:
                    raise ProtocolError("dictionary with a duplicate key")
                entries[key] = value
            return d.make_dict(entries), i + 1
        items = []
        append = items.append
        if tag == 0xB4 and d.keep:
            while buf[i] != 0x84:
                start, odd = i, d.odd
                item, i = decode_at(buf, i, d, room)
                if type(item) is ImmutableDict and d.odd == odd:
                    setattr(item, WIRE_BYTES, buf[start:i])
                append(item)
        else:
            if tag == 0xB6:
                d.odd += 1
            while buf[i] != 0x84:
                item, i = decode_at(buf, i, d, room)
                append(item)
        i += 1
        if tag == 0xB5:
            return tuple(items), i
        if tag == 0xB4:
            if not items:
                raise ProtocolError("record without a label")
            return Record(items[0], items[1:]), i
        result = frozenset(items)
        if len(result) != len(items):
            raise ProtocolError("set with a duplicate element")
        return result, i
    if tag == 0x80:
        return False, i
    if tag == 0x81:
        return True, i
    if tag == 0x86:
        if not room:
            raise too_deep(d)
        d.saw_embedded = True
        d.odd += 1
        inner, i = decode_at(buf, i, d, room - 1)
        return Embedded(d.embed(inner)), i
    if tag == 0x87:
        n = buf[i]
        i += 1
        if n >= 128:
            n, i = varint_at(buf, i - 1)
        if n != 8:
            raise ProtocolError(f"float of {n} bytes (only 8-byte doubles)")
        end = i + n
        if end > len(buf):
            raise Short(end)
        v = struct.unpack(">d", buf[i:end])[0]
        if v != v:
            d.odd += 1  # a NaN
        return v, end
    if tag == 0x85:  # annotation: read and drop it
        if not room:
            raise too_deep(d)
        d.odd += 1
        _, i = decode_at(buf, i, d, room - 1)
        return decode_at(buf, i, d, room - 1)
    if tag == 0x84:
        raise ProtocolError("unexpected end marker (0x84)")
    raise ProtocolError(f"invalid tag 0x{tag:02x}")


def decode(data: bytes, embed: Callable[[Any], Any] = wire_ref, *,
           max_depth: int = DEFAULT_MAX_DEPTH, frozen: bool = False) -> Any:
    """Decode exactly one complete value from ``data`` (embeddeds become wire refs by
    default); raises :class:`ProtocolError` if it is malformed, incomplete, nested more
    than ``max_depth`` levels deep or followed by more bytes. ``frozen``: mark each
    dictionary deeply frozen (``dataspace.keys.mark_deeply_frozen``; true of whatever
    this decoder makes, if ``embed`` makes frozen values), for a caller that hands the
    value to an index, which then need not walk it (see ``zenoh/keys.py``)."""
    data = bytes(data)
    try:
        value, end = decode_at(data, 0, Decoding(embed, max_depth, frozen), max_depth)
    except (Short, IndexError):
        raise ProtocolError("incomplete value") from None
    except RecursionError:
        raise ProtocolError("value nested too deeply") from None
    if end != len(data):
        raise ProtocolError(f"{len(data) - end} bytes after the value")
    return value
