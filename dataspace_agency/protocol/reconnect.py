"""Reconnection: the policy (:class:`Reconnect`) and the forwarding entity that keeps a
reconnecting handle's assertions, queued messages and syncs across connections (see
``client.py``'s docstring for what a reconnecting handle promises).
"""

from __future__ import annotations

import collections
import logging
from dataclasses import dataclass
from typing import Any

from syndicate import turn
from syndicate.actor import Entity, Ref

__all__ = ["Forwarder", "Reconnect"]

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class Reconnect:
    """How a handle reconnects (see the module docstring). After a connection ends, try
    at once, then wait ``initial`` seconds, multiplied by ``factor`` after each failed
    try up to ``maximum``; give up after ``attempts`` failed tries (None: never, until
    the handle is closed). ``max_queued``: messages held while disconnected."""

    initial: float = 0.05
    factor: float = 2.0
    maximum: float = 2.0
    attempts: int | None = None
    max_queued: int = 1000

    def __post_init__(self) -> None:
        if not (self.initial > 0 and self.factor >= 1 and self.maximum >= self.initial):
            raise ValueError(f"want initial > 0, factor >= 1, maximum >= initial: {self!r}")
        if self.attempts is not None and self.attempts < 1:
            raise ValueError(f"attempts must be None or at least 1, got {self.attempts}")
        if self.max_queued < 0:
            raise ValueError(f"max_queued must be >= 0, got {self.max_queued}")

    @staticmethod
    def of(value: "bool | Reconnect | None") -> "Reconnect | None":
        """The policy for a ``reconnect=`` argument (True: the defaults; False: none)."""
        if value is None or value is False:
            return None
        if value is True:
            return Reconnect()
        if isinstance(value, Reconnect):
            return value
        raise TypeError(f"reconnect must be a bool or a Reconnect policy, got {value!r}")


class Forwarder(Entity):
    """A reconnecting handle's ``ref``: records what is asserted through it and forwards
    everything to the current connection's dataspace (see the module docstring). Runs
    in the handle's facet; :meth:`attach` / :meth:`detach` are called in turns there."""

    def __init__(self, max_queued: int) -> None:
        self.target: Ref | None = None  # the current connection's dataspace, if any
        self.held: dict[int, Any] = {}  # handle made to us -> value
        self.upstream: dict[int, int] = {}  # handle made to us -> handle on the connection
        self.syncs: dict[int, Ref] = {}  # unanswered syncs: key -> whom to answer
        self._next_sync = 0
        self.queued: collections.deque[Any] = collections.deque()
        self.max_queued = max_queued
        self.dropped = 0
        self._warned = False

    def on_publish(self, value: Any, handle: int) -> None:
        self.held[handle] = value
        if self.target is not None:
            self.upstream[handle] = turn.publish(self.target, value)

    def on_retract(self, handle: int) -> None:
        self.held.pop(handle, None)
        upstream = self.upstream.pop(handle, None)
        if upstream is not None:
            turn.retract(upstream)

    def on_message(self, value: Any) -> None:
        if self.target is not None:
            turn.send(self.target, value)
        elif len(self.queued) < self.max_queued:
            self.queued.append(value)
        else:
            self.dropped += 1
            if not self._warned:
                self._warned = True
                log.warning("disconnected and %d messages queued already: dropping messages"
                            " until the connection is back", self.max_queued)

    def on_sync(self, peer: Ref) -> None:
        key = self._next_sync
        self._next_sync += 1
        self.syncs[key] = peer
        if self.target is not None:
            self._sync_upstream(key)

    def _sync_upstream(self, key: int) -> None:
        def answered() -> None:
            peer = self.syncs.pop(key, None)  # None: answered through a later connection
            if peer is not None:
                turn.send(peer, True)
        turn.sync(self.target, answered)

    def attach(self, target: Ref) -> None:
        """A new connection: assert everything held, send what was queued, sync again."""
        self.target = target
        self._warned = False
        for handle, value in self.held.items():
            self.upstream[handle] = turn.publish(target, value)
        while self.queued:
            turn.send(target, self.queued.popleft())
        for key in list(self.syncs):
            self._sync_upstream(key)

    def detach(self) -> None:
        """The connection has ended (the server has dropped what we asserted there)."""
        self.target = None
        for upstream in self.upstream.values():
            turn.retract(upstream)  # to a closed relay: only forgets the handle here
        self.upstream.clear()
