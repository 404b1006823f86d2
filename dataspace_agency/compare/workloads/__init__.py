"""The workloads of ``dataspace-agency compare``, one module each, written once against
the ``Space`` API and run on every backend.

Each module has ``NAME``, ``DESCRIPTION``, ``PARAMS`` (profile -> parameters),
``REFERENCE_PARAMS`` (profile -> the parameters for agency 1.6.3, whose 100 ms poll makes
the same counts take minutes; the reference script runs the same scenario with them),
``supports(backend) -> reason | None`` and ``run(ctx, params) -> dict``. ``run`` returns
``{"figures": {name: number | None}, "samples": {name: [seconds, ...]}, "outcome": {...}}``:
figures are what the report tables show, samples the raw timings behind them, outcome
the semantic result (answered or not, which error, what discovery took) as data.

The scale workload's ``agents`` parameter is a list; the runner makes one run (one fresh
process) per count, each with ``agents`` set to that count. A workload with several
programs (the application workloads' styles) has ``variants(backend, params) -> [params,
...]``: one run each.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import statistics
import threading
import time
from dataclasses import dataclass
from typing import Any, Iterator

from ...classic import ActionError
from ..backends import Backend, Options
from ..memory import tree_cpu_times, tree_memory

NAMES = ("round_trip", "throughput", "broadcast", "scale", "failure", "late_join", "state")
# Application workloads under faults (issue 17): run when named, and by default in --full.
APPLICATIONS = ("tasks", "churn", "cancel")


def defaults(profile: str) -> tuple[str, ...]:
    """The workloads a profile runs unless ``--workloads`` names others."""
    return NAMES + APPLICATIONS if profile == "full" else NAMES


def get(name: str) -> Any:
    """The workload module called ``name``; a clear ``ValueError`` if there is none."""
    if name not in NAMES + APPLICATIONS:
        raise ValueError(f"unknown workload {name!r}; known:"
                         f" {', '.join(NAMES + APPLICATIONS)}")
    return importlib.import_module(f".{name}", __package__)


def params_for(workload: Any, profile: str, backend: Backend) -> dict:
    """The parameters ``workload`` runs with on ``backend`` in ``profile``."""
    table = workload.REFERENCE_PARAMS if backend.reference else workload.PARAMS
    if profile not in table:
        raise ValueError(f"unknown profile {profile!r}; known: {', '.join(table)}")
    return {**table[profile], **backend.params.get((profile, workload.NAME), {})}


@dataclass
class Context:
    """What a workload may ask of the backend it runs on (in the worker process)."""

    backend: Backend
    options: Options

    @contextlib.contextmanager
    def space(self) -> Iterator[Any]:
        """A fresh space of this backend, destroyed afterwards."""
        space = self.backend.make(self.options)
        try:
            yield space
        finally:
            space.destroy()

    def kill(self, space: Any, agent_id: str) -> str:
        """Make ``agent_id`` die: SIGKILL its process on process backends (if it has one
        of its own), else remove it from the space. Returns what was done."""
        pid_of = getattr(space, "pid_of", None)
        if self.backend.processes and pid_of is not None:
            pid = pid_of(agent_id)
            if pid != os.getpid():
                os.kill(pid, signal.SIGKILL)
                return "SIGKILL of its process"
        space.remove(agent_id)
        return "removed from the space"

    @staticmethod
    def memory() -> dict:
        return tree_memory()

    @staticmethod
    def cpu_times() -> dict[int, float]:
        return tree_cpu_times()


def request_in_background(me: Any, message: dict, timeout: float,
                          name: str) -> tuple[threading.Thread, dict]:
    """Start ``me.request(message)`` on a thread of its own (so that the workload can act
    while it waits); returns the started thread and the dict it fills: ``value`` and
    ``error`` None, or ``error`` (the exception's class name) and ``message``; and ``at``,
    the ``time.perf_counter()`` when the request returned."""
    result: dict[str, Any] = {}

    def ask() -> None:
        try:
            result["value"] = me.request(message, timeout=timeout)
            result["error"] = None
        except (ActionError, TimeoutError) as exc:
            result["error"] = type(exc).__name__
            result["message"] = str(exc)
        result["at"] = time.perf_counter()

    thread = threading.Thread(target=ask, name=name)
    thread.start()
    return thread, result


def percentile(samples: list[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile (0 < q <= 100) of non-empty ``samples``."""
    ordered = sorted(samples)
    rank = max(1, -(-int(q * len(ordered)) // 100))  # ceil(q/100 * n), at least 1
    return ordered[min(rank, len(ordered)) - 1]


def latency_figures(prefix: str, samples: list[float], scale: float = 1e6) -> dict:
    """``{prefix}_median``, ``_p90``, ``_p99`` of ``samples`` (seconds) times ``scale``."""
    if not samples:
        return {f"{prefix}_median": None, f"{prefix}_p90": None, f"{prefix}_p99": None}
    return {f"{prefix}_median": statistics.median(samples) * scale,
            f"{prefix}_p90": percentile(samples, 90) * scale,
            f"{prefix}_p99": percentile(samples, 99) * scale}
