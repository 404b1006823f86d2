"""Values read from the wire straight into their plain JSON form, for the classic
inbox, which would otherwise convert a decoded Preserves value at once.

A classic message is wanted by its receiver only as a plain JSON value (the classic
mapping, ``classic/values.py``): decoding it into Preserves values (ImmutableDicts,
tuples, the symbol null) and then converting those walks it twice and builds it twice.
Two readers here read it once:

* :func:`event_at`, for a connection's :class:`~.packet_reader.PacketReader`: a message
  to an agent's inbox in another process arrives as ``[oid <M [body]>]``; for an oid
  whose entity asks for it (``PacketReader(plain=...)``) its captures come as
  :class:`~.wire_values.PlainJSON` values.
* :func:`decode_keeping_json`, for a reader that does not know yet who will want the
  value (a Zenoh session's mirror routes a message to whichever local observers match):
  a record's dictionary fields come as :class:`KeptJSON`, the JSON read plus the bytes,
  which stand for the Preserves value when an observer wants that instead.

Whatever has no JSON form, or is malformed, or is nested beyond either limit, makes
either reader decode the usual way instead, so what it gives then (or the error it
raises) is exactly what ``decoding.py`` gives.
"""

from __future__ import annotations

import struct
from typing import Any, Callable

from preserves import Record, Symbol

from .decoding import Decoding, Short, decode, decode_at, varint_at, wire_ref
from .wire_values import DEFAULT_MAX_DEPTH, PlainJSON, ProtocolError

__all__ = ["KeptJSON", "decode_keeping_json"]


class NotPlain(Exception):
    """The value has no plain JSON form, or is malformed: decode it the usual way."""


def plain_at(buf: bytes, i: int, room: int) -> tuple[Any, int]:
    """The JSON form of the value at ``buf[i]``, as ``values.from_preserves`` would give
    it for the value ``decode_at`` reads there, and the index after it; ``room``: how
    many more lists/dicts may nest. Raises :class:`NotPlain`, or (``buf`` ends first)
    IndexError or :class:`Short`, as ``decode_at`` would."""
    tag = buf[i]
    i += 1
    if tag == 0xB1 or tag == 0xB0:  # string, int
        n = buf[i]
        i += 1
        if n >= 128:
            n, i = varint_at(buf, i - 1)
        end = i + n
        if end > len(buf):
            raise Short(end)
        if tag == 0xB1:
            try:
                return buf[i:end].decode("utf-8"), end
            except UnicodeDecodeError:
                raise NotPlain from None
        if n == 1:
            v = buf[i]
            return (v - 256 if v > 127 else v), end
        if n > 64:
            # Decoded the usual way: an int this long may have no JSON text (Python's
            # int/str limit is at least 640 digits; 64 bytes is at most 155), and a
            # PlainJSON promises a JSON size (json_bound).
            raise NotPlain
        return (int.from_bytes(buf[i:end], "big", signed=True) if n else 0), end
    if tag == 0xB7:
        if not room:
            raise NotPlain
        room -= 1
        entries: dict = {}
        size = len(buf)
        while (tag := buf[i]) != 0x84:
            if tag != 0xB1:
                raise NotPlain  # a key that is not a string
            n = buf[i + 1]
            if n < 128:
                start = i + 2
            else:
                n, start = varint_at(buf, i + 1)
            end = start + n
            if end > size:
                raise Short(end)
            try:
                key = buf[start:end].decode("utf-8")
            except UnicodeDecodeError:
                raise NotPlain from None
            i = end
            # A short string or a one-byte int (most values of a classic message) is
            # read here, inline, rather than by a call.
            tag = buf[i]
            if tag == 0xB1 and buf[i + 1] < 128:
                end = i + 2 + buf[i + 1]
                if end > size:
                    raise Short(end)
                try:
                    value = buf[i + 2:end].decode("utf-8")
                except UnicodeDecodeError:
                    raise NotPlain from None
                i = end
            elif tag == 0xB0 and buf[i + 1] == 1:
                value = buf[i + 2]
                if value > 127:
                    value -= 256
                i += 3
            elif tag == 0x84:
                raise NotPlain  # a key but no value
            else:
                value, i = plain_at(buf, i, room)
            if key in entries:
                raise NotPlain
            entries[key] = value
        return entries, i + 1
    if tag == 0xB5:
        if not room:
            raise NotPlain
        room -= 1
        items = []
        append = items.append
        while buf[i] != 0x84:
            item, i = plain_at(buf, i, room)
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
            raise Short(end)
        return struct.unpack(">d", buf[i + 1:end])[0], end
    raise NotPlain  # another symbol, a record, bytes, a set, an embedded, an annotation


