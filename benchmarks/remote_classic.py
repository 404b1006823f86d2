"""Classic agents through a dataspace server against the same agents in process, side by
side in one run (issue 14, item 4).

    python benchmarks/remote_classic.py [--messages M] [--count N] [--native M]
                                        [--modes message,assertion] [--repeat R]

For each space, two ``add()``ed agents in this process:

* **one-way**: an ``async def`` action on "producer" loops ``await self.asend(...)``
  M times to "counter", which counts the ``take``s and at the last tells the producer
  (the ``[response]`` every ``take`` gets travels back too: the classic contract). Timed
  from the first send until the producer is told.
* **round trip**: the producer's ``async def`` action loops ``await self.arequest(...)``
  N times to an ``async def`` echo action (200 untimed first); the median and p99.

Spaces: ``DataspaceSpace`` (in process) and ``RemoteDataspaceSpace`` on a server in a
child process (``ServerProcess``, a unix socket), each in both adapter modes, plus a
native client of the same server: ``message()`` M values on one connection to an
observer on that same connection (the path a classic message in message mode takes:
client -> server -> client), and a one-hop round trip (send, wait for it to come back).

The ratios are printed beside the goals of issue 14: one-way through a server >= 0.5x the
in-process rate (same mode); a classic round trip crosses the server twice (request,
then reply), so its floor is two native hops.

``--repeat R`` measures each figure R times and reports the best of the one-way rates and
the median of the round-trip medians (the machine is shared; a run may catch someone
else's burst). The garbage collector is on throughout, as for a user.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import tempfile
import resource
import statistics
import sys
import time
from typing import Any, Callable

import trio
from preserves import Record, Symbol
from syndicate import patterns as P

from dataspace_agency import Agent, DataspaceSpace, RemoteDataspaceSpace, action
from dataspace_agency.compare.agents import time_arequests
from dataspace_agency.protocol.client import connect
from dataspace_agency.protocol.process import ServerProcess

ONE, PING = Symbol("one"), Symbol("ping")
PROFILER = cProfile.Profile()
WARM_UP = 500  # one-way messages before the profiled ones


class Counter(Agent):
    """Counts ``take``s; at the expected count tells the producer."""

    def __init__(self, id: str, **kwargs: Any) -> None:
        super().__init__(id, **kwargs)
        self.expected = self.received = 0

    @action
    async def expect(self, count: int) -> None:
        self.expected, self.received = count, 0

    @action
    async def take(self, i: int) -> None:
        self.received += 1
        if self.received == self.expected:
            await self.asend({"to": "producer", "action": {"name": "finished", "args": {}}})

    @action
    async def echo(self, text: str) -> str:
        return text


class Producer(Agent):
    def __init__(self, id: str, **kwargs: Any) -> None:
        super().__init__(id, **kwargs)
        self.done: trio.Event | None = None

    @action
    async def one_way(self, count: int) -> float:
        await self.arequest({"to": "counter", "action": {"name": "expect",
                                                         "args": {"count": count}}})
        self.done = trio.Event()
        start = time.perf_counter()
        for i in range(count):
            await self.asend({"to": "counter", "action": {"name": "take", "args": {"i": i}}})
        with trio.fail_after(300):
            await self.done.wait()
        return count / (time.perf_counter() - start)

    @action
    async def finished(self) -> None:
        self.done.set()

    @action
    async def profile(self, on: bool) -> None:
        """Start / stop cProfile on this agent's runtime thread (where every agent of
        the space, the relay and the transport run)."""
        if on:
            PROFILER.enable()
        else:
            PROFILER.disable()

    @action
    async def round_trips(self, count: int) -> list:
        message = {"to": "counter", "action": {"name": "echo", "args": {"text": "hi"}}}
        samples = sorted(await time_arequests(self, message, count, warm_up=200))
        return [statistics.median(samples) * 1e6, samples[int(len(samples) * 0.99)] * 1e6]


def _cpu_seconds(pid: int | None = None) -> float:
    """CPU time (user + system) used so far by this process, or by process ``pid``."""
    if pid is None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure_classic(make: Callable[[], Any], messages: int, count: int,
                    server_pid: int | None) -> dict:
    with make() as space:
        space.add(Counter, "counter")
        space.add(Producer, "producer", max_concurrency=2)  # one_way waits for finished
        me = space.add_foreground(Agent, "me")

        def ask(name: str, **args: Any) -> Any:
            return me.request({"to": "producer", "action": {"name": name, "args": args}},
                              timeout=600)
        wire = getattr(space, "wire_stats", None)  # RemoteDataspaceSpace

        def sample() -> tuple:
            return (_cpu_seconds(), _cpu_seconds(server_pid) if server_pid else 0.0,
                    wire() if wire else {})
        before = sample()
        rate = ask("one_way", count=messages)
        after = sample()
        median, p99 = ask("round_trips", count=count)
    per = 1e6 / messages
    return {"rate": rate, "median": median, "p99": p99,
            "cpu": (after[0] - before[0]) * per, "server_cpu": (after[1] - before[1]) * per,
            "wire": {key: (after[2][key] - before[2][key]) / messages for key in after[2]}}


async def _native(address: Any, cap: Any, messages: int, count: int) -> dict:
    async with connect(address, cap) as ds:
        async with ds.observe(P.rec("one", P.CAPTURE)) as ones, \
                ds.observe(P.rec("ping", P.CAPTURE)) as pings:
            await ds.sync()
            samples = []
            for n in range(200 + count):
                start = time.perf_counter()
                ds.message(Record(PING, [n]))
                event = await pings.receive()
                assert event.captures == (n,)
                if n >= 200:
                    samples.append(time.perf_counter() - start)
            samples.sort()
            start = time.perf_counter()
            received = 0
            async with trio.open_nursery() as nursery:
                async def take() -> None:
                    nonlocal received
                    async for _event in ones:
                        received += 1
                        if received == messages:
                            return
                nursery.start_soon(take)
                for i in range(messages):
                    ds.message(Record(ONE, [i]))
                    if i % 100 == 99:  # let the relay write and the observer take
                        await ds.wait_writable()
                        await trio.sleep(0)
            rate = messages / (time.perf_counter() - start)
    return {"rate": rate, "median": statistics.median(samples) * 1e6,
            "p99": samples[int(len(samples) * 0.99)] * 1e6}


def measure_native(server: ServerProcess, messages: int, count: int) -> dict:
    return trio.run(_native, server.address, server.capability, messages, count)


# --- where the time goes (--profile) ---------------------------------------------------

STAGES = [  # (stage, what a function's file name contains), first match wins
    ("classic: JSON <-> Preserves", ("classic/values.py",)),
    ("classic: agents, core, adapter, checks", ("dataspace_agency/classic/",)),
    ("spaces", ("dataspace_agency/spaces/",)),
    ("wire codec: encode, decode", ("protocol/codec.py", "protocol/decoding.py",
                                   "protocol/plain_json.py", "protocol/packet_reader.py")),
    ("relay: membrane, packets, flow control", ("protocol/relay.py",)),
    ("transport, client, server", ("protocol/",)),
    ("dataspace: routing", ("dataspace_agency/dataspace/",)),
    ("runtime: turn queue, hosting", ("dataspace_agency/runtime/",)),
    ("syndicate-py: actors, turns", ("/syndicate/",)),
    ("preserves library", ("/preserves/",)),
    ("trio: scheduler, tasks", ("/trio/", "/outcome/", "/sortedcontainers/")),
]
SYSCALLS = "socket reads and writes (system calls)"
WAITING = "(waiting for input: epoll)"


def _stage_of(function: tuple) -> str:
    filename, _line, name = function
    if "epoll" in name or "select" in name:
        return WAITING
    if name in ("<built-in method posix.read>", "<built-in method posix.write>",
                "<built-in method posix.writev>"):
        return SYSCALLS
    for stage, parts in STAGES:
        if any(part in filename for part in parts):
            return stage
    return ""  # a builtin or the standard library: charged to its callers


def stage_times(profile: str) -> dict[str, float]:
    """Seconds of own time per stage in a cProfile dump; a builtin or standard-library
    function is charged to the stages of its direct callers (in proportion to the time
    it spent for each), or to "other" when those have no stage either."""
    stats = pstats.Stats(profile).stats
    totals: dict[str, float] = {}
    for function, (_cc, _nc, tottime, _ct, callers) in stats.items():
        stage = _stage_of(function)
        if stage:
            totals[stage] = totals.get(stage, 0.0) + tottime
            continue
        share = sum(caller[2] for caller in callers.values())
        for caller, caller_stats in callers.items():
            part = tottime * caller_stats[2] / share if share else tottime / len(callers)
            where = _stage_of(caller) or "other"
            totals[where] = totals.get(where, 0.0) + part
        if not callers:
            totals["other"] = totals.get("other", 0.0) + tottime
    return totals


def profile_one_way(server: ServerProcess | None, mode: str, messages: int,
                    profile_dir: str) -> tuple[dict[str, float], dict[str, float] | None]:
    """Stage times of the one-way workload: this process's runtime thread, and (remote)
    the server's process, which runs under cProfile from start to stop."""
    make = ((lambda: RemoteDataspaceSpace(server.address, server.capability, mode=mode))
            if server is not None else (lambda: DataspaceSpace(mode)))
    with make() as space:
        space.add(Counter, "counter")
        space.add(Producer, "producer", max_concurrency=2)
        me = space.add_foreground(Agent, "me")

        def ask(name: str, **args: Any) -> Any:
            return me.request({"to": "producer", "action": {"name": name, "args": args}},
                              timeout=600)
        ask("one_way", count=WARM_UP)  # unprofiled here (the server profiles it too)
        ask("profile", on=True)
        ask("one_way", count=messages)
        ask("profile", on=False)
    client_file = os.path.join(profile_dir, f"client-{mode}-{server is not None}.prof")
    PROFILER.dump_stats(client_file)
    return stage_times(client_file)


