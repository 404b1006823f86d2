"""Scale: add K idle agents; time per add, memory, idle CPU.

One run per K (the runner makes one fresh process per count). Measured:

* ``add_ms``: each ``space.add()`` timed on its own (median, p90, p99) and the mean;
* memory of the backend's processes once all K are in and a request to the last one was
  answered (so every add has really finished): RSS and PSS summed over the measuring
  process and all its descendants (agents' processes, agency's Manager), in MiB, with
  the empty space's figures subtracted for the per-agent cost (``*_per_agent_kib``);
* ``idle_cpu_pct``: CPU used by those processes over ``idle_s`` seconds in which nobody
  sends anything (percent of one core): what polling costs. The wait is the measuring
  window itself, not a stand-in for synchronisation.
"""

from __future__ import annotations

import gc
import statistics
import time
from typing import Any

from ..agents import Driver, Idle
from ..memory import cpu_between
from . import Context, latency_figures

NAME = "scale"
DESCRIPTION = "add K agents: time per add, memory (RSS, PSS), idle CPU"
PARAMS = {
    "tiny": {"agents": [5, 20], "idle_s": 0.2},
    "quick": {"agents": [10, 100, 1_000], "idle_s": 0.5},
    "full": {"agents": [10, 100, 1_000, 10_000], "idle_s": 1.0},
}
REFERENCE_PARAMS = {
    "tiny": {"agents": [3], "idle_s": 0.2},
    "quick": {"agents": [10], "idle_s": 0.5},
    "full": {"agents": [10, 50], "idle_s": 1.0},
}
TIMEOUT_S = 60.0


def supports(backend: Any) -> str | None:
    return None


def run(ctx: Context, params: dict) -> dict:
    k = int(params["agents"])
    gc.collect()
    with ctx.space() as space:
        me = space.add_foreground(Driver, "driver")
        gc.collect()
        empty = ctx.memory()
        clock = time.perf_counter
        adds = []
        for i in range(k):
            start = clock()
            space.add(Idle, f"idle-{i}")
            adds.append(clock() - start)
        # Every add has finished: the last agent answers.
        me.request({"to": f"idle-{k - 1}", "action": {"name": "help", "args": {}}},
                   timeout=TIMEOUT_S)
        gc.collect()
        full = ctx.memory()
        cpu_before, wall_before = ctx.cpu_times(), clock()
        time.sleep(params["idle_s"])  # the idle window being measured
        idle_cpu = cpu_between(cpu_before, ctx.cpu_times())
        idle_wall = clock() - wall_before
    figures = latency_figures("add_ms", adds, scale=1e3)
    figures.update({
        "add_ms_mean": statistics.fmean(adds) * 1e3,
        "rss_mib": full["rss_mib"], "pss_mib": full["pss_mib"],
        "processes": full["processes"],
        "rss_per_agent_kib": (full["rss_mib"] - empty["rss_mib"]) * 1024 / k,
        "pss_per_agent_kib": (None if full["pss_mib"] is None or empty["pss_mib"] is None
                              else (full["pss_mib"] - empty["pss_mib"]) * 1024 / k),
        "idle_cpu_pct": 100 * idle_cpu / idle_wall,
    })
    return {"figures": figures, "samples": {"add_s": adds},
            "outcome": {"agents": k, "empty": empty, "full": full}}
