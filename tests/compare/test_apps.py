"""The application workloads of ``dataspace-agency compare`` (issue 17): tasks, churn,
cancel, in both styles, on tiny sizes.

Each runs on every quick-profile backend (both dataspace modes, QueueSpace) and on the
process and broker backends, and its counts are checked against an independent tally:
for tasks, the ledger file the workers append to when they finish (a task counted lost
has no line in it; one counted duplicated has two or more) and the coordinator's own
acknowledgements; for churn, the log of every call and departure; for cancel, what the
tool reported per job and when each requester left. Figures are not compared with goals
here (speed lives in the report).
"""

from __future__ import annotations

import collections
import json

import pytest
from helpers import compare_document

from dataspace_agency import cli
from dataspace_agency.compare import backends, plots, report, report_apps, runner, worker
from dataspace_agency.compare import workloads
from dataspace_agency.compare.apps import code_lines, style_module
from dataspace_agency.compare.apps.ledger import Ledger
from dataspace_agency.compare.workloads import cancel, churn, tasks

QUICK = ("dataspace-assertion", "dataspace-message", "queue")
PROCESSES = ("multiprocess-queue", "remote-dataspace-processes")
APPS = ("tasks", "churn", "cancel")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _run(workload: str, backend: str, tmp_path, options=None, **override) -> list[dict]:
    """Every style of ``workload`` on ``backend`` at the tiny size; each result with its
    params (tasks: with a ledger file kept in ``tmp_path``)."""
    module = workloads.get(workload)
    chosen = backends.get(backend)
    results = []
    for params in module.variants(chosen, workloads.params_for(module, "tiny", chosen)):
        params = {**params, **override}
        if workload == "tasks":
            params["ledger"] = str(tmp_path / f"ledger-{backend}-{params['style']}")
        result = worker.run_one(chosen, workload, params, options or backends.Options())
        assert result["ok"], f"{workload} on {backend}: {result.get('error')}\n" \
                             f"{result.get('traceback')}"
        results.append({"workload": workload, "backend": backend, "params": params,
                        "repetition": 0, **result})
    return results


def check_tasks(run: dict) -> None:
    params, figures, outcome = run["params"], run["figures"], run["outcome"]
    finished = collections.Counter(task for _, task, _, _ in
                                   Ledger(params["ledger"]).entries("finished"))
    lost = {t for t in range(params["tasks"]) if finished[t] == 0}
    assert figures["lost"] == len(lost)
    assert figures["duplicated"] == sum(1 for n in finished.values() if n > 1)
    assert figures["completed"] + figures["lost"] == params["tasks"]
    ledger_pairs = {(task, who) for _, task, who, _ in
                    Ledger(params["ledger"]).entries("finished")}
    for task, workers in outcome["acknowledged"].items():
        assert int(task) not in lost  # acknowledged, so it was finished
        for who in workers:
            assert (int(task), who) in ledger_pairs
    if outcome["all_acknowledged"]:
        assert lost == set()
        # Every killed worker's task was taken again: one recovery per kill, but for a
        # kill that landed after its worker had finished the task (a busy machine's
        # timer late; such a task may or may not have been answered before the kill).
        assert figures["kills"] == params["kills"]
        late = outcome["late_kills"]
        assert figures["kills"] - late <= len(run["samples"]["recovery_s"]) <= figures["kills"]
    _, kill_after = tasks.schedule(params)
    assert {k["task"] for k in outcome["kills"]} <= set(kill_after)


def check_churn(run: dict) -> None:
    figures, outcome = run["figures"], run["outcome"]
    log = outcome["calls_log"]
    departed = outcome["departed"]
    gone = {d["provider"]: d["gone"] for d in outcome["departures"]}
    assert figures["calls"] == len(log)
    assert figures["failed_calls"] == sum(1 for *_, error in log if error)
    assert figures["failed_to_gone"] == sum(
        1 for sent, _, provider, error in log
        if error and provider in departed and sent >= departed[provider])
    for sent, _ended, provider, error in log:
        if error is None and provider in gone:
            assert sent < gone[provider], "a provider answered after it had gone"
    assert len(run["samples"]["stale_s"]) == len(departed) == run["params"]["departures"]
    assert [(d["crash"]) for d in outcome["departures"]] == \
        [crash for _, _, crash in churn.schedule(run["params"])]


