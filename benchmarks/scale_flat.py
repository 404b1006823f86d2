"""Per-message cost at 10 and at 10,000 observers or agents, with the collector on.

    python benchmarks/scale_flat.py [--quick] [--sizes 10,10000] [--cases native,...]
                                    [--variants on,nofreeze,off]

Issue 14, item 5: a user's per-message cost should not grow with the size of the
system; the goal is ``<= 1.5x`` at 10,000 against 10. Cases:

* ``native``: ``open_dataspace()`` with N literal-keyed observers (``<Msg "agent-i" $x>``),
  then ``publish`` + ``retract`` + ``message`` + ``sync`` of a value one of them matches
  (its events are read by a trio task, as a user would).
* ``message``, ``assertion``, ``queue``: ``DataspaceSpace("message")``,
  ``DataspaceSpace("assertion")`` and ``QueueSpace()`` with N agents; an agent's
  ``await self.arequest(...)`` to another agent (``a2a``), and a client handle's
  synchronous ``request(...)`` (``handle``).

Variants, side by side: ``on`` is what a user gets (collector on, the package's
collection policy, runtime/collector.py); ``nofreeze`` has the collector on and the policy
off (what main did before it); ``off`` disables the collector while timing (a floor, not
what anyone gets). Each case and variant runs in a fresh process (a clean heap, as a
program starts), sets up, and times straight away, without a ``gc.collect()`` a user
would not make. The figure is the mean (total time / operations): a collection's pause is
part of what a user waits for, and a median would hide it; the median is printed beside.

Last, the objects the classic layer leaves in reference cycles per request (measured with
``gc.DEBUG_SAVEALL``), by type: what the collector has to find, per request.

Timings on a busy machine are noisy: read them with the load average printed at the top.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import gc
import inspect
import json
import os
import statistics
import subprocess
import sys
import time

from dataspace_agency import Agent, action
from dataspace_agency.compare.agents import Echo, time_arequests

GOAL = 1.5
CASES = ("native", "message", "assertion", "queue")
VARIANTS = {"on": "collector on (what a user gets)", "nofreeze": "collector on, no freezing",
            "off": "collector off while timing"}
SIZES = {"full": {"native_ops": 5_000, "requests": 2_000, "warm_up": 200},
         "quick": {"native_ops": 2_000, "requests": 500, "warm_up": 100}}


# --- one case, in its own process ----------------------------------------------------------

ECHO = {"to": "echo-0", "action": {"name": "aecho", "args": {"text": "hi"}}}


class Caller(Agent):
    """Times ``await self.arequest(ECHO)`` round trips, agent to agent."""

    @action
    async def round_trips(self, count: int, warm_up: int, no_collector: bool) -> dict:
        await time_arequests(self, ECHO, 0, warm_up)
        if no_collector:
            gc.disable()
        cpu = time.process_time()
        try:
            samples = await time_arequests(self, ECHO, count, 0)
        finally:
            cpu = time.process_time() - cpu
            gc.enable()
        return {"samples": samples, "cpu": cpu}


def _round_trips(count: int, warm_up: int, no_collector: bool) -> dict:
    return {"to": "caller", "action": {"name": "round_trips", "args": {
        "count": count, "warm_up": warm_up, "no_collector": no_collector}}}


def _timed(samples: list[float], variant: str, cpu_seconds: float) -> dict:
    """Wall-clock figures of ``samples`` and the process's CPU time per operation (all
    its threads: less disturbed by other processes on a busy machine than wall time)."""
    return {"mean_us": statistics.fmean(samples) * 1e6,
            "median_us": statistics.median(samples) * 1e6,
            "cpu_us": cpu_seconds / len(samples) * 1e6,
            "count": len(samples), "variant": variant}


def _with_collector(variant: str, body):
    """Run ``body()`` (the timed part) with the collector as the variant wants it."""
    if variant != "off":
        return body()
    gc.disable()
    try:
        return body()
    finally:
        gc.enable()


async def _native(n: int, sizes: dict, variant: str) -> dict:
    import trio
    from preserves import Record, Symbol
    from syndicate import patterns as P

    from dataspace_agency import open_dataspace

    async with open_dataspace() as ds, contextlib.AsyncExitStack() as stack:
        channels = [await stack.enter_async_context(
            ds.observe(P.rec("Msg", P.lit(f"agent-{i}"), P.CAPTURE))) for i in range(n)]
        await ds.sync()
        value = Record(Symbol("Msg"), ["agent-0", "x"])
        clock, samples = time.perf_counter, []

        async def drain() -> None:
            async for _event in channels[0]:
                pass

        async def timed() -> None:
            for _ in range(sizes["native_ops"]):
                start = clock()
                ds.retract(ds.publish(value))
                ds.message(value)
                await ds.sync()
                samples.append(clock() - start)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(drain)
            if variant == "off":
                gc.disable()
            cpu = time.process_time()
            try:
                await timed()
            finally:
                cpu = time.process_time() - cpu
                gc.enable()
            nursery.cancel_scope.cancel()
        return {"ops": _timed(samples, variant, cpu)}


def _space(case: str):
    from dataspace_agency import DataspaceSpace, QueueSpace
    return {"message": lambda: DataspaceSpace("message"),
            "assertion": lambda: DataspaceSpace("assertion"),
            "queue": QueueSpace}[case]()


def _classic(case: str, n: int, sizes: dict, variant: str) -> dict:
    with _space(case) as space:
        for i in range(n):
            space.add(Echo, f"echo-{i}")
        space.add(Caller, "caller")
        me = space.connect("me")
        a2a = me.request(_round_trips(sizes["requests"], sizes["warm_up"], variant == "off"),
                         timeout=600)

        def handle_requests() -> dict:
            clock, samples = time.perf_counter, []
            cpu = time.process_time()
            for _ in range(sizes["requests"]):
                start = clock()
                me.request(ECHO, timeout=30)
                samples.append(clock() - start)
            return {"samples": samples, "cpu": time.process_time() - cpu}

        for _ in range(sizes["warm_up"]):
            me.request(ECHO, timeout=30)
        handle = _with_collector(variant, handle_requests)
    return {"a2a": _timed(a2a["samples"], variant, a2a["cpu"]),
            "handle": _timed(handle["samples"], variant, handle["cpu"])}


def run_case(case: str, n: int, mode: str, variant: str) -> dict:
    """Set up and time one case in this process; every figure as a dict."""
    from dataspace_agency.runtime import collector
    if variant != "on":
        collector.set_enabled(False)
    sizes = SIZES[mode]
    started = time.perf_counter()
    if case == "native":
        import trio
        figures = trio.run(_native, n, sizes, variant)
    else:
        figures = _classic(case, n, sizes, variant)
    figures["seconds"] = time.perf_counter() - started
    figures["collector"] = collector.statistics().__dict__
    return figures


# --- the census of cycles per request -------------------------------------------------------

def _type_name(obj: object) -> str:
    kind = type(obj)
    if kind.__name__ == "function":
        return f"function {obj.__qualname__}"
    return f"{kind.__module__}.{kind.__qualname__}".removeprefix("builtins.")


def cycle_census(case: str, requests: int) -> dict:
    """Objects left in reference cycles per request, by type, for a handle's request
    and for an agent's ``arequest`` (each request a round trip to one agent)."""
    def window(body) -> collections.Counter:
        body(20)  # warm: first-use caches are not garbage per request
        gc.collect()
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            body(requests)
            gc.collect()
            return collections.Counter(_type_name(o) for o in gc.garbage)
        finally:
            gc.set_debug(0)
            gc.garbage.clear()

    with _space(case) as space:
        space.add(Echo, "echo-0")
        space.add(Caller, "caller")
        me = space.connect("me")
        handle = window(lambda count: [me.request(ECHO, timeout=30) for _ in range(count)])
        # One handle request starts the loop: its own garbage is 1/requests per request.
        a2a = window(lambda count: me.request(_round_trips(count, 0, False), timeout=600))
    return {"requests": requests, "handle": dict(handle), "a2a": dict(a2a)}


