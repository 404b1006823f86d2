"""The classic request path counted, not timed: Python calls and scheduling rounds.

    .venv/bin/python benchmarks/request_calls.py [--count 500] [--backends message,assertion,queue]

Wall-clock figures on a shared 2-core machine move by 2x between runs of the same code
(``benchmarks/request_path.py`` says how much); these counts do not. Per request (and
per one-way message), on each backend:

* **calls**: Python function calls on the caller's thread and the runtime's thread
  (``sys.setprofile`` on both; worker threads running plain-function actions are not
  counted, and they run the same code on every backend);
* **rounds**: the runtime's trio scheduling rounds (an instrument's ``before_io_wait``).

Paths: a client handle's synchronous ``request()`` to a plain-function action; an
``async def`` action's ``await arequest()`` to an ``async def`` action; an ``async def``
action's ``await asend()`` burst to a counting agent (per message, its response
included). Profiling slows everything down: only the counts mean anything here.
"""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path
from typing import Any, Callable

import trio
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).parent))
from request_path import Blaster, Counter, Pinger, RoundCounter, make_space  # noqa: E402

from dataspace_agency.compare.agents import Echo  # noqa: E402


class CallCounter:
    """A profile function counting Python calls, installed on this thread and on the
    runtime's while counting."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, frame: Any, event: str, arg: Any) -> None:
        if event == "call":
            self.calls += 1


def count(space: Any, run: Callable[[], None], per: int) -> tuple[float, float]:
    """(calls, rounds) per ``per`` of ``run()``."""
    calls, rounds = CallCounter(), RoundCounter()
    on_runtime = space._background.call  # the space's runtime thread
    on_runtime(lambda rt: trio.lowlevel.add_instrument(rounds))
    on_runtime(lambda rt: sys.setprofile(calls))
    sys.setprofile(calls)
    try:
        run()
    finally:
        sys.setprofile(None)
        on_runtime(lambda rt: sys.setprofile(None))
        on_runtime(lambda rt: trio.lowlevel.remove_instrument(rounds))
    return calls.calls / per, rounds.rounds / per


def measure(backend: str, n: int) -> dict[str, tuple[float, float]]:
    with make_space(backend) as space:
        space.add(Echo, "echo")
        space.add(Pinger, "pinger")
        me = space.connect("me")
        for _ in range(50):  # untimed, as every path measured gets
            me.request("echo", "echo", text="hi")
        me.request("pinger", "round_trips", timeout=120,
                   args={"to": "echo", "count": 0, "warm_up": 50})
        figures = {}
        figures["handle request"] = count(
            space, lambda: [me.request("echo", "echo", text="hi") for _ in range(n)], n)
        figures["agent -> agent arequest"] = count(
            space, lambda: me.request("pinger", "round_trips", timeout=120, args={
                "to": "echo", "count": n, "warm_up": 0}), n)
        done = threading.Event()
        space.add(Counter, "counter", n * 4, done)
        space.add(Blaster, "blaster")

        def blast() -> None:
            me.request("blaster", "blast", timeout=120, args={"to": "counter", "count": n * 4})
            if not done.wait(120):
                raise TimeoutError("the counter did not get every message")
        figures["one-way asend (per message)"] = count(space, blast, n * 4)
        me.close()
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--backends", default="message,assertion,queue")
    args = parser.parse_args(argv)
    results = {b: measure(b, args.count) for b in args.backends.split(",")}
    table = Table(title="Python calls (caller + runtime threads) and scheduling rounds")
    table.add_column("path")
    for backend in results:
        table.add_column(backend, justify="right")
    for path in next(iter(results.values())):
        table.add_row(path, *[f"{r[path][0]:,.0f} calls, {r[path][1]:.2f} rounds"
                              for r in results.values()])
    Console(width=140).print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
