"""``report.md`` from a results document: first what the run found (``findings.py``) and
the goals with their source, then each workload's sizes per backend, and per figure the
median over repetitions, the spread (min–max), and the ratio to the reference (agency
1.6.3's LocalSpace, as shipped), all from the same run.

:func:`render` writes the markdown as a list of sections, one function each (a new
section is one more entry in that list). Figures are summarised by
``figures.aggregate``. A ratio is written as how many times *better* a backend is than
the reference ("1,234×", "0.5× (worse)"), so that it reads the same for times and rates,
and only for equal work (:data:`EQUAL_WORK`); otherwise the cell says *not comparable*.
"""

from __future__ import annotations

from .backends import REFERENCE
from .figures import (FIGURES, Summary, advantage, aggregate, case_of, fmt,  # noqa: F401
                      fmt_ratio, fmt_summary, summarise)  # (re-exported: report.aggregate)
from .findings import GOALS_SOURCE, findings, goals
from . import report_apps

headline = goals  # the name this module gave them first

# What each workload's table shows, in order.
COLUMNS: dict[str, list[str]] = {
    "round_trip": ["rt_us_median", "rt_us_p90", "rt_us_p99", "async_rt_us_median"],
    "throughput": ["messages_per_s", "send_per_s"],
    "broadcast": ["fanout_ms_median", "fanout_ms_p99", "fanout_ms_per_agent"],
    "scale": ["add_ms_median", "rss_mib", "pss_mib", "processes", "pss_per_agent_kib",
              "idle_cpu_pct"],
    "failure": ["detect_ms", "timed_out"],
    "late_join": ["answered", "after_join_ms", "waited_ms"],
    "state": ["observe_ms", "broadcast_ms", "registry_ms", "broadcast_ms_per_agent"],
}
# The figure each workload's ratio column is taken on: a figure per unit of work
# (request, message, agent, add()), so that backends run at different sizes compare.
PRIMARY = {"round_trip": "rt_us_median", "throughput": "messages_per_s",
           "broadcast": "fanout_ms_per_agent", "scale": "add_ms_median",
           # failure: a timeout-bound backend's figure is its configured timeout, so a
           # ratio would only compare timeouts; the table shows the figures instead.
           "failure": None, "late_join": None, "state": "broadcast_ms_per_agent"}


# The parameters that set how much work one figure of a workload stands for. A "vs
# agency" ratio is taken only where they are equal (agency runs smaller sizes: its 100 ms
# poll would make ours take minutes). Unlisted parameters (how many requests or messages
# are timed) change how often a per-request or per-message figure is measured, not what it
# is. A workload missing here (a new one) gets a ratio only where all its parameters match.
EQUAL_WORK: dict[str, tuple[str, ...]] = {
    "round_trip": (),      # per request
    "throughput": (),      # per message
    "broadcast": (),       # compared per agent (fanout_ms_per_agent)
    "scale": ("agents",),  # per add(), at the same K (one case each)
    "state": (),           # compared per agent (broadcast_ms_per_agent)
}


def render(document: dict, plots: list[str] | None = None) -> str:
    """report.md: what the run found first, then the details, section by section."""
    groups = aggregate(document)
    sections = [
        _title(document),
        _partial(document),
        _found(groups, document),
        _goals(groups),
        _setup(document),
        _sizes(document),
        *(_workload(document, groups, workload) for workload in document["workloads"]),
        report_apps.section(document).splitlines(),  # tasks, churn, cancel (issue 17)
        _failed(document),
        _plots(plots),
    ]
    return "\n".join(line for section in sections for line in section).rstrip() + "\n"


def _ran(document: dict) -> list[str]:
    return [name for name, info in document["backends"].items() if not info["skipped"]]


def _labels(document: dict) -> dict[str, str]:
    return {name: info["label"] for name, info in document["backends"].items()}


