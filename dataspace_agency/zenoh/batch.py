"""Several messages in one Zenoh put: the framing of a *batch* (``proxy.py``, ``_Outbound``).

A classic one-way stream through Zenoh is bound by CPU per Zenoh call and per sample
callback (each put gives up and takes back the GIL; each sample is a callback on a Zenoh
thread taking it), not by the network. So the proxy merges *consecutive* puts to the
same key within one outbound burst into one put, and the receiving interest unpacks it
and delivers the messages in order in one turn. Only consecutive puts to one key merge,
so the order of messages on the wire is exactly what it was with one put each.

A single message is put as it always was: its Preserves binary. A batch is::

    0x00, then for each message: its length (a varint, as Preserves writes lengths), its
    Preserves binary

``0x00`` is no Preserves tag, so no single message starts with it and the two cannot be
confused. A batch is capped at :data:`BATCH_MAX_COUNT` messages and
:data:`BATCH_MAX_BYTES` bytes (a message larger than that goes alone): small enough to
fit one Zenoh batch (64 KiB) and far below ``keys.MAX_VALUE_BYTES``.
"""

from __future__ import annotations

from typing import Sequence

from ..protocol.codec import ProtocolError, varint, varint_at

BATCH_MARKER = 0x00
"""The first byte of a batch payload (never the first byte of a Preserves value)."""

BATCH_MAX_BYTES = 32 * 1024
"""The largest batch payload the proxy makes."""

BATCH_MAX_COUNT = 128
"""The most messages in one batch."""

_MARKER = bytes([BATCH_MARKER])


class MalformedBatch(ValueError):
    """A batch payload whose framing is broken (a length past its end, no messages)."""


def pack(bodies: Sequence[bytes]) -> bytes:
    """One payload carrying ``bodies`` (two or more; one is put as it is)."""
    out = bytearray(_MARKER)
    for body in bodies:
        n = len(body)
        out += varint(n)
        out += body
    return bytes(out)


def is_batch(payload: bytes) -> bool:
    return payload[:1] == _MARKER


def unpack(payload: bytes) -> list[bytes]:
    """The message bodies of a batch payload, in order; :class:`MalformedBatch` if its
    framing is broken (then none is trusted: an offset after a broken length is not)."""
    bodies: list[bytes] = []
    i, end = 1, len(payload)
    while i < end:
        try:
            n, i = varint_at(payload, i)
        except IndexError:
            raise MalformedBatch(f"a length cut short at byte {end} of {end}") from None
        except ProtocolError:
            raise MalformedBatch(f"a length prefix too long at byte {i} of {end}") from None
        if n == 0 or i + n > end:
            raise MalformedBatch(f"a message of {n} bytes at byte {i} of a {end}-byte batch")
        bodies.append(payload[i:i + n])
        i += n
    if not bodies:
        raise MalformedBatch("a batch of no messages")
    return bodies
