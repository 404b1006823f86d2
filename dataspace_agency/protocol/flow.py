"""Output limits and counters for the relays of one process: :class:`FlowControl`
(backpressure, docs/limits.md) and :class:`WireStats` (what crossed a connection).

The relay (``relay.py``) counts the bytes waiting to be written to its peer and tells
its ``FlowControl`` when it goes over or back under the marks; the transport
(``transport.py``) asks it before each read whether to hold back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

if TYPE_CHECKING:
    from .relay import Relay

__all__ = ["DEFAULT_HIGH_WATER", "DEFAULT_STALL_TIMEOUT", "FlowControl", "WireStats"]

DEFAULT_HIGH_WATER = 8 * 1024 * 1024  # bytes waiting to be written, per connection
DEFAULT_STALL_TIMEOUT = 30.0  # seconds a server connection may stay congested


class FlowControl:
    """Output limits shared by a set of connections: a server's, or one client's.

    ``high_water``: bytes waiting to be written to one peer above which its connection
    is congested; ``low_water``: it is clear again once below this (default a quarter
    of ``high_water``); ``stall_timeout``: seconds a connection may stay congested
    before it is cut off (None: never, the client's default). While any connection
    is congested, the others do not read (:meth:`must_wait`): nothing new is taken in
    that could add to its backlog, and producers are pushed back through TCP."""

    def __init__(self, high_water: int = DEFAULT_HIGH_WATER, low_water: int | None = None,
                 stall_timeout: float | None = DEFAULT_STALL_TIMEOUT) -> None:
        if high_water < 1:
            raise ValueError(f"high_water must be at least 1 byte, got {high_water}")
        low_water = high_water // 4 if low_water is None else low_water
        if not 0 <= low_water <= high_water:
            raise ValueError(f"low_water must be between 0 and high_water ({high_water}),"
                             f" got {low_water}")
        if stall_timeout is not None and not stall_timeout > 0:
            raise ValueError(f"stall_timeout must be > 0 seconds or None, got {stall_timeout}")
        self.high_water = high_water
        self.low_water = low_water
        self.stall_timeout = stall_timeout
        self.congested: set["Relay"] = set()
        self._clear: trio.Event | None = None  # set when the last congestion ends
        # Statistics: how often reading was paused, connections cut off.
        self.pauses = 0
        self.queue_pauses = 0  # reads put off while the runtime caught up (transport.py)
        self.cut_off = 0

    def must_wait(self, relay: "Relay") -> bool:
        """Whether ``relay``'s connection should not read now."""
        return bool(self.congested) and relay not in self.congested

    async def wait_clear(self, relay: "Relay") -> None:
        """Wait until ``relay`` may read again."""
        self.pauses += 1
        while self.must_wait(relay):
            if self._clear is None:
                self._clear = trio.Event()
            await self._clear.wait()

    def _over(self, relay: "Relay") -> None:
        self.congested.add(relay)

    def _under(self, relay: "Relay") -> None:
        self.congested.discard(relay)
        if not self.congested and self._clear is not None:
            self._clear.set()
            self._clear = None


class WireStats:
    """What crossed one connection, counted (cheap enough to be always on): for seeing
    how many packets, events and system calls a workload costs per message
    (``benchmarks/remote_classic.py``; docs/server.md, "Where the time goes")."""

    __slots__ = ("packets_in", "events_in", "reads", "packets_out", "events_out", "writes",
                 "bytes_out")

    def __init__(self) -> None:
        self.packets_in = self.events_in = self.reads = 0
        self.packets_out = self.events_out = self.writes = self.bytes_out = 0

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}
