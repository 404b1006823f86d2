"""Tasks: a task market under kills. What is lost, what is done twice, how soon a dead
worker's task is taken again.

A coordinator (a foreground agent, in the measuring process) offers ``tasks`` tasks of
seeded durations to ``workers`` workers (``add()``ed: a process each on process
backends). On a seeded schedule, ``kills`` of the tasks get their worker killed while it
works on them (``kill_at`` of the way through): ``SIGKILL`` of its process, or
``remove()`` in process; a replacement worker is added at once (and, in the classic
style, enlisted with the coordinator). Run in two styles (``apps/tasks_*.py``): classic
(requests with a timeout as the lease, retry elsewhere) and facts (assignments as facts,
presence as the failure detector).

Figures, counted from the ledger each worker appends to when it finishes a task (an
independent tally: a file, outside every messaging path): ``completed`` (tasks finished
at least once), ``lost`` (never finished by the end), ``duplicated`` (finished more than
once), ``recovery_ms`` median and p99 (from a kill to the dead worker's task being taken
again), ``makespan_s`` (from the first hand-out until every task was acknowledged).
"""

from __future__ import annotations

import os
import random
import statistics
import tempfile
import threading
import time
from typing import Any

from ..apps import faults, style_lines, style_module
from ..apps.ledger import Ledger
from . import Context, percentile

NAME = "tasks"
DESCRIPTION = "a task market under seeded kills: lost, duplicated, recovery time"
PARAMS = {
    "tiny": {"tasks": 12, "workers": 3, "kills": 2, "min_s": 0.02, "max_s": 0.08,
             "kill_at": 0.5, "lease_s": 0.5, "seed": 1, "timeout_s": 30.0},
    "quick": {"tasks": 40, "workers": 4, "kills": 4, "min_s": 0.02, "max_s": 0.1,
              "kill_at": 0.5, "lease_s": 0.5, "seed": 1, "timeout_s": 60.0},
    "full": {"tasks": 200, "workers": 8, "kills": 16, "min_s": 0.05, "max_s": 0.5,
             "kill_at": 0.5, "lease_s": 1.5, "seed": 1, "timeout_s": 300.0},
}
REFERENCE_PARAMS = PARAMS
MECHANISM = {
    "classic": "request() with a timeout as the lease ({lease_s} s); on an error or a"
               " timeout the task is retried on another worker and the worker dropped"
               " from the coordinator's registry; replacements enlisted by the supervisor",
    "facts": "assignments as facts `<assign task worker d>`, completion as `<done task"
             " worker>`; workers found by their presence facts, a dead worker's task"
             " reassigned when its presence goes; no timeout",
}


def supports(backend: Any) -> str | None:
    if backend.reference:
        # agency 1.6.3 runs background agents on one shared process pool: a SIGKILLed
        # agent breaks the pool (BrokenProcessPool), so no worker could be killed and
        # replaced; and these agents are not written against agency's API.
        return ("not on agency 1.6.3: its agents share one process pool, which a"
                " SIGKILL breaks, so a killed agent cannot be replaced")
    return None


def variants(backend: Any, params: dict) -> list[dict]:
    """One run per style: facts only on dataspace backends (in assertion mode, since the
    adapter's mode does not touch facts)."""
    styles = ["classic"]
    if backend.kind == "dataspace" and backend.name != "dataspace-message":
        styles.append("facts")
    return [{**params, "style": style} for style in styles]


def schedule(params: dict) -> tuple[dict[int, float], dict[int, float]]:
    """The seeded plan: task -> duration, and task -> when into its work its worker is
    killed (seconds). The same seed gives the same plan."""
    rng = random.Random(params["seed"])
    durations = {t: round(rng.uniform(params["min_s"], params["max_s"]), 4)
                 for t in range(params["tasks"])}
    doomed = sorted(rng.sample(range(params["tasks"]), params["kills"]))
    return durations, {t: durations[t] * params["kill_at"] for t in doomed}


