"""Between two processes through the dataspace server: round trips, pipelined one-way
messages, and the share of server time spent in the Preserves codec.

    python benchmarks/remote_round_trips.py [--count N] [--messages M] [--rounds R]
                                            [--no-classic]

1. Native: this process and an echo process, each a client of a server process (unix
   socket). Round trip: send ``<ping n>``, wait for the echo's ``<pong n>``. One-way:
   send M ``<one i>`` without waiting, then ``<fin>``; the echo answers ``<fin-ack count>``
   once it has seen them all (order is kept end to end), so the rate covers delivery.
2. The server again under cProfile: the share of its time in the wire codec
   (``protocol/codec.py``: encode/decode of Preserves and packets).
3. Classic agents, the workload of ``backend_round_trips.py`` (request round trips and
   one-way ``send()``s between two ``add()``ed agents, each in its own process), on
   ``MultiprocessDataspaceSpace`` (both modes) and ``MultiprocessQueueSpace``, same run.

Goals (issue 5): round trip <= 400 us, >= 10,000 messages/s pipelined.
"""

from __future__ import annotations

import argparse
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time

import trio
from preserves import Record, Symbol
from syndicate import dataspace, turn
from syndicate import patterns as P

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from dataspace_agency.protocol.client import connect  # noqa: E402
from dataspace_agency.protocol.process import ServerProcess  # noqa: E402

PING, PONG, ONE, FIN, FIN_ACK = (Symbol(s) for s in ("ping", "pong", "one", "fin", "fin-ack"))


# --- the echo process ------------------------------------------------------------------------

def echo_main(address: str, cap: str) -> None:
    async def main() -> None:
        async with connect(address, cap) as ds:
            seen = [0]

            def boot(ds_ref) -> None:
                turn.prevent_inert_check()

                @dataspace.on_message(ds_ref, P.rec("ping", P.CAPTURE))
                def ping(n):
                    turn.send(ds_ref, Record(PONG, [n]))

                @dataspace.on_message(ds_ref, P.rec("one", P.CAPTURE))
                def one(_i):
                    seen[0] += 1

                @dataspace.on_message(ds_ref, P.rec("fin"))
                def fin():
                    turn.send(ds_ref, Record(FIN_ACK, [seen[0]]))
                    seen[0] = 0
            ds.spawn(boot)
            await ds.sync()
            print("ready", flush=True)
            await trio.to_thread.run_sync(sys.stdin.buffer.read, abandon_on_cancel=True)
    trio.run(main)


# --- the measuring side ----------------------------------------------------------------------

async def measure_native(address: str, cap: str, count: int, messages: int,
                         rounds: int = 1) -> tuple:
    """(median round trip µs, p99 µs, one-way messages/s). With ``rounds`` > 1 the round
    trips are measured in that many blocks and the median of the blocks' medians is
    reported: on a shared machine a block may catch someone else's burst."""
    async with connect(address, cap) as ds:
        async with ds.observe(P.rec("pong", P.CAPTURE)) as pongs, \
                ds.observe(P.rec("fin-ack", P.CAPTURE)) as acks:
            await ds.sync()
            medians, everything = [], []
            n = 0
            for block in range(rounds):
                samples = []
                for i in range((200 if block == 0 else 0) + count):
                    start = time.perf_counter()
                    ds.message(Record(PING, [n]))
                    event = await pongs.receive()
                    if block > 0 or i >= 200:  # after warming up
                        samples.append(time.perf_counter() - start)
                    assert event.captures == (n,)
                    n += 1
                medians.append(statistics.median(samples))
                everything.extend(samples)
            everything.sort()
            start = time.perf_counter()
            for i in range(messages):
                ds.message(Record(ONE, [i]))
                if i % 200 == 199:
                    await trio.sleep(0)  # let the relay write while we go on
            ds.message(Record(FIN, []))
            ack = await acks.receive()
            rate = messages / (time.perf_counter() - start)
            assert ack.captures == (messages,), ack
    return (statistics.median(medians) * 1e6, everything[int(len(everything) * 0.99)] * 1e6,
            rate)


