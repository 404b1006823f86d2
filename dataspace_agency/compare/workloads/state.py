"""State: a newcomer learns which of N agents are present.

N idle agents are ``add()``ed; then a newcomer finds out who is there, by every means
the backend offers, each timed and checked against the truth:

* ``observe`` (dataspaces only): a newcomer agent with one ``@during(<agent $id>)``;
  the dataspace replays the current presence facts to it. Timed from the start of its
  ``add_foreground`` to having seen all N. Messages: none (one observe assertion).
* ``broadcast``: the classic way (agency's): broadcast ``help`` and collect the answers.
  Timed until all N are in; but a real newcomer does not know N, so it can only stop
  waiting after a timeout (``knows_when_done`` is false). Messages: 1 broadcast, N
  answers.
* ``registry``: ``space.agents()``. On a dataspace that is a query over facts any
  process can make; on a queue space it reads the space object's own registry, which
  only the process holding that object has.
"""

from __future__ import annotations

import time
from typing import Any

from ..agents import Broadcaster, Idle, Watcher
from . import Context

NAME = "state"
DESCRIPTION = "a newcomer learns which of N agents are present"
PARAMS = {
    "tiny": {"agents": 5},
    "quick": {"agents": 100},
    "full": {"agents": 1_000},
}
REFERENCE_PARAMS = {
    "tiny": {"agents": 3},
    "quick": {"agents": 5},
    "full": {"agents": 10},
}
TIMEOUT_S = 30.0


def supports(backend: Any) -> str | None:
    return None


def run(ctx: Context, params: dict) -> dict:
    n = int(params["agents"])
    expected = {f"idle-{i}" for i in range(n)}
    clock = time.perf_counter
    methods: dict[str, dict] = {}
    figures: dict[str, Any] = {}
    with ctx.space() as space:
        for i in range(n):
            space.add(Idle, f"idle-{i}")
        if ctx.backend.kind == "dataspace":
            start = clock()
            watcher = space.add_foreground(Watcher, "watcher", frozenset(expected))
            complete = watcher.complete.wait(TIMEOUT_S)
            took = clock() - start
            methods["observe"] = {"complete": complete, "ms": took * 1e3, "messages": 0,
                                  "knows_when_done": False,
                                  "note": "one observe; later arrivals and departures"
                                          " keep coming"}
            figures["observe_ms"] = took * 1e3
        me = space.add_foreground(Broadcaster, "newcomer")
        me.expect_replies(n)
        start = clock()
        me.send({"to": "*", "action": {"name": "help", "args": {}}})
        complete = me.replies_done.wait(TIMEOUT_S)
        took = clock() - start
        methods["broadcast"] = {"complete": complete, "ms": took * 1e3,
                                "messages": 1 + len(me.replies), "knows_when_done": False,
                                "note": "a newcomer that does not know N must wait for a"
                                        " timeout"}
        figures["broadcast_ms"] = took * 1e3
        start = clock()
        registry = space.agents()
        took = clock() - start
        methods["registry"] = {"complete": expected <= set(registry), "ms": took * 1e3,
                               "messages": 0, "knows_when_done": True,
                               "note": "a query over facts" if ctx.backend.kind == "dataspace"
                               else "the space object's registry (this process only)"}
        figures["registry_ms"] = took * 1e3
    return {"figures": figures, "samples": {},
            "outcome": {"agents": n, "methods": methods}}