def check_cancel(run: dict) -> None:
    params, figures, outcome = run["params"], run["figures"], run["outcome"]
    plan = cancel.schedule(params)
    leavers = {s["job"] for s in plan if s["leave_after"] is not None}
    jobs = {int(j): v for j, v in outcome["jobs"].items()}
    left = {int(j): at for j, at in outcome["left"].items()}
    assert set(left) == leavers and figures["leavers"] == len(leavers)
    assert outcome["stayers_answered"]
    for job in set(range(params["requesters"])) - leavers:
        assert jobs[job][2] is None, "a stayer's job was stopped"
    wasted = sum(max(0.0, jobs[j][1] - max(jobs[j][0], left[j])) for j in leavers
                 if j in jobs)
    assert figures["wasted_work_s"] == pytest.approx(wasted, abs=1e-5)
    assert figures["cancelled_seen"] == sum(
        1 for j in leavers if j in jobs and jobs[j][2] in ("withdrawn", "cancel message"))
    assert figures["never_started"] == len(leavers - set(jobs))


CHECKS = {"tasks": check_tasks, "churn": check_churn, "cancel": check_cancel}


@pytest.fixture(scope="module")
def quick_runs(tmp_path_factory) -> list[dict]:
    folder = tmp_path_factory.mktemp("apps")
    return [run for workload in APPS for backend in QUICK
            for run in _run(workload, backend, folder)]


@pytest.mark.parametrize("workload", APPS)
@pytest.mark.parametrize("backend", QUICK)
def test_each_workload_on_each_quick_backend(quick_runs, workload, backend):
    runs = [r for r in quick_runs if r["workload"] == workload and r["backend"] == backend]
    styles = [r["params"]["style"] for r in runs]
    assert styles == (["classic", "facts"] if backend == "dataspace-assertion"
                      else ["classic"])
    for run in runs:
        CHECKS[workload](run)


def test_the_semantics_show_in_process(quick_runs):
    """What the comparison is for, at the tiny size: in assertion mode a dead worker's
    request fails at once (ActionError), on queues only its timeout tells."""
    def outcome(workload: str, backend: str, style: str = "classic") -> dict:
        (run,) = [r for r in quick_runs if r["workload"] == workload and
                  r["backend"] == backend and r["params"]["style"] == style]
        return run
    assert set(outcome("tasks", "dataspace-assertion")["outcome"]["failures"]) == \
        {"ActionError"}
    assert set(outcome("tasks", "queue")["outcome"]["failures"]) == {"TimeoutError"}
    # Cancel: in assertion mode a crashed requester's job is withdrawn and the tool sees
    # it; on a queue only a graceful leaver's cancel message tells the tool.
    crashed = [s["job"] for s in cancel.schedule(outcome("cancel", "queue")["params"])
               if s["crash"]]
    assert crashed
    for job in crashed:
        assert outcome("cancel", "queue")["outcome"]["jobs"][str(job)][2] is None
        assert outcome("cancel", "dataspace-assertion")["outcome"]["jobs"].get(
            str(job), [0, 0, "withdrawn"])[2] == "withdrawn"
    assert outcome("churn", "dataspace-assertion", "facts")["figures"][
        "discovery_messages"] == 0
    assert outcome("churn", "queue")["figures"]["discovery_messages"] > 0


def test_a_task_counted_lost_was_never_finished(tmp_path):
    """The coordinator gives up before every task is done: the tasks counted lost are
    exactly those with no line in the ledger."""
    (run,) = _run("tasks", "queue", tmp_path, tasks=12, workers=2, kills=0,
                  min_s=0.1, max_s=0.1, timeout_s=0.25)
    assert 0 < run["figures"]["lost"] < 12
    assert not run["outcome"]["all_acknowledged"]
    check_tasks(run)


