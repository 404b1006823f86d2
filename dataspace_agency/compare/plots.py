"""PNG plots from a results document (matplotlib, Agg backend: no display needed).

* ``latency.png``: request round-trip median per backend, log scale, with the spread
  over repetitions (min–max) as error bars, and p99 as a marker;
* ``throughput.png``: one-way messages received per second per backend, log scale;
* ``scale.png``: memory (PSS, summed over the backend's processes) and add() time
  against the number of agents, log-log, one line per backend;
* ``failure.png``: time from the responder's death to the requester's error, log scale,
  each bar labelled with the error it got.

:func:`write_plots` returns the file names it wrote (plots with no data are skipped).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # before pyplot: files only, never a window
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import ScalarFormatter  # noqa: E402

from . import plots_apps  # noqa: E402
from .report import aggregate  # noqa: E402


def _bars(ax: Any, names: list[str], summaries: list[Any], labels: dict) -> None:
    medians = [s.median for s in summaries]
    low = [s.median - s.low for s in summaries]
    high = [s.high - s.median for s in summaries]
    positions = range(len(names))
    ax.bar(positions, medians, yerr=[low, high], capsize=4,
           color=["#888888" if n.startswith("agency") else "#3a7bd5" for n in names])
    ax.set_xticks(list(positions), [labels.get(n, n) for n in names], rotation=30,
                  ha="right", fontsize=8)
    ax.set_yscale("log")
    ax.grid(axis="y", which="both", alpha=0.3)


def _per_backend(groups: dict, workload: str, figure: str, order: list[str]) -> tuple:
    names, summaries = [], []
    for backend in order:
        summary = groups.get((workload, backend, ""), {}).get(figure)
        if summary is not None:
            names.append(backend)
            summaries.append(summary)
    return names, summaries


def write_plots(document: dict, out: Path) -> list[str]:
    groups = aggregate(document)
    labels = {name: info["label"] for name, info in document["backends"].items()}
    order = list(document["backends"])
    written = []

    names, summaries = _per_backend(groups, "round_trip", "rt_us_median", order)
    if names:
        fig, ax = plt.subplots(figsize=(8, 4.5))
        _bars(ax, names, summaries, labels)
        p99 = [groups[("round_trip", n, "")].get("rt_us_p99") for n in names]
        ax.plot([i for i, s in enumerate(p99) if s], [s.median for s in p99 if s], "k_",
                markersize=14, label="p99")
        ax.set_ylabel("µs per request() (log)")
        ax.set_title("Request round trip, sequential (median; bars: spread; –: p99)")
        ax.legend()
        written.append(_save(fig, out, "latency.png"))

    names, summaries = _per_backend(groups, "throughput", "messages_per_s", order)
    if names:
        fig, ax = plt.subplots(figsize=(8, 4.5))
        _bars(ax, names, summaries, labels)
        ax.set_ylabel("messages received per second (log)")
        ax.set_title("One-way throughput, N messages to one agent")
        written.append(_save(fig, out, "throughput.png"))

    scale = {}
    for (workload, backend, case), figures in groups.items():
        if workload == "scale":
            scale.setdefault(backend, []).append((int(case[2:]), figures))
    if scale:
        fig, (mem_ax, add_ax) = plt.subplots(1, 2, figsize=(11, 4.5))
        # tab20 rather than the default 10-colour cycle: a full run has 11 backends, and
        # the 11th would share the 1st one's colour. The reference is drawn dashed.
        palette = plt.get_cmap("tab20").colors
        for index, backend in enumerate(order):
            points = sorted(scale.get(backend, []), key=lambda p: p[0])
            if not points:
                continue
            ks = [k for k, _ in points]
            style = dict(color=palette[index % len(palette)], marker="o",
                         linestyle="--" if backend.startswith("agency") else "-",
                         label=labels.get(backend, backend))
            memory = [(f.get("pss_mib") or f.get("rss_mib")) for _, f in points]
            mem_ax.plot(ks, [s.median if s else None for s in memory], **style)
            adds = [f.get("add_ms_median") for _, f in points]
            add_ax.plot(ks, [s.median if s else None for s in adds], **style)
        for ax, title, unit in ((mem_ax, "Memory, all processes (PSS)", "MiB"),
                                (add_ax, "Time per add()", "ms, median")):
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.xaxis.set_major_formatter(ScalarFormatter())
            ax.yaxis.set_major_formatter(ScalarFormatter())
            ax.set_xlabel("agents")
            ax.set_ylabel(unit)
            ax.set_title(title)
            ax.grid(which="both", alpha=0.3)
        add_ax.legend(fontsize=7)
        written.append(_save(fig, out, "scale.png"))

    names, summaries = _per_backend(groups, "failure", "detect_ms", order)
    if names:
        fig, ax = plt.subplots(figsize=(8, 4.5))
        _bars(ax, names, summaries, labels)
        errors = {}
        for run in document["runs"]:
            if run.get("ok") and run["workload"] == "failure":
                errors.setdefault(run["backend"], set()).add(run["outcome"]["error"] or
                                                             "answered")
        for i, (name, summary) in enumerate(zip(names, summaries)):
            ax.annotate("/".join(sorted(errors.get(name, ()))), (i, summary.median),
                        ha="center", va="bottom", fontsize=7)
        ax.set_ylabel("ms from the death to the error (log)")
        ax.set_title("Failure detection: the responder dies mid-request")
        written.append(_save(fig, out, "failure.png"))
    return written + plots_apps.write_plots(document, out)  # issue 17's workloads


def _save(fig: Any, out: Path, name: str) -> str:
    fig.tight_layout()
    fig.savefig(out / name, dpi=110)
    plt.close(fig)
    return name
