"""Task market in the dataspace's idiom: facts and observers.

The coordinator learns who the workers are from their presence facts ``<agent id>``
(the adapter asserts them; no registry, no enlisting) and hands a task to an idle
worker by asserting ``<assign task worker duration>``. The worker observes its
assignments, does the work and asserts ``<done task worker>``. When a worker dies its
presence fact goes, and the coordinator puts its task back at once: no lease, no
timeout, no retry logic.
"""

from __future__ import annotations

import collections
import queue
import threading
import time
from typing import Any, Callable

from preserves import Record, Symbol
from syndicate import patterns as P

from ...classic import Agent, during
from .ledger import Ledger

WORKER_PREFIX = "worker-"


class Worker(Agent):
    """Works on each ``<assign task me duration>``, then asserts ``<done task me>``."""

    def __init__(self, id: str, ledger_path: str) -> None:
        super().__init__(id)
        self._ledger = Ledger(ledger_path)
        self._gone = threading.Event()

    def before_remove(self) -> None:
        self._gone.set()  # removed: stop working, as a dead worker would

    @during(P.rec("assign", P.CAPTURE, P.CAPTURE, P.CAPTURE))
    def assigned(self, task: int, worker: str, duration: float) -> None:
        if worker == self.id:  # a reaction must not block: work on a thread
            threading.Thread(target=self._work, args=(task, duration)).start()

    def _work(self, task: int, duration: float) -> None:
        if self._gone.wait(duration):
            return
        self._ledger.record("finished", task, self.id)
        self.publish(Record(Symbol("done"), [task, self.id]))


class Coordinator(Agent):
    """Assigns ``tasks`` (task id -> duration) to present idle workers; see the module
    docstring. Observers feed events to :meth:`run`, which decides on one thread."""

    def __init__(self, id: str, tasks: dict[int, float],
                 on_taken: Callable[[int, str], None]) -> None:
        super().__init__(id)
        self._tasks = tasks
        self._on_taken = on_taken
        self._events: queue.Queue = queue.Queue()
        self.accepted: dict[int, list[str]] = {}  # task -> workers that reported it done

    @during(P.rec("agent", P.CAPTURE))
    def present(self, agent_id: str) -> Any:
        if agent_id.startswith(WORKER_PREFIX):
            self._events.put(("joined", agent_id, None))
            return lambda: self._events.put(("gone", agent_id, None))

    @during(P.rec("done", P.CAPTURE, P.CAPTURE))
    def done(self, task: int, worker: str) -> None:
        self._events.put(("done", worker, task))

    def run(self, timeout: float) -> bool:
        """Hand out every task; True once all are done, False at the timeout."""
        pending = collections.deque(sorted(self._tasks))
        idle: collections.deque = collections.deque()
        holding: dict[str, tuple[int, Any]] = {}  # worker -> (task, its assign fact)
        deadline = time.monotonic() + timeout
        while len(self.accepted) < len(self._tasks):
            try:
                kind, worker, task = self._events.get(timeout=deadline - time.monotonic())
            except (queue.Empty, ValueError):
                return False
            if kind == "joined":
                idle.append(worker)
            elif kind == "gone":
                if worker in idle:
                    idle.remove(worker)
                if worker in holding:
                    lost, fact = holding.pop(worker)
                    self.retract(fact)
                    if lost not in self.accepted:
                        pending.appendleft(lost)
            elif holding.get(worker, (None,))[0] == task:  # done
                self.accepted.setdefault(task, []).append(worker)
                self.retract(holding.pop(worker)[1])
                idle.append(worker)
            while pending and idle:
                worker, task = idle.popleft(), pending.popleft()
                holding[worker] = (task, self.publish(Record(
                    Symbol("assign"), [task, worker, self._tasks[task]])))
                self._on_taken(task, worker)
        return True

    def describe(self) -> dict[str, Any]:
        return {}
