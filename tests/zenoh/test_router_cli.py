"""``dataspace-agency router``: prints ready once listening, carries a dataspace, stops on
SIGTERM; a bad endpoint or a port in use is an error naming it."""

from __future__ import annotations

import subprocess
import sys

from syndicate import patterns as P

from dataspace_agency.zenoh import connect
from dataspace_agency.zenoh.process import RouterProcess

from helpers import rec


async def test_the_router_command_carries_a_dataspace():
    router = RouterProcess()
    try:
        async with connect([router.endpoint]) as ds:
            ds.publish(rec("Present", "alice"))
            assert await ds.query(P.rec("Present", P.CAPTURE)) == [("alice",)]
    finally:
        router.stop()
    assert router.process.returncode == 0  # SIGTERM: a clean exit


def run_router(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dataspace_agency.cli", "router", *args],
                          capture_output=True, text=True, timeout=60)


def test_bad_endpoints_are_errors_naming_them():
    done = run_router("--listen", "localhost:7447")
    assert done.returncode == 1 and "not a Zenoh endpoint: 'localhost:7447'" in done.stderr
    router = RouterProcess()
    try:
        done = run_router("--listen", router.endpoint)  # in use
        assert done.returncode == 1 and router.endpoint in done.stderr
    finally:
        router.stop()


def test_the_zenoh_agents_example():
    from pathlib import Path
    example = Path(__file__).resolve().parents[2] / "examples" / "zenoh_agents.py"
    done = subprocess.run([sys.executable, str(example)], capture_output=True, text=True,
                          timeout=90)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[1:] == [
        "present, seen from B: ['greeter', 'me']",
        "greeter answered: hello, ann (from a space attached to the other router)",
        "after the greeter left, seen from B: ['me']"]
