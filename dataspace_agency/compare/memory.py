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


def tree_cpu_seconds(pid: int | None = None) -> float:
    """User plus system CPU seconds used so far by ``pid`` and its descendants (live
    ones: compare two readings over a window in which none exits)."""
    total = 0.0
    for process in _tree(pid or os.getpid()):
        try:
            times = process.cpu_times()
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
        total += times.user + times.system
    return total