class Supervisor:
    """Kills the worker of each doomed task while it works on it (the first time the task
    is handed out), then adds a replacement; records kills and hand-outs."""

    def __init__(self, ctx: Context, space: Any, kill_after: dict[int, float],
                 start_worker: Any) -> None:
        self._ctx, self._space = ctx, space
        self._kill_after = dict(kill_after)
        self._start_worker = start_worker
        self._lock = threading.Lock()
        self._timers: list[threading.Thread] = []
        self.taken: list[tuple[float, int, str]] = []  # (when, task, worker)
        self.kills: list[dict] = []
        self.first_taken: float | None = None
        self._next_id = 0
        self.closed = False

    def new_worker(self) -> None:
        with self._lock:
            worker, self._next_id = f"worker-{self._next_id}", self._next_id + 1
        self._start_worker(worker)

    def on_taken(self, task: int, worker: str) -> None:
        now = time.perf_counter()
        with self._lock:
            self.taken.append((now, task, worker))
            if self.first_taken is None:
                self.first_taken = now
            delay = self._kill_after.pop(task, None)
            if delay is None or self.closed:
                return
            timer = threading.Thread(target=self._kill, args=(task, worker, now + delay),
                                     name=f"kill-{worker}")
            self._timers.append(timer)
        timer.start()

    def _kill(self, task: int, worker: str, at: float) -> None:
        time.sleep(max(0.0, at - time.perf_counter()))  # the scenario's own delay
        killed_at, wall = time.perf_counter(), time.time()  # wall: the ledger's clock
        try:
            how = faults.depart(self._ctx, self._space, worker, crash=True)
        except ValueError:  # it had gone already
            how = "gone already"
        self.kills.append({"task": task, "worker": worker, "at": killed_at, "wall": wall,
                           "how": how})
        if not self.closed:
            self.new_worker()

    def close(self) -> None:
        with self._lock:
            self.closed = True
            timers = list(self._timers)
        for timer in timers:
            timer.join(30)

    def recoveries(self) -> list[float]:
        """Seconds from each kill to the killed worker's task being taken again."""
        found = []
        for kill in self.kills:
            again = [when for when, task, worker in self.taken
                     if task == kill["task"] and when > kill["at"]]
            if again:
                found.append(min(again) - kill["at"])
        return found


def run(ctx: Context, params: dict) -> dict:
    style = params.get("style", "classic")
    module = style_module("tasks", style)
    durations, kill_after = schedule(params)
    with tempfile.TemporaryDirectory(prefix="dsa-tasks-") as folder:
        ledger = Ledger(params.get("ledger") or os.path.join(folder, "ledger"))
        with ctx.space() as space:
            supervisor: Supervisor
            if style == "classic":
                coordinator = None

                def start_worker(worker: str) -> None:
                    space.add(module.Worker, worker, ledger.path)
                    if coordinator is not None:
                        coordinator.enlist(worker)
                supervisor = Supervisor(ctx, space, kill_after, start_worker)
                coordinator = space.add_foreground(
                    module.Coordinator, "coordinator", durations, params["lease_s"],
                    supervisor.on_taken)
                for _ in range(params["workers"]):
                    supervisor.new_worker()
                done = coordinator.wait_finished(params["timeout_s"])
                ended = time.perf_counter()
                supervisor.close()
                coordinator.stop(30)
            else:
                supervisor = Supervisor(
                    ctx, space, kill_after,
                    lambda worker: space.add(module.Worker, worker, ledger.path))
                coordinator = space.add_foreground(module.Coordinator, "coordinator",
                                                   durations, supervisor.on_taken)
                for _ in range(params["workers"]):
                    supervisor.new_worker()
                done = coordinator.run(params["timeout_s"])
                ended = time.perf_counter()
                supervisor.close()
        finished = ledger.entries("finished")
    return figures_from(params, style, durations, finished, coordinator.accepted,
                        supervisor, done, ended, coordinator.describe())


def figures_from(params: dict, style: str, durations: dict,
                 finished: list[list], accepted: dict, supervisor: Supervisor,
                 done: bool, ended: float, described: dict) -> dict:
    times: dict[int, int] = {t: 0 for t in durations}
    for _kind, task, _worker, _when in finished:
        times[task] += 1
    recovery = supervisor.recoveries()
    # A kill is timed from the hand-out; on a busy machine it can land after its worker
    # had finished the task (by the ledger's clock), and then nothing needs recovering.
    done_at = {(task, worker): when for _kind, task, worker, when in finished}
    late = [kill for kill in supervisor.kills
            if done_at.get((kill["task"], kill["worker"]), kill["wall"]) < kill["wall"]]
    start = supervisor.first_taken or ended
    figures = {
        "completed": sum(1 for n in times.values() if n >= 1),
        "lost": sum(1 for n in times.values() if n == 0),
        "duplicated": sum(1 for n in times.values() if n > 1),
        "recovery_ms_median": statistics.median(recovery) * 1e3 if recovery else None,
        "recovery_ms_p99": percentile(recovery, 99) * 1e3 if recovery else None,
        "makespan_s": ended - start,
        "kills": len(supervisor.kills),
    }
    return {"figures": figures, "samples": {"recovery_s": recovery},
            "outcome": {"style": style, "all_acknowledged": done,
                        "finished_times": {str(t): n for t, n in times.items()},
                        "acknowledged": {str(t): w for t, w in accepted.items()},
                        "kills": [{k: v for k, v in kill.items() if k not in ("at", "wall")}
                                  for kill in supervisor.kills],
                        "late_kills": len(late),
                        "mechanism": MECHANISM[style].format(**params),
                        "agent_loc": style_lines(NAME, style), **described}}
