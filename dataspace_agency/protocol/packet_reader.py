"""The streaming decoder of one connection: :class:`PacketReader` (bytes as they arrive
-> the values they complete). See ``codec.py`` for the format and the limits."""

from __future__ import annotations

from typing import Any, Callable, Iterator

from .decoding import Decoding, Short, decode_at, wire_ref
from .plain_json import event_at
from .wire_values import DEFAULT_MAX_DEPTH, DEFAULT_MAX_PACKET, ProtocolError

__all__ = ["PacketReader"]


class _Partial:
    """A top-level sequence (a Turn packet) read so far: its items, and the bytes of it
    that came before the reader's buffer (already decoded and let go)."""

    __slots__ = ("items", "consumed", "decoding")

    def __init__(self, decoding: Decoding) -> None:
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
    form (see ``event_at``; a client's, for the classic inbox). ``frozen``: each
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
        d = Decoding(wire_ref, self.max_depth, self.frozen, self.keep_bytes)
        try:
            value, end = decode_at(buf, start, d, self.max_depth)
        except (Short, IndexError) as short:
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
            partial = _Partial(Decoding(wire_ref, self.max_depth, self.frozen,
                                         self.keep_bytes))
            i = start + 1
        else:
            i = start
        d, items, room = partial.decoding, partial.items, self.max_depth - 1
        plain = self.plain
        try:
            while buf[i] != 0x84:
                if plain is not None and buf[i] == 0xB5 and buf[i + 1] == 0xB0:
                    value, i = event_at(buf, i, d, room, plain)
                else:
                    value, i = decode_at(buf, i, d, room)
                items.append(value)
        except (Short, IndexError) as short:
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
        promised = short.args[0] if type(short) is Short and short.args else 0
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
