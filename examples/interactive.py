"""Interactive use, as a script: what you would type at a REPL, with what it prints.

    .venv/bin/python examples/interactive.py                 # a dataspace in assertion mode
    .venv/bin/python examples/interactive.py --space queue   # the same on in-process queues

Agents run in the background; a client handle (``space.connect("me")``) talks to them,
a foreground agent is used directly, an action is added to a running agent, and ``eval``
runs code inside an agent once ``request_permission`` allows it. On a dataspace space the
handle also reads and watches facts. For the real thing: ``dataspace-agency repl``, or
``examples/interactive.ipynb`` in Jupyter.
"""

from __future__ import annotations

import argparse
import sys

from syndicate import patterns as P

from dataspace_agency import (ActionError, Agent, DataspaceSpace, EvalMixin, QueueSpace,
                              action)
from dataspace_agency.commands.failures import run_command


class Calc(EvalMixin, Agent):
    """A background agent with an ``add`` action and (opt-in) ``eval``."""

    def __init__(self, id: str, **kwargs) -> None:
        super().__init__(id, **kwargs)
        self.total = 0

    @action
    def add(self, a: float, b: float) -> float:
        """Add two numbers and keep a running total.

        Args:
            a: The first number.
            b: The second number.
        """
        self.total += a + b
        return a + b

    @action
    def remind(self, who: str, text: str) -> None:
        """Send ``text`` to ``who`` as a ``note`` message."""
        self.send({"to": who, "action": {"name": "note", "args": {"text": text}}})

    def request_permission(self, message: dict) -> bool:
        return message["from"] == "admin"  # only "admin" may eval here


class Notebook(Agent):
    """A foreground agent: the person holds it and calls it directly."""

    def __init__(self, id: str, **kwargs) -> None:
        super().__init__(id, **kwargs)
        self.lines: list[str] = []

    @action
    def write(self, line: str) -> int:
        self.lines.append(line)
        return len(self.lines)


def main(space_kind: str = "dataspace") -> None:
    space = DataspaceSpace(mode="assertion") if space_kind == "dataspace" else QueueSpace()
    with space:
        space.add(Calc, "calc")
        me = space.connect("me")
        print("request:", me.request("calc", "add", a=2, b=3))
        sent = me.send("calc", "add", a=10, b=20)
        reply = me.receive(timeout=3)
        print("send, then receive:", reply["action"]["args"]["value"],
              "| answers what was sent:", reply["meta"]["parent_id"] == sent)
        me.request("calc", "remind", who="me", text="water the plants")
        print("inbox:", me.receive(timeout=3)["action"])
        try:
            me.request("calc", "add", a=1, b="x")
        except ActionError as error:
            print("error:", error)

        pad = space.add_foreground(Notebook, "pad")
        print("foreground agent answers:", me.request("pad", "write", line="first"))
        pad.write("second")  # called directly, from this thread
        print("its state, read here:", pad.lines)
        print("it requests too:", pad.request({"to": "calc", "action": {
            "name": "add", "args": {"a": 1, "b": 1}}}))

        def shout(self, text: str) -> str:
            """Shout text back, in capitals.

            Args:
                text: What to shout.
            """
            return f"{self.id}: {text.upper()}!"
        pad.add_action(shout)
        print("added action:", me.request("pad", "shout", text="hello"))
        print("in its help:", me.request("pad", "help", action_name="shout")["shout"]
              ["description"])

        try:
            me.request("calc", "eval", code="self.total")
        except ActionError as error:
            print("eval as me:", error)
        admin = space.connect("admin")
        print("eval as admin:", admin.request("calc", "eval", code="self.total"))

        if space_kind == "dataspace":
            print("agents, from facts:", sorted(c[0] for c in me.facts(
                P.rec("agent", P.CAPTURE))))
            with me.watch(P.rec("action", P.lit("pad"), P.CAPTURE, P._)) as watch:
                watch.sync()
                print("pad offers:", sorted(e.captures[0] for e in watch.pending()))
                pad.remove_action("shout")
                event = watch.get(timeout=3)
                print("watch:", event.kind, event.captures[0])
        me.close()
        admin.close()
    print("done")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", choices=("dataspace", "queue"), default="dataspace")
    args = parser.parse_args()
    # Ctrl-C, or `| head` closing the pipe: one line or none, not a traceback.
    sys.exit(run_command("interactive", lambda: main(args.space)))