_PLAIN_HEAD = b"\xb4\xb3\x01M\xb5"  # <M [ : a message whose body is a captures sequence


def event_at(buf: bytes, i: int, d: Decoding, room: int,
              plain: Callable[[int], int]) -> tuple[Any, int]:
    """A Turn's item at ``buf[i]``, as ``decode_at`` reads it; but a message
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
                # decode_at would have left for each capture is room - 3.
                limit = min(depth, room - 3)
                captures = []
                j += 5
                try:
                    while buf[j] != 0x84:
                        value, end = plain_at(buf, j, limit)
                        captures.append(PlainJSON(value, end - j))
                        j = end
                except (NotPlain, ProtocolError):
                    return decode_at(buf, i, d, room)
                if buf[j + 1] == 0x84 and buf[j + 2] == 0x84:
                    return (oid, Record(_M, (tuple(captures),))), j + 3
    return decode_at(buf, i, d, room)


_M = Symbol("M")


class KeptJSON(PlainJSON):
    """A :class:`~.wire_values.PlainJSON` that keeps the bytes it was read from and
    stands for the Preserves value they hold (``__preserve__``: decoded from them, once,
    when asked). An index passes such a capture on as it is (``dataspace/index.py``,
    ``Index.send``): the classic inbox takes the JSON (:meth:`take`); an observer that
    wants the value (native code, the inspector, a pattern looking into it) gets the
    value, so nothing a reader of Preserves sees changes.

    Several observers of one process may be given the same one (a broadcast to its
    agents): the first to take it gets the JSON read; each later one reads the bytes
    again, so no two receivers share a dictionary, as from separate connections."""

    __slots__ = ("wire", "depth", "taken", "_decoded")

    def __init__(self, value: Any, wire: bytes, depth: int) -> None:
        super().__init__(value, len(wire))
        self.wire = wire
        self.depth = depth  # the JSON nesting it was read within
        self.taken = False
        self._decoded: Any = None

    def take(self) -> Any:
        if not self.taken:
            self.taken = True
            return self.value
        return plain_at(self.wire, 0, self.depth)[0]

    def __preserve__(self) -> Any:
        # Nothing embedded (plain_at refuses it) and nested within the reader's limit,
        # so this cannot fail.
        if self._decoded is None:
            self._decoded = decode(self.wire, frozen=True)
        return self._decoded


def decode_keeping_json(data: bytes, embed: Callable[[Any], Any] = wire_ref, *,
                        json_depth: int, max_depth: int = DEFAULT_MAX_DEPTH,
                        frozen: bool = False) -> Any:
    """What :func:`~.decoding.decode` gives for the same arguments, except that if the
    value is a record, each of its fields that is a dictionary with a JSON form (nested
    at most ``json_depth`` levels, and within ``max_depth``) comes as a
    :class:`KeptJSON`: a classic message's envelope ``<message to body>`` read for a
    receiver that wants its body as JSON (``zenoh/proxy.py``). Anything else, or any
    doubt, is decoded the usual way, so the value or the error is ``decode``'s."""
    data = bytes(data)
    if max_depth < 2 or len(data) < 3 or data[0] != 0xB4:
        return decode(data, embed, max_depth=max_depth, frozen=frozen)
    d = Decoding(embed, max_depth, frozen)
    room = max_depth - 1  # a field's, as decode_at leaves it inside the record
    limit = min(json_depth, room)
    fields: list = []
    try:
        label, i = decode_at(data, 1, d, room)
        while data[i] != 0x84:
            if data[i] == 0xB7:
                value, end = plain_at(data, i, limit)
                fields.append(KeptJSON(value, data[i:end], limit))
            else:
                value, end = decode_at(data, i, d, room)
                fields.append(value)
            i = end
    except (NotPlain, Short, IndexError, ProtocolError, RecursionError):
        i = -1
    if i + 1 != len(data):
        return decode(data, embed, max_depth=max_depth, frozen=frozen)
    return Record(label, fields)
