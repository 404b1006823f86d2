"""Every example runs as a real program and prints what its docstring promises."""

from __future__ import annotations

import pathlib
import subprocess
import sys

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


def run_example(name: str, *args: str) -> list[str]:
    done = subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True,
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


CLASSIC_COMMON = [
    "add: 5",
    "average: 2.5",
    "me asks add: ActionError: TypeError: unsupported operand type(s) for +: 'int' and 'str'",
    'me asks reset: ActionError: PermissionError: "calc.reset" not permitted',
    "admin asks reset: reset done",
    "send answered in handle_action_value: 30",
    'help: {"add": {"description": "Add two numbers.", "args": {"a": {"type": "number",'
    ' "description": "The first number."}, "b": {"type": "number", "description":'
    ' "The second number."}}, "returns": {"type": "number", "description": "Their sum."}}}',
    "present: admin offers ['help']",
    "present: calc offers ['add', 'average', 'help', 'reset']",
    "present: me offers ['help']",
    "display: kitchen is 21 degrees",
    "display: kitchen reading gone",
    "display: hall is 18 degrees",
    "display: hall reading gone",
]


def test_classic_agents_example_in_assertion_mode():
    expected = ["mode: assertion", *CLASSIC_COMMON,
                "late joiner answered: 2",
                'responder left: ActionError: agent "slow" stopped before answering "work"',
                "facts left: 0"]
    assert run_example("classic_agents.py") == expected  # the default mode
    assert run_example("classic_agents.py", "--mode", "assertion") == expected


def test_classic_agents_example_in_message_mode():
    assert run_example("classic_agents.py", "--mode", "message") == [
        "mode: message", *CLASSIC_COMMON,
        'late joiner: TimeoutError: no answer from "late" to "add" within 0.5 s',
        'responder left: TimeoutError: no answer from "slow" to "work" within 1 s',
        "facts left: 0",
    ]
