"""Plan a comparison, run every repetition in a fresh worker process, collect results.

:func:`plan` turns (profile, backends, workloads, repeat) into a list of runs: for each
repetition, each workload on each backend (the scale workload once per agent count the
backend allows). Repetitions are interleaved (all of repetition 1, then all of 2, ...),
so that a slow spell on a shared machine spreads over backends instead of hitting one.

:func:`execute` runs them one at a time (the machine has 2 cores: parallel runs would
measure each other), each as ``python -m dataspace_agency.compare.worker`` in a new
process group with a time limit (a run over its limit is ended, its whole group by the
group's id, and recorded as failed), with rich progress bars, and returns the
``results.json`` document (schema in ``docs/compare.md``). Ctrl-C ends the run in
progress (its whole process group) and returns what finished, with ``partial`` saying so.
"""

from __future__ import annotations

import datetime
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from . import backends as backend_registry
from . import workloads as workload_registry
from .backends import Backend, Options
from .machine import load, machine
from .worker import MARK

SCHEMA = "dataspace-agency-compare/1"
PROFILES = ("tiny", "quick", "full")
RUN_TIMEOUT_S = {"tiny": 90.0, "quick": 120.0, "full": 900.0}
DEFAULT_REPEAT = {"tiny": 1, "quick": 2, "full": 3}


@dataclass
class Plan:
    profile: str
    repeat: int
    options: Options
    backends: list[Backend]
    workloads: list[str]
    runs: list[dict] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # backend -> why


def plan(profile: str, backend_names: list[str] | None, workload_names: list[str] | None,
         repeat: int | None, options: Options) -> Plan:
    """The runs to make; unknown names raise ``ValueError`` naming them."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; known: {', '.join(PROFILES)}")
    repeat = DEFAULT_REPEAT[profile] if repeat is None else repeat
    if repeat < 1:
        raise ValueError(f"--repeat must be at least 1, got {repeat}")
    if backend_names:
        chosen = [backend_registry.get(name) for name in backend_names]
    else:
        chosen = [b for b in backend_registry.BACKENDS.values() if profile in b.profiles]
    names = list(workload_names or workload_registry.defaults(profile))
    modules = {name: workload_registry.get(name) for name in names}
    result = Plan(profile, repeat, options, [], names)
    for backend in chosen:
        reason = backend.unavailable(options)
        if reason:
            result.skipped[backend.name] = reason
        else:
            result.backends.append(backend)
    for repetition in range(repeat):
        for name, module in modules.items():
            for backend in result.backends:
                if module.supports(backend):
                    continue
                only = backend.only.get(profile)
                if only is not None and workload_names is None and name not in only:
                    continue
                params = workload_registry.params_for(module, profile, backend)
                counts = params.get("agents")
                if hasattr(module, "variants"):  # one run per program (style)
                    result.runs += [_run(name, backend, variant, repetition)
                                    for variant in module.variants(backend, params)]
                elif isinstance(counts, list):  # scale: one run per count
                    limit = backend.max_agents.get(profile, max(counts))
                    for count in [c for c in counts if c <= limit]:
                        result.runs.append(_run(name, backend, {**params, "agents": count},
                                                repetition))
                else:
                    result.runs.append(_run(name, backend, params, repetition))
    return result


def _run(workload: str, backend: Backend, params: dict, repetition: int) -> dict:
    return {"workload": workload, "backend": backend.name, "params": params,
            "repetition": repetition}


def run_worker(run: dict, options: Options, timeout: float) -> dict:
    """One run in a fresh process; its result dict (``ok: false`` on any failure)."""
    argv = [sys.executable, "-m", "dataspace_agency.compare.worker",
            "--backend", run["backend"], "--workload", run["workload"],
            "--params", json.dumps(run["params"]),
            "--namespace", f"dsa-compare-{os.getpid()}-{time.monotonic_ns()}"]
    if options.amqp_url:
        argv += ["--amqp-url", options.amqp_url]
    started = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               stdin=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except KeyboardInterrupt:
        # Ctrl-C reaches only our process group, not the worker's (start_new_session):
        # end the worker and everything it started, then let the interrupt go on up.
        _end_group(process)
        raise
    except subprocess.TimeoutExpired:
        stdout, stderr = _end_group(process)
        return {"ok": False, "error": f"the run took over {timeout:.0f} s; ended",
                "stderr_tail": stderr[-2000:], "process_s": time.perf_counter() - started}
    process_s = time.perf_counter() - started
    for line in reversed(stdout.splitlines()):
        if line.startswith(MARK):
            result = json.loads(line[len(MARK):])
            result["process_s"] = process_s
            if not result.get("ok"):
                result["stderr_tail"] = stderr[-2000:]
            return result
    return {"ok": False, "error": f"the worker exited with {process.returncode} and no"
                                  " result", "stderr_tail": stderr[-2000:],
            "process_s": process_s}


def _end_group(process: subprocess.Popen) -> tuple[str, str]:
    """SIGKILL a worker's process group (its own: start_new_session), so that nothing it
    started lives on; its output so far."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return process.communicate()


Progress = Callable[[int, int, dict, dict | None], None]


def execute(the_plan: Plan, *, command: list[str] | None = None,
            progress: bool = True, broker: dict | None = None,
            on_result: Progress | None = None) -> dict:
    """Run every planned run; return the results document."""
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn)
    began = time.perf_counter()
    document: dict[str, Any] = {
        "schema": SCHEMA,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "command": command or sys.argv,
        "profile": the_plan.profile,
        "repeat": the_plan.repeat,
        "reference": backend_registry.REFERENCE,
        "machine": machine(),
        "load": {"before": load()},
        "backends": {b.name: _describe(b, None) for b in the_plan.backends},
        "workloads": {name: workload_registry.get(name).DESCRIPTION
                      for name in the_plan.workloads},
        "runs": [],
        "broker": broker,
    }
    for name, reason in the_plan.skipped.items():
        document["backends"][name] = _describe(backend_registry.get(name), reason)
    timeout = RUN_TIMEOUT_S[the_plan.profile]
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, disable=not progress, transient=False) as bars:
        overall = bars.add_task("all runs", total=len(the_plan.runs))
        current = bars.add_task("", total=None)
        try:
            for index, run in enumerate(the_plan.runs):
                bars.update(current, description=f"{run['workload']} on {run['backend']}"
                            f" (repetition {run['repetition'] + 1}/{the_plan.repeat})")
                result = run_worker(run, the_plan.options, timeout)
                record = {**run, **result}
                document["runs"].append(record)
                if on_result is not None:
                    on_result(index, len(the_plan.runs), run, result)
                bars.advance(overall)
            bars.update(current, description="done", total=1, completed=1)
        except KeyboardInterrupt:
            # Ctrl-C: keep what finished, marked partial (report.md says so at the top).
            document["partial"] = {"reason": "interrupted (Ctrl-C)",
                                   "finished": len(document["runs"]),
                                   "planned": len(the_plan.runs)}
    document["load"]["after"] = load()
    document["duration_s"] = time.perf_counter() - began
    return document


def _describe(backend: Backend, skipped: str | None) -> dict:
    return {"label": backend.label, "kind": backend.kind, "reference": backend.reference,
            "processes": backend.processes, "needs_broker": backend.needs_broker,
            "stub_logging": backend.stub_logging, "skipped": skipped}
