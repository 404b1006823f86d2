"""What watching costs: request round trips on a DataspaceSpace with and without the
inspector attached (``space.inspect()``), with a page's live stream open.

    python benchmarks/inspector_overhead.py [--count N] [--rounds R]

Round trip: an ``async def`` action on "pinger" loops ``await self.arequest(...)`` to an
``async def`` echo (compare.agents, the comparison's own agents: no worker threads), so
the figures are the runtime's own cost per request, the part the inspector's observers
share the runtime thread with. Each round measures, in one process, side by side: no
inspector, then the inspector with one client reading ``/api/events`` (what an open page
does). Both adapter modes: in message mode every request and reply is a message the
inspector also receives (to count rates); in assertion mode they are facts it observes.
The garbage collector stays on, as for a user.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import urllib.request

from dataspace_agency import Agent, DataspaceSpace
from dataspace_agency.compare.agents import Echo, Pinger


def round_trips(space: DataspaceSpace, count: int) -> float:
    """Median µs of ``count`` agent-to-agent round trips (after a warm-up)."""
    me = space.add_foreground(Agent, f"me-{id(space)}-{count}")
    try:
        samples = me.request({"to": "pinger", "action": {
            "name": "round_trips", "args": {"to": "echo", "count": count,
                                            "warm_up": 200}}}, timeout=300)
    finally:
        space.remove(me.id)
    return statistics.median(samples) * 1e6


def read_stream(url: str, stop: threading.Event) -> None:
    """Read the page's live stream until ``stop`` (checked between events)."""
    with urllib.request.urlopen(url + "api/events", timeout=30) as stream:
        while not stop.is_set() and stream.readline():
            pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=3000, help="round trips per run")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each, interleaved")
    args = parser.parse_args()
    print(f"{'mode':10s} {'no inspector µs':>16s} {'inspector + page µs':>20s} {'ratio':>6s}"
          f"   (median round trip; {args.rounds} rounds of {args.count})")
    for mode in ("message", "assertion"):
        plain, watched = [], []
        with DataspaceSpace(mode) as space:
            space.add(Echo, "echo")
            space.add(Pinger, "pinger")
            for _ in range(args.rounds):
                plain.append(round_trips(space, args.count))
                with space.inspect(http="127.0.0.1:0") as inspector:
                    stop = threading.Event()
                    reader = threading.Thread(target=read_stream, args=(inspector.url, stop))
                    reader.start()
                    try:
                        watched.append(round_trips(space, args.count))
                    finally:
                        stop.set()
                        inspector.close()  # ends the stream, and so the reader
                        reader.join(30)
        a, b = statistics.median(plain), statistics.median(watched)
        print(f"{mode:10s} {a:16.1f} {b:20.1f} {b / a:6.2f}", flush=True)


if __name__ == "__main__":
    main()