def print_profile(args: argparse.Namespace) -> None:
    """cProfile of the one-way workload, in process and through a server, by stage."""
    global PROFILER
    mode = "message"
    with tempfile.TemporaryDirectory() as scratch:
        PROFILER = cProfile.Profile()
        local = profile_one_way(None, mode, args.messages, scratch)
        server_file = os.path.join(scratch, "server.prof")
        with ServerProcess.start(profile_to=server_file) as server:
            PROFILER = cProfile.Profile()
            remote = profile_one_way(server, mode, args.messages, scratch)
        in_server = stage_times(server_file)  # written when the server stopped
    columns = {"in process": local, "client": remote, "server": in_server}
    stages = [stage for stage, _ in STAGES] + [SYSCALLS, "other"]
    print(f"\nWhere the time goes: {args.messages} one-way asends, {mode} mode, under cProfile"
          f" (µs per classic message; cProfile inflates call-heavy code: compare rows and"
          f" columns, not the totals with the unprofiled CPU figures above)")
    print(f"{'stage':42s} " + " ".join(f"{name:>11s}" for name in columns))
    # The server is profiled from start to stop: the warm-up's messages count too, and
    # its start-up (imports) is in "other".
    pers = [1e6 / args.messages, 1e6 / args.messages, 1e6 / (args.messages + WARM_UP)]
    rows = [(stage, [column.get(stage, 0.0) for column in columns.values()])
            for stage in stages]
    rows.append(("total (working)", [sum(v for k, v in column.items() if k != WAITING)
                                     for column in columns.values()]))
    rows.append((WAITING, [column.get(WAITING, 0.0) for column in columns.values()]))
    for stage, values in rows:
        print(f"{stage:42s} " + " ".join(f"{value * per:11.0f}"
                                         for value, per in zip(values, pers)))


