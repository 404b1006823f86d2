"""Broadcast fan-out: one ``to: "*"`` message to K agents, until all K answers are back.

K ``Pong`` agents are ``add()``ed; the driver (which does not receive its own broadcasts)
sends ``ping`` to ``"*"`` and counts the ``[response]`` answers in ``handle_action_value``
until it has K. Repeated ``rounds`` times in one space; median, p90 and p99 of the
rounds.
"""

from __future__ import annotations

import time
from typing import Any

from ..agents import Broadcaster, Pong
from . import Context, latency_figures

NAME = "broadcast"
DESCRIPTION = "broadcast fan-out to K agents, until all K replies are back"
PARAMS = {
    "tiny": {"agents": 5, "rounds": 5},
    "quick": {"agents": 10, "rounds": 50},
    "full": {"agents": 100, "rounds": 100},
}
REFERENCE_PARAMS = {
    "tiny": {"agents": 3, "rounds": 2},
    "quick": {"agents": 5, "rounds": 5},
    "full": {"agents": 10, "rounds": 20},
}
TIMEOUT_S = 30.0


def supports(backend: Any) -> str | None:
    return None


def run(ctx: Context, params: dict) -> dict:
    k = params["agents"]
    samples = []
    with ctx.space() as space:
        for i in range(k):
            space.add(Pong, f"pong-{i}")
        me = space.add_foreground(Broadcaster, "driver")
        clock = time.perf_counter
        for _ in range(params["rounds"]):
            me.expect_replies(k)
            start = clock()
            me.send({"to": "*", "action": {"name": "ping", "args": {}}})
            if not me.replies_done.wait(TIMEOUT_S):
                raise TimeoutError(f"{len(me.replies)} of {k} broadcast answers within"
                                   f" {TIMEOUT_S} s")
            samples.append(clock() - start)
            answered = sorted(me.replies)
            if answered != sorted(f"pong-{i}" for i in range(k)):
                raise AssertionError(f"wrong broadcast answers: {answered[:5]}...")
    figures = latency_figures("fanout_ms", samples, scale=1e3)
    return {"figures": figures, "samples": {"fanout_s": samples},
            "outcome": {"agents": k, "rounds": len(samples)}}
