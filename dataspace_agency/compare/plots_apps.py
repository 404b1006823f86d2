"""PNG plots of the application workloads (matplotlib, Agg backend), one point per
backend and style with the spread over repetitions (min–max) as error bars; never bars
on a log axis:

* ``apps_recovery.png``: tasks, from a worker's death to its task being taken again
  (median per run; the p99 as a second marker), log axis (milliseconds to seconds);
* ``apps_wasted.png``: cancel, tool time spent for requesters that had left, linear;
* ``apps_stale.png``: churn, how long the client's view kept a departed provider, log.

:func:`write_plots` returns the file names it wrote (plots with no data are skipped).
``plots.write_plots`` calls it once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # before pyplot: files only, never a window
import matplotlib.pyplot as plt  # noqa: E402

from .axes import plain_log_axis  # noqa: E402
from .report_apps import figure, rows  # noqa: E402

MARKERS = {"classic": "o", "facts": "s"}
COLOURS = {"classic": "#3a7bd5", "facts": "#d5573a"}


def _points(ax: Any, groups: dict, labels: dict, name: str, second: str | None,
            second_label: str) -> None:
    """One point (median over runs, min–max bars) per (backend, style) row."""
    names = []
    drawn: set[str] = set()
    for index, ((backend, style), runs) in enumerate(groups.items()):
        names.append(f"{labels.get(backend, backend)}\n{style}")
        summary = figure(runs, name)
        if summary is None:
            continue
        ax.errorbar([index], [summary.median],
                    yerr=[[summary.median - summary.low], [summary.high - summary.median]],
                    fmt=MARKERS.get(style, "o"), color=COLOURS.get(style), capsize=4,
                    label=None if style in drawn else f"{style} style (median; bars:"
                                                      " spread over runs)")
        drawn.add(style)
        if second:
            other = figure(runs, second)
            if other is not None:
                ax.plot([index], [other.median], "k_", markersize=14,
                        label=None if "second" in drawn else second_label)
                drawn.add("second")
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=7)
    ax.set_xlim(-0.5, len(names) - 0.5)
    ax.grid(axis="y", which="both", alpha=0.3)
    ax.legend(fontsize=7)


def write_plots(document: dict, out: Path) -> list[str]:
    found = rows(document)
    labels = {name: info["label"] for name, info in document["backends"].items()}
    written = []
    specs = [
        ("tasks", "recovery_ms_median", "recovery_ms_p99", "p99", "apps_recovery.png",
         "ms, death to task taken again (log)",
         "Task market under kills: recovery", True),
        ("cancel", "wasted_work_s", None, "", "apps_wasted.png",
         "s of tool time for requesters gone",
         "Requesters that leave: wasted work", False),
        ("churn", "stale_view_ms_median", "stale_view_ms_p99", "p99", "apps_stale.png",
         "ms a departed provider stayed in view (log)",
         "Discovery under churn: stale view", True),
    ]
    for workload, name, second, second_label, file, unit, title, log in specs:
        groups = found.get(workload)
        if not groups or all(figure(runs, name) is None for runs in groups.values()):
            continue
        fig, ax = plt.subplots(figsize=(8, 5.2))
        _points(ax, groups, labels, name, second, second_label)
        if log:
            ax.set_yscale("log")
            plain_log_axis(ax.yaxis)
        else:
            ax.set_ylim(bottom=0)
        ax.set_ylabel(unit)
        ax.set_title(title)
        fig.tight_layout()
        fig.savefig(out / file, dpi=110, bbox_inches="tight")
        plt.close(fig)
        written.append(file)
    return written
