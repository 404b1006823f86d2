"""The decoding side of the wire codec: bytes -> Preserves values (``decode``) and the
streaming :class:`PacketReader` (see ``codec.py`` for the format, the limits and why the
codec is our own)."""

from __future__ import annotations

import struct
from typing import Any, Callable, Iterator

from preserves import Embedded, ImmutableDict, Record, Symbol

from ..dataspace.keys import frozen_dict, immutable_dict  # ImmutableDicts without __init__
from .wire_values import (CACHE_LIMIT, DEFAULT_MAX_DEPTH, DEFAULT_MAX_PACKET, PlainJSON,
                          ProtocolError, WireRef, show)

__all__ = ["PacketReader", "decode"]


class _Short(Exception):
    """Not enough bytes yet for a complete value; ``args[0]``, if given, is the index in
    the buffer the value will reach at least (what a length prefix promised)."""


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


def _too_deep(d: _Decoding) -> ProtocolError:
    return ProtocolError(f"value nested more than {d.max_depth} levels deep")


def _decode_at(buf: bytes, i: int, d: _Decoding, room: int) -> tuple[Any, int]:
    """The value starting at ``buf[i]`` and the index after it; ``room``: how many more
    levels of nesting are allowed. Raises IndexError or :class:`_Short` if ``buf`` ends
    first."""
    # The tags in order of how often a classic message has them (strings, then
    # dictionaries, ...); compounds are read by the loops here, not by a helper.
    tag = buf[i]
    i += 1
    if 0xB0 <= tag <= 0xB3:  # int, string, bytes, symbol: a length, then the bytes
        n = buf[i]
        i += 1
        if n >= 128:
            n, i = _long_length(buf, i - 1)
            if not buf[i - 1]:
                d.odd += 1  # a length in more bytes than it needs
        end = i + n
        if end > len(buf):
            raise _Short(end)
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
            raise _too_deep(d)
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
                        raise _Short(end)
                    try:
                        key = buf[i + 2:end].decode("utf-8")
                    except UnicodeDecodeError as exc:
                        raise ProtocolError(f"string is not UTF-8: {exc}") from None
                    i = end
                else:
                    key, i = _decode_at(buf, i, d, room)
                if buf[i] == 0x84:
                    raise ProtocolError("dictionary with a key but no value")
                if buf[i] == 0xB1 and buf[i + 1] < 128:
                    end = i + 2 + buf[i + 1]
                    if end > len(buf):
                        raise _Short(end)
                    try:
                        value = buf[i + 2:end].decode("utf-8")
                    except UnicodeDecodeError as exc:
                        raise ProtocolError(f"string is not UTF-8: {exc}") from None
                    i = end
                else:
                    value, i = _decode_at(buf, i, d, room)
                if key in entries:
                    raise ProtocolError("dictionary with a duplicate key")
                entries[key] = value
            return d.make_dict(entries), i + 1
        items = []
        append = items.append
        if tag == 0xB4 and d.keep:
            while buf[i] != 0x84:
                start, odd = i, d.odd
                item, i = _decode_at(buf, i, d, room)
                if type(item) is ImmutableDict and d.odd == odd:
                    setattr(item, WIRE_BYTES, buf[start:i])
                append(item)
        else:
            if tag == 0xB6:
                d.odd += 1
            while buf[i] != 0x84:
                item, i = _decode_at(buf, i, d, room)
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
            raise _too_deep(d)
        d.saw_embedded = True
        d.odd += 1
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
        v = struct.unpack(">d", buf[i:end])[0]
        if v != v:
            d.odd += 1  # a NaN
        return v, end
    if tag == 0x85:  # annotation: read and drop it
        if not room:
            raise _too_deep(d)
        d.odd += 1
        _, i = _decode_at(buf, i, d, room - 1)
        return _decode_at(buf, i, d, room - 1)
    if tag == 0x84:
        raise ProtocolError("unexpected end marker (0x84)")
    raise ProtocolError(f"invalid tag 0x{tag:02x}")


