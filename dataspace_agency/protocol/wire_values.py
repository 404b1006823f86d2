"""What every part of the wire codec shares: the limits, the error a peer's bad input
raises, how a value a peer sent is shown in it, and a ref as it travels."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["DEFAULT_MAX_DEPTH", "DEFAULT_MAX_PACKET", "SERVER_MAX_DEPTH", "PlainJSON",
           "ProtocolError", "WireRef", "show"]

DEFAULT_MAX_PACKET = 16 * 1024 * 1024  # bytes; configurable per server/connection
DEFAULT_MAX_DEPTH = 200  # nested compounds, embeddeds and annotations in one value
# What a server accepts: a value it forwards may sit a level or two deeper in the packet
# that carries it on (a capture inside the captures sequence), and must still be readable
# by a client with the default limit.
SERVER_MAX_DEPTH = DEFAULT_MAX_DEPTH - 8
CACHE_LIMIT = 4096  # entries in the codec's caches of symbols (a few labels, reused)


class ProtocolError(ValueError):
    """The peer sent something the protocol does not allow; the text names it."""


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


class PlainJSON:
    """A value read from the wire straight into its plain JSON form under the classic
    mapping (``classic/values.py``: dicts, lists, ``None`` for the symbol ``null``), and
    otherwise unchecked: what :class:`~.decoding.PacketReader` gives, in place of each
    captured value, in a message to an entity that asks for it (``plain_json``: the
    classic inbox, which would convert the Preserves value at once). It holds no
    embedded refs.

    ``json_bound``: a bound on the length of its compact JSON text (``classic/
    wire_json.json_size``), and of a classic message's once validated (which may add
    ``"args":{}``), from its length on the wire, so that a size limit above it need not
    be checked by writing the JSON. Why 6x: by induction over the value, JSON + 1 <= 6 x
    Preserves bytes: a string's escapes take at most 6 bytes a byte (``\\u0000``), its
    quotes and a comma fit in its header's 2 bytes; ``false,`` is 6 bytes for 1; an int
    of n bytes (at most 64, see decoding.py) has at most 2.5n + 2 characters, for n + 2
    bytes; a float at most 24 for 10; ``null`` 4 for 6; a list or a dictionary adds a
    comma (and a colon) per item, paid by its items' +1, and 2 brackets for 2 bytes."""

    __slots__ = ("value", "json_bound")

    def __init__(self, value: Any, wire_size: int) -> None:
        self.value = value
        self.json_bound = 6 * wire_size + 16  # + 16: "args":{} that validation may add

    def take(self) -> Any:
        """The JSON value, for its receiver (the one: a connection reads one per
        receiver; see ``plain_json.KeptJSON`` for a value that may have several)."""
        return self.value

    def __repr__(self) -> str:
        return f"{type(self).__name__}({show(self.value, 100)})"
