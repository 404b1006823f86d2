"""What a comparison ran on, and how busy the machine was: recorded in results.json.

* :func:`machine`: OS, CPU model and count, memory, Python, and the versions of every
  package that shapes a figure (ours, syndicate-py, trio, agency, pika, ...); the one
  description of the machine for the comparison and the benchmarks (``compare/bench/``), and
  :func:`summary`, its one line.
* :func:`load`: the load average and the CPU that *other* processes used over a short
  window (everything not in this process's tree), taken before and after a run: on a
  shared machine a figure is only as good as the quiet it was measured in.
"""

from __future__ import annotations

import os
import platform
import time
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import psutil

PACKAGES = ("dataspace-agency", "syndicate-py", "preserves", "trio", "agency", "pika",
            "kombu", "psutil", "matplotlib", "rich")


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def machine() -> dict[str, Any]:
    return {
        "system": platform.platform(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "cpu_model": _cpu_model(),
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "memory_mib": psutil.virtual_memory().total / 2**20,
        "versions": versions(),
    }


def summary(m: dict[str, Any]) -> str:
    """:func:`machine`'s facts in one line, for a benchmark's report."""
    parts = [f"{m['implementation']} {m['python']}", f"{m['cpus']} CPUs"]
    if m.get("cpu_model"):
        parts.append(m["cpu_model"])
    if m.get("memory_mib"):
        parts.append(f"{m['memory_mib'] / 1024:.1f} GiB RAM")
    parts.append(m["system"])
    trio_version = m.get("versions", {}).get("trio")
    if trio_version:
        parts.append(f"trio {trio_version}")
    return ", ".join(parts)


def load(window: float = 0.5) -> dict[str, Any]:
    """Load average, and the CPU used by other processes over ``window`` seconds (percent
    of one core, summed) with the busiest few named."""
    own = {os.getpid(), *(p.pid for p in psutil.Process().children(recursive=True))}
    processes = []
    for process in psutil.process_iter(["pid", "name"]):
        if process.pid in own:
            continue
        try:
            process.cpu_percent(None)  # primes the counter
            processes.append(process)
        except psutil.Error:
            pass
    time.sleep(window)  # the sampling window itself
    busy = []
    for process in processes:
        try:
            busy.append((process.cpu_percent(None), process.info["name"], process.pid))
        except psutil.Error:
            pass
    busy.sort(reverse=True)
    return {
        "at": time.time(),
        "loadavg": list(os.getloadavg()),
        "others_cpu_pct": sum(b[0] for b in busy),
        "busiest": [{"cpu_pct": c, "name": n, "pid": p} for c, n, p in busy[:5] if c > 0],
        "window_s": window,
    }
