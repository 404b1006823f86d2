"""Cancel: requesters that leave while their slow action runs. How much work is done for
nobody, and whether the action learns that its requester has gone.

A tool (a foreground agent, in the measuring process) runs slow jobs, simulated tool or
model calls of ``min_s``..``max_s`` seconds (seeded), all at once. ``requesters``
requesters (``add()``ed: a process each on process backends) each ask for one job; on
the seeded schedule a share ``leave_share`` of them leave part-way through their job
(timed from when the tool started it; ``crash_share`` of those crash: ``SIGKILL``, or
``remove()`` with no goodbye in process; the rest ``remove()``, so their goodbye runs). Two styles (``apps/cancel_*.py``):
classic (``request()`` with a deadline; a leaving requester sends ``cancel``; the tool
checks ``cancelled()``, its cancel list and the deadline between slices) and facts (the
job is a fact the requester holds; the tool works while it stands).

Figures: ``wasted_work_s`` (tool time spent on jobs after their requester had left),
``cancelled_seen`` (jobs stopped because the tool learned the requester had gone),
``never_started`` (jobs of leavers the tool never began: a leaver whose job has not
started within the bound leaves anyway), ``leavers``.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any

from ..agents import Driver
from ..apps import faults, style_lines, style_module
from . import Context
# The same backends (not agency's) and the same styles on them as the tasks workload.
from .tasks import supports, variants  # noqa: F401

NAME = "cancel"
DESCRIPTION = "requesters that leave mid-action: work wasted, cancellations seen"
PARAMS = {
    "tiny": {"requesters": 6, "leave_share": 0.5, "crash_share": 0.5, "min_s": 0.05,
             "max_s": 0.3, "seed": 1, "margin_s": 1.0},
    "quick": {"requesters": 12, "leave_share": 0.5, "crash_share": 0.5, "min_s": 0.05,
              "max_s": 0.5, "seed": 1, "margin_s": 1.0},
    "full": {"requesters": 40, "leave_share": 0.5, "crash_share": 0.5, "min_s": 0.05,
             "max_s": 0.5, "seed": 1, "margin_s": 2.0},
}
REFERENCE_PARAMS = PARAMS
MECHANISM = {
    "classic": "request() carrying a deadline (its timeout, max_s + {margin_s} s); a"
               " requester leaving gracefully sends cancel; the tool checks cancelled(),"
               " its cancel list and the deadline every 10 ms",
    "facts": "the job is a fact `<job id requester d>` held until `<result id v>`; the tool"
             " works while it stands and stops when it goes (checked every 10 ms)",
}


def schedule(params: dict) -> list[dict]:
    """The seeded plan, per requester: its job's duration, and if it leaves, how far
    into the job and whether it crashes. The same seed gives the same plan."""
    rng = random.Random(params["seed"])
    plan = []
    for i in range(params["requesters"]):
        duration = round(rng.uniform(params["min_s"], params["max_s"]), 4)
        leaves = rng.random() < params["leave_share"]
        plan.append({"job": i, "duration": duration,
                     "leave_after": round(duration * rng.uniform(0.1, 0.9), 4)
                     if leaves else None,
                     "crash": leaves and rng.random() < params["crash_share"]})
    return plan


class Jobs:
    """What the tool reports: job -> when it started, and job -> (started, ended, why it
    stopped early or None) once it ended."""

    def __init__(self) -> None:
        self.started: dict[int, float] = {}
        self.done: dict[int, tuple[float, float, str | None]] = {}
        self._changed = threading.Condition()

    def report(self, job: int, started: float, ended: float | None,
               why: str | None) -> None:
        with self._changed:
            if ended is None:
                self.started[job] = started
            else:
                self.done[job] = (started, ended, why)
            self._changed.notify_all()

    def wait_for(self, jobs: set[int], timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: jobs <= set(self.done), timeout)

    def wait_started(self, job: int, timeout: float) -> float | None:
        with self._changed:
            self._changed.wait_for(lambda: job in self.started, timeout)
            return self.started.get(job)


def run(ctx: Context, params: dict) -> dict:
    style = params.get("style", "classic")
    module = style_module("cancel", style)
    plan = schedule(params)
    timeout = params["max_s"] + params["margin_s"]
    jobs = Jobs()
    left: dict[int, float] = {}
    departures: list[dict] = []
    with ctx.space() as space:
        space.add_foreground(module.Tool, "tool", jobs.report, len(plan))
        driver = space.add_foreground(Driver, "driver")
        for step in plan:
            space.add(module.Requester, f"requester-{step['job']}")
        began = time.perf_counter()
        for step in plan:
            driver.send({"to": f"requester-{step['job']}", "action": {"name": "ask", "args": {
                "tool": "tool", "job": step["job"], "duration": step["duration"],
                "timeout": timeout}}})

        def leave(step: dict) -> None:
            """Leave ``leave_after`` into the job as the tool runs it (so that a slow
            backend's delivery does not move the leave earlier in the job)."""
            started = jobs.wait_started(step["job"], timeout + 30)
            at = (started if started is not None else began) + step["leave_after"]
            time.sleep(max(0.0, at - time.perf_counter()))  # the scenario's own delay
            left[step["job"]] = time.perf_counter()
            how = faults.depart(ctx, space, f"requester-{step['job']}", step["crash"])
            departures.append({"job": step["job"], "crash": step["crash"], "how": how})
        leavers = [threading.Thread(target=leave, args=(step,), name=f"leave-{step['job']}")
                   for step in plan if step["leave_after"] is not None]
        for thread in leavers:
            thread.start()
        for thread in leavers:
            thread.join(timeout + 60)
        stayers = {s["job"] for s in plan if s["leave_after"] is None}
        # Every stayer's job ends; a leaver's may never start (withdrawn first): wait
        # for the stayers, then as long as any job could still be running.
        complete = jobs.wait_for(stayers, timeout + 30)
        jobs.wait_for({s["job"] for s in plan}, params["max_s"] + params["margin_s"])
        finished = dict(jobs.done)
    return figures_from(params, style, module, plan, finished, left, departures, complete)


def figures_from(params: dict, style: str, module: Any, plan: list, finished: dict,
                 left: dict, departures: list, complete: bool) -> dict:
    wasted = 0.0
    seen = 0
    for job, leave_at in left.items():
        if job in finished:
            started, ended, why = finished[job]
            wasted += max(0.0, ended - max(started, leave_at))
            seen += why in ("withdrawn", "cancel message")
    figures = {
        "wasted_work_s": wasted,
        "cancelled_seen": seen,
        "never_started": sum(1 for job in left if job not in finished),
        "leavers": len(left),
        "deadline_stops": sum(1 for *_, why in finished.values() if why == "deadline"),
        "work_s": sum(ended - started for started, ended, _ in finished.values()),
    }
    return {"figures": figures, "samples": {},
            "outcome": {"style": style, "stayers_answered": complete,
                        "departures": departures,
                        "jobs": {str(j): [round(s, 6), round(e, 6), why]
                                 for j, (s, e, why) in finished.items()},
                        "left": {str(j): round(at, 6) for j, at in left.items()},
                        "mechanism": MECHANISM[style].format(**params),
                        "agent_loc": style_lines(NAME, style)}}
