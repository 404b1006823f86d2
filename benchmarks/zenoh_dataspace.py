"""The dataspace on Zenoh, measured beside the dataspace server and RabbitMQ in one run.
(Not named zenoh.py: run as a script, that name would shadow the zenoh package.)

    python benchmarks/zenoh_dataspace.py [--count N] [--messages M] [--facts F]
        [--modes message,assertion] [--amqp-url URL | --rabbitmq] [--processes]

* Classic round trip (``arequest`` from "pinger" to "echo", median and p99) and one-way
  rate (``send`` M messages): "pinger" and "echo" in two spaces (two sessions), so every
  message crosses the carrier: one Zenoh router; two meshed routers (echo on one, pinger
  on the other); the dataspace server (``dataspace-agency serve`` in a child process, two
  ``RemoteDataspaceSpace`` clients); RabbitMQ (two ``AMQPSpace`` on one exchange), when a
  broker is given or ``--rabbitmq`` starts one. Routers are ``dataspace-agency router``
  child processes. Every adapter mode of ``--modes`` (default both) is measured in turn,
  every carrier of a mode in a row, with its ratios to the server in the same mode: the
  issue fixes no mode, so both are shown. ``AMQPSpace`` has no modes (a request and its
  reply are queue messages): it is measured once, in the message-mode block.
* ``--processes``: "echo"'s space runs in a child Python process (echo_process.py), as
  agents spread over machines run; "pinger" stays here. Without it both spaces share
  this process, so on Zenoh (where each receiving process does its own matching) all
  Python work is serialised under one GIL, while the server does its part in its own
  process. Per carrier, the CPU time each process spent (from /proc) per round trip
  (warm-ups included) and per one-way message is printed too: "here" (this process),
  "echo" (the child), the router(s), the server or the broker (when started here).
* Failure detection: a child process asserts a fact through a router and is SIGKILLed;
  the time until an observer here sees the fact go (median of 5).
* Facts: F assertions published by one session (assertions/s, until sync), then the time
  a second session's observer takes to be told of all F (replay); Zenoh and the server.

Goals (issue 16): round trip within 1.5x the server's, one-way >= the server's, failure
detection < 100 ms. The garbage collector stays on; figures are from one run.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import trio
from syndicate import patterns as P
from preserves import Record, Symbol, stringify

from dataspace_agency import Agent
from dataspace_agency.protocol.addresses import address_text
from dataspace_agency.zenoh import connect
from dataspace_agency.zenoh.process import RouterProcess

sys.path.insert(0, str(Path(__file__).parent))
from backend_round_trips import WARM_UP, Echo, Pinger  # noqa: E402 - the same agents
from echo_process import echo_in_child, space_for  # noqa: E402
from zenoh_oneway_cpu import process_cpu  # noqa: E402


def classic(echo_spec: list[str], pinger_spec: list[str], mode: str, count: int,
            messages: int, processes: bool, carrier_pids: dict[str, int]) -> tuple:
    """Round trip median and p99 (µs), one-way msg/s, and the CPU seconds each process
    (this one, the echo child if ``processes``, the carrier's) spent per round trip
    (warm-ups included) and per one-way message."""
    with contextlib.ExitStack() as stack:
        pids = {"here": os.getpid()}
        if processes:
            pids["echo"] = stack.enter_context(echo_in_child(echo_spec, mode)).pid
            here = stack.enter_context(space_for(pinger_spec, mode))
        else:
            there = stack.enter_context(space_for(echo_spec, mode))
            here = stack.enter_context(space_for(pinger_spec, mode))
            there.add(Echo, "echo")
        pids.update(carrier_pids)
        here.add(Pinger, "pinger", max_concurrency=2)
        me = here.add_foreground(Agent, "me")

        def ask(name: str, **kw):
            return me.request({"to": "pinger", "action": {"name": name, "args": kw}},
                              timeout=300)

        def cpu() -> dict[str, float]:
            return {name: process_cpu(pid) for name, pid in pids.items()}
        before = cpu()
        median, p99 = ask("round_trips", count=count)
        between = cpu()
        rate = ask("one_way", count=messages)
        after = cpu()
    per_trip = {name: (between[name] - before[name]) / (count + WARM_UP) for name in pids}
    per_message = {name: (after[name] - between[name]) / messages for name in pids}
    return median, p99, rate, per_trip, per_message


_HOLDER = """
import sys, trio
from preserves import Record, Symbol, stringify
from dataspace_agency.protocol.addresses import address_text
from dataspace_agency.zenoh import connect
async def main():
    async with connect([sys.argv[1]], namespace=sys.argv[2]) as ds:
        ds.publish(Record(Symbol("Alive"), ["holder"]))
        await ds.sync()
        print("ready", flush=True)
        await trio.sleep(60)  # bounded: killed long before
trio.run(main)
"""


async def failure_detection(endpoint: str, tries: int = 5) -> list[float]:
    results = []
    for _ in range(tries):
        namespace = f"fd{uuid.uuid4().hex[:8]}"
        async with connect([endpoint], namespace=namespace) as ds:
            async with ds.observe(P.rec("Alive", P.CAPTURE)) as events:
                holder = await trio.to_thread.run_sync(lambda: subprocess.Popen(
                    [sys.executable, "-c", _HOLDER, endpoint, namespace],
                    stdout=subprocess.PIPE, text=True))
                try:
                    with trio.fail_after(30):
                        assert (await events.receive()).kind == "added"
                    killed = time.perf_counter()
                    os.kill(holder.pid, signal.SIGKILL)
                    with trio.fail_after(30):
                        assert (await events.receive()).kind == "removed"
                    results.append(time.perf_counter() - killed)
                finally:
                    holder.kill()
                    await trio.to_thread.run_sync(holder.wait)
                    holder.stdout.close()
    return results


async def facts(open_writer, open_reader, count: int) -> tuple[float, float]:
    async with open_writer() as writer:
        start = time.perf_counter()
        for i in range(count):
            writer.publish(Record(Symbol("Item"), [i]))
            if i % 500 == 499:
                await trio.sleep(0)
        await writer.sync()
        rate = count / (time.perf_counter() - start)
        async with open_reader() as reader:
            start = time.perf_counter()
            seen = 0
            async with reader.observe(P.rec("Item", P.CAPTURE)) as events:
                with trio.fail_after(120):
                    while seen < count:
                        await events.receive()
                        seen += 1
            replay = time.perf_counter() - start
    return rate, replay


def carrier_figures(r1: RouterProcess, server, namespace: str, fact_count: int) -> None:
    """Failure detection through ``r1``; facts' rate and replay on Zenoh and the server."""
    detected = trio.run(failure_detection, r1.endpoint)
    print(f"\nfailure detection after SIGKILL (zenoh, one router): median "
          f"{statistics.median(detected) * 1e3:.1f} ms, max {max(detected) * 1e3:.1f} ms "
          f"over {len(detected)} (goal < 100 ms)")

    from dataspace_agency.protocol.client import connect as server_connect
    zopen = lambda: connect([r1.endpoint], namespace=namespace)  # noqa: E731
    sopen = lambda: server_connect(server.address, server.capability)  # noqa: E731
    print(f"\n{'carrier':22s} {'assertions/s':>13s} {'replay of ' + str(fact_count):>16s}")
    for name, opener in (("zenoh, one router", zopen), ("dataspace server", sopen)):
        rate, replay = trio.run(facts, opener, opener, fact_count)
        print(f"{name:22s} {rate:13,.0f} {replay * 1e3:13.0f} ms", flush=True)


def _cpu_text(seconds: dict[str, float]) -> str:
    return ", ".join(f"{name} {value * 1e6:.0f}" for name, value in seconds.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=2000, help="round trips")
    parser.add_argument("--messages", type=int, default=5000, help="one-way messages")
    parser.add_argument("--facts", type=int, default=10000, help="facts for replay")
    parser.add_argument("--modes", default="message,assertion",
                        help="adapter modes to measure, in this order (comma-separated)")
    parser.add_argument("--amqp-url", help="also measure AMQPSpace on this broker")
    parser.add_argument("--rabbitmq", action="store_true", help="start a private broker")
    parser.add_argument("--processes", action="store_true",
                        help='"echo" in a child process of its own (pinger stays here)')
    args = parser.parse_args()
    print(f"load average before: {open('/proc/loadavg').read().split()[:3]}")

    with contextlib.ExitStack() as stack:
        r1 = RouterProcess()
        stack.callback(r1.stop)
        r2 = RouterProcess(connect=[r1.endpoint])
        stack.callback(r2.stop)
        from dataspace_agency.protocol.process import ServerProcess
        server = ServerProcess.start()
        stack.callback(server.stop)
        amqp_url, broker = args.amqp_url, None
        if args.rabbitmq and not amqp_url:
            from dataspace_agency.compare.rabbitmq import RabbitMQBroker
            broker = RabbitMQBroker()
            amqp_url = broker.start()
            stack.callback(broker.stop)

        ns = f"bench{uuid.uuid4().hex[:6]}"
        server_spec = ["server", address_text(server.address), stringify(server.capability)]

        def zenoh_pair(echo_router: RouterProcess, pinger_router: RouterProcess, suffix: str):
            # A namespace per mode as well: the two modes' agents never meet.
            return lambda mode: (["zenoh", echo_router.endpoint, f"{ns}{suffix}{mode[0]}"],
                                 ["zenoh", pinger_router.endpoint, f"{ns}{suffix}{mode[0]}"])
        # name: (mode -> (echo's carrier spec, pinger's), the carrier's processes)
        rows = {
            "dataspace server": (lambda _mode: (server_spec, server_spec),
                                 {"server": server.pid}),
            "zenoh, one router": (zenoh_pair(r1, r1, "a"), {"router": r1.pid}),
            "zenoh, two routers": (zenoh_pair(r1, r2, "b"),
                                   {"router 1": r1.pid, "router 2": r2.pid}),
        }
        amqp = None
        if amqp_url:
            spec = ["amqp", amqp_url, f"bench-{uuid.uuid4().hex[:8]}"]
            # The broker's Erlang VM, when this run started it.
            amqp = (lambda _mode: (spec, spec),
                    {"broker": broker.broker_pid} if broker and broker.broker_pid else {})
        layout = ("echo in a child process" if args.processes
                  else "two spaces in this process")
        for mode in args.modes.split(","):
            print(f"\n{mode + ' mode':22s} {'RT median µs':>13s} {'RT p99 µs':>10s}"
                  f" {'one-way msg/s':>14s}   ({args.count} round trips, {args.messages}"
                  f" messages, {layout})")
            mode_rows = dict(rows)
            if amqp is not None and mode == "message":
                mode_rows["RabbitMQ (AMQPSpace)"] = amqp
            figures = {}
            for name, (specs, carrier_pids) in mode_rows.items():
                figures[name] = classic(*specs(mode), mode, args.count, args.messages,
                                        args.processes, carrier_pids)
                median, p99, rate, per_trip, per_message = figures[name]
                print(f"{name:22s} {median:13.0f} {p99:10.0f} {rate:14,.0f}", flush=True)
                print(f"    CPU µs a round trip: {_cpu_text(per_trip)}; a one-way message:"
                      f" {_cpu_text(per_message)}", flush=True)
            base = figures["dataspace server"]
            for name in mode_rows:
                if name != "dataspace server":
                    print(f"  {mode} mode, {name}: round trip {figures[name][0] / base[0]:.2f}x"
                          f" the server's (goal <= 1.5x), one-way"
                          f" {figures[name][2] / base[2]:.2f}x (goal >= 1x)")
            print(f"  load average: {open('/proc/loadavg').read().split()[:3]}", flush=True)

        if args.processes:
            # Neither has "pinger" and "echo": the layout does not concern them.
            print("\n(failure detection and facts: measured without --processes)")
        else:
            carrier_figures(r1, server, ns + "f", args.facts)
    print(f"\nload average after: {open('/proc/loadavg').read().split()[:3]}")


if __name__ == "__main__":
    main()
