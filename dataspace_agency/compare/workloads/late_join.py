"""Late joiner: a request sent before the responder exists; answered or not, and when.

The driver ``request()``s ``add`` from "late" (from a helper thread, timeout
``timeout_s``); ``join_after_s`` later (the scenario's own delay) a ``Late`` agent with
that id is added. Recorded as data: whether the request was answered, the value, how
long after the join, or which error and when.
"""

from __future__ import annotations

import time
from typing import Any

from ..agents import Driver, Late
from . import Context, request_in_background

NAME = "late_join"
DESCRIPTION = "a request sent before the responder exists: answered or not, and when"
PARAMS = {
    "tiny": {"timeout_s": 1.0, "join_after_s": 0.2},
    "quick": {"timeout_s": 2.0, "join_after_s": 0.3},
    "full": {"timeout_s": 3.0, "join_after_s": 0.5},
}
REFERENCE_PARAMS = PARAMS


def supports(backend: Any) -> str | None:
    return None


def run(ctx: Context, params: dict) -> dict:
    timeout = float(params["timeout_s"])
    clock = time.perf_counter
    with ctx.space() as space:
        me = space.add_foreground(Driver, "driver")

        asked_at = clock()
        asker, result = request_in_background(
            me, {"to": "late", "action": {"name": "add", "args": {"a": 1, "b": 2}}},
            timeout, "late-requester")
        time.sleep(params["join_after_s"])  # the scenario: the responder comes later
        joined_at = clock()
        space.add(Late, "late")
        asker.join(timeout + 30)
        if asker.is_alive():
            raise TimeoutError("the request neither returned nor timed out")
    answered = result["error"] is None
    return {"figures": {"answered": 1 if answered else 0,
                        "after_join_ms": (result["at"] - joined_at) * 1e3 if answered
                        else None,
                        "waited_ms": (result["at"] - asked_at) * 1e3},
            "samples": {},
            "outcome": {"answered": answered, "value": result.get("value"),
                        "error": result["error"], "message": result.get("message"),
                        "timeout_s": timeout, "join_after_s": params["join_after_s"]}}
