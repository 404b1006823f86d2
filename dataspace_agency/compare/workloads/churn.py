"""Churn: discovery while providers of a service come and go.

``providers`` providers serve ``serve``; on a seeded schedule ``departures`` of them
leave over ``duration_s`` (a share ``crash_share`` crash: ``SIGKILL`` of the process on
process backends, ``remove()`` with no goodbye in process; the others ``remove()``, so
their goodbye runs), each replaced at once by a new one. Meanwhile a client (in the
measuring process) calls "any live provider" from its view, ``calls_per_s`` calls a
second at most, one at a time, each with a timeout of ``call_timeout_s``. Two styles
(``apps/churn_*.py``): classic (heartbeats to the client, which keeps its own registry
with a time to live) and facts (a watch on the providers' ``<action p "serve" _>``
facts).

Figures: ``calls`` (made), ``failed_calls`` (no answer: to a provider already gone, or
one that timed out), ``stale_view_ms`` median and p99 (per departure, from it until the
provider left the client's view), ``discovery_messages`` (heartbeats and goodbyes the
client received, each also answered: the classic contract), ``discovery_per_s``.
"""

from __future__ import annotations

import random
import statistics
import threading
import time
from typing import Any

from ..apps import faults, style_lines, style_module
from . import Context, percentile
# The same backends (not agency's) and the same styles on them as the tasks workload.
from .tasks import supports, variants  # noqa: F401

NAME = "churn"
DESCRIPTION = "discovery under churn: failed calls, how long the view stays stale"
PARAMS = {
    "tiny": {"providers": 3, "departures": 3, "duration_s": 1.0, "calls_per_s": 100,
             "call_timeout_s": 0.25, "every_s": 0.1, "ttl_s": 0.35, "crash_share": 0.5,
             "seed": 1},
    "quick": {"providers": 4, "departures": 6, "duration_s": 2.0, "calls_per_s": 100,
              "call_timeout_s": 0.25, "every_s": 0.1, "ttl_s": 0.35, "crash_share": 0.5,
              "seed": 1},
    "full": {"providers": 8, "departures": 30, "duration_s": 10.0, "calls_per_s": 100,
             "call_timeout_s": 0.5, "every_s": 0.2, "ttl_s": 0.7, "crash_share": 0.5,
             "seed": 1},
}
REFERENCE_PARAMS = PARAMS
MECHANISM = {
    "classic": "heartbeats every {every_s} s to the client, which keeps its own registry"
               " (time to live {ttl_s} s); goodbye on a graceful leave; a failed call"
               " ({call_timeout_s} s timeout) drops the provider from the view",
    "facts": "a watch on `<action $p \"serve\" _>` (the adapter's facts): the view is the"
             " facts that stand; no heartbeats, no goodbye",
}


def schedule(params: dict) -> list[tuple[float, int, bool]]:
    """The seeded plan: (seconds from the start, index of the leaver among the providers
    present, crash or not), in time order. The same seed gives the same plan."""
    rng = random.Random(params["seed"])
    plan, at = [], 0.0
    gap = params["duration_s"] / (params["departures"] + 1)
    for _ in range(params["departures"]):
        at += rng.uniform(0.5 * gap, 1.5 * gap)
        plan.append((round(at, 4), rng.randrange(params["providers"]),
                     rng.random() < params["crash_share"]))
    return plan


def _caller(client: Any, params: dict, stop: threading.Event, calls: list) -> None:
    """The client's loop: call any live provider, paced, until told to stop."""
    pause = 1.0 / params["calls_per_s"]
    n = 0
    while not stop.is_set():
        sent = time.perf_counter()
        provider, error = client.call_any(n, params["call_timeout_s"])
        if provider is None:
            stop.wait(pause)  # nobody in the view yet
            continue
        calls.append((sent, time.perf_counter(), provider, error))
        n += 1
        stop.wait(max(0.0, pause - (time.perf_counter() - sent)))


def run(ctx: Context, params: dict) -> dict:
    style = params.get("style", "classic")
    module = style_module("churn", style)
    plan = schedule(params)
    calls: list[tuple[float, float, str, str | None]] = []
    departed: dict[str, float] = {}
    departures: list[dict] = []
    stop = threading.Event()
    with ctx.space() as space:
        if style == "classic":
            client = space.add_foreground(module.Client, "client", params["every_s"],
                                          params["ttl_s"])
        else:
            client = module.Client(space, "client")
        present = []
        for i in range(params["providers"]):
            module.join(space, client, f"provider-{i}")
            present.append(f"provider-{i}")
        next_id = params["providers"]
        caller = threading.Thread(target=_caller, args=(client, params, stop, calls),
                                  name="churn-caller")
        began = time.perf_counter()
        caller.start()
        try:
            for at, index, crash in plan:
                time.sleep(max(0.0, began + at - time.perf_counter()))  # the schedule
                leaver = present.pop(index)
                left_at = time.perf_counter()
                how = faults.depart(ctx, space, leaver, crash)
                departed[leaver] = left_at
                departures.append({"provider": leaver, "crash": crash, "how": how,
                                   "left": round(left_at, 6),
                                   "gone": round(time.perf_counter(), 6)})
                module.join(space, client, f"provider-{next_id}")
                present.append(f"provider-{next_id}")
                next_id += 1
            time.sleep(max(0.0, began + params["duration_s"] - time.perf_counter()))
        finally:
            stop.set()
            caller.join(params["call_timeout_s"] + 30)
        ended = time.perf_counter()
        in_view = set(client.view())  # (the classic view expires what has expired)
        if style == "facts":
            client.close()
        left_view = dict(client.left_view)
        messages = client.discovery_messages
    return figures_from(params, style, calls, departed, departures, left_view, in_view,
                        messages, ended - began, ended)


def stale_view(departed: dict, left_view: dict, in_view: set, ended: float) -> list:
    """Per departure, seconds from it until the provider left the client's view for
    good: still in the view at the end counts until the end; never in the view (it
    went before the client heard of it) counts 0."""
    stale = []
    for provider, at in departed.items():
        gone_from_view = ended if provider in in_view else left_view.get(provider, at)
        stale.append(max(0.0, gone_from_view - at))
    return stale


def figures_from(params: dict, style: str, calls: list, departed: dict,
                 departures: list, left_view: dict, in_view: set, messages: int,
                 span: float, ended: float) -> dict:
    stale = stale_view(departed, left_view, in_view, ended)
    failed = [c for c in calls if c[3] is not None]
    after_departure = [c for c in failed if c[2] in departed and c[0] >= departed[c[2]]]
    figures = {
        "calls": len(calls),
        "failed_calls": len(failed),
        "failed_to_gone": len(after_departure),
        "stale_view_ms_median": statistics.median(stale) * 1e3 if stale else None,
        "stale_view_ms_p99": percentile(stale, 99) * 1e3 if stale else None,
        "discovery_messages": 2 * messages,  # each heartbeat or goodbye is answered
        "discovery_per_s": 2 * messages / span,
    }
    errors: dict[str, int] = {}
    for call in failed:
        errors[call[3]] = errors.get(call[3], 0) + 1
    return {"figures": figures, "samples": {"stale_s": stale},
            "outcome": {"style": style, "departures": departures, "errors": errors,
                        "calls_log": [[round(s, 6), round(e, 6), p, err]
                                      for s, e, p, err in calls],
                        "departed": {p: round(at, 6) for p, at in departed.items()},
                        "never_in_view": sorted(set(departed) - set(left_view) - in_view),
                        "mechanism": MECHANISM[style].format(**params),
                        "agent_loc": style_lines(NAME, style)}}
