"""Requesters that leave, in the dataspace's idiom: a requester asserts ``<job id me
duration>`` and holds it until it sees ``<result id value>``; the tool works on each job
fact while it stands and stops when it goes (the requester left, crashed, or has its
answer). No deadline, no cancel message, no goodbye.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

from preserves import Record, Symbol
from syndicate import patterns as P

from ...classic import Agent, action, during

SLICE_S = 0.01  # the same granularity as the classic tool


class Requester(Agent):
    def __init__(self, id: str) -> None:
        super().__init__(id)
        self._jobs: dict[int, Any] = {}

    @action
    def ask(self, tool: str, job: int, duration: float, timeout: float) -> None:
        self._jobs[job] = self.publish(Record(Symbol("job"), [job, self.id, duration]))

    @during(P.rec("result", P.CAPTURE, P._))
    def answered(self, job: int) -> None:
        if job in self._jobs:
            self.retract(self._jobs.pop(job))


class Tool(Agent):
    """Works on every standing ``<job ...>``; ``on_job`` as in the classic tool."""

    def __init__(self, id: str, on_job: Callable[..., None], concurrency: int) -> None:
        super().__init__(id)
        self._on_job = on_job

    @during(P.rec("job", P.CAPTURE, P._, P.CAPTURE))
    def job(self, job: int, duration: float) -> Callable[[], None]:
        withdrawn = threading.Event()  # a reaction must not block: work on a thread
        threading.Thread(target=self._work, args=(job, duration, withdrawn)).start()
        return withdrawn.set

    def _work(self, job: int, duration: float, withdrawn: threading.Event) -> None:
        started = time.perf_counter()
        self._on_job(job, started, None, None)
        while time.perf_counter() - started < duration:
            if withdrawn.wait(min(SLICE_S, duration - (time.perf_counter() - started))):
                self._on_job(job, started, time.perf_counter(), "withdrawn")
                return
        self._on_job(job, started, time.perf_counter(), None)
        self.publish(Record(Symbol("result"), [job, job]))
