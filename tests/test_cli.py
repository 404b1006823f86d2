"""The ``dataspace-agency`` command, run as a real subprocess, as a user would.

The benchmark test checks that ``bench --quick`` runs to the end and prints every table
and goal line with positive figures; it does not check the figures against the goals
(that depends on the machine, and on what else it is doing).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import dataspace_agency

ROOT = Path(__file__).resolve().parent.parent
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


def test_bench_quick_prints_every_figure() -> None:
    result = run_cli("bench", "--quick", timeout=120)
    assert result.returncode == 0, result.stderr
    out = result.stdout

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


def test_benchmark_script_wrapper_runs() -> None:
    # --tiny: only that the script in benchmarks/ reaches the package code and finishes.
    result = subprocess.run([sys.executable, "benchmarks/dataspace_routing.py", "--tiny"],
                            cwd=ROOT, capture_output=True, text=True, encoding="utf-8",
                            env=dict(os.environ, PYTHONIOENCODING="utf-8"), timeout=60)
    assert result.returncode == 0, result.stderr
    assert "total benchmark time" in result.stdout
