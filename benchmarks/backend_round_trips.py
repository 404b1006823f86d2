"""Agent-to-agent request round trips on every in-process backend, side by side in one run.

    python benchmarks/backend_round_trips.py [COUNT]

An async action on "pinger" loops ``await self.arequest(...)`` to an async action on
"echo" (no worker threads involved) and reports the median and p99 per backend.
"""

from __future__ import annotations

import statistics
import sys
import time

from dataspace_agency import Agent, DataspaceSpace, QueueSpace, action

BACKENDS = {
    "QueueSpace": QueueSpace,
    'DataspaceSpace("message")': lambda: DataspaceSpace("message"),
    'DataspaceSpace("assertion")': lambda: DataspaceSpace("assertion"),
}


class Echo(Agent):
    @action
    async def echo(self, text: str) -> str:
        return text


class Pinger(Agent):
    @action
    async def loop(self, count: int) -> list:
        message = {"to": "echo", "action": {"name": "echo", "args": {"text": "hi"}}}
        for _ in range(200):  # warm up
            await self.arequest(message)
        samples = []
        for _ in range(count):
            start = time.perf_counter()
            await self.arequest(message)
            samples.append(time.perf_counter() - start)
        samples.sort()
        return [statistics.median(samples) * 1e6, samples[int(len(samples) * 0.99)] * 1e6]


def main(count: int = 3000) -> None:
    print(f"{'backend':30s} {'median µs':>10s} {'p99 µs':>10s}   ({count} round trips)")
    for name, make in BACKENDS.items():
        with make() as space:
            space.add(Echo, "echo")
            space.add(Pinger, "pinger")
            me = space.add_foreground(Agent, "me")
            median, p99 = me.request(
                {"to": "pinger", "action": {"name": "loop", "args": {"count": count}}},
                timeout=120)
        print(f"{name:30s} {median:10.0f} {p99:10.0f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3000)
