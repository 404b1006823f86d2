"""The AMQP backend benchmark: what ``AMQPSpace`` costs on a RabbitMQ broker.

1. **request() round trip**, median and p99, the four scenarios of the classic benchmark
   (an ``async def`` action calling ``arequest``, or a synchronous foreground caller, to
   an ``async def`` or a plain-function action); every hop goes through the broker.
2. **One-way messages per second**: an ``async def`` action sends N messages to another
   agent, whose ``async def`` action counts them; from the first send to the last receipt
   (and, second figure, until every reply is back: each send is answered).

Goals: round trip ≤ 2 ms median, ≥ 2,000 one-way messages/s. The agents share one space
(one connection); each run uses a fresh exchange.

Run ``python -m dataspace_agency.compare.bench.amqp --url amqp://guest:guest@127.0.0.1:5672/%2F``
(or set ``DATASPACE_AGENCY_AMQP_URL``); ``--quick`` for fewer iterations.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import threading
import time
import uuid

from rich.console import Console
from rich.table import Table

from ...spaces.amqp import AMQPSpace
from .classic import Caller, Counter, Responder, Sender, Sizes, _sync_round_trips

GOAL_ROUND_TRIP_MS = 2.0
GOAL_MESSAGES = 2_000.0

SIZES = {
    "full": Sizes(round_trips=2_000, warm_up=100, messages=10_000, message_runs=3,
                  batch=100, agents=0, failures=0),
    "quick": Sizes(round_trips=500, warm_up=50, messages=3_000, message_runs=1,
                   batch=100, agents=0, failures=0),
}

SCENARIOS = {
    "agent_async": ("aecho", False, "agent → async action"),
    "agent_thread": ("echo", False, "agent → plain-function action"),
    "sync_async": ("aecho", True, "sync caller → async action"),
    "sync_thread": ("echo", True, "sync caller → plain-function action"),
}


def measure(url: str, sizes: Sizes) -> dict:
    space = AMQPSpace(url, exchange=f"bench-{uuid.uuid4().hex}")
    try:
        me = space.add_foreground(Responder, "me")
        space.add(Responder, "responder")
        space.add(Caller, "caller")
        round_trips = {}
        for key, (name, sync, _) in SCENARIOS.items():
            gc.collect()
            if sync:
                median, p99 = _sync_round_trips(me, "responder", name, sizes.round_trips,
                                                sizes.warm_up)
            else:
                median, p99 = me.request(
                    {"to": "caller", "action": {"name": "time_requests", "args": {
                        "to": "responder", "name": name, "count": sizes.round_trips,
                        "warm_up": sizes.warm_up}}}, timeout=60 + sizes.round_trips * 0.05)
            round_trips[key] = {"median_ms": median / 1000, "p99_ms": p99 / 1000}
        runs = []
        for run in range(sizes.message_runs):
            received, replied, record = threading.Event(), threading.Event(), {}
            space.add(Counter, f"counter{run}", target=sizes.messages, done=received,
                      record=record)
            space.add(Sender, f"sender{run}", target=sizes.messages, done=replied,
                      record=record)
            gc.collect()
            space._route({"from": "me", "to": f"sender{run}", "action": {
                "name": "blast", "args": {"to": f"counter{run}", "count": sizes.messages,
                                          "batch": sizes.batch}}})
            limit = 60 + sizes.messages / 100
            if not (received.wait(limit) and replied.wait(limit)):
                raise RuntimeError("one-way messages did not all arrive in time")
            runs.append({
                "received_per_s": sizes.messages / (record["received"] - record["start"]),
                "replied_per_s": sizes.messages / (record["replied"] - record["start"]),
                "errors": len(record.get("errors", [])),
            })
            space.remove(f"sender{run}")
            space.remove(f"counter{run}")
        runs.sort(key=lambda r: r["received_per_s"])
        return {"round_trips": round_trips, "messages": runs[len(runs) // 2]}
    finally:
        space.destroy()


def report(figures: dict, console: Console | None = None) -> None:
    console = console or Console()
    table = Table(title="AMQPSpace request() round trip (ms)")
    for column in ("scenario", "median", "p99", f"goal ≤ {GOAL_ROUND_TRIP_MS:g} ms"):
        table.add_column(column)
    for key, (_, _, label) in SCENARIOS.items():
        f = figures["round_trips"][key]
        ok = "✓" if f["median_ms"] <= GOAL_ROUND_TRIP_MS else "✗"
        table.add_row(label, f"{f['median_ms']:.3f}", f"{f['p99_ms']:.3f}", ok)
    console.print(table)
    m = figures["messages"]
    ok = "✓" if m["received_per_s"] >= GOAL_MESSAGES else "✗"
    console.print(f"One-way messages: {m['received_per_s']:,.0f}/s received"
                  f" (goal ≥ {GOAL_MESSAGES:,.0f}/s {ok}), {m['replied_per_s']:,.0f}/s"
                  f" with every reply back; {m['errors']} error(s)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get("DATASPACE_AGENCY_AMQP_URL"))
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if not args.url:
        parser.error("give --url or set DATASPACE_AGENCY_AMQP_URL")
    started = time.perf_counter()
    figures = measure(args.url, SIZES["quick" if args.quick else "full"])
    report(figures)
    print(f"({time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
