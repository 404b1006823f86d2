"""Request/response with classic agents, on the backend of your choice.

Shows the rule every backend keeps: each action invocation answers exactly once, with
its value (None included: it means "done") or with an error. `request()` returns the
value or raises ActionError; answers to `send()` arrive in `handle_action_value` /
`handle_action_error`; every agent has a built-in `help` action.

Run: .venv/bin/python examples/request_response.py --backend dataspace-assertion
     (or dataspace-message, queue, multiprocess-queue, amqp --amqp-url amqp://...)
"""

from __future__ import annotations

import argparse
import json
import queue
import sys

from _backends import add_backend_arguments, msg, open_space

from dataspace_agency import ActionError, Agent, action
from dataspace_agency.commands.failures import run_command


class Calculator(Agent):
    """The responder. Defined at module level: on the multiprocess-queue backend it runs in a
    child process, which imports it from this file."""

    @action
    def add(self, a: float, b: float) -> float:
        """Add two numbers.

        Args:
            a: The first number.
            b: The second number.

        Returns:
            Their sum.
        """
        return a + b

    @action
    def divide(self, a: float, b: float) -> float:
        """Divide a by b."""
        return a / b  # b = 0 raises: the error is the answer

    @action
    def note(self, text: str) -> None:
        """Take a note (and return nothing)."""
        self.notes = getattr(self, "notes", []) + [text]


class Client(Agent):
    """The requester, used from this thread (add_foreground). Answers to its send()s
    arrive on a runtime thread; a queue hands them to the main thread, in order."""

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.answers: queue.Queue = queue.Queue()

    def handle_action_value(self, value) -> None:
        self.answers.put(f"handle_action_value got {value!r}")

    def handle_action_error(self, error: ActionError) -> None:
        self.answers.put(f"handle_action_error got {error}")


def ask(me: Agent, label: str, message: dict) -> None:
    """request() and print what came back: a value, or the error it raised."""
    try:
        print(f"{label} -> {me.request(message, timeout=10)!r}")
    except ActionError as error:  # the action answered with an error
        print(f"{label} -> ActionError: {error}")


def main(backend: str, amqp_url: str | None) -> None:
    print(f"backend: {backend}")
    with open_space(backend, amqp_url) as space:  # leaving the block removes every agent
        space.add(Calculator, "calc")  # in the background (its own process on multiprocess-queue)
        me = space.add_foreground(Client, "me")  # the live agent, for this thread

        ask(me, "add(2, 3)", msg("calc", "add", a=2, b=3))
        ask(me, "note('milk')", msg("calc", "note", text="milk"))  # None: "done"
        ask(me, "divide(1, 0)", msg("calc", "divide", a=1, b=0))  # the exception, as text
        ask(me, "shout()", msg("calc", "shout"))  # no such action: also an answer

        # send() does not wait: the answers come back later, to the handlers.
        me.send(msg("calc", "add", a=10, b=20))
        me.send(msg("calc", "divide", a=1, b=0))
        for _ in range(2):
            print("send:", me.answers.get(timeout=10))

        # Every agent answers "help": its actions, described from signatures and docstrings.
        helps = me.request(msg("calc", "help"), timeout=10)
        for name, spec in sorted(helps.items()):
            print(f"help: {name}: {spec['description']}")
        print("help for add:", json.dumps(me.request(msg("calc", "help", action_name="add"),
                                                    timeout=10)["add"]["args"]))
        print("agents:", ", ".join(sorted(space.agents())))
    print("done")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_backend_arguments(parser, default="dataspace-assertion")
    args = parser.parse_args()
    # Ctrl-C, or `| head` closing the pipe: one line or none, not a traceback.
    sys.exit(run_command("request_response", lambda: main(args.backend, args.amqp_url)))