@pytest.mark.parametrize("workload", APPS)
@pytest.mark.parametrize("backend", PROCESSES)
def test_process_backends(workload, backend, tmp_path):
    """Agents in processes of their own: kills and crashes are SIGKILLs."""
    for run in _run(workload, backend, tmp_path):
        CHECKS[workload](run)
        hows = ([k["how"] for k in run["outcome"]["kills"]] if workload == "tasks"
                else [d["how"] for d in run["outcome"]["departures"] if d["crash"]])
        assert hows and all(h == "crash: SIGKILL" for h in hows)


@pytest.mark.parametrize("workload", APPS)
def test_amqp(workload, amqp_url, tmp_path):
    for run in _run(workload, "amqp", tmp_path, backends.Options(amqp_url=amqp_url)):
        CHECKS[workload](run)


def test_schedules_repeat_exactly():
    for module in (tasks, churn, cancel):
        params = module.PARAMS["quick"]
        assert module.schedule(params) == module.schedule(dict(params))
        assert module.schedule(params) != module.schedule({**params, "seed": 2})


def test_plan_runs_each_style_once_and_not_on_agency():
    the_plan = runner.plan("quick", None, list(APPS), 1, backends.Options())
    runs = {(r["workload"], r["backend"], r["params"]["style"]) for r in the_plan.runs}
    for workload in APPS:
        assert {(b, s) for w, b, s in runs if w == workload} == {
            ("dataspace-assertion", "classic"), ("dataspace-assertion", "facts"),
            ("dataspace-message", "classic"), ("queue", "classic")}
    default = runner.plan("quick", ["queue"], None, 1, backends.Options())
    assert not {r["workload"] for r in default.runs} & set(APPS)
    full = runner.plan("full", ["queue"], None, 1, backends.Options())
    assert set(APPS) <= {r["workload"] for r in full.runs}


def test_lines_of_code_count_code_only():
    module = style_module("churn", "facts")
    source = open(module.__file__).read().splitlines()
    assert 0 < code_lines(module) < len([line for line in source if line.strip()])


def test_report_section_and_plots(quick_runs, tmp_path):
    document = compare_document(quick_runs, QUICK, APPS)
    written = plots.write_plots(document, tmp_path)
    assert sorted(written) == ["apps_recovery.png", "apps_stale.png", "apps_wasted.png"]
    for name in written:
        assert (tmp_path / name).read_bytes()[:8] == PNG_MAGIC
    text = report.render(document, written)
    assert text.count(report_apps.section(document)) == 1
    for workload in APPS:
        assert f"### {workload}" in text
    assert "| lost | duplicated |" in text
    assert "| DataspaceSpace (assertion) | facts (dataspace idiom) |" in text
    assert "lines of agent code" in text


def test_command_end_to_end(tmp_path):
    out = tmp_path / "out"
    status = cli.main(["compare", "--tiny", "--no-progress", "--out", str(out),
                       "--backends", "dataspace-assertion", "--workloads",
                       "tasks,churn,cancel", "--repeat", "1"])
    document = json.loads((out / "results.json").read_text())
    failed = [(r["workload"], r.get("error")) for r in document["runs"] if not r["ok"]]
    assert status == 0 and not failed, failed
    assert len(document["runs"]) == 6  # three workloads, two styles each
    assert "## Applications under faults" in (out / "report.md").read_text()
    assert (out / "apps_recovery.png").read_bytes()[:8] == PNG_MAGIC


def test_stale_view_per_departure():
    departed = {"left-late": 1.0, "still-in": 2.0, "never-seen": 3.0, "dropped-early": 4.0}
    left_view = {"left-late": 1.25, "dropped-early": 3.5}
    assert churn.stale_view(departed, left_view, {"still-in"}, ended=10.0) == \
        [0.25, 8.0, 0.0, 0.0]