# --- the driver -----------------------------------------------------------------------------

def _in_subprocess(*args: str) -> dict:
    result = subprocess.run([sys.executable, __file__, *args], capture_output=True,
                            text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _policy_wired() -> str:
    from dataspace_agency.spaces.base import Space
    return "yes" if "after_setup" in inspect.getsource(Space._add) else "no"


def _print_table(results: dict, cases: list[str], sizes: list[int], variants: list[str],
                 figure: str) -> None:
    small, large = sizes[0], sizes[-1]
    head = f"{'case':22s}" + "".join(
        f" | {v + ' µs at ' + f'{small:,}':>18s} {f'at {large:,}':>10s} {'ratio':>6s}"
        for v in variants)
    print(head + f" | goal ≤ {GOAL:g}x (on)")
    print("-" * len(head))
    for case in cases:
        for op in (["ops"] if case == "native" else ["a2a", "handle"]):
            row, verdict = f"{case + ' ' + op:22s}", ""
            for variant in variants:
                a = results[(case, small, variant)][op][figure]
                b = results[(case, large, variant)][op][figure]
                row += f" | {a:18,.0f} {b:10,.0f} {b / a:5.2f}x"
                if variant == "on":
                    verdict = "✓" if b / a <= GOAL else "✗"
            print(row + f" | {verdict}")



def _print_census(census: dict) -> None:
    print("\nObjects left in reference cycles per request (classic layer and below), "
          f"{next(iter(census.values()))['requests']:,} requests each:")
    for case, figures in census.items():
        for op in ("handle", "a2a"):
            counts, n = figures[op], figures["requests"]
            total = sum(counts.values()) / n
            top = ", ".join(f"{name} {count / n:.2f}" for name, count in
                            sorted(counts.items(), key=lambda kv: -kv[1])[:12]
                            if count / n >= 0.05)
            print(f"  {case:9s} {op:6s} {total:6.2f} per request" + (f": {top}" if top else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer operations")
    parser.add_argument("--sizes", default="10,10000", help="observer/agent counts")
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--variants", default="on,nofreeze",
                        help=f"of {', '.join(VARIANTS)}")
    parser.add_argument("--json", action="store_true", help="also print every figure")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # internal: one case, as JSON
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument("--census", help=argparse.SUPPRESS)
    args = parser.parse_args()
    mode = "quick" if args.quick else "full"
    if args.case:
        print(json.dumps(run_case(args.case, args.n, mode, args.variant)))
        return
    if args.census:
        print(json.dumps(cycle_census(args.census, 100 if args.quick else 300)))
        return

    cases, variants = args.cases.split(","), args.variants.split(",")
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"load average before: {open('/proc/loadavg').read().split()[:3]}; "
          f"{os.cpu_count()} CPUs; Python {sys.version.split()[0]}; {mode} run")
    print(f"collection policy called by spaces/base.py _add: {_policy_wired()}")
    for variant in variants:
        print(f"  {variant}: {VARIANTS[variant]}")
    results = {}
    for case in cases:
        for n in sizes:
            for variant in variants:
                print(f"... {case}, {n:,}, {variant}", file=sys.stderr, flush=True)
                results[(case, n, variant)] = _in_subprocess(
                    "--case", case, "--n", str(n), "--variant", variant,
                    *(["--quick"] if args.quick else []))
    print("\nWall-clock µs per operation, mean (what a user waits):")
    _print_table(results, cases, sizes, variants, "mean_us")
    print("\nProcess CPU µs per operation (all threads; steadier on a busy machine):")
    _print_table(results, cases, sizes, variants, "cpu_us")
    print("(medians, set-up seconds and the policy's own work: --json)")
    classic = [c for c in cases if c != "native"]
    if classic:
        census = {case: _in_subprocess("--census", case, *(["--quick"] if args.quick else []))
                  for case in classic}
        _print_census(census)
    print(f"\nload average after: {open('/proc/loadavg').read().split()[:3]}")
    if args.json:
        print(json.dumps({f"{c} {n} {v}": r for (c, n, v), r in results.items()}, indent=1))


if __name__ == "__main__":
    main()
