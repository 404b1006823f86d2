"""Memory and CPU of a backend: summed over every process of it.

A backend's processes are the measuring process and all of its descendants (agency's
Manager and pool processes, MultiprocessQueueSpace's children); a RabbitMQ broker is not
a descendant (the runner starts it, or it is external), so it is excluded and measured
apart with :func:`tree_memory` on its own pid.

RSS counts shared pages once per process (so it overstates a many-process backend); PSS
divides each shared page among the processes sharing it (so the sum is a fair total).
psutil reads both (PSS from ``/proc/<pid>/smaps_rollup``): a well-kept library instead
of hand-parsing /proc, and it also walks the process tree and reads CPU times.

This module imports nothing from the package: ``agency_reference.py`` (a standalone
script, so that agency's processes do not import this package) loads it by path.
"""

from __future__ import annotations

import os
from typing import Any

import psutil

MIB = 1024 * 1024


def _tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    try:
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return [root]


def tree_memory(pid: int | None = None) -> dict[str, Any]:
    """RSS and PSS in MiB summed over ``pid`` (default: this process) and its
    descendants, and how many processes that is. Processes that exit meanwhile are
    skipped; PSS is None where the kernel does not offer it."""
    rss = 0
    pss: int | None = 0
    count = 0
    for process in _tree(pid or os.getpid()):
        try:
            info = process.memory_full_info()
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
        except psutil.AccessDenied:
            info = process.memory_info()
        count += 1
        rss += info.rss
        if pss is not None:
            pss = pss + info.pss if hasattr(info, "pss") else None
    return {"rss_mib": rss / MIB, "pss_mib": None if pss is None else pss / MIB,
            "processes": count}


def tree_cpu_times(pid: int | None = None) -> dict[int, float]:
    """User plus system CPU seconds used so far by ``pid`` and each of its live
    descendants, by PID (compare two readings with :func:`cpu_between`)."""
    times: dict[int, float] = {}
    for process in _tree(pid or os.getpid()):
        try:
            used = process.cpu_times()
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
        times[process.pid] = used.user + used.system
    return times


def cpu_between(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds used between two readings of :func:`tree_cpu_times` by the processes
    alive at the second; one started in between counts whole. One that exited in between
    is left out: its share of the window is unknown, and subtracting its whole time (as a
    plain sum of the tree did) could make the figure negative when an unrelated child of
    this process ended during the window."""
    return sum(used - before.get(pid, 0.0) for pid, used in after.items())
