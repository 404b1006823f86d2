"""The dataspace routing benchmark: what it costs to route one event, and how that scales.

Two parts, printed as two tables:

1. **Routing cost in the index alone** (no runtime). N observers subscribe, each with a
   distinct literal key: observer *i* has ``<Msg "agent-i" $x>``. We time routing one
   assertion (insert then remove ``<Msg "agent-k" "payload">``, which matches exactly one
   observer) and one message (``send`` of the same value), for the skeleton
   :class:`~dataspace_agency.dataspace.index.Index` and the brute-force
   :class:`~dataspace_agency.dataspace.naive.NaiveIndex` side by side, at several N. The
   index should cost the same at every N; the naive scan grows linearly.
2. **End-to-end delivery through the runtime**: native syndicate-py actors on trio, a
   dataspace between them, messages counted by an ``on_message`` handler.

Goals (shown with ✓/✗): index cost at the largest N within 2x of the smallest, at most
20 µs per routed message in the index, and at least 50,000 messages/s end to end.

The index is timed with the collector off *and* on (as a user runs it), side by side in
a second table and on the scaling goal line; end to end, it is always on.
``benchmarks/scale_flat.py`` measures the scaling through the whole stack.

Run ``python benchmarks/dataspace_routing.py [--quick]`` or ``dataspace-agency bench``.
:func:`run` returns every figure as a dict; :func:`main` prints them.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable

import trio
from preserves import Record, Symbol
from rich.console import Console
from rich.table import Table
from syndicate import dataspace, turn
from syndicate import patterns as P

from ...dataspace.index import Index
from ...dataspace.naive import NaiveIndex
from ...native import open_dataspace
from ...runtime import collector
from ..machine import machine, summary
from . import common

GOAL_SCALING = 2.0  # index cost at the largest N / at the smallest N
GOAL_MESSAGE_US = 20.0  # index µs per routed message
GOAL_END_TO_END = 50_000.0  # messages per second through the runtime

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Sizes:
    """How much work one run does."""

    observer_counts: tuple[int, ...]
    index_ops: int  # timed operations per repeat, for the index
    repeats: int  # the median of this many repeats is reported
    naive_visits: int  # naive ops per repeat = naive_visits // N, within the bounds below
    naive_ops_bounds: tuple[int, int]
    messages: int  # end-to-end messages
    batch: int  # messages per publisher turn / between handle syncs
    round_trips: int
    end_to_end_repeats: int  # the median run of each end-to-end scenario is reported


SIZES = {
    "full": Sizes((10, 1_000, 100_000), index_ops=50_000, repeats=5, naive_visits=200_000,
                  naive_ops_bounds=(20, 20_000), messages=100_000, batch=1_000,
                  round_trips=5_000, end_to_end_repeats=3),
    "quick": Sizes((10, 1_000, 10_000), index_ops=20_000, repeats=5, naive_visits=100_000,
                   naive_ops_bounds=(10, 20_000), messages=20_000, batch=1_000,
                   round_trips=2_000, end_to_end_repeats=3),
    # For tests only (hidden --tiny): that everything runs and prints, not the figures.
    "tiny": Sizes((10, 100, 1_000), index_ops=2_000, repeats=1, naive_visits=20_000,
                  naive_ops_bounds=(5, 2_000), messages=2_000, batch=500, round_trips=200,
                  end_to_end_repeats=1),
}


# --- part 1: the index alone ---------------------------------------------------------------


class CountingSink:
    """A sink that does nothing but count, so only the index's own work is timed."""

    def __init__(self) -> None:
        self.asserted = 0
        self.retracted = 0
        self.messages = 0

    def assert_captures(self, observer: Any, captures: tuple) -> int:
        self.asserted += 1
        return self.asserted

    def retract_captures(self, observer: Any, handle: Any) -> None:
        self.retracted += 1

    def send_captures(self, observer: Any, captures: tuple) -> None:
        self.messages += 1


def _msg(key: str) -> Record:
    return Record(Symbol("Msg"), [key, "payload"])


