"""PNG plots from a results document (matplotlib, Agg backend: no display needed).

* ``latency.png``: request round trip per backend: the median over repetitions as a dot,
  the spread (min–max) as an error bar, p99 as a cross; log axis;
* ``throughput.png``: one-way messages received per second per backend, the same way;
* ``scale.png``: memory (PSS, summed over the backend's processes) and add() time
  against the number of agents, log-log, one line per backend;
* ``failure.png``: time from the responder's death to the requester's error, each point
  labelled with the error it got, each backend's request timeout drawn beside it.

Values spanning orders of magnitude go on log axes, so they are drawn as points, never
bars (a bar's height on a log axis depends on an arbitrary baseline). Every backend has
one colour in every plot (:data:`COLOURS`: blues for the dataspace, warm colours for
queues, greys for agency, the reference), and every plot has a legend.

:func:`write_plots` returns the file names it wrote (plots with no data are skipped); it
is a list of plot functions, one per file, so that a new plot is one more entry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import matplotlib

matplotlib.use("Agg")  # before pyplot: files only, never a window
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from . import plots_apps  # noqa: E402
from .axes import plain_log_axis  # noqa: E402
from .figures import aggregate  # noqa: E402

COLOURS = {
    "dataspace-assertion": "#1f4e9c",
    "dataspace-message": "#5b9be6",
    "remote-dataspace": "#6a3d9a",
    "remote-dataspace-processes": "#b48ad6",
    "queue": "#e6730f",
    "multiprocess-queue": "#a6761d",
    "amqp": "#2ca02c",
    "agency-local": "#3c3c3c",
    "agency-local-nolog": "#8c8c8c",
    "agency-amqp": "#000000",
    "agency-amqp-nolog": "#b8b8b8",
}
# Backends added later get these, in order (none of them a grey or a blue above).
_SPARE = ("#d62728", "#17becf", "#e377c2", "#bcbd22", "#8c564b")


def colour(backend: str, order: list[str]) -> str:
    """The backend's colour, the same in every plot."""
    if backend in COLOURS:
        return COLOURS[backend]
    spares = [b for b in order if b not in COLOURS]
    return _SPARE[spares.index(backend) % len(_SPARE)] if backend in spares else _SPARE[0]


def _dots(ax: Any, names: list[str], summaries: list[Any], labels: dict,
          order: list[str]) -> None:
    """One dot per backend (median) with its min–max spread as an error bar; log axis."""
    for i, (name, summary) in enumerate(zip(names, summaries)):
        ax.errorbar([i], [summary.median],
                    yerr=[[summary.median - summary.low], [summary.high - summary.median]],
                    fmt="o", markersize=8, capsize=5, color=colour(name, order),
                    label=labels.get(name, name))
    ax.set_xticks(range(len(names)), [labels.get(n, n) for n in names], rotation=30,
                  ha="right", fontsize=8)
    ax.set_xlim(-0.6, len(names) - 0.4)
    ax.set_yscale("log")
    plain_log_axis(ax.yaxis)
    ax.grid(axis="y", which="both", alpha=0.3)


def _legend(ax: Any, extra: list[Line2D] | None = None) -> None:
    """The legend, outside the axes on the right: it never hides a point."""
    handles, texts = ax.get_legend_handles_labels()
    for handle in extra or []:
        handles.append(handle)
        texts.append(handle.get_label())
    ax.legend(handles, texts, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1),
              borderaxespad=0)


def _per_backend(groups: dict, workload: str, figure: str, order: list[str]) -> tuple:
    names, summaries = [], []
    for backend in order:
        summary = groups.get((workload, backend, ""), {}).get(figure)
        if summary is not None:
            names.append(backend)
            summaries.append(summary)
    return names, summaries


def _dot_plot(groups: dict, labels: dict, order: list[str], workload: str, figure: str,
              ylabel: str, title: str,
              height: float = 4.8) -> tuple[Any, Any, list[str]] | None:
    """A figure with one dot per backend for ``figure`` of ``workload`` (None: no data);
    returns the figure, its axes and the backends in it."""
    names, summaries = _per_backend(groups, workload, figure, order)
    if not names:
        return None
    fig, ax = plt.subplots(figsize=(10, height))
    _dots(ax, names, summaries, labels, order)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    return fig, ax, names


def _finished(made: tuple[Any, Any, list[str]] | None,
              draw: Callable[[Any, list[str]], None] | None = None) -> Any:
    """The figure of a dot plot (None: no data), after ``draw(ax, names)`` added to it,
    with its legend."""
    if made is None:
        return None
    fig, ax, names = made
    if draw is not None:
        draw(ax, names)
    _legend(ax)
    return fig


def latency(document: dict, groups: dict, labels: dict, order: list[str]) -> Any:
    def p99(ax: Any, names: list[str]) -> None:
        found = [groups[("round_trip", n, "")].get("rt_us_p99") for n in names]
        ax.plot([i for i, s in enumerate(found) if s], [s.median for s in found if s], "kx",
                markersize=7, label="p99")

    return _finished(_dot_plot(groups, labels, order, "round_trip", "rt_us_median",
                               "µs per request() (log scale)",
                               "Request round trip, sequential: median (dot), min–max over"
                               " repetitions (bar), p99 (×)"), p99)


