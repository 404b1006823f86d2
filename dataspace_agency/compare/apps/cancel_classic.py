"""Requesters that leave, the classic way: the same code on every backend.

A requester asks the tool for a slow job with ``request()`` and a timeout; the request
carries its deadline (the requester's own timeout, as wall-clock time), past which
nobody waits for the answer. The tool works in slices and stops early when the job is
withdrawn (``cancelled()``: the dataspace's assertion mode tells it), when a ``cancel``
message for it came (a requester leaving gracefully sends one for its pending job), or
at the deadline.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

from ...classic import ActionError, Agent, action
from .classic_common import say_goodbye
from .faults import quiet

SLICE_S = 0.01  # the work's granularity: how soon a slow action can notice a cancel


class Requester(Agent):
    """Asks ``tool`` for one job; on a graceful leave cancels it if still pending."""

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self._pending: tuple[str, int] | None = None

    @action
    def ask(self, tool: str, job: int, duration: float, timeout: float) -> Any:
        self._pending = (tool, job)
        try:
            return self.request({"to": tool, "action": {"name": "slow", "args": {
                "job": job, "duration": duration, "deadline": time.time() + timeout}}},
                timeout=timeout)
        except (ActionError, TimeoutError):
            return None
        finally:
            self._pending = None

    def before_remove(self) -> None:
        if self._pending is not None and not quiet(self.id):
            tool, job = self._pending
            say_goodbye(self, tool, "cancel", {"job": job})


class Tool(Agent):
    """Runs slow jobs (see the module docstring); ``on_job(job, started, ended, why)``
    reports each as it starts (``ended`` None) and as it ends (``why``: None if it ran
    to the end)."""

    def __init__(self, id: str, on_job: Callable[..., None], concurrency: int) -> None:
        super().__init__(id, max_concurrency=2 * concurrency)  # room for cancels
        self._on_job = on_job
        self._cancelled: set[int] = set()
        self._lock = threading.Lock()

    @action
    async def cancel(self, job: int) -> None:
        with self._lock:
            self._cancelled.add(job)

    @action
    def slow(self, job: int, duration: float, deadline: float) -> int | None:
        started = time.perf_counter()
        self._on_job(job, started, None, None)
        why = None
        while time.perf_counter() - started < duration:
            time.sleep(min(SLICE_S, duration - (time.perf_counter() - started)))
            if self.cancelled():
                why = "withdrawn"
            elif job in self._cancelled:
                why = "cancel message"
            elif time.time() > deadline:
                why = "deadline"
            if why:
                break
        self._on_job(job, started, time.perf_counter(), why)
        return None if why else job
