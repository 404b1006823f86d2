"""The comparison harness (``dataspace-agency compare``) on tiny parameters.

* every workload on every in-process backend (both dataspace modes, QueueSpace), with the
  semantic outcomes each model must show (late join, failure, discovery);
* the report and the four plots from those results;
* the whole command end to end, every run in a worker process, including agency 1.6.3
  itself as the reference: results.json's schema, report.md, the PNGs;
* bad input: clear errors.

Figures are not asserted against goals here (speed lives in the report); only that they
exist, are consistent (p99 >= p90 >= median > 0) and that outcomes are right.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from helpers import compare_document
from hypothesis import given
from hypothesis import strategies as st

from dataspace_agency import cli
from dataspace_agency.compare import backends, plots, report, runner, worker, workloads

IN_PROCESS = ("dataspace-assertion", "dataspace-message", "queue")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _tiny_params(workload: str, backend: str) -> list[dict]:
    params = workloads.params_for(workloads.get(workload), "tiny", backends.get(backend))
    if isinstance(params.get("agents"), list):
        return [{**params, "agents": k} for k in params["agents"]]
    return [params]


@pytest.fixture(scope="module")
def tiny_runs() -> list[dict]:
    """Every workload on every in-process backend, run once here (the spaces are
    in-process anyway; the command runs each in a worker process)."""
    runs = []
    options = backends.Options()
    for workload in workloads.NAMES:
        for name in IN_PROCESS:
            for params in _tiny_params(workload, name):
                result = worker.run_one(backends.get(name), workload, params, options)
                runs.append({"workload": workload, "backend": name, "params": params,
                             "repetition": 0, **result})
    return runs


def _runs(runs: list[dict], workload: str, backend: str) -> list[dict]:
    found = [r for r in runs if r["workload"] == workload and r["backend"] == backend]
    assert found, f"no {workload} run on {backend}"
    for run in found:
        assert run["ok"], f"{workload} on {backend}: {run.get('error')}\n{run.get('traceback')}"
    return found


def _ordered(figures: dict, prefix: str) -> None:
    median, p90, p99 = (figures[f"{prefix}_{q}"] for q in ("median", "p90", "p99"))
    assert 0 < median <= p90 <= p99


@pytest.mark.parametrize("backend", IN_PROCESS)
def test_round_trip(tiny_runs, backend):
    (run,) = _runs(tiny_runs, "round_trip", backend)
    params = run["params"]
    assert len(run["samples"]["rt_s"]) == params["count"]
    assert len(run["samples"]["async_rt_s"]) == params["async_count"]
    _ordered(run["figures"], "rt_us")
    _ordered(run["figures"], "async_rt_us")
    assert math.isclose(run["figures"]["requests_per_s"],
                        params["count"] / sum(run["samples"]["rt_s"]))


@pytest.mark.parametrize("backend", IN_PROCESS)
def test_throughput(tiny_runs, backend):
    (run,) = _runs(tiny_runs, "throughput", backend)
    assert run["outcome"] == {"messages": run["params"]["messages"], "all_received": True}
    assert run["figures"]["messages_per_s"] > 0
    # Received can only be counted after sending: the received rate is the lower one.
    assert run["figures"]["messages_per_s"] <= run["figures"]["send_per_s"]


@pytest.mark.parametrize("backend", IN_PROCESS)
def test_broadcast(tiny_runs, backend):
    (run,) = _runs(tiny_runs, "broadcast", backend)
    assert run["outcome"]["rounds"] == run["params"]["rounds"]
    assert len(run["samples"]["fanout_s"]) == run["params"]["rounds"]
    _ordered(run["figures"], "fanout_ms")


@pytest.mark.parametrize("backend", IN_PROCESS)
def test_scale(tiny_runs, backend):
    found = _runs(tiny_runs, "scale", backend)
    assert sorted(r["params"]["agents"] for r in found) == \
        workloads.get("scale").PARAMS["tiny"]["agents"]
    for run in found:
        k = run["params"]["agents"]
        figures = run["figures"]
        assert run["outcome"]["agents"] == k and len(run["samples"]["add_s"]) == k
        assert figures["processes"] >= 1  # in-process: this process (and its children)
        assert figures["rss_mib"] > 0 and figures["pss_mib"] > 0
        assert figures["idle_cpu_pct"] >= 0
        _ordered(figures, "add_ms")


def test_failure_outcomes(tiny_runs):
    """Assertion mode fails the request as soon as the responder goes; the others can
    only time out."""
    (run,) = _runs(tiny_runs, "failure", "dataspace-assertion")
    assert run["outcome"]["error"] == "ActionError"
    assert "stopped before answering" in run["outcome"]["message"]
    assert run["figures"]["timed_out"] == 0
    assert run["figures"]["detect_ms"] < run["outcome"]["timeout_s"] * 1e3
    for backend in ("dataspace-message", "queue"):
        (run,) = _runs(tiny_runs, "failure", backend)
        assert run["outcome"]["error"] == "TimeoutError", backend
        assert run["figures"]["timed_out"] == 1
        assert run["outcome"]["how"] == "removed from the space"


def test_late_join_outcomes(tiny_runs):
    (run,) = _runs(tiny_runs, "late_join", "dataspace-assertion")
    assert run["outcome"]["answered"] is True and run["outcome"]["value"] == 3
    assert run["figures"]["after_join_ms"] >= 0
    for backend in ("dataspace-message", "queue"):
        (run,) = _runs(tiny_runs, "late_join", backend)
        assert run["outcome"]["answered"] is False
        assert run["outcome"]["error"] == "TimeoutError"
        assert run["figures"]["after_join_ms"] is None


@pytest.mark.parametrize("backend", IN_PROCESS)
def test_state_outcomes(tiny_runs, backend):
    (run,) = _runs(tiny_runs, "state", backend)
    methods = run["outcome"]["methods"]
    n = run["params"]["agents"]
    assert methods["registry"]["complete"] and methods["broadcast"]["complete"]
    assert methods["broadcast"]["messages"] >= 1 + n
    if backend.startswith("dataspace"):
        assert methods["observe"]["complete"] and methods["observe"]["messages"] == 0
    else:
        assert "observe" not in methods  # a queue has no state to observe


def test_report_and_plots_from_runs(tiny_runs, tmp_path):
    document = _document(tiny_runs, IN_PROCESS, workloads.NAMES, profile="tiny")
    written = plots.write_plots(document, tmp_path)
    assert sorted(written) == ["failure.png", "latency.png", "scale.png", "throughput.png"]
    for name in written:
        assert (tmp_path / name).read_bytes()[:8] == PNG_MAGIC
    text = report.render(document, written)
    for workload in workloads.NAMES:
        assert f"## {workload}:" in text
    # Headline rows that need only our backends (the agency ones need the reference).
    assert "message mode throughput within 1.5× of QueueSpace" in text
    assert "![latency.png](latency.png)" in text


def test_compare_command_end_to_end(tmp_path):
    """The command itself: every run in a worker process, agency 1.6.3 as the reference."""
    out = tmp_path / "out"
    status = cli.main(["compare", "--tiny", "--no-progress", "--out", str(out),
                       "--backends", "dataspace-assertion,queue,agency-local",
                       "--workloads", "round_trip,scale"])
    document = json.loads((out / "results.json").read_text())
    failed = [(r["workload"], r["backend"], r.get("error")) for r in document["runs"]
              if not r["ok"]]
    assert status == 0 and not failed, failed
    assert document["schema"] == runner.SCHEMA
    assert {"created", "command", "profile", "repeat", "reference", "machine", "load",
            "backends", "workloads", "runs", "duration_s"} <= set(document)
    assert document["machine"]["versions"]["agency"] == "1.6.3"
    assert set(document["load"]) == {"before", "after"}
    for run in document["runs"]:
        assert {"workload", "backend", "params", "repetition", "ok", "figures", "samples",
                "outcome", "wall_s", "process_s"} <= set(run)
    (agency_rt,) = [r for r in document["runs"]
                    if r["backend"] == "agency-local" and r["workload"] == "round_trip"]
    assert agency_rt["outcome"]["agency"]["version"] == "1.6.3"
    assert agency_rt["outcome"]["agency"]["pool_max_workers"] >= 9  # sized, see docs
    assert agency_rt["figures"]["rt_us_median"] > 0
    (agency_scale,) = [r for r in document["runs"]
                       if r["backend"] == "agency-local" and r["workload"] == "scale"]
    # agency runs every background agent in a process of its own, plus its Manager.
    assert agency_scale["figures"]["processes"] > agency_scale["params"]["agents"]
    text = (out / "report.md").read_text()
    assert "round trip ≥ 1,000× faster than agency LocalSpace" in text
    assert "Its thread and process pools are sized" in text
    for name in ("latency.png", "scale.png"):
        assert (out / name).read_bytes()[:8] == PNG_MAGIC


def test_bad_input_is_named(tmp_path, capsys):
    with pytest.raises(ValueError, match="unknown backend 'nope'"):
        runner.plan("tiny", ["nope"], None, None, backends.Options())
    with pytest.raises(ValueError, match="unknown workload 'nope'"):
        runner.plan("tiny", None, ["nope"], None, backends.Options())
    with pytest.raises(ValueError, match="--repeat must be at least 1"):
        runner.plan("tiny", None, None, 0, backends.Options())
    assert cli.main(["compare", "--tiny", "--backends", "nope", "--out",
                     str(tmp_path)]) == 2
    assert "unknown backend 'nope'" in capsys.readouterr().err
    result = worker.run_one(backends.get("queue"), "nope", {}, backends.Options())
    assert result["ok"] is False and "unknown workload 'nope'" in result["error"]


def test_broker_backends_are_skipped_without_a_broker():
    the_plan = runner.plan("full", ["amqp", "queue"], ["round_trip"], 1, backends.Options())
    assert "amqp" in the_plan.skipped and "broker" in the_plan.skipped["amqp"]
    assert [r["backend"] for r in the_plan.runs] == ["queue"]


def test_scale_runs_respect_each_backends_limit():
    the_plan = runner.plan("quick", ["queue", "agency-local"], ["scale"], 2,
                           backends.Options())
    counts = {(r["backend"], r["params"]["agents"]) for r in the_plan.runs}
    assert counts == {("queue", 10), ("queue", 100), ("queue", 1000), ("agency-local", 10)}
    assert len(the_plan.runs) == 2 * len(counts)  # each repetition


@given(st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=200),
       st.integers(1, 100))
def test_percentile_is_nearest_rank(samples, q):
    ordered = sorted(samples)
    # Oracle: the smallest value with at least q% of the samples at or below it.
    expected = next(v for v in ordered
                    if sum(1 for s in ordered if s <= v) * 100 >= q * len(ordered))
    assert workloads.percentile(samples, q) == expected


def test_advantage_reads_the_same_for_times_and_rates():
    assert report.advantage("rt_us_median", 100.0, 100_000.0) == 1000.0  # 1000x faster
    assert report.advantage("messages_per_s", 5000.0, 500.0) == 10.0  # 10x the rate
    assert report.advantage("processes", 1.0, 5.0) is None  # not a score


def test_quick_plan_keeps_the_stubbed_reference_to_its_workloads():
    the_plan = runner.plan("quick", None, None, 1, backends.Options())
    nolog = {r["workload"] for r in the_plan.runs if r["backend"] == "agency-local-nolog"}
    assert nolog == {"round_trip", "throughput"}
    shipped = {r["workload"] for r in the_plan.runs if r["backend"] == "agency-local"}
    assert shipped == set(workloads.NAMES)
    # Named workloads are run on it all the same.
    named = runner.plan("quick", ["agency-local-nolog"], ["state"], 1, backends.Options())
    assert [r["workload"] for r in named.runs] == ["state"]


def _document(runs: list[dict], names: tuple[str, ...],
              workload_names: tuple[str, ...] = ("broadcast", "state"),
              profile: str = "quick") -> dict:
    """A results document around ``runs`` (hand-made ones: figures chosen so that every
    ratio is known in advance)."""
    return compare_document(runs, names, workload_names, profile=profile)


def _made(workload: str, backend: str, params: dict, figures: dict) -> dict:
    return {"workload": workload, "backend": backend, "params": params, "repetition": 0,
            "ok": True, "figures": figures, "samples": {},
            "outcome": {"agents": params.get("agents"), "methods": {}}}


def _row(text: str, label: str) -> list[str]:
    (line,) = [line for line in text.splitlines() if line.startswith(f"| {label} |")]
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_vs_agency_ratios_compare_equal_work_and_sizes_are_stated():
    # agency broadcasts to 5 agents, QueueSpace to 10: per agent, 100 ms against 1 ms.
    runs = [_made("broadcast", "agency-local", {"agents": 5, "rounds": 5},
                  {"fanout_ms_median": 500.0}),
            _made("broadcast", "queue", {"agents": 10, "rounds": 50},
                  {"fanout_ms_median": 10.0}),
            _made("state", "agency-local", {"agents": 5}, {"broadcast_ms": 50.0}),
            _made("state", "queue", {"agents": 100}, {"broadcast_ms": 20.0})]
    text = report.render(_document(runs, ("queue", "agency-local")))
    broadcast = text[text.index("## broadcast:"):text.index("## state:")]
    assert _row(broadcast, "QueueSpace")[-1] == "100×"  # (500/5) / (10/10)
    state = text[text.index("## state:"):]
    assert _row(state, "QueueSpace")[-1] == "50×"  # (50/5) / (20/100)
    # Every workload's sizes, per backend.
    sizes = text[text.index("## Workload sizes"):text.index("## broadcast:")]
    assert "| broadcast | agents 10, rounds 50 | QueueSpace |" in sizes
    assert "| broadcast | agents 5, rounds 5 | agency 1.6.3 LocalSpace |" in sizes
    assert "| state | agents 100 | QueueSpace |" in sizes


def test_a_ratio_of_unequal_work_is_marked_not_comparable(monkeypatch):
    runs = [_made("broadcast", "agency-local", {"agents": 5, "rounds": 5},
                  {"fanout_ms_median": 500.0}),
            _made("broadcast", "queue", {"agents": 10, "rounds": 50},
                  {"fanout_ms_median": 10.0})]
    # Were the ratio taken on the whole broadcast, the number of agents would matter.
    monkeypatch.setitem(report.PRIMARY, "broadcast", "fanout_ms_median")
    monkeypatch.setitem(report.EQUAL_WORK, "broadcast", ("agents",))
    text = report.render(_document(runs, ("queue", "agency-local")))
    assert _row(text, "QueueSpace")[-1] == "not comparable: agents 10 vs agency's 5"
    # A workload the report does not know gets a ratio only if every parameter matches.
    monkeypatch.delitem(report.EQUAL_WORK, "broadcast")
    text = report.render(_document(runs, ("queue", "agency-local")))
    assert _row(text, "QueueSpace")[-1].startswith("not comparable: ")


def test_the_quick_plan_runs_failure_with_equal_timeouts():
    the_plan = runner.plan("quick", ["queue", "agency-local"], ["failure"], 1,
                           backends.Options())
    assert {r["params"]["timeout_s"] for r in the_plan.runs} == {3.0}


def test_findings_state_what_the_dataspace_buys_and_costs(tiny_runs):
    from dataspace_agency.compare import findings
    document = {"runs": tiny_runs}
    found = findings.findings(report.aggregate(document), document)
    buys = " ".join(f.text for f in found["buys"])
    assert "dies mid-request" in buys and "before its responder joins" in buys
    assert "one observe" in buys
    costs = " ".join(f.text for f in found["costs"])
    assert "round trip" in costs and "One-way messages" in costs and "add()" in costs
    assert all(f.ratio and f.ratio > 0 for f in found["costs"])
    assert found["reference"] == []  # no agency run here: nothing said about it


def test_dataspace_backends_name_the_adapter_mode_their_space_runs_in():
    """One-way throughput differs about 4x between the modes (docs/compare.md), so every
    dataspace backend's label says which mode its space really runs in."""
    checked = []
    for backend in backends.BACKENDS.values():
        if backend.kind != "dataspace" or backend.unavailable(backends.Options()):
            continue
        space = backend.make(backends.Options())
        try:
            assert f"({space.mode}" in backend.label, (backend.name, space.mode)
        finally:
            space.destroy()
        checked.append(backend.name)
    assert {"dataspace-assertion", "dataspace-message", "remote-dataspace"} <= set(checked)
