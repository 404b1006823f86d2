"""The ``report.md`` section of the application workloads (``tasks``, ``churn``,
``cancel``; issue 17): a table per workload with one row per backend and style, the
mechanism each style relies on and how departures happened on each backend, lines of
code per style, and the sizes and seeds the runs used.

Kept apart from ``report.py`` (which renders the primitive workloads): ``report.render``
calls :func:`section` once. Cells are the median over repetitions with the spread
(min–max) when it varies, as in the rest of the report.
"""

from __future__ import annotations

from typing import Any

from .figures import fmt_summary, summarise

WORKLOADS = ("tasks", "churn", "cancel")
STYLE_LABELS = {"classic": "classic (Space API)", "facts": "facts (dataspace idiom)"}

# workload -> [(figure, column heading)]
COLUMNS: dict[str, list[tuple[str, str]]] = {
    "tasks": [("completed", "completed"), ("lost", "lost"), ("duplicated", "duplicated"),
              ("recovery_ms_median", "recovery, median (ms)"),
              ("recovery_ms_p99", "recovery, p99 (ms)"), ("makespan_s", "makespan (s)"),
              ("kills", "kills")],
    "churn": [("calls", "calls"), ("failed_calls", "failed calls"),
              ("failed_to_gone", "of them to a provider gone"),
              ("stale_view_ms_median", "stale view, median (ms)"),
              ("stale_view_ms_p99", "stale view, p99 (ms)"),
              ("discovery_messages", "discovery messages")],
    "cancel": [("wasted_work_s", "wasted work (s)"), ("cancelled_seen", "cancelled seen"),
               ("never_started", "never started"), ("leavers", "leavers"),
               ("deadline_stops", "stopped at the deadline"), ("work_s", "tool time (s)")],
}
INTRO = {
    "tasks": "A coordinator hands out tasks; workers are killed mid-task on a seeded"
             " schedule and replaced. `lost`: never finished; `duplicated`: finished"
             " more than once (both from the ledger the workers append to, an"
             " independent tally); recovery: from a kill to the task being taken again;"
             " makespan: first hand-out to the last acknowledgement.",
    "churn": "Providers leave (half crash) and are replaced on a seeded schedule while a"
             " client calls any provider in its view. Stale view: from a departure until"
             " the provider left the client's view. Discovery messages: heartbeats and"
             " goodbyes, each answered (so counted twice).",
    "cancel": "Requesters ask a tool for slow jobs and some leave part-way (half crash)."
              " Wasted work: tool time spent on a job after its requester had left;"
              " cancelled seen: jobs the tool stopped because it learned of it.",
}


def rows(document: dict) -> dict[str, dict[tuple[str, str], list[dict]]]:
    """workload -> (backend, style) -> its ok runs, in document order."""
    found: dict[str, dict[tuple[str, str], list[dict]]] = {}
    for run in document["runs"]:
        if run.get("ok") and run["workload"] in WORKLOADS:
            key = (run["backend"], run["params"].get("style", "classic"))
            found.setdefault(run["workload"], {}).setdefault(key, []).append(run)
    return found


def figure(runs: list[dict], name: str) -> Any:
    """The Summary of figure ``name`` over ``runs`` (None if no run has it)."""
    return summarise([r["figures"].get(name) for r in runs])


def section(document: dict) -> str:
    """The markdown section, or "" if no application workload ran."""
    found = rows(document)
    if not found:
        return ""
    labels = {name: info["label"] for name, info in document["backends"].items()}
    out: list[str] = ["## Applications under faults: what the semantics are worth", ""]
    add = out.append
    add("Each workload is written once against the `Space` API (*classic*: the same code"
        " on every backend, with acknowledgements, timeouts, retries, heartbeats and"
        " goodbyes where a queue programmer would use them) and, on dataspace backends,"
        " once more in the dataspace's idiom (*facts*: `publish`, `@during`,"
        " `connect().watch`). Faults follow a seeded schedule: the same seed kills the"
        " same tasks' workers at the same point of their work. agency 1.6.3 does not run"
        " these: its background agents share one process pool, which a SIGKILL breaks"
        " (`BrokenProcessPool`), so a killed agent cannot be replaced.")
    add("")
    for workload in WORKLOADS:
        groups = found.get(workload)
        if not groups:
            continue
        add(f"### {workload}")
        add("")
        add(INTRO[workload])
        add("")
        columns = COLUMNS[workload]
        add("| backend | style | " + " | ".join(h for _, h in columns) + " | runs |")
        add("|---|---|" + "---|" * (len(columns) + 1))
        for (backend, style), runs in groups.items():
            cells = [labels.get(backend, backend), STYLE_LABELS.get(style, style)]
            cells += [fmt_summary(figure(runs, name)) for name, _ in columns]
            add("| " + " | ".join(cells + [str(len(runs))]) + " |")
        add("")
        add(_how(workload, groups, labels))
        params = next(iter(groups.values()))[0]["params"]
        add("Sizes and seed: " + ", ".join(f"`{k}` = {v}" for k, v in params.items()
                                          if k not in ("style", "ledger")) + ".")
        add("")
    add("### Mechanisms and lines of code")
    add("")
    add("| workload | style | mechanism | lines of agent code |")
    add("|---|---|---|---|")
    for workload in WORKLOADS:
        seen: dict[str, dict] = {}
        for (_backend, style), runs in found.get(workload, {}).items():
            seen.setdefault(style, runs[0]["outcome"])
        for style, outcome in seen.items():
            add(f"| {workload} | {STYLE_LABELS.get(style, style)} |"
                f" {outcome['mechanism']} | {outcome['agent_loc']} |")
    add("")
    add("Lines of code: the style's agent module (`dataspace_agency/compare/apps/"
        "<workload>_<style>.py`, plus `classic_common.py` for the classic style), not"
        " counting blank lines, comments and docstrings; the fault injection and the"
        " measuring are the same harness for both styles and not counted.")
    add("")
    return "\n".join(out) + "\n"


def _how(workload: str, groups: dict, labels: dict) -> str:
    """How departures happened and how they showed, per backend and style."""
    lines = ["| backend | style | departures | how they showed |", "|---|---|---|---|"]
    for (backend, style), runs in groups.items():
        if workload == "tasks":
            hows = sorted({k["how"] for r in runs for k in r["outcome"]["kills"]})
            failures: dict[str, int] = {}
            for r in runs:
                for name, count in r["outcome"].get("failures", {}).items():
                    failures[name] = failures.get(name, 0) + count
            showed = (", ".join(f"{n}× {k}" for k, n in sorted(failures.items()))
                      if style == "classic" else "presence fact retracted")
        else:
            hows = sorted({d["how"] for r in runs for d in r["outcome"]["departures"]})
            if workload == "churn":
                errors: dict[str, int] = {}
                for r in runs:
                    for name, count in r["outcome"]["errors"].items():
                        errors[name] = errors.get(name, 0) + count
                showed = ("failed calls: " + ", ".join(f"{n}× {k}" for k, n in
                                                       sorted(errors.items()))
                          if errors else "no failed call")
            else:
                whys: dict[str, int] = {}
                for r in runs:
                    for *_times, why in r["outcome"]["jobs"].values():
                        if why:
                            whys[why] = whys.get(why, 0) + 1
                showed = ("jobs stopped: " + ", ".join(f"{n}× {k}" for k, n in
                                                       sorted(whys.items()))
                          if whys else "no job stopped early")
        lines.append(f"| {labels.get(backend, backend)} | {style} | {'; '.join(hows)} |"
                     f" {showed} (over {len(runs)} run(s)) |")
    return "\n".join(lines) + "\n"