def _title(document: dict) -> list[str]:
    m = document["machine"]
    lines = ["# dataspace-agency compare: report", "",
             f"* Command: `{' '.join(document['command'])}`",
             f"* Created: {document['created']}; profile `{document['profile']}`,"
             f" {document['repeat']} repetition(s), each run in a fresh process;"
             f" {fmt(document.get('duration_s'))} s in all.",
             f"* Machine: {m['cpu_model']}, {m['cpus']} CPUs ({m['cpus_usable']} usable),"
             f" {fmt(m['memory_mib'])} MiB; Python {m['python']}; {m['system']}.",
             "* Versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v)]
    for when in ("before", "after"):
        load = document["load"].get(when)
        if load:
            busiest = ", ".join(f"{b['name']} {fmt(b['cpu_pct'])}%" for b in load["busiest"])
            lines.append(f"* Load {when}: load average"
                         f" {', '.join(fmt(x) for x in load['loadavg'])}; other processes"
                         f" used {fmt(load['others_cpu_pct'])}% of a core"
                         + (f" ({busiest})" if busiest else ""))
    if document.get("broker"):
        b = document["broker"]
        lines.append(f"* RabbitMQ: {b.get('source')}; its memory is not in any backend's"
                     f" figures: RSS {fmt(b.get('rss_mib'))} MiB, PSS"
                     f" {fmt(b.get('pss_mib'))} MiB at the end.")
    return lines + [""]


def _partial(document: dict) -> list[str]:
    partial = document.get("partial")
    if not partial:
        return []
    return [f"> **Partial results**: the run was {partial['reason']} after"
            f" {partial['finished']} of {partial['planned']} runs. Everything below is from"
            " the runs that finished; workloads and backends that did not run are missing.",
            ""]


def _found(groups: dict, document: dict) -> list[str]:
    found = findings(groups, document)
    if not any(found.values()):
        return []
    lines = ["## What this run found", ""]
    for key, title in (("buys", "What the dataspace buys"),
                       ("costs", "What it costs (against our QueueSpace, same work)"),
                       ("reference", "Against agency 1.6.3 as shipped (same work)")):
        if found[key]:
            lines += [f"**{title}:**", ""] + [f"* {f.text}" for f in found[key]] + [""]
    return lines


def _goals(groups: dict) -> list[str]:
    rows = goals(groups)
    if not rows:
        return []
    lines = ["## Goals", "", f"Where they come from: {GOALS_SOURCE}.", "",
             "| goal | measured | met |", "|---|---|---|"]
    lines += [f"| {row['goal']} | {row['measured']} | {'yes' if row['met'] else 'no'} |"
              for row in rows]
    return lines + [""]


def _setup(document: dict) -> list[str]:
    lines = ["## Backends", "",
             "Each cell below: the median over repetitions, with the spread (min–max) in"
             " brackets when it varies. Ratios are against **agency 1.6.3 LocalSpace as"
             f" shipped** (`{REFERENCE}`), from this same run, as \"times better\""
             " (faster, or less), and only for equal work (see *Workload sizes*).", "",
             "| backend | what | agents in other processes | skipped |", "|---|---|---|---|"]
    for name, info in document["backends"].items():
        lines.append(f"| `{name}` | {info['label']} | {'yes' if info['processes'] else 'no'}"
                     f" | {info['skipped'] or ''} |")
    lines.append("")
    if any(document["backends"][n]["reference"] for n in _ran(document)):
        lines += ["agency 1.6.3 runs in a process of its own, its agents written against its"
                  " own API (`reference/agency_reference.py`). Its thread and process pools are"
                  " sized to the workload (`max_workers` = agents + 8) to work around its"
                  " pool deadlocks on small machines (with the default 6 threads and 2"
                  " processes on 2 CPUs, the third background agent's `add()` never"
                  " returns). `…-nolog` backends replace agency's `log()` with a no-op in"
                  " every agency process (it costs ~0.56 ms per call even when logging is"
                  " off). Its request timings include its 100 ms inbox poll.", ""]
    return lines


def _size_text(params: dict) -> str:
    return ", ".join(f"{key} {value:,}" if isinstance(value, int) else f"{key} {value}"
                     for key, value in params.items())


def sizes(document: dict) -> dict[str, dict[str, str]]:
    """workload -> backend -> its parameters as text (scale: the K values it ran)."""
    found: dict[str, dict[str, list[dict]]] = {}
    for run in document["runs"]:
        found.setdefault(run["workload"], {}).setdefault(run["backend"], []).append(
            run["params"])
    table: dict[str, dict[str, str]] = {}
    for workload, per_backend in found.items():
        for backend, all_params in per_backend.items():
            agents = sorted({p.get("agents") for p in all_params
                             if isinstance(p.get("agents"), int)})
            first = dict(all_params[0])
            if workload == "scale" and agents:
                first["agents"] = "/".join(f"{k:,}" for k in agents)
            table.setdefault(workload, {})[backend] = _size_text(first)
    return table


def _sizes(document: dict) -> list[str]:
    table = sizes(document)
    if not table:
        return []
    labels = _labels(document)
    lines = ["## Workload sizes", "",
             "What each backend ran (agency runs smaller sizes: its 100 ms inbox poll makes"
             " ours take minutes). A \"vs agency\" ratio compares equal work: per request,"
             " per message, per agent, or the same number of agents; anything else is"
             " marked *not comparable*. agency's p99 comes from fewer samples (`count`)"
             " and sits close to its maximum.", "",
             "| workload | sizes | backends |", "|---|---|---|"]
    for workload, per_backend in table.items():
        alike: dict[str, list[str]] = {}  # the same sizes on one line
        for backend, text in per_backend.items():
            alike.setdefault(text, []).append(labels.get(backend, backend))
        for text, names in alike.items():
            lines.append(f"| {workload} | {text} | {', '.join(names)} |")
    return lines + [""]


def _comparable(document: dict, workload: str, backend: str, case: str) -> str | None:
    """None if ``backend``'s runs of ``workload`` did the same work as the reference's
    (EQUAL_WORK), else why not, e.g. "not comparable: agents 100 vs agency's 5"."""
    def params(name: str) -> dict:
        for run in document["runs"]:
            if (run["workload"] == workload and run["backend"] == name
                    and case_of(run) == case):
                return run["params"]
        return {}

    ours, theirs = params(backend), params(REFERENCE)
    keys = EQUAL_WORK.get(workload, tuple(set(ours) | set(theirs)))
    differ = [key for key in keys if ours.get(key) != theirs.get(key)]
    if not differ:
        return None
    return "not comparable: " + ", ".join(
        f"{key} {ours.get(key)} vs agency's {theirs.get(key)}" for key in differ)


def _workload(document: dict, groups: dict, workload: str) -> list[str]:
    labels, ran = _labels(document), _ran(document)
    cases = sorted({key[2] for key in groups if key[0] == workload},
                   key=lambda c: int(c[2:]) if c else 0)
    columns = [c for c in COLUMNS.get(workload, [])
               if any(c in groups.get((workload, b, case), {}) for b in ran for case in cases)]
    if not cases or not columns:
        return []
    primary = PRIMARY.get(workload)
    header = ["backend"] + (["K"] if workload == "scale" else [])
    header += [f"{FIGURES[c][0]} ({FIGURES[c][1]})" if FIGURES[c][1] else FIGURES[c][0]
               for c in columns]
    if primary:
        header.append(f"vs agency ({FIGURES[primary][0]})")
    lines = [f"## {workload}: {document['workloads'][workload]}", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
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
                if backend == REFERENCE or not value or not reference:
                    cells.append("–")
                else:
                    unequal = _comparable(document, workload, backend, case)
                    cells.append(unequal or fmt_ratio(
                        advantage(primary, value.median, reference.median)))
            lines.append("| " + " | ".join(cells) + " |")
    return lines + ["", _outcomes(document, workload, labels)]


def _failed(document: dict) -> list[str]:
    failed = [r for r in document["runs"] if not r.get("ok")]
    if not failed:
        return []
    return ["## Runs that failed or were skipped", ""] + [
        f"* {run['workload']} on `{run['backend']}` (repetition {run['repetition'] + 1},"
        f" {run['params']}): {run.get('error')}" for run in failed] + [""]


def _plots(plots: list[str] | None) -> list[str]:
    if not plots:
        return []
    lines = ["## Plots", ""]
    for plot in plots:
        lines += [f"![{plot}]({plot})", ""]
    return lines


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
