"""Every example runs as a real program and prints what its docstring promises."""

from __future__ import annotations

import pathlib
import subprocess
import sys

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


def run_example(name: str) -> list[str]:
    done = subprocess.run([sys.executable, str(EXAMPLES / name)], capture_output=True,
                          text=True, timeout=60, check=True)
    return done.stdout.splitlines()


def test_native_api_example():
    assert run_example("native_api.py") == [
        "observed: Event(kind='added', captures=('hello, alice',))",
        "observed: Event(kind='added', captures=('hello, bob',))",
        "observed: Event(kind='removed', captures=('hello, alice',))",
        "observed: Event(kind='message', captures=('bob', 'anyone here?'))",
        "facts left: 1",
    ]