def _best(runs: list[dict]) -> dict:
    best = max(runs, key=lambda run: run["rate"])
    return {**best, "median": statistics.median(run["median"] for run in runs),
            "p99": statistics.median(run["p99"] for run in runs)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000, help="one-way asends")
    parser.add_argument("--count", type=int, default=2_000, help="arequest round trips")
    parser.add_argument("--native", type=int, default=20_000, help="native messages")
    parser.add_argument("--modes", default="message,assertion")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--profile", action="store_true",
                        help="also profile the one-way workload (message mode) by stage,"
                             " in process and through the server (client and server)")
    parser.add_argument("--profile-only", action="store_true", help="only --profile")
    args = parser.parse_args(argv)
    if args.profile_only:
        print_profile(args)
        return 0
    modes = [mode for mode in args.modes.split(",") if mode]
    with open("/proc/loadavg") as load:
        print(f"load average: {load.read().strip()}   python {sys.version.split()[0]}")
    print(f"{args.messages} one-way asends, {args.count} arequest round trips,"
          f" {args.native} native messages; best of {args.repeat}\n")
    results: dict[str, dict] = {}
    with ServerProcess.start() as server:
        for mode in modes:
            spaces = {
                f"DataspaceSpace({mode})": lambda: DataspaceSpace(mode),
                f"RemoteDataspaceSpace({mode})": lambda: RemoteDataspaceSpace(
                    server.address, server.capability, mode=mode),
            }
            for name, make in spaces.items():
                pid = server.pid if name.startswith("Remote") else None
                results[name] = _best([measure_classic(make, args.messages, args.count, pid)
                                       for _ in range(args.repeat)])
        results["native client via server"] = _best(
            [measure_native(server, args.native, args.count) for _ in range(args.repeat)])
    print(f"{'space':32s} {'one-way msg/s':>14s} {'RT median µs':>13s} {'RT p99 µs':>10s}"
          f"   one-way, per classic message: CPU µs here + in the server;"
          f" packets, writes, reads here")
    for name, row in results.items():
        line = f"{name:32s} {row['rate']:14,.0f} {row['median']:13.0f} {row['p99']:10.0f}"
        if "cpu" in row:
            line += f"   {row['cpu']:6.0f} + {row['server_cpu']:4.0f}"
        wire = row.get("wire")
        if wire:
            line += (f";  out {wire['packets_out']:.2f} pk {wire['events_out']:.2f} ev,"
                     f" in {wire['packets_in']:.2f} pk {wire['events_in']:.2f} ev,"
                     f" {wire['writes']:.2f} writes, {wire['reads']:.2f} reads")
        print(line)
    print()
    native = results["native client via server"]
    for mode in modes:
        local, remote = results[f"DataspaceSpace({mode})"], results[f"RemoteDataspaceSpace({mode})"]
        ratio = remote["rate"] / local["rate"]
        print(f"{mode} mode: one-way through the server / in process = {ratio:.2f}x"
              f" (goal >= 0.5x: {'met' if ratio >= 0.5 else 'NOT met'});"
              f" round trip {remote['median']:.0f} µs = {remote['median'] / local['median']:.1f}x"
              f" in process, {remote['median'] / (2 * native['median']):.1f}x its floor"
              f" (two native hops, {2 * native['median']:.0f} µs)")
    if args.profile:
        print_profile(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