def _routed_values(n: int, ops: int) -> list[Record]:
    """``ops`` values, each matching exactly one of the N observers. They cycle through
    up to 64 keys spread over the whole range, so no single dict slot stays hot."""
    stride = 7919  # coprime to every N used, so (j * stride) % n differ for j < n
    targets = [_msg(f"agent-{(j * stride) % n}") for j in range(min(n, 64))]
    return [targets[i % len(targets)] for i in range(ops)]


def _timed_us(body: Callable[[], None], collector_on: bool = False) -> float:
    """Wall time of ``body()`` in µs. Unless ``collector_on`` (as a user runs it), the
    collector is off while timing, as ``timeit`` does, and garbage from earlier steps is
    collected first: its pauses depend on the benchmark's own heap, not on routing."""
    was_enabled = gc.isenabled()
    if not collector_on:
        gc.collect()
        gc.disable()
    try:
        start = time.perf_counter_ns()
        body()
        return (time.perf_counter_ns() - start) / 1000
    finally:
        if was_enabled:
            gc.enable()


def _median_us_per_op(body: Callable[[list], None], values: list, repeats: int) -> float:
    body(values[: max(1, len(values) // 10)])  # warm up caches and specialised bytecode
    return statistics.median(_timed_us(lambda: body(values)) / len(values)
                             for _ in range(repeats))


def _register(indexes: list, patterns: list) -> None:
    for index in indexes:
        add = index.add_observer
        for i, pattern in enumerate(patterns):
            add(pattern, i)


def measure_index(index_class: type, patterns: list, ops: int, repeats: int,
                  collector_on: bool = False) -> dict:
    """Register ``patterns`` (observer i gets ``patterns[i]``) and time routing.

    Returns µs per observer registration, per assertion (one insert plus one remove,
    i.e. the assertion appearing and disappearing again) and per message; with
    ``collector_on``, the last two with the collector on too (``*_collector_on``)."""
    n = len(patterns)
    # The first registration ever pays for one-off caches; keep that out of the figure.
    index_class(CountingSink()).add_observer(patterns[0], "warm-up")
    # Registering 10 observers takes too little time to measure: fill several fresh
    # indexes (at least 2,000 registrations in all) and route through the last.
    rounds = max(1, 2_000 // n)
    sinks = [CountingSink() for _ in range(rounds)]
    indexes = [index_class(sink) for sink in sinks]
    register_us = _timed_us(lambda: _register(indexes, patterns)) / (n * rounds)
    sink, index = sinks[-1], indexes[-1]
    indexes.clear()  # only the last one is routed through: free the others now
    values = _routed_values(n, ops)

    def assert_and_retract(values: list) -> None:
        insert, remove = index.insert, index.remove
        for value in values:
            insert(value)
            remove(value)

    def send(values: list) -> None:
        send = index.send
        for value in values:
            send(value)

    figures = {"ops": ops}
    if collector_on:
        # Straight after set-up, as a user meets it, after what the Dataspace entity does
        # for new observers (runtime/collector.py). One pass, its mean: pauses count.
        collector.after_setup()
        for name, body in (("assert_retract", assert_and_retract), ("message", send)):
            body(values[: max(1, len(values) // 10)])  # warm up, as below
            figures[f"{name}_us_collector_on"] = _timed_us(
                lambda: body(values), collector_on=True) / len(values)
    assert_us = _median_us_per_op(assert_and_retract, values, repeats)
    message_us = _median_us_per_op(send, values, repeats)

    # Each routed value matches exactly one observer: a figure for a broken router is
    # worthless, so check that everything timed was actually delivered.
    if not (sink.asserted == sink.retracted == sink.messages > 0):
        raise RuntimeError(f"{index_class.__name__} misrouted: asserted {sink.asserted},"
                           f" retracted {sink.retracted}, messages {sink.messages}")
    return {"register_us": register_us, "assert_retract_us": assert_us,
            "message_us": message_us, **figures}


def _naive_ops(sizes: Sizes, n: int) -> int:
    # The naive scan costs ~µs per observer per event: bound its work, not its op count.
    low, high = sizes.naive_ops_bounds
    return max(low, min(high, sizes.naive_visits // n))


def _naive_repeats(sizes: Sizes) -> int:
    return min(sizes.repeats, 3)


def measure_routing(sizes: Sizes, progress: Progress) -> list[dict]:
    rows = []
    for n in sizes.observer_counts:
        progress(f"building {n:,} patterns")
        patterns = [P.rec("Msg", P.lit(f"agent-{i}"), P.CAPTURE) for i in range(n)]
        progress(f"index, {n:,} observers")
        index = measure_index(Index, patterns, sizes.index_ops, sizes.repeats,
                              collector_on=True)
        progress(f"naive scan, {n:,} observers")
        naive = measure_index(NaiveIndex, patterns, _naive_ops(sizes, n),
                              _naive_repeats(sizes))
        rows.append({"observers": n, "index": index, "naive": naive})
    return rows


# --- part 2: end to end, through the runtime -----------------------------------------------

_SINK_PATTERN = P.rec("Msg", P.lit("sink"), P.CAPTURE)


async def _spawn_counter(ds: Any, target: int) -> trio.Event:
    """A native actor counting ``<Msg "sink" $x>`` messages; the event is set at
    ``target``. Returns once its subscription is in place in the dataspace."""
    done = trio.Event()
    count = 0

    def boot(ds_ref: Any) -> None:
        @dataspace.on_message(ds_ref, _SINK_PATTERN)
        def on_message(x: Any) -> None:
            nonlocal count
            count += 1
            if count == target:
                done.set()

    ds.spawn(boot, name="counter")
    # The Observe was queued for the dataspace before this sync: once it answers, the
    # counter is subscribed.
    await ds.sync()
    return done


async def _actor_throughput(messages: int, batch: int) -> float:
    """Seconds for ``messages`` sent by one native actor, ``batch`` per turn; each next
    batch waits for the dataspace to answer a sync after the last, so at most about two
    batches are ever queued (pipelined, never an unbounded backlog)."""
    async with open_dataspace() as ds:
        done = await _spawn_counter(ds, messages)
        message = _msg("sink")

        def publisher(ds_ref: Any) -> None:
            turn.prevent_inert_check()  # it has no assertions, but has more turns to run
            sent = 0

            def send_batch() -> None:
                nonlocal sent
                for _ in range(min(batch, messages - sent)):
                    turn.send(ds_ref, message)
                sent += batch
                if sent < messages:
                    turn.sync(ds_ref, send_batch)

            send_batch()

        start = time.perf_counter_ns()
        ds.spawn(publisher, name="publisher")
        await done.wait()
        return (time.perf_counter_ns() - start) / 1e9


async def _handle_throughput(messages: int, batch: int) -> float:
    """Seconds for ``messages`` sent from trio through ``DataspaceHandle.message`` (one
    turn each), awaiting ``sync`` after every ``batch`` so the queue stays bounded."""
    async with open_dataspace() as ds:
        done = await _spawn_counter(ds, messages)
        message = _msg("sink")
        start = time.perf_counter_ns()
        for first in range(0, messages, batch):
            for _ in range(min(batch, messages - first)):
                ds.message(message)
            await ds.sync()
        await done.wait()
        return (time.perf_counter_ns() - start) / 1e9


async def _round_trip(count: int) -> float:
    """Seconds for ``count`` sequential request/reply exchanges between two native actors:
    ``<Request i>`` to a responder, ``<Reply i>`` back, then the next request."""
    async with open_dataspace() as ds:
        done = trio.Event()

        def responder(ds_ref: Any) -> None:
            @dataspace.on_message(ds_ref, P.rec("Request", P.CAPTURE))
            def on_request(i: int) -> None:
                turn.send(ds_ref, Record(Symbol("Reply"), [i]))

        def requester(ds_ref: Any) -> None:
            @dataspace.on_message(ds_ref, P.rec("Reply", P.CAPTURE))
            def on_reply(i: int) -> None:
                if i + 1 == count:
                    done.set()
                else:
                    turn.send(ds_ref, Record(Symbol("Request"), [i + 1]))

            # Same turn as the Observe above, so the dataspace sees that first.
            turn.send(ds_ref, Record(Symbol("Request"), [0]))

        ds.spawn(responder, name="responder")
        await ds.sync()
        start = time.perf_counter_ns()
        ds.spawn(requester, name="requester")
        await done.wait()
        return (time.perf_counter_ns() - start) / 1e9


async def _median_seconds(scenario: Callable[[], Any], repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        # The collector stays on (it is part of running actors), but garbage left by
        # earlier steps should not be collected on this scenario's time.
        gc.collect()
        samples.append(await scenario())
    return statistics.median(samples)


async def measure_end_to_end(sizes: Sizes, progress: Progress) -> dict:
    m, batch, repeats = sizes.messages, sizes.batch, sizes.end_to_end_repeats
    progress(f"end to end: {m:,} messages from a native actor")
    actor_s = await _median_seconds(lambda: _actor_throughput(m, batch), repeats)
    progress(f"end to end: {m:,} messages from the handle")
    handle_s = await _median_seconds(lambda: _handle_throughput(m, batch), repeats)
    progress(f"end to end: {sizes.round_trips:,} request/reply round trips")
    round_trip_s = await _median_seconds(lambda: _round_trip(sizes.round_trips), repeats)
    return {
        "messages": m,
        "batch": batch,
        "repeats": repeats,
        "actor": {"seconds": actor_s, "per_second": m / actor_s},
        "handle": {"seconds": handle_s, "per_second": m / handle_s},
        "round_trip": {"count": sizes.round_trips, "seconds": round_trip_s,
                       "us": round_trip_s / sizes.round_trips * 1e6},
    }


# --- the run ---------------------------------------------------------------------------------


def run(quick: bool, *, tiny: bool = False, progress: Progress | None = None) -> dict:
    """Run the benchmark and return every figure, printing nothing (``progress`` is told
    what is being measured). Keys: ``mode``, ``machine``, ``routing`` (one row per N, with
    ``index`` and ``naive`` µs figures), ``scaling`` (index cost ratios largest/smallest
    N), ``end_to_end`` (messages/s, round-trip µs), ``goals`` (name -> met), ``seconds``."""
    mode = "tiny" if tiny else "quick" if quick else "full"
    sizes = SIZES[mode]
    progress = progress or (lambda message: None)
    started = time.perf_counter()

    routing = measure_routing(sizes, progress)
    end_to_end = trio.run(measure_end_to_end, sizes, progress)

    first, last = routing[0]["index"], routing[-1]["index"]
    scaling = {
        "from": routing[0]["observers"], "to": routing[-1]["observers"],
        "assert_ratio": last["assert_retract_us"] / first["assert_retract_us"],
        "message_ratio": last["message_us"] / first["message_us"],
        "message_us": last["message_us"],
        "assert_ratio_collector_on": (last["assert_retract_us_collector_on"]
                                      / first["assert_retract_us_collector_on"]),
        "message_ratio_collector_on": (last["message_us_collector_on"]
                                       / first["message_us_collector_on"]),
    }
    goals = {
        "scaling": max(scaling["assert_ratio"], scaling["message_ratio"]) <= GOAL_SCALING,
        "scaling_collector_on": max(scaling["assert_ratio_collector_on"],
                                    scaling["message_ratio_collector_on"]) <= GOAL_SCALING,
        "message_us": scaling["message_us"] <= GOAL_MESSAGE_US,
        "end_to_end": end_to_end["actor"]["per_second"] >= GOAL_END_TO_END,
        "end_to_end_handle": end_to_end["handle"]["per_second"] >= GOAL_END_TO_END,
    }
    return {"mode": mode, "machine": machine(), "routing": routing, "scaling": scaling,
            "repeats": {"index": sizes.repeats, "naive": _naive_repeats(sizes)},
            "end_to_end": end_to_end, "goals": goals,
            "seconds": time.perf_counter() - started}


# --- printing ------------------------------------------------------------------------------


def report(figures: dict, console: Console) -> None:
    """Print ``figures`` (from :func:`run`) as tables and goal lines."""
    m = figures["machine"]
    console.print(f"[bold]Dataspace routing benchmark[/] ({figures['mode']} run)")
    console.print(f"machine: {summary(m)}")

    table = Table(title="Routing one event, by number of subscribed observers "
                        "(µs per operation, median)")
    table.add_column("N observers", justify="right")
    table.add_column("index µs/register\n(add_observer)", justify="right")
    table.add_column("index µs/assert\n(insert+remove)", justify="right")
    table.add_column("index µs/message\n(send)", justify="right")
    table.add_column("naive µs/assert\n(insert+remove)", justify="right")
    table.add_column("naive µs/message\n(send)", justify="right")
    for row in figures["routing"]:
        index, naive = row["index"], row["naive"]
        table.add_row(f"{row['observers']:,}",
                      *(f"{figure:,.2f}" for figure in (
                          index["register_us"], index["assert_retract_us"],
                          index["message_us"], naive["assert_retract_us"],
                          naive["message_us"])))
    table.caption = (f"ops per repeat: index {figures['routing'][0]['index']['ops']:,}; "
                     "naive " + ", ".join(f"{row['naive']['ops']:,}"
                                          for row in figures["routing"])
                     + f" (median of {figures['repeats']['index']}"
                       f" / {figures['repeats']['naive']} repeats)")
    console.print(table)

    s, goals = figures["scaling"], figures["goals"]
    table = Table(title="The index's routing cost with the collector off while timing "
                        "(above) and on (what a user gets), side by side (µs per operation)",
                  caption="collector on: one pass, mean, pauses included; "
                          "off: median repeat")
    table.add_column("observers")
    for what in ("assert", "message"):
        table.add_column(f"{what}\ncollector off", justify="right")
        table.add_column(f"{what}\ncollector on", justify="right")
    for row in figures["routing"]:
        index = row["index"]
        table.add_row(f"N = {row['observers']:,}",
                      *(f"{figure:,.2f}" for figure in (
                          index["assert_retract_us"], index["assert_retract_us_collector_on"],
                          index["message_us"], index["message_us_collector_on"])))
    console.print(table)
    console.print(f"goal: index cost at {s['to']:,} vs {s['from']:,} observers within "
                  f"{GOAL_SCALING:g}x: assert x{s['assert_ratio']:.2f}, "
                  f"message x{s['message_ratio']:.2f} {common.mark(goals['scaling'])} "
                  f"(collector off while timing; with it on: "
                  f"assert x{s['assert_ratio_collector_on']:.2f}, "
                  f"message x{s['message_ratio_collector_on']:.2f} "
                  f"{common.mark(goals['scaling_collector_on'])})")
    console.print(f"goal: index µs per routed message at {s['to']:,} observers "
                  f"≤ {GOAL_MESSAGE_US:g}: {s['message_us']:.2f} µs "
                  f"{common.mark(goals['message_us'])}")

    e = figures["end_to_end"]
    table = Table(title="End to end through the runtime: dataspace actor, "
                        "counting actor on <Msg \"sink\" $x>",
                  caption=f"median of {e['repeats']} runs")
    table.add_column("sender")
    table.add_column("messages", justify="right")
    table.add_column("seconds", justify="right")
    table.add_column("messages/s", justify="right")
    table.add_column(f"goal ≥ {GOAL_END_TO_END:,.0f}/s", justify="center")
    table.add_row(f"native actor, {e['batch']:,} sends/turn, sync-paced",
                  f"{e['messages']:,}", f"{e['actor']['seconds']:.3f}",
                  f"{e['actor']['per_second']:,.0f}", common.mark(goals["end_to_end"]))
    table.add_row(f"handle.message, 1 turn/message, sync every {e['batch']:,}",
                  f"{e['messages']:,}", f"{e['handle']['seconds']:.3f}",
                  f"{e['handle']['per_second']:,.0f}", common.mark(goals["end_to_end_handle"]))
    console.print(table)
    rt = e["round_trip"]
    console.print(f"request/reply round trip between two native actors: "
                  f"{rt['us']:.1f} µs ({rt['count']:,} sequential round trips, "
                  f"median of {e['repeats']} runs)")
    console.print(f"total benchmark time: {figures['seconds']:.1f} s")


# --- command line ----------------------------------------------------------------------------


QUICK_HELP = "N up to 10,000 and fewer iterations (under a minute)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The benchmark's options, shared by this module's :func:`main` and the CLI."""
    common.add_arguments(parser, QUICK_HELP)


def run_from_args(args: argparse.Namespace) -> int:
    """Run with parsed options, print the report; the exit status."""
    return common.run_and_report(run, report, "routing", args)


def main(argv: list[str] | None = None) -> int:
    return common.standalone_main("dataspace_routing", __doc__, run, report,
                                  "routing", QUICK_HELP, argv)
