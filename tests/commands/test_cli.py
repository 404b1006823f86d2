"""The ``dataspace-agency`` command, run as a real subprocess, as a user would.

The benchmark tests check that ``bench routing --quick`` and ``bench classic --tiny`` run
to the end and print every table and goal line with positive figures, and that plain
``bench`` runs both; they do not check the figures against the goals (that depends on the
machine, and on what else it is doing).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import dataspace_agency

ROOT = Path(__file__).resolve().parents[2]
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_NUMBER = r"([0-9][0-9,]*(?:\.[0-9]+)?)"


def run_cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    # Plain text whatever the calling terminal asked for.
    env.pop("FORCE_COLOR", None)
    env.pop("TTY_COMPATIBLE", None)
    env["NO_COLOR"] = "1"
    result = subprocess.run([sys.executable, "-m", "dataspace_agency.cli", *args],
                            cwd=ROOT, env=env, capture_output=True, text=True,
                            encoding="utf-8", timeout=timeout)
    result.stdout = _ANSI.sub("", result.stdout)
    return result


def number(text: str) -> float:
    return float(text.replace(",", ""))


def test_help_lists_the_bench_command() -> None:
    result = run_cli("--help")
    assert result.returncode == 0, result.stderr
    assert "usage: dataspace-agency" in result.stdout
    assert "bench" in result.stdout
    assert "the dataspace routing benchmark" in result.stdout


def test_no_command_prints_help_and_fails() -> None:
    result = run_cli()
    assert result.returncode == 2
    assert "usage: dataspace-agency" in result.stdout


def test_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"dataspace-agency {dataspace_agency.__version__}"


def table_rows(output: str, first_cell: str) -> list[list[str]]:
    """Cells of the table rows whose first cell matches ``first_cell`` (a regex)."""
    rows = []
    for line in output.splitlines():
        if line.startswith("│"):
            cells = [cell.strip() for cell in line.strip("│").split("│")]
            if re.fullmatch(first_cell, cells[0]):
                rows.append(cells)
    return rows


def test_bench_help_lists_the_benchmarks() -> None:
    result = run_cli("bench", "--help")
    assert result.returncode == 0, result.stderr
    assert "{routing,classic,all}" in result.stdout
    assert "--quick" in result.stdout


def test_bench_rejects_an_unknown_benchmark() -> None:
    result = run_cli("bench", "nonsense")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr


def test_bench_quick_prints_every_figure() -> None:
    result = run_cli("bench", "routing", "--quick", timeout=120)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Classic agents benchmark" not in out

    assert "CPUs" in out and "machine:" in out
    for header in ("N observers", "index µs/assert", "index µs/message", "naive µs/assert",
                   "naive µs/message", "(insert+remove)", "index µs/register"):
        assert header in out, header

    rows = table_rows(out, r"[0-9][0-9,]*")
    assert [number(row[0]) for row in rows] == [10, 1_000, 10_000]
    for row in rows:
        assert len(row) == 6, row
        assert all(number(cell) > 0 for cell in row[1:]), row

    scaling = re.search(r"goal: index cost at 10,000 vs 10 observers within 2x: "
                        rf"assert x{_NUMBER}, message x{_NUMBER} [✓✗]", out)
    assert scaling, out
    assert number(scaling[1]) > 0 and number(scaling[2]) > 0
    per_message = re.search(rf"goal: index µs per routed message .*: {_NUMBER} µs [✓✗]", out)
    assert per_message, out
    assert number(per_message[1]) > 0

    assert "goal ≥ 50,000/s" in out
    end_to_end = table_rows(out, r"native actor.*|handle\.message.*")
    assert len(end_to_end) == 2, out
    for _sender, messages, seconds, per_second, mark in end_to_end:
        assert number(messages) == 20_000
        assert number(seconds) > 0 and number(per_second) > 0
        assert mark in ("✓", "✗")
    round_trip = re.search(rf"request/reply round trip .*: {_NUMBER} µs", out)
    assert round_trip and number(round_trip[1]) > 0, out


def section(output: str, start: str, end: str | None) -> str:
    """The output from the line containing ``start`` up to the one containing ``end``."""
    assert start in output, (start, output)
    after = output[output.index(start):]
    return after[:after.index(end)] if end is not None else after


def test_bench_classic_tiny_prints_every_figure() -> None:
    result = run_cli("bench", "classic", "--tiny", timeout=60)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Dataspace routing benchmark" not in out
    assert "Classic agents benchmark" in out
    assert "CPUs" in out and "machine:" in out
    modes = ("assertion", "message")

    # 1. request() round trips: four scenarios, median and p99 for each mode.
    trips = section(out, "request() round trip", "One-way messages")
    for header in ("assertion", "median µs", "p99 µs", "goal median ≤ 100 µs"):
        assert header in trips, header
    rows = table_rows(trips, r"(agent|sync caller) → .*")
    assert [row[0] for row in rows] == [
        "agent → async action (no thread hop)", "agent → plain-function action (worker thread)",
        "sync caller → async action", "sync caller → plain-function action"], trips
    for row in rows:
        assert len(row) == 6, row
        assert all(number(cell) > 0 for cell in row[1:5]), row
    assert re.fullmatch(r"[✓✗] / [✓✗]", rows[0][5]), rows[0]
    goal = re.search(r"goal: agent → agent round trip median ≤ 100 µs .*: "
                     rf"assertion {_NUMBER} µs [✓✗], message {_NUMBER} µs [✓✗]", trips)
    assert goal, trips
    assert number(goal[1]) > 0 and number(goal[2]) > 0

    # 2. one-way messages: receipts and replies, per mode.
    messages = section(out, "One-way messages", "Adding idle agents")
    assert "goal" in messages and "≥ 50,000/s" in messages
    rows = table_rows(messages, "assertion|message")
    assert [row[0] for row in rows] == list(modes), messages
    for row in rows:
        assert len(row) == 8, row
        assert number(row[1]) == 200
        assert all(number(cell) > 0 for cell in row[2:4] + row[5:]), row
        assert row[4] in ("✓", "✗")
    goal = re.search(r"goal: one-way messages received per second ≥ 50,000 .*: "
                     rf"assertion {_NUMBER}/s [✓✗], message {_NUMBER}/s [✓✗]", messages)
    assert goal, messages
    assert number(goal[1]) > 0 and number(goal[2]) > 0

    # 3. adding agents: time per add and memory per idle agent, per mode.
    adding = section(out, "Adding idle agents", "Failure detection")
    rows = table_rows(adding, "assertion|message")
    assert [row[0] for row in rows] == list(modes), adding
    for row in rows:
        assert len(row) == 9, row
        assert number(row[1]) == 100
        assert all(number(row[i]) > 0 for i in (2, 3, 5, 7, 8)), row
        assert row[4] in ("✓", "✗") and row[6] in ("✓", "✗")
    goal = re.search(rf"goal: time per space.add\(\) ≤ 1 ms: assertion {_NUMBER} ms [✓✗], "
                     rf"message {_NUMBER} ms [✓✗]", adding)
    assert goal and number(goal[1]) > 0 and number(goal[2]) > 0, adding
    goal = re.search(rf"goal: memory per idle agent ≤ 20 KB: assertion {_NUMBER} KB [✓✗], "
                     rf"message {_NUMBER} KB [✓✗]", adding)
    assert goal and number(goal[1]) > 0 and number(goal[2]) > 0, adding

    # 4. failure detection: at once in assertion mode, at the timeout in message mode.
    failure = section(out, "Failure detection", "total benchmark time")
    rows = table_rows(failure, "assertion|message")
    assert [row[0] for row in rows] == list(modes), failure
    assert rows[0][2] == "ActionError" and rows[1][2] == "TimeoutError", rows
    for row in rows:
        assert len(row) == 7, row
        assert all(number(cell) > 0 for cell in row[3:]), row
    detected = re.search(rf"assertion mode: ActionError {_NUMBER} ms after remove", failure)
    assert detected and number(detected[1]) > 0, failure
    assert "message mode: timeout" in failure
    assert re.search(r"total benchmark time: [0-9.]+ s", out)


def test_bench_runs_both_benchmarks_by_default() -> None:
    result = run_cli("bench", "--tiny", timeout=60)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    routing = out.index("Dataspace routing benchmark")
    classic = out.index("Classic agents benchmark")
    assert routing < classic
    assert out.count("total benchmark time") == 2


@pytest.mark.parametrize("script", ["dataspace_routing.py", "classic_agents.py"])
def test_benchmark_script_wrapper_runs(script: str) -> None:
    # --tiny: only that the script in benchmarks/ reaches the package code and finishes.
    result = subprocess.run([sys.executable, f"benchmarks/{script}", "--tiny"],
                            cwd=ROOT, capture_output=True, text=True, encoding="utf-8",
                            env=dict(os.environ, PYTHONIOENCODING="utf-8"), timeout=60)
    assert result.returncode == 0, result.stderr
    assert "total benchmark time" in result.stdout
