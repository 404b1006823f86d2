"""Task market, the classic way: the same code on every backend.

The coordinator (a foreground agent) keeps a registry of enlisted workers and runs one
dispatcher thread per worker. Each dispatcher takes the next pending task and
``request()``s ``work`` from its worker with a timeout that serves as the lease (a
generous bound on a task's duration). The answer is the acknowledgement: the task is
complete. An error or a timeout means the worker is presumed dead: the task goes back
to the front of the queue for another worker (a retry), and that worker is dropped from
the registry. A replacement is enlisted by whoever starts it (the supervisor).
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Any, Callable

from ...classic import ActionError, Agent, action
from .ledger import Ledger


class Worker(Agent):
    """Does one task at a time: ``work`` takes ``duration`` seconds (the simulated tool or
    model call), then records the task in the ledger and answers."""

    def __init__(self, id: str, ledger_path: str) -> None:
        super().__init__(id)
        self._ledger = Ledger(ledger_path)
        self._gone = threading.Event()

    def before_remove(self) -> None:
        self._gone.set()  # removed: stop working, as a dead worker would

    @action
    def work(self, task: int, duration: float) -> int:
        if self._gone.wait(duration):
            raise RuntimeError("removed mid-task")
        self._ledger.record("finished", task, self.id)
        return task


class Coordinator(Agent):
    """Offers ``tasks`` (task id -> duration) to the enlisted workers; see the module
    docstring. ``on_taken(task, worker)`` is called whenever a task is handed out."""

    def __init__(self, id: str, tasks: dict[int, float], lease_s: float,
                 on_taken: Callable[[int, str], None]) -> None:
        super().__init__(id)
        self._tasks = tasks
        self._lease_s = lease_s
        self._on_taken = on_taken
        self._pending = collections.deque(sorted(tasks))
        self._state = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._stopped = False
        self.accepted: dict[int, list[str]] = {}  # task -> workers whose answer came
        self.failures: collections.Counter = collections.Counter()  # error class -> count

    def enlist(self, worker: str) -> None:
        thread = threading.Thread(target=self._dispatch, args=(worker,),
                                  name=f"dispatch-{worker}")
        self._threads.append(thread)
        thread.start()

    def _next_task(self) -> int | None:
        with self._state:
            while not self._pending and not self._stopped and not self.finished():
                self._state.wait()
            return None if self._stopped or self.finished() else self._pending.popleft()

    def _dispatch(self, worker: str) -> None:
        while (task := self._next_task()) is not None:
            self._on_taken(task, worker)
            try:
                self.request({"to": worker, "action": {"name": "work", "args": {
                    "task": task, "duration": self._tasks[task]}}}, timeout=self._lease_s)
            except (ActionError, TimeoutError, RuntimeError) as error:
                with self._state:
                    self.failures[type(error).__name__] += 1
                    self._pending.appendleft(task)  # retried by another worker
                    self._state.notify_all()
                return  # presumed dead: dropped from the registry
            with self._state:
                self.accepted.setdefault(task, []).append(worker)
                self._state.notify_all()

    def finished(self) -> bool:
        return len(self.accepted) == len(self._tasks)

    def wait_finished(self, timeout: float) -> bool:
        with self._state:
            return self._state.wait_for(self.finished, timeout)

    def stop(self, timeout: float) -> None:
        with self._state:
            self._stopped = True
            self._state.notify_all()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def describe(self) -> dict[str, Any]:
        return {"failures": dict(self.failures)}