def throughput(document: dict, groups: dict, labels: dict, order: list[str]) -> Any:
    return _finished(_dot_plot(groups, labels, order, "throughput", "messages_per_s",
                               "messages received per second (log scale)",
                               "One-way throughput, N messages to one agent: median (dot),"
                               " min–max over repetitions (bar)"))


def scale(document: dict, groups: dict, labels: dict, order: list[str]) -> Any:
    points: dict[str, list] = {}
    for (workload, backend, case), figures in groups.items():
        if workload == "scale":
            points.setdefault(backend, []).append((int(case[2:]), figures))
    if not points:
        return None
    fig, (mem_ax, add_ax) = plt.subplots(1, 2, figsize=(13, 5))
    lone = []
    for backend in order:
        runs = sorted(points.get(backend, []), key=lambda p: p[0])
        if not runs:
            continue
        ks = [k for k, _ in runs]
        reference = document["backends"].get(backend, {}).get("reference", False)
        style = dict(color=colour(backend, order), marker="s" if reference else "o",
                     linestyle="--" if reference else "-", label=labels.get(backend, backend))
        memory = [(f.get("pss_mib") or f.get("rss_mib")) for _, f in runs]
        mem_ax.plot(ks, [s.median if s else None for s in memory], **style)
        adds = [f.get("add_ms_median") for _, f in runs]
        add_ax.plot(ks, [s.median if s else None for s in adds], **style)
        if reference and len(ks) == 1:
            lone.append(f"{labels.get(backend, backend)}: K={ks[0]} only")
    for ax, title, unit in ((mem_ax, "Memory, all processes (PSS)", "MiB (log scale)"),
                            (add_ax, "Time per add()", "ms, median (log scale)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        # Agents are counted in powers of ten (10 to 10,000): 200, 300, 500 between them
        # would run into each other along a narrow axis.
        plain_log_axis(ax.xaxis, subs=(1.0,))
        plain_log_axis(ax.yaxis)
        ax.set_xlabel("agents (log scale)")
        ax.set_ylabel(unit)
        ax.set_title(title)
        ax.grid(which="both", alpha=0.3)
    _legend(add_ax)
    if lone:
        # agency runs a process per agent (~134 ms per add()): the harness adds only
        # as many as the profile allows it (backends.py, max_agents).
        fig.text(0.01, 0.01, "Squares, dashed: agency 1.6.3, the reference; "
                 + "; ".join(lone) + " (a process per agent, ~134 ms per add(): larger K"
                 " would take minutes).", fontsize=7, ha="left", va="bottom")
    return fig


def failure(document: dict, groups: dict, labels: dict, order: list[str]) -> Any:
    made = _dot_plot(groups, labels, order, "failure", "detect_ms",
                     "ms from the death to the error (log scale)", "",
                     height=6.5)  # room for the long tick labels below
    if made is None:
        return None
    fig, ax, names = made
    errors: dict[str, set] = {}
    timeouts: dict[str, set] = {}
    for run in document["runs"]:
        if run.get("ok") and run["workload"] == "failure":
            errors.setdefault(run["backend"], set()).add(run["outcome"]["error"] or "answered")
            timeouts.setdefault(run["backend"], set()).add(run["outcome"]["timeout_s"])
    for i, name in enumerate(names):
        for timeout in timeouts.get(name, ()):
            ax.plot([i - 0.3, i + 0.3], [timeout * 1e3] * 2, color="#999999", linewidth=2,
                    linestyle=":")
    # What the requester was told goes under each backend's name: beside the dots, the
    # labels of neighbours at the same height (the timeouts) ran into each other.
    ax.set_xticks(range(len(names)),
                  [f"{labels.get(n, n)}: {'/'.join(sorted(errors.get(n, ())))}" for n in names],
                  rotation=30, ha="right", fontsize=8)
    every = {t for ts in timeouts.values() for t in ts}
    said = (f"dotted: the request timeout, {'/'.join(f'{t:g}' for t in sorted(every))} s"
            " on every backend" if len(every) == 1
            else "dotted: each backend's request timeout; they differ")
    ax.set_title(f"Failure detection: the responder dies mid-request; {said}", fontsize=9)
    timeout_line = Line2D([], [], color="#999999", linewidth=2, linestyle=":",
                          label="request timeout")
    _legend(ax, [timeout_line])
    return fig


# One entry per PNG, in report order: name -> function(document, groups, labels, order)
# returning a figure, or None when the run has no data for it.
PLOTS: dict[str, Callable[..., Any]] = {
    "latency.png": latency,
    "throughput.png": throughput,
    "scale.png": scale,
    "failure.png": failure,
}


def write_plots(document: dict, out: Path) -> list[str]:
    groups = aggregate(document)
    labels = {name: info["label"] for name, info in document["backends"].items()}
    order = list(document["backends"])
    written = []
    for name, plot in PLOTS.items():
        fig = plot(document, groups, labels, order)
        if fig is not None:
            written.append(_save(fig, out, name))
    return written + plots_apps.write_plots(document, out)  # issue 17's workloads


def _save(fig: Any, out: Path, name: str) -> str:
    fig.tight_layout(rect=(0, 0.04, 1, 1))  # room for a note along the bottom
    fig.savefig(out / name, dpi=110, bbox_inches="tight")  # rotated labels reach past the left edge
    plt.close(fig)
    return name
