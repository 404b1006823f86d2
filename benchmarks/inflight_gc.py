"""What the garbage collector costs while many requests are in flight, per mode.

    .venv/bin/python benchmarks/inflight_gc.py [--sends 10000] [--modes assertion,message,queue]

A client handle sends N messages (``me.send``) to an agent whose plain-function action
answers each, then receives the N replies: the handle-send workload of
``benchmarks/request_path.py``. While they are in flight, every message held costs
tracked objects (in assertion mode a request is a fact with its facet, ticket and
index entry until answered), and CPython's full collections walk all of them. Printed:

* accepted/s (how fast ``send()`` returns) and replies/s (all N received);
* collections by generation during the run, each generation's total and longest pause
  (``gc.callbacks``), and the share of the run spent in full collections;
* tracked objects per pending request: N requests held by a busy agent, counted with
  ``gc.get_objects()`` before and after (the collector's view of what they hold).

The collector stays on, with the package's policy (runtime/collector.py), as a user
runs it.
"""

from __future__ import annotations

import argparse
import gc
import threading
import time

from rich.console import Console
from rich.table import Table

from dataspace_agency import Agent, DataspaceSpace, QueueSpace, action
from dataspace_agency.compare.agents import Echo


class Gate(Agent):
    """Its one action waits until the gate opens: requests queue up, held."""

    def __init__(self, id: str, gate: threading.Event) -> None:
        super().__init__(id)
        self.gate = gate

    @action
    def wait(self) -> str:
        self.gate.wait(120)
        return "ok"


def make_space(mode: str):
    return QueueSpace() if mode == "queue" else DataspaceSpace(mode=mode)


class Pauses:
    """Collections and their pauses, by generation, while installed."""

    def __init__(self) -> None:
        self.by_generation: dict[int, list[float]] = {}
        self._started = 0.0

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            pause = time.perf_counter() - self._started
            self.by_generation.setdefault(info["generation"], []).append(pause)


def measure_sends(mode: str, count: int) -> dict:
    with make_space(mode) as space:
        space.add(Echo, "echo")
        me = space.connect("me")
        for _ in range(100):  # untimed, as every path measured gets
            me.request("echo", "echo", text="hi")
        pauses = Pauses()
        gc.callbacks.append(pauses)
        try:
            start = time.perf_counter()
            for _ in range(count):
                me.send("echo", "echo", text="hi")
            accepted = time.perf_counter() - start
            for _ in range(count):
                me.receive(timeout=120)
            total = time.perf_counter() - start
        finally:
            gc.callbacks.remove(pauses)
        me.close()
    return {"accepted_per_s": count / accepted, "replies_per_s": count / total,
            "seconds": total, "pauses": pauses.by_generation}


def _tracked() -> int:
    """Objects the collector tracks, frozen ones included (the package's policy freezes
    what set-up made: gc.get_objects() leaves those out)."""
    gc.collect()
    return len(gc.get_objects()) + gc.get_freeze_count()


def objects_per_pending(mode: str, count: int) -> float:
    gate = threading.Event()
    with make_space(mode) as space:
        space.add(Gate, "gate", gate)
        space.add(Echo, "echo")
        me = space.connect("me")
        me.send("gate", "wait")  # takes the agent's one slot: the rest wait, held
        before = _tracked()
        for _ in range(count):
            me.send("gate", "wait")
        # Every send is routed once the runtime has done all it was given: a request
        # made after them is handled after them (the runtime's queues are FIFO), and its
        # answer comes after theirs were routed.
        space.connect("probe").request("echo", "echo", text="after", timeout=120)
        after = _tracked()
        gate.set()
        for _ in range(count + 1):
            me.receive(timeout=120)
        me.close()
    return (after - before) / count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sends", type=int, default=10_000)
    parser.add_argument("--modes", default="assertion,message,queue")
    args = parser.parse_args(argv)
    table = Table(title=f"{args.sends:,} sends in flight from a handle (load"
                        f" {open('/proc/loadavg').read().split()[0]}); gc thresholds"
                        f" {gc.get_threshold()}")
    for column in ("mode", "accepted/s", "replies/s", "gen 0", "gen 1", "gen 2 (full)",
                   "full GC share", "objects per pending request"):
        table.add_column(column, justify="left" if column == "mode" else "right")
    for mode in args.modes.split(","):
        figures = measure_sends(mode, args.sends)
        cells = []
        for generation in (0, 1, 2):
            pauses = figures["pauses"].get(generation, [])
            cells.append(f"{len(pauses)} x, {sum(pauses) * 1e3:,.0f} ms"
                         f" (max {max(pauses, default=0) * 1e3:.1f})")
        full = sum(figures["pauses"].get(2, []))
        table.add_row(mode, f"{figures['accepted_per_s']:,.0f}",
                      f"{figures['replies_per_s']:,.0f}", *cells,
                      f"{full / figures['seconds']:.0%}",
                      f"{objects_per_pending(mode, min(args.sends, 3000)):.1f}")
    Console(width=160).print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