def decode(data: bytes, embed: Callable[[Any], Any] = _wire_ref, *,
           max_depth: int = DEFAULT_MAX_DEPTH, frozen: bool = False) -> Any:
    """Decode exactly one complete value from ``data`` (embeddeds become wire refs by
    default); raises :class:`ProtocolError` if it is malformed, incomplete, nested more
    than ``max_depth`` levels deep or followed by more bytes. ``frozen``: mark each
    dictionary deeply frozen (``dataspace.keys.mark_deeply_frozen``; true of whatever
    this decoder makes, if ``embed`` makes frozen values), for a caller that hands the
    value to an index, which then need not walk it (see ``zenoh/keys.py``)."""
    data = bytes(data)
    try:
        value, end = _decode_at(data, 0, _Decoding(embed, max_depth, frozen), max_depth)
    except (_Short, IndexError):
        raise ProtocolError("incomplete value") from None
    except RecursionError:
        raise ProtocolError("value nested too deeply") from None
    if end != len(data):
        raise ProtocolError(f"{len(data) - end} bytes after the value")
    return value


# --- classic messages read straight into JSON ---------------------------------------------
#
# A message to an agent's inbox in another process arrives as ``[oid <M [body]>]`` and
# is wanted only as a plain JSON value (the classic mapping, ``classic/values.py``):
# decoding it into Preserves values (ImmutableDicts, tuples, the symbol null) and then
# converting those walked it twice and built it twice. For an oid whose entity asks for
# it (``PacketReader(plain=...)``), the captures are read straight into JSON here, each
# as a :class:`PlainJSON`. Whatever has no JSON form, or is malformed, or is nested
# beyond either limit, makes the reader decode that event the usual way instead, so what
# it gives then (or the error it raises) is exactly what it gave before.


class _NotPlain(Exception):
    """The value has no plain JSON form, or is malformed: decode it the usual way."""


def _plain_at(buf: bytes, i: int, room: int) -> tuple[Any, int]:
    """The JSON form of the value at ``buf[i]``, as ``values.from_preserves`` would give
    it for the value ``_decode_at`` reads there, and the index after it; ``room``: how
    many more lists/dicts may nest. Raises :class:`_NotPlain`, or (``buf`` ends first)
    IndexError or :class:`_Short`, as ``_decode_at`` would."""
    tag = buf[i]
    i += 1
    if tag == 0xB1 or tag == 0xB0:  # string, int
        n = buf[i]
        i += 1
        if n >= 128:
            n, i = _long_length(buf, i - 1)
        end = i + n
        if end > len(buf):
            raise _Short(end)
        if tag == 0xB1:
            try:
                return buf[i:end].decode("utf-8"), end
            except UnicodeDecodeError:
                raise _NotPlain from None
        if n == 1:
            v = buf[i]
            return (v - 256 if v > 127 else v), end
        if n > 64:
            # Decoded the usual way: an int this long may have no JSON text (Python's
            # int/str limit is at least 640 digits; 64 bytes is at most 155), and a
            # PlainJSON promises a JSON size (json_bound).
            raise _NotPlain
        return (int.from_bytes(buf[i:end], "big", signed=True) if n else 0), end
    if tag == 0xB7:
        if not room:
            raise _NotPlain
        room -= 1
        entries: dict = {}
        size = len(buf)
        while (tag := buf[i]) != 0x84:
            if tag != 0xB1:
                raise _NotPlain  # a key that is not a string
            n = buf[i + 1]
            if n < 128:
                start = i + 2
            else:
                n, start = _long_length(buf, i + 1)
            end = start + n
            if end > size:
                raise _Short(end)
            try:
                key = buf[start:end].decode("utf-8")
            except UnicodeDecodeError:
                raise _NotPlain from None
            i = end
            # A short string or a one-byte int (most values of a classic message) is
            # read here, inline, rather than by a call.
            tag = buf[i]
            if tag == 0xB1 and buf[i + 1] < 128:
                end = i + 2 + buf[i + 1]
                if end > size:
                    raise _Short(end)
                try:
                    value = buf[i + 2:end].decode("utf-8")
                except UnicodeDecodeError:
                    raise _NotPlain from None
                i = end
            elif tag == 0xB0 and buf[i + 1] == 1:
                value = buf[i + 2]
                if value > 127:
                    value -= 256
                i += 3
            elif tag == 0x84:
                raise _NotPlain  # a key but no value
            else:
                value, i = _plain_at(buf, i, room)
            if key in entries:
                raise _NotPlain
            entries[key] = value
        return entries, i + 1
    if tag == 0xB5:
        if not room:
            raise _NotPlain
        room -= 1
        items = []
        append = items.append
        while buf[i] != 0x84:
            item, i = _plain_at(buf, i, room)
            append(item)
        return items, i + 1
    if tag == 0x80:
        return False, i
    if tag == 0x81:
        return True, i
    if tag == 0xB3 and buf[i:i + 5] == b"\x04null":
        return None, i + 5
    if tag == 0x87 and buf[i] == 8:
        end = i + 9
        if end > len(buf):
            raise _Short(end)
        return struct.unpack(">d", buf[i + 1:end])[0], end
    raise _NotPlain  # another symbol, a record, bytes, a set, an embedded, an annotation


