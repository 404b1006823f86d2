"""The figures of a comparison, summarised: what each figure is (:data:`FIGURES`), its
median and spread over repetitions (:func:`aggregate`), how many times better one backend
is than another (:func:`advantage`), and how numbers are written (:func:`fmt`).

Shared by the report (``report.py``), its findings (``findings.py``) and the plots
(``plots.py``). :func:`aggregate` also derives per-agent figures (:data:`PER_AGENT`) from
each run's parameters, so that backends run with different numbers of agents can be
compared on equal work.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

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
    "fanout_ms_per_agent": ("broadcast, all answers back, median, per agent", "ms",
                            "lower"),
    "observe_ms_per_agent": ("one observe, all seen, per agent", "ms", "lower"),
    "broadcast_ms_per_agent": ("broadcast help, all answers, per agent", "ms", "lower"),
}

# Per-agent figures derived from a whole-run figure and the run's number of agents: a
# broadcast to 5 agents and one to 10 are not equal work, one answer each is.
PER_AGENT: dict[str, str] = {
    "fanout_ms_per_agent": "fanout_ms_median",
    "observe_ms_per_agent": "observe_ms",
    "broadcast_ms_per_agent": "broadcast_ms",
}

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
        figures = dict(run.get("figures", {}))
        agents = run.get("params", {}).get("agents")
        for derived, whole in PER_AGENT.items():
            if figures.get(whole) is not None and isinstance(agents, int) and agents > 0:
                figures[derived] = figures[whole] / agents
        for name, value in figures.items():
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
