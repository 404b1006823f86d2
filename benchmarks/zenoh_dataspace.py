"""The dataspace on Zenoh, measured beside the dataspace server and RabbitMQ in one run.
(Not named zenoh.py: run as a script, that name would shadow the zenoh package.)

    python benchmarks/zenoh_dataspace.py [--count N] [--messages M] [--facts F]
        [--modes message,assertion] [--amqp-url URL | --rabbitmq]

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
from preserves import Record, Symbol

from dataspace_agency import Agent
from dataspace_agency.spaces.remote_space import RemoteDataspaceSpace
from dataspace_agency.spaces.zenoh_space import ZenohDataspaceSpace
from dataspace_agency.zenoh import connect
from dataspace_agency.zenoh.process import RouterProcess

sys.path.insert(0, str(Path(__file__).parent))
from backend_round_trips import Echo, Pinger  # noqa: E402 - the same agents as there


def classic(make_echo_space, make_pinger_space, mode: str, count: int,
            messages: int) -> tuple:
    with make_echo_space(mode) as there, make_pinger_space(mode) as here:
        there.add(Echo, "echo")
        here.add(Pinger, "pinger", max_concurrency=2)
        me = here.add_foreground(Agent, "me")

        def ask(name: str, **kw):
            return me.request({"to": "pinger", "action": {"name": name, "args": kw}},
                              timeout=300)
        median, p99 = ask("round_trips", count=count)
        rate = ask("one_way", count=messages)
    return median, p99, rate


_HOLDER = """
import sys, trio
from preserves import Record, Symbol
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=2000, help="round trips")
    parser.add_argument("--messages", type=int, default=5000, help="one-way messages")
    parser.add_argument("--facts", type=int, default=10000, help="facts for replay")
    parser.add_argument("--modes", default="message,assertion",
                        help="adapter modes to measure, in this order (comma-separated)")
    parser.add_argument("--amqp-url", help="also measure AMQPSpace on this broker")
    parser.add_argument("--rabbitmq", action="store_true", help="start a private broker")
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
        amqp_url = args.amqp_url
        if args.rabbitmq and not amqp_url:
            from dataspace_agency.compare.rabbitmq import RabbitMQBroker
            broker = RabbitMQBroker()
            amqp_url = broker.start()
            stack.callback(broker.stop)

        ns = f"bench{uuid.uuid4().hex[:6]}"
        remote = lambda mode: RemoteDataspaceSpace(  # noqa: E731
            server.address, server.capability, mode=mode)

        def zenoh_space(endpoint: str, suffix: str):
            # A namespace per mode as well: the two modes' agents never meet.
            return lambda mode: ZenohDataspaceSpace(
                [endpoint], mode=mode, namespace=f"{ns}{suffix}{mode[0]}")
        rows = {
            "dataspace server": (remote, remote),
            "zenoh, one router": (zenoh_space(r1.endpoint, "a"), zenoh_space(r1.endpoint, "a")),
            "zenoh, two routers": (zenoh_space(r1.endpoint, "b"), zenoh_space(r2.endpoint, "b")),
        }
        amqp = None
        if amqp_url:
            from dataspace_agency import AMQPSpace
            exchange = f"bench-{uuid.uuid4().hex[:8]}"
            amqp = lambda _mode: AMQPSpace(url=amqp_url, exchange=exchange)  # noqa: E731
        for mode in args.modes.split(","):
            print(f"\n{mode + ' mode':22s} {'RT median µs':>13s} {'RT p99 µs':>10s}"
                  f" {'one-way msg/s':>14s}   ({args.count} round trips, {args.messages}"
                  f" messages, two spaces)")
            mode_rows = dict(rows)
            if amqp is not None and mode == "message":
                mode_rows["RabbitMQ (AMQPSpace)"] = (amqp, amqp)
            figures = {}
            for name, (make_a, make_b) in mode_rows.items():
                figures[name] = classic(make_a, make_b, mode, args.count, args.messages)
                median, p99, rate = figures[name]
                print(f"{name:22s} {median:13.0f} {p99:10.0f} {rate:14,.0f}", flush=True)
            base = figures["dataspace server"]
            for name in mode_rows:
                if name != "dataspace server":
                    print(f"  {mode} mode, {name}: round trip {figures[name][0] / base[0]:.2f}x"
                          f" the server's (goal <= 1.5x), one-way"
                          f" {figures[name][2] / base[2]:.2f}x (goal >= 1x)")
            print(f"  load average: {open('/proc/loadavg').read().split()[:3]}", flush=True)

        detected = trio.run(failure_detection, r1.endpoint)
        print(f"\nfailure detection after SIGKILL (zenoh, one router): median "
              f"{statistics.median(detected) * 1e3:.1f} ms, max {max(detected) * 1e3:.1f} ms "
              f"over {len(detected)} (goal < 100 ms)")

        from dataspace_agency.protocol.client import connect as server_connect
        zopen = lambda: connect([r1.endpoint], namespace=ns + "f")  # noqa: E731
        sopen = lambda: server_connect(server.address, server.capability)  # noqa: E731
        print(f"\n{'carrier':22s} {'assertions/s':>13s} {'replay of ' + str(args.facts):>16s}")
        for name, opener in (("zenoh, one router", zopen), ("dataspace server", sopen)):
            rate, replay = trio.run(facts, opener, opener, args.facts)
            print(f"{name:22s} {rate:13,.0f} {replay * 1e3:13.0f} ms", flush=True)
    print(f"\nload average after: {open('/proc/loadavg').read().split()[:3]}")


if __name__ == "__main__":
    main()
