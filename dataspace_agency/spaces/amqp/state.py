"""What the I/O thread of an AMQP space keeps about messages and agents.

Plain records (a message on its way, a flush waiting, an agent, a departure) and the two
bounded structures with rules of their own: recent message ids (duplicates dropped after
a reconnection) and acknowledgement batching (``Acks``).
"""

from __future__ import annotations

import collections
import concurrent.futures
import time

from ...classic.core import AgentCore
from .names import Names


class Outgoing:
    """A message on its way to the broker (kept until confirmed, or failed)."""

    __slots__ = ("body", "key", "message", "report", "since", "seq")

    def __init__(self, body: bytes, key: str, message: dict, report: bool) -> None:
        self.body = body
        self.key = key
        self.message = message
        self.report = report  # a failure goes back to the sender as an [error] reply
        self.since = time.monotonic()
        self.seq = 0  # its place in the order of publishing (set on the I/O thread)


class Flush:
    """A ``flush()``: waits for the messages published up to ``mark`` to be settled."""

    __slots__ = ("mark", "waiting", "future")

    def __init__(self, mark: int, waiting: int, future: concurrent.futures.Future) -> None:
        self.mark = mark
        self.waiting = waiting
        self.future = future


class Recent:
    """The last ``size`` message ids seen (duplicate detection)."""

    def __init__(self, size: int) -> None:
        self._order: collections.deque[str] = collections.deque()
        self._ids: set[str] = set()
        self._size = size

    def add(self, message_id: str) -> bool:
        """False if ``message_id`` was seen already."""
        if message_id in self._ids:
            return False
        self._ids.add(message_id)
        self._order.append(message_id)
        if len(self._order) > self._size:
            self._ids.discard(self._order.popleft())
        return True


class Acks:
    """Acknowledgements of one channel's deliveries, sent in as few frames as is safe.

    The broker numbers a channel's deliveries 1, 2, 3...; ``basic_ack(tag, multiple=True)``
    acknowledges every outstanding one up to ``tag``. Handled in order (the usual case),
    a whole round of acknowledgements is one frame instead of one per message. A delivery
    handled out of order, or one never acknowledged (its agent left while it waited), is
    acknowledged alone: a multiple acknowledgement never reaches past a delivery still
    being handled, so nothing unhandled is ever acknowledged.

    Bounded: if more than ``ABOVE_LIMIT`` acknowledged deliveries wait above one never
    acknowledged (an action running for a long time, or a delivery dropped because its
    agent left), this channel goes back to one frame per acknowledgement."""

    ABOVE_LIMIT = 4096

    def __init__(self) -> None:
        self.due: list[int] = []  # handled since the last round
        self._floor: int | None = 0  # every tag up to this one is acknowledged; None: off
        self._above: set[int] = set()  # acknowledged, above the floor

    def take(self) -> list[tuple[int, bool]]:
        """The ``(tag, multiple)`` acknowledgements to send for what is due."""
        due, self.due = self.due, []
        if not due:
            return []
        if self._floor is None:
            return [(tag, False) for tag in due]
        floor, above = self._floor, self._above
        above.update(due)
        while floor + 1 in above:
            floor += 1
            above.discard(floor)
        frames = []
        # Covered by one multiple frame ending at the highest newly due tag within the
        # floor: below it, outstanding tags are all due now (acknowledged ones are not
        # outstanding, and the broker skips them).
        covered = max((tag for tag in due if tag <= floor), default=0)
        if covered:
            frames.append((covered, True))
        frames.extend((tag, False) for tag in due if tag > floor)  # out of order: alone
        self._floor = floor
        if len(above) > self.ABOVE_LIMIT:
            self._floor, self._above = None, set()
        return frames


class Entry:
    """An agent as the I/O thread sees it."""

    def __init__(self, agent_id: str, core: AgentCore, names: Names, window: int) -> None:
        self.agent_id = agent_id
        self.core = core
        self.queue = names.queue(agent_id)
        self.presence = names.presence(agent_id)
        self.key = names.key(agent_id)
        self.recent = Recent(window)
        self.attached: concurrent.futures.Future = concurrent.futures.Future()
        self.claimed_gen = -1  # the connection on which its presence queue was last declared
        self.ever_claimed = False  # so its durable queue is ours to delete
        self.detached = False


class Leaving:
    """A detach in progress: the queue deletions still awaited."""

    def __init__(self, entry: Entry, future: concurrent.futures.Future) -> None:
        self.entry = entry
        self.future = future
        self.waiting = 0

    def done_one(self) -> bool:
        """One deletion done; True once all are."""
        self.waiting -= 1
        if self.waiting > 0:
            return False
        if not self.future.done():
            self.future.set_result(None)
        return True
