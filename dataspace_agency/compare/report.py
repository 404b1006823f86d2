"""``report.md`` from a results document: per figure the median over repetitions, the
spread (min–max), and the ratio to the reference (agency 1.6.3's LocalSpace, as
shipped), all from the same run.

:func:`aggregate` groups the ok runs by (workload, backend, case) (the case is
``K=<agents>`` for the scale workload) and summarises each figure; :func:`headline`
computes the goals of issue 7 from those groups; :func:`render` writes the markdown.
A ratio is written as how many times *better* a backend is than the reference
("1,234× faster", "0.5× (slower)"), so that it reads the same for times and rates.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from .backends import REFERENCE

# figure -> (label, unit, better): better is "lower", "higher" or None (not a score).
FIGURES: dict[str, tuple[str, str, str | None]] = {
    "rt_us_median": ("round trip, median", "µs", "lower"),
    "rt_us_p90": ("round trip, p90", "µs", "lower"),
    "rt_us_p99": ("round trip, p99", "µs", "lower"),
    "requests_per_s": ("sequential requests", "/s", "higher"),
    "async_rt_us_median": ("agent-to-agent async round trip, median", "µs", "lower"),
    "async_rt_us_p99": ("agent-to-agent async round trip, p99", "µs", "lower"),
    "messages_per_s": ("one-way messages received", "/s", "higher"),
    "send_per_s": ("one-way messages sent", "/s", "higher"),
    "fanout_ms_median": ("broadcast, all answers back, median", "ms", "lower"),
    "fanout_ms_p99": ("broadcast, all answers back, p99", "ms", "lower"),
    "add_ms_median": ("add(), median", "ms", "lower"),
    "add_ms_mean": ("add(), mean", "ms", "lower"),
    "rss_mib": ("RSS, all processes", "MiB", "lower"),
    "pss_mib": ("PSS, all processes", "MiB", "lower"),
    "processes": ("processes", "", None),
    "rss_per_agent_kib": ("RSS per agent", "KiB", "lower"),
    "pss_per_agent_kib": ("PSS per agent", "KiB", "lower"),
    "idle_cpu_pct": ("idle CPU", "% of a core", "lower"),
    "detect_ms": ("error after the death", "ms", "lower"),
    "waited_ms": ("waited in all", "ms", None),
    "timed_out": ("timed out (share of runs)", "", None),
    "answered": ("answered (share of runs)", "", None),
    "after_join_ms": ("answered after the join", "ms", "lower"),
    "observe_ms": ("one observe, all seen", "ms", "lower"),
    "broadcast_ms": ("broadcast help, all answers", "ms", "lower"),
    "registry_ms": ("space.agents()", "ms", "lower"),
}

# What each workload's table shows, in order.
COLUMNS: dict[str, list[str]] = {
    "round_trip": ["rt_us_median", "rt_us_p90", "rt_us_p99", "async_rt_us_median"],
    "throughput": ["messages_per_s", "send_per_s"],
    "broadcast": ["fanout_ms_median", "fanout_ms_p99"],
    "scale": ["add_ms_median", "rss_mib", "pss_mib", "processes", "pss_per_agent_kib",
              "idle_cpu_pct"],
    "failure": ["detect_ms", "timed_out"],
    "late_join": ["answered", "after_join_ms", "waited_ms"],
    "state": ["observe_ms", "broadcast_ms", "registry_ms"],
}
# The figure each workload's ratio column is taken on.
PRIMARY = {"round_trip": "rt_us_median", "throughput": "messages_per_s",
           "broadcast": "fanout_ms_median", "scale": "add_ms_median",
           # failure: a timeout-bound backend's figure is its configured timeout, so a
           # ratio would only compare timeouts; the table shows the figures instead.
           "failure": None, "late_join": None, "state": "broadcast_ms"}


@dataclass
class Summary:
    median: float
    low: float
    high: float
    n: int


def summarise(values: list[float]) -> Summary | None:
    values = [v for v in values if v is not None]
    if not values:
        return None
    return Summary(statistics.median(values), min(values), max(values), len(values))


def case_of(run: dict) -> str:
    return f"K={run['params']['agents']}" if run["workload"] == "scale" else ""


def aggregate(document: dict) -> dict[tuple[str, str, str], dict[str, Summary]]:
    """(workload, backend, case) -> figure -> Summary, over the ok runs."""
    values: dict[tuple[str, str, str], dict[str, list]] = {}
    for run in document["runs"]:
        if not run.get("ok"):
            continue
        key = (run["workload"], run["backend"], case_of(run))
        for name, value in run.get("figures", {}).items():
            values.setdefault(key, {}).setdefault(name, []).append(value)
    return {key: {name: s for name, vals in figures.items()
                  if (s := summarise(vals)) is not None}
            for key, figures in values.items()}


def advantage(figure: str, value: float, reference: float) -> float | None:
    """How many times better ``value`` is than ``reference`` (>1: better)."""
    better = FIGURES.get(figure, ("", "", None))[2]
    if better is None or not value or not reference:
        return None
    return reference / value if better == "lower" else value / reference


def fmt(value: float | None) -> str:
    if value is None:
        return "–"
    magnitude = abs(value)
    if float(value).is_integer() and magnitude < 1000:
        return str(int(value))
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def fmt_summary(summary: Summary | None) -> str:
    if summary is None:
        return "–"
    if summary.n == 1 or summary.low == summary.high:
        return fmt(summary.median)
    return f"{fmt(summary.median)} ({fmt(summary.low)}–{fmt(summary.high)})"


def fmt_ratio(ratio: float | None) -> str:
    if ratio is None:
        return "–"
    return f"{fmt(ratio)}×" if ratio >= 1 else f"{fmt(ratio)}× (worse)"


def headline(groups: dict) -> list[dict]:
    """Issue 7's goals, each with its measured ratio and whether it is met."""
    def figure(workload: str, backend: str, name: str) -> float | None:
        summary = groups.get((workload, backend, ""), {}).get(name)
        return summary.median if summary else None

    rows = []
    agency_rt = figure("round_trip", REFERENCE, "rt_us_median")
    queue_rt = figure("round_trip", "queue", "rt_us_median")
    queue_tp = figure("throughput", "queue", "messages_per_s")
    for mode in ("assertion", "message"):
        backend = f"dataspace-{mode}"
        rt = figure("round_trip", backend, "rt_us_median")
        if rt and agency_rt:
            ratio = agency_rt / rt
            rows.append({"goal": f"{mode} mode round trip ≥ 1,000× faster than agency"
                                 " LocalSpace", "measured": f"{fmt(ratio)}× faster"
                                 f" ({fmt(rt)} µs vs {fmt(agency_rt)} µs)",
                         "ratio": ratio, "met": ratio >= 1000})
        art = figure("round_trip", backend, "async_rt_us_median")
        if art and agency_rt:
            # agency has no agent-to-agent path without threads: its only round trip.
            ratio = agency_rt / art
            rows.append({"goal": f"{mode} mode agent-to-agent (async) round trip ≥ 1,000×"
                                 " faster than agency LocalSpace's round trip",
                         "measured": f"{fmt(ratio)}× faster ({fmt(art)} µs vs"
                                     f" {fmt(agency_rt)} µs)",
                         "ratio": ratio, "met": ratio >= 1000})
        if rt and queue_rt:
            ratio = rt / queue_rt
            rows.append({"goal": f"{mode} mode round trip within 2× of QueueSpace",
                         "measured": f"{fmt(ratio)}× QueueSpace's time ({fmt(rt)} µs vs"
                                     f" {fmt(queue_rt)} µs)",
                         "ratio": ratio, "met": ratio <= 2})
    tp = figure("throughput", "dataspace-message", "messages_per_s")
    if tp and queue_tp:
        ratio = queue_tp / tp
        rows.append({"goal": "message mode throughput within 1.5× of QueueSpace",
                     "measured": f"QueueSpace {fmt(ratio)}× as fast ({fmt(tp)}/s vs"
                                 f" {fmt(queue_tp)}/s)",
                     "ratio": ratio, "met": ratio <= 1.5})
    return rows


