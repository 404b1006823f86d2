"""One-way throughput: N messages to one agent, until the receiver has them all.

The foreground driver ``send()``s N ``take`` messages to a ``Counter``; at the Nth the
counter sends the driver ``finished``. Timed from the first send to the driver being
told, so it includes delivery of the last message, not just enqueueing; the sending
time alone is reported too. On our backends every action answers (the classic contract
here), so N answers also travel back to the driver; agency 1.6.3 sends no answer unless
the action calls ``respond_with``, so its receiver sends none.
"""

from __future__ import annotations

import time
from typing import Any

from ..agents import Counter, Driver
from . import Context

NAME = "throughput"
DESCRIPTION = ("one-way throughput, N send()s to one agent, until it has them all"
               " (each answered on our backends)")
PARAMS = {
    "tiny": {"messages": 200},
    "quick": {"messages": 5_000},
    "full": {"messages": 20_000},
}
REFERENCE_PARAMS = {  # agency shipped: ~540 messages/s
    "tiny": {"messages": 50},
    "quick": {"messages": 500},
    "full": {"messages": 5_000},
}
TIMEOUT_S = 120.0


def supports(backend: Any) -> str | None:
    return None


def run(ctx: Context, params: dict) -> dict:
    count = params["messages"]
    with ctx.space() as space:
        space.add(Counter, "counter")
        me = space.add_foreground(Driver, "driver")
        me.request({"to": "counter", "action": {"name": "expect", "args": {
            "count": count, "reporter": "driver"}}}, timeout=TIMEOUT_S)
        clock = time.perf_counter
        start = clock()
        for i in range(count):
            me.send({"to": "counter", "action": {"name": "take", "args": {"i": i}}})
        sent = clock() - start
        received = me.finished_event.wait(TIMEOUT_S)
        elapsed = clock() - start
    if not received:
        raise TimeoutError(f"the counter did not receive {count} messages within"
                           f" {TIMEOUT_S} s")
    return {"figures": {"messages_per_s": count / elapsed, "send_per_s": count / sent,
                        "elapsed_s": elapsed},
            "samples": {"elapsed_s": [elapsed]},
            "outcome": {"messages": count, "all_received": received}}