def native_run(args: argparse.Namespace, profile_to: str | None = None) -> tuple:
    extra = ()
    directory = tempfile.mkdtemp(prefix="remote-bench-")
    unix = os.path.join(directory, "ds.sock")
    server = ServerProcess.start(unix, extra_args=extra, profile_to=profile_to)
    from preserves import stringify
    address, cap = stringify(server.address), stringify(server.capability)
    echo = subprocess.Popen([sys.executable, __file__, "--role", "echo", address, cap],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert echo.stdout.readline().strip() == b"ready"
        return trio.run(measure_native, address, cap, args.count, args.messages,
                        1 if profile_to else args.rounds)
    finally:
        echo.stdin.close()
        echo.wait(10)
        echo.stdout.close()
        server.stop()


def codec_share(profile_file: str) -> tuple[float, float]:
    """(seconds in the codec, seconds of the server's own work), from a cProfile dump."""
    stats = pstats.Stats(profile_file)
    codec = 0.0
    total = 0.0
    for (filename, _line, name), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():
        if name in ("select", "poll", "epoll.poll", "<method 'poll' of 'select.epoll' objects>"):
            continue  # waiting, not work
        if "epoll" in name or "_io.BufferedReader" in name or name == "read":
            continue  # waiting for events / stdin
        total += tottime
        if filename.endswith(os.path.join("protocol", "codec.py")):
            codec += tottime
    return codec, total


def classic_run(args: argparse.Namespace) -> list[tuple]:
    from backend_round_trips import Echo, Pinger

    from dataspace_agency import Agent, MultiprocessDataspaceSpace, MultiprocessQueueSpace
    backends = {
        'MultiprocessDataspaceSpace("message")': lambda: MultiprocessDataspaceSpace(
            mode="message"),
        'MultiprocessDataspaceSpace("assertion")': lambda: MultiprocessDataspaceSpace(
            mode="assertion"),
        "MultiprocessQueueSpace": MultiprocessQueueSpace,
    }
    rows = []
    for name, make in backends.items():
        with make() as space:
            space.add(Echo, "echo")
            space.add(Pinger, "pinger", max_concurrency=2)
            me = space.add_foreground(Agent, "me")
            ask = lambda action, **kw: me.request(  # noqa: E731
                {"to": "pinger", "action": {"name": action, "args": kw}}, timeout=300)
            median, p99 = ask("round_trips", count=args.count)
            rate = ask("one_way", count=args.messages)
        rows.append((name, median, p99, rate))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=2000, help="round trips")
    parser.add_argument("--messages", type=int, default=10000, help="one-way messages")
    parser.add_argument("--rounds", type=int, default=5,
                        help="native round trips are measured in this many blocks of --count;"
                             " the median of the blocks' medians is reported")
    parser.add_argument("--no-classic", action="store_true", help="skip the classic part")
    parser.add_argument("--role", help=argparse.SUPPRESS)
    parser.add_argument("rest", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "echo":
        echo_main(*args.rest)
        return
    print(f"{'workload':42s} {'RT median µs':>13s} {'RT p99 µs':>10s} {'one-way msg/s':>14s}"
          f"   ({args.count} round trips (native: {args.rounds} x), {args.messages} messages)")
    median, p99, rate = native_run(args)
    print(f"{'native, 2 processes via server':42s} {median:13.0f} {p99:10.0f} {rate:14,.0f}",
          flush=True)
    with tempfile.TemporaryDirectory() as scratch:
        profile_file = os.path.join(scratch, "server.prof")
        native_run(args, profile_to=profile_file)
        codec, total = codec_share(profile_file)
    print(f"server time in the Preserves codec (cProfile, same workload): "
          f"{codec:.2f} s of {total:.2f} s = {100 * codec / total:.0f}%", flush=True)
    if not args.no_classic:
        for name, median, p99, rate in classic_run(args):
            print(f"{'classic, ' + name:42s} {median:13.0f} {p99:10.0f} {rate:14,.0f}",
                  flush=True)


if __name__ == "__main__":
    main()