def render(document: dict, plots: list[str] | None = None) -> str:
    from . import report_apps  # it imports this module's helpers
    groups = aggregate(document)
    labels = {name: info["label"] for name, info in document["backends"].items()}
    ran = [name for name, info in document["backends"].items() if not info["skipped"]]
    lines: list[str] = []
    add = lines.append
    m = document["machine"]
    add("# dataspace-agency compare: report")
    add("")
    add(f"* Command: `{' '.join(document['command'])}`")
    add(f"* Created: {document['created']}; profile `{document['profile']}`,"
        f" {document['repeat']} repetition(s), each run in a fresh process;"
        f" {fmt(document.get('duration_s'))} s in all.")
    add(f"* Machine: {m['cpu_model']}, {m['cpus']} CPUs ({m['cpus_usable']} usable),"
        f" {fmt(m['memory_mib'])} MiB; Python {m['python']}; {m['system']}.")
    add("* Versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v))
    for when in ("before", "after"):
        load = document["load"].get(when)
        if load:
            busiest = ", ".join(f"{b['name']} {fmt(b['cpu_pct'])}%" for b in load["busiest"])
            add(f"* Load {when}: load average {', '.join(fmt(x) for x in load['loadavg'])};"
                f" other processes used {fmt(load['others_cpu_pct'])}% of a core"
                + (f" ({busiest})" if busiest else ""))
    if document.get("broker"):
        b = document["broker"]
        add(f"* RabbitMQ: {b.get('source')}; its memory is not in any backend's figures:"
            f" RSS {fmt(b.get('rss_mib'))} MiB, PSS {fmt(b.get('pss_mib'))} MiB at the end.")
    add("")
    add("Each cell: the median over repetitions, with the spread (min–max) in brackets"
        " when it varies. Ratios are against **agency 1.6.3 LocalSpace as shipped**"
        f" (`{REFERENCE}`), from this same run, as \"times better\" (faster, or less).")
    add("")
    rows = headline(groups)
    if rows:
        add("## Headline")
        add("")
        add("| goal | measured | met |")
        add("|---|---|---|")
        for row in rows:
            add(f"| {row['goal']} | {row['measured']} | {'yes' if row['met'] else 'no'} |")
        add("")
    add("## Backends")
    add("")
    add("| backend | what | agents in other processes | skipped |")
    add("|---|---|---|---|")
    for name, info in document["backends"].items():
        add(f"| `{name}` | {info['label']} | {'yes' if info['processes'] else 'no'} |"
            f" {info['skipped'] or ''} |")
    add("")
    if any(document["backends"][n]["reference"] for n in ran):
        add("agency 1.6.3 runs in a process of its own, its agents written against its own"
            " API (`compare/agency_reference.py`). Its thread and process pools are sized"
            " to the workload (`max_workers` = agents + 8) to work around its pool"
            " deadlocks on small machines (with the default 6 threads and 2 processes on 2"
            " CPUs, the third background agent's `add()` never returns). `…-nolog`"
            " backends replace agency's `log()` with a no-op in every agency process (it"
            " costs ~0.56 ms per call even when logging is off). Its request timings"
            " include its 100 ms inbox poll.")
        add("")
    for workload in document["workloads"]:
        cases = sorted({key[2] for key in groups if key[0] == workload},
                       key=lambda c: int(c[2:]) if c else 0)
        columns = [c for c in COLUMNS.get(workload, [])
                   if any(c in groups.get((workload, b, case), {})
                          for b in ran for case in cases)]
        if not cases or not columns:
            continue
        primary = PRIMARY.get(workload)
        add(f"## {workload}: {document['workloads'][workload]}")
        add("")
        header = ["backend"] + (["K"] if workload == "scale" else [])
        header += [f"{FIGURES[c][0]} ({FIGURES[c][1]})" if FIGURES[c][1] else FIGURES[c][0]
                   for c in columns]
        if primary:
            header.append(f"vs agency ({FIGURES[primary][0]})")
        add("| " + " | ".join(header) + " |")
        add("|" + "---|" * len(header))
        for case in cases:
            reference = groups.get((workload, REFERENCE, case), {}).get(primary or "")
            for backend in ran:
                figures = groups.get((workload, backend, case))
                if figures is None:
                    continue
                cells = [labels.get(backend, backend)]
                if workload == "scale":
                    cells.append(case[2:])
                cells += [fmt_summary(figures.get(c)) for c in columns]
                if primary:
                    value = figures.get(primary)
                    cells.append(fmt_ratio(advantage(primary, value.median,
                                                     reference.median))
                                 if value and reference else "–")
                add("| " + " | ".join(cells) + " |")
        add("")
        add(_outcomes(document, workload, labels))
    add(report_apps.section(document))  # tasks, churn, cancel (issue 17)
    failed = [r for r in document["runs"] if not r.get("ok")]
    if failed:
        add("## Runs that failed or were skipped")
        add("")
        for run in failed:
            add(f"* {run['workload']} on `{run['backend']}` (repetition"
                f" {run['repetition'] + 1}, {run['params']}): {run.get('error')}")
        add("")
    if plots:
        add("## Plots")
        add("")
        for plot in plots:
            add(f"![{plot}]({plot})")
            add("")
    return "\n".join(lines).rstrip() + "\n"


def _outcomes(document: dict, workload: str, labels: dict) -> str:
    """The semantic outcomes (as data) of the failure, late-join and state workloads."""
    if workload not in ("failure", "late_join", "state"):
        return ""
    seen: dict[str, list[dict]] = {}
    for run in document["runs"]:
        if run.get("ok") and run["workload"] == workload:
            seen.setdefault(run["backend"], []).append(run["outcome"])
    out = []
    if workload in ("failure", "late_join"):
        out.append("| backend | outcome (every repetition) |")
        out.append("|---|---|")
        for backend, outcomes in seen.items():
            texts = sorted({_describe_outcome(workload, o) for o in outcomes})
            out.append(f"| {labels.get(backend, backend)} | {'; '.join(texts)} |")
    else:
        out.append("| backend | method | complete | knows when done | messages | note |")
        out.append("|---|---|---|---|---|---|")
        for backend, outcomes in seen.items():
            for method, info in outcomes[0]["methods"].items():
                out.append(f"| {labels.get(backend, backend)} | {method} |"
                           f" {'yes' if info['complete'] else 'no'} |"
                           f" {'yes' if info['knows_when_done'] else 'no'} |"
                           f" {info['messages']} | {info['note']} |")
    return "\n".join(out) + "\n"


def _describe_outcome(workload: str, outcome: dict) -> str:
    if workload == "failure":
        return (f"{outcome['how']}: {outcome['error'] or 'answered'}"
                f" (request timeout {outcome['timeout_s']} s)")
    if outcome["answered"]:
        return f"answered ({outcome['value']}) after joining {outcome['join_after_s']} s late"
    return (f"not answered: {outcome['error']} after the {outcome['timeout_s']} s timeout"
            f" (joined {outcome['join_after_s']} s late)")
