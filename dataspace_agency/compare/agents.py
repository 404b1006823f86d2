"""The classic agents the workloads use, written once against the ``Agent`` API.

They live in a module of their own (not in the workload modules) so that process
backends can pickle the classes by reference and import only this in a child. The
driver of every workload is a :class:`Driver`, added with ``add_foreground`` so that it
lives in the measuring process on every backend; the others are ``add()``ed (on process
backends each is then a process of its own).

The mirror image of these agents, against agency 1.6.3's API, is in
``agency_reference.py``.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from ..classic import Agent, action, during

# Blocked actions wait on this at most so long (a bound, so that nothing waits forever).
BLOCK_BOUND_S = 60.0
_RELEASE = threading.Event()  # per process: set to let blocked actions finish


def arm_blocked() -> None:
    """Make :meth:`Stuck.work` block again in this process (after a release)."""
    _RELEASE.clear()


def release_blocked() -> None:
    """Let every action blocked in :meth:`Stuck.work` in this process return."""
    _RELEASE.set()


class Echo(Agent):
    """The responder: the same echo as a plain function (run on a worker thread, as
    agency runs actions) and as an ``async def`` action (run on the runtime)."""

    @action
    def echo(self, text: str) -> str:
        return text

    @action
    async def aecho(self, text: str) -> str:
        return text


async def time_arequests(agent: Agent, message: dict, count: int, warm_up: int) -> list[float]:
    """Inside an ``async def`` action of ``agent``: the durations, in seconds, of
    ``count`` sequential ``arequest(message)`` round trips after ``warm_up`` untimed ones.
    Also used by ``dataspace-agency bench`` (compare/bench/classic.py)."""
    for _ in range(warm_up):
        await agent.arequest(message, timeout=30)
    samples = []
    clock = time.perf_counter
    for _ in range(count):
        start = clock()
        await agent.arequest(message, timeout=30)
        samples.append(clock() - start)
    return samples


class Pinger(Agent):
    """Agent-to-agent round trips with no thread hop: ``async def`` to ``async def``."""

    @action
    async def round_trips(self, to: str, count: int, warm_up: int) -> list:
        message = {"to": to, "action": {"name": "aecho", "args": {"text": "hi"}}}
        return await time_arequests(self, message, count, warm_up)


class Counter(Agent):
    """One-way throughput's receiver: counts ``take``s and, at the expected count, tells
    the reporter (the driver) with a ``finished`` message."""

    def __init__(self, id: str, **kwargs: Any) -> None:
        super().__init__(id, **kwargs)
        self._expected, self._received, self._reporter = 0, 0, ""

    @action
    async def expect(self, count: int, reporter: str) -> None:
        self._expected, self._received, self._reporter = count, 0, reporter

    @action
    async def take(self, i: int) -> None:
        self._received += 1
        if self._received == self._expected:
            self.send({"to": self._reporter, "action": {"name": "finished", "args": {}}})


class Pong(Agent):
    """Broadcast fan-out: answers ``ping`` with its id (the answer goes back to the
    broadcaster as a ``[response]``)."""

    @action
    async def ping(self) -> str:
        return self.id


class Stuck(Agent):
    """Failure: ``work`` tells the driver it started (with its pid), then blocks until
    released (or killed)."""

    @action
    def work(self, driver: str) -> str:
        self.send({"to": driver, "action": {"name": "started",
                                            "args": {"pid": os.getpid()}}})
        _RELEASE.wait(BLOCK_BOUND_S)
        return "finished"


class Idle(Agent):
    """Scale: an agent that only exists (it offers ``help``, like every agent)."""


class Late(Agent):
    """Late joiner: the responder that is added after the request was sent."""

    @action
    async def add(self, a: float, b: float) -> float:
        return a + b


class Driver(Agent):
    """The foreground agent every workload drives from its own thread: it is told when
    a one-way stream finished and when a stuck action started. It does not override
    ``handle_action_value``, so answers to its ``send()``s cost it nothing."""

    def __init__(self, id: str, **kwargs: Any) -> None:
        super().__init__(id, receive_own_broadcasts=False, **kwargs)
        self.finished_event = threading.Event()
        self.started_event = threading.Event()
        self.started_pid: int | None = None
        self._lock = threading.Lock()
        self.replies: list[Any] = []
        self.replies_target = 0
        self.replies_done = threading.Event()

    def expect_replies(self, count: int) -> None:
        with self._lock:
            self.replies = []
            self.replies_target = count
            self.replies_done.clear()

    @action
    async def finished(self) -> None:
        self.finished_event.set()

    @action
    async def started(self, pid: int) -> None:
        self.started_pid = pid
        self.started_event.set()


class Broadcaster(Driver):
    """A driver that also counts the answers to its broadcasts (``handle_action_value``
    runs on a worker thread for each, so only the workloads that need it use this one)."""

    def handle_action_value(self, value: Any) -> None:
        with self._lock:
            self.replies.append(value)
            if len(self.replies) >= self.replies_target > 0:
                self.replies_done.set()


def _watcher_pattern() -> Any:
    from ..spaces.dataspace.vocabulary import AGENT, CAPTURE, rec
    return rec(AGENT, CAPTURE)


class Watcher(Agent):
    """State, on a dataspace: a newcomer that learns who is present from one observe of
    ``<agent $id>`` (the dataspace replays the current facts to a new observer)."""

    def __init__(self, id: str, expected: frozenset, **kwargs: Any) -> None:
        super().__init__(id, **kwargs)
        self._expected = expected
        self.seen: set[str] = set()
        self.complete = threading.Event()

    @during(_watcher_pattern())
    def present(self, agent_id: str) -> None:
        self.seen.add(agent_id)
        if self._expected <= self.seen:
            self.complete.set()
