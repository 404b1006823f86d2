"""Request round trip, sequential: a caller asks an echo action and waits, one at a time.

* ``rt_us``: the classic shape, a foreground agent used from the measuring thread calls
  ``request()`` to a plain-function ``echo`` action of an ``add()``ed agent (which runs on
  a worker thread, as agency runs actions). Median, p90 and p99 of individually timed
  calls, after a warm-up. agency's reference does exactly this.
* ``async_rt_us``: agent to agent with no thread hop (``async def`` to ``async def``,
  ``await self.arequest``), what the substrate itself costs. agency has no such path.
"""

from __future__ import annotations

import time
from typing import Any

from ..agents import Driver, Echo, Pinger
from . import Context, latency_figures

NAME = "round_trip"
DESCRIPTION = "request round trip, sequential (median, p90, p99)"
PARAMS = {
    "tiny": {"count": 30, "warm_up": 5, "async_count": 30},
    "quick": {"count": 1_000, "warm_up": 100, "async_count": 1_000},
    "full": {"count": 3_000, "warm_up": 200, "async_count": 3_000},
}
# agency answers in ~100 ms (its poll): few calls, or the reference alone takes minutes.
REFERENCE_PARAMS = {
    "tiny": {"count": 3, "warm_up": 1, "async_count": 0},
    "quick": {"count": 10, "warm_up": 1, "async_count": 0},
    "full": {"count": 50, "warm_up": 2, "async_count": 0},
}
TIMEOUT_S = 30.0


def supports(backend: Any) -> str | None:
    return None


def run(ctx: Context, params: dict) -> dict:
    with ctx.space() as space:
        space.add(Echo, "echo")
        me = space.add_foreground(Driver, "driver")
        message = {"to": "echo", "action": {"name": "echo", "args": {"text": "hi"}}}
        for _ in range(params["warm_up"]):
            me.request(message, timeout=TIMEOUT_S)
        clock = time.perf_counter
        samples = []
        for _ in range(params["count"]):
            start = clock()
            me.request(message, timeout=TIMEOUT_S)
            samples.append(clock() - start)
        async_samples: list[float] = []
        if params.get("async_count"):
            space.add(Pinger, "pinger")
            async_samples = me.request(
                {"to": "pinger", "action": {"name": "round_trips", "args": {
                    "to": "echo", "count": params["async_count"],
                    "warm_up": params["warm_up"]}}},
                timeout=TIMEOUT_S + params["async_count"] * 0.1)
    figures = latency_figures("rt_us", samples)
    figures["requests_per_s"] = len(samples) / sum(samples)
    if async_samples:
        figures.update(latency_figures("async_rt_us", async_samples))
    return {"figures": figures, "samples": {"rt_s": samples, "async_rt_s": async_samples},
            "outcome": {"requests": len(samples), "async_requests": len(async_samples)}}
