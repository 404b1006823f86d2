"""Failure: the responder dies mid-request; how long until the requester gets an error.

The driver ``request()``s ``work`` from a ``Stuck`` agent (from a helper thread) with
timeout ``timeout_s``; the action tells the driver it started, then blocks. Once it has
started, the responder dies: on process backends its process gets SIGKILL, on in-process
ones it is removed from the space. Measured: the time from the death to the requester's
error (``detect_ms``; ``waited_ms`` is from the request), and which error
(``ActionError`` at once, or ``TimeoutError`` at the timeout), as data.
"""

from __future__ import annotations

import time
from typing import Any

from ..agents import Driver, Stuck, arm_blocked, release_blocked
from . import Context, request_in_background

NAME = "failure"
DESCRIPTION = "the responder dies mid-request: time until the requester gets an error"
PARAMS = {
    "tiny": {"timeout_s": 1.0},
    "quick": {"timeout_s": 3.0},  # agency's: equal timeouts, comparable waits
    "full": {"timeout_s": 5.0},
}
# agency needs ~1 s before the stuck action even starts (its agent process starts a
# Manager on first use, and every hop waits for a 100 ms poll): a longer timeout, so
# that the responder dies well before it.
REFERENCE_PARAMS = {
    "tiny": {"timeout_s": 3.0},
    "quick": {"timeout_s": 3.0},
    "full": {"timeout_s": 5.0},
}
START_TIMEOUT_S = 30.0


def supports(backend: Any) -> str | None:
    return None


def run(ctx: Context, params: dict) -> dict:
    timeout = float(params["timeout_s"])
    clock = time.perf_counter
    arm_blocked()
    try:
        with ctx.space() as space:
            space.add(Stuck, "stuck")
            me = space.add_foreground(Driver, "driver")

            asked_at = clock()
            asker, result = request_in_background(
                me, {"to": "stuck", "action": {"name": "work", "args": {"driver": "driver"}}},
                timeout, "failure-requester")
            if not me.started_event.wait(START_TIMEOUT_S):
                raise TimeoutError("the stuck action never started")
            killed_at = clock()
            how = ctx.kill(space, "stuck")
            asker.join(timeout + START_TIMEOUT_S)
            release_blocked()  # an in-process stuck action may now finish
            if asker.is_alive():
                raise TimeoutError("the request neither failed nor timed out")
    finally:
        release_blocked()
    detect = result["at"] - killed_at
    return {"figures": {"detect_ms": detect * 1e3,
                        "waited_ms": (result["at"] - asked_at) * 1e3,
                        "timed_out": 1 if result["error"] == "TimeoutError" else 0},
            "samples": {"detect_s": [detect]},
            "outcome": {"how": how, "error": result["error"],
                        "message": result.get("message"), "timeout_s": timeout}}