_PLAIN_HEAD = b"\xb4\xb3\x01M\xb5"  # <M [ : a message whose body is a captures sequence


def _event_at(buf: bytes, i: int, d: _Decoding, room: int,
              plain: Callable[[int], int]) -> tuple[Any, int]:
    """A Turn's item at ``buf[i]``, as ``_decode_at`` reads it; but a message
    ``[oid <M [capture ...]>]`` to an oid for which ``plain(oid)`` gives a depth (the
    JSON nesting allowed in each capture) comes as ``(oid, <M (PlainJSON, ...)>)``
    if every capture has a JSON form within the limits (see above)."""
    n = buf[i + 2]  # [oid: b5 b0 n, the oid's n bytes
    if n <= 8:
        j = i + 3 + n
        if buf[j:j + 5] == _PLAIN_HEAD and room >= 3:
            oid = int.from_bytes(buf[i + 3:j], "big", signed=True)
            depth = plain(oid)
            if depth:
                # The item, the record and the captures sequence are three levels: what
                # _decode_at would have left for each capture is room - 3.
                limit = min(depth, room - 3)
                captures = []
                j += 5
                try:
                    while buf[j] != 0x84:
                        value, end = _plain_at(buf, j, limit)
                        captures.append(PlainJSON(value, end - j))
                        j = end
                except (_NotPlain, ProtocolError):
                    return _decode_at(buf, i, d, room)
                if buf[j + 1] == 0x84 and buf[j + 2] == 0x84:
                    return (oid, Record(_M, (tuple(captures),))), j + 3
    return _decode_at(buf, i, d, room)


_M = Symbol("M")


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
    unfinished item. Other values are decoded whole once they have all arrived.

    ``plain``: oid -> a JSON nesting limit, or 0; a message to an oid given a limit has
    its captures read straight into :class:`PlainJSON` values when they all have a JSON
    form (see ``_event_at``; a client's, for the classic inbox). ``frozen``: each
    dictionary marked deeply frozen, as :func:`decode` does (a server's: what it reads
    goes to its dataspace's index, which then need not walk a message's body to know
    that it may keep it as a capture). ``keep_bytes``: each dictionary that is a
    record's field keeps the bytes it was read from when the encoder would write it
    back as those (:data:`WIRE_BYTES`; a server's, which forwards what it reads)."""

    def __init__(self, max_packet: int = DEFAULT_MAX_PACKET,
                 max_depth: int = DEFAULT_MAX_DEPTH,
                 plain: Callable[[int], int] | None = None, frozen: bool = False,
                 keep_bytes: bool = False) -> None:
        self.max_packet = max_packet
        self.max_depth = max_depth
        self.plain = plain
        self.frozen = frozen
        self.keep_bytes = keep_bytes
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
        d = _Decoding(_wire_ref, self.max_depth, self.frozen, self.keep_bytes)
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
            partial = _Partial(_Decoding(_wire_ref, self.max_depth, self.frozen,
                                         self.keep_bytes))
            i = start + 1
        else:
            i = start
        d, items, room = partial.decoding, partial.items, self.max_depth - 1
        plain = self.plain
        try:
            while buf[i] != 0x84:
                if plain is not None and buf[i] == 0xB5 and buf[i + 1] == 0xB0:
                    value, i = _event_at(buf, i, d, room, plain)
                else:
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
