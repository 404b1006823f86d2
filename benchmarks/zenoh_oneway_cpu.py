"""CPU per classic one-way message through Zenoh (or the dataspace server), per thread.

    python benchmarks/zenoh_oneway_cpu.py MODE [--messages M] [--runs R] [--server]

"pinger" sends M messages to "echo" (``Pinger.one_way`` of backend_round_trips.py), two
spaces in this process on one router child process (``--server``: on a ``dataspace-agency
serve`` child process instead), after 300 messages to warm up. Printed per run: the rate,
then CPU time per message from ``/proc``: this process's threads by name ("python" for
Python's, Zenoh's own by theirs: rx-0, tx-0, ...) and the router's (the server's) process.
The rate moves with the machine's load; the CPU a message costs moves less, which is why
the figures in docs/zenoh.md (and notes/2026-12-04-zenoh-rounds.md) compare both, old and
new code alternating.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import time
import uuid
from pathlib import Path

from dataspace_agency import Agent
from dataspace_agency.spaces.zenoh_space import ZenohDataspaceSpace
from dataspace_agency.zenoh.process import RouterProcess

sys.path.insert(0, str(Path(__file__).parent))
from backend_round_trips import Echo, Pinger  # noqa: E402 - the same agents as there

_TICK = os.sysconf("SC_CLK_TCK")


def thread_cpu(pid: int) -> dict[str, tuple[str, float]]:
    """CPU seconds (user + system) of each thread of ``pid``: tid -> (name, seconds)."""
    threads = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            stat = open(f"/proc/{pid}/task/{tid}/stat").read()
        except FileNotFoundError:
            continue  # ended meanwhile
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat.rsplit(")", 1)[1].split()
        threads[tid] = (name, (int(fields[11]) + int(fields[12])) / _TICK)
    return threads


def process_cpu(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=["message", "assertion"])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--server", action="store_true", help="the dataspace server instead")
    args = parser.parse_args()
    if args.server:
        from dataspace_agency.protocol.process import ServerProcess
        from dataspace_agency.spaces.remote_space import RemoteDataspaceSpace
        carrier = ServerProcess.start()
        make = lambda: RemoteDataspaceSpace(  # noqa: E731
            carrier.address, carrier.capability, mode=args.mode)
    else:
        carrier = RouterProcess()
        namespace = f"cpu{uuid.uuid4().hex[:6]}"
        make = lambda: ZenohDataspaceSpace(  # noqa: E731
            [carrier.endpoint], mode=args.mode, namespace=namespace)
    try:
        with make() as there, make() as here:
            there.add(Echo, "echo")
            here.add(Pinger, "pinger", max_concurrency=2)
            me = here.add_foreground(Agent, "me")

            def one_way(count: int) -> float:
                return me.request({"to": "pinger", "action": {
                    "name": "one_way", "args": {"count": count}}}, timeout=300)
            one_way(300)
            for _ in range(args.runs):
                before, carrier_before = thread_cpu(os.getpid()), process_cpu(carrier.pid)
                start = time.perf_counter()
                rate = one_way(args.messages)
                wall = time.perf_counter() - start
                after, carrier_after = thread_cpu(os.getpid()), process_cpu(carrier.pid)
                by_name: collections.Counter = collections.Counter()
                for tid, (name, seconds) in after.items():
                    by_name[name] += seconds - before.get(tid, (name, 0.0))[1]
                per = 1e3 / args.messages
                threads = ", ".join(f"{name} {seconds * per:.3f}"
                                    for name, seconds in by_name.most_common() if seconds > 0)
                print(f"{args.mode}: {rate:,.0f} msg/s ({wall * per:.3f} ms a message); CPU ms a "
                      f"message: this process {sum(by_name.values()) * per:.3f} ({threads}); "
                      f"{'server' if args.server else 'router'} "
                      f"{(carrier_after - carrier_before) * per:.3f}", flush=True)
    finally:
        carrier.stop()


if __name__ == "__main__":
    main()
