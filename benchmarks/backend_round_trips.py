"""Every backend side by side in one run: request round trips and one-way messages.

    python benchmarks/backend_round_trips.py [--count N] [--messages M] [--amqp-url URL]

Round trip: an async action on "pinger" loops ``await self.arequest(...)`` to an async
action on "echo" (no worker threads). One-way: "pinger" sends M messages with ``send()``;
"echo" counts them and, at the last, tells "pinger" it is done (the replies every send
gets are part of the classic contract and travel too). Both agents are ``add()``ed, so
on ``MultiprocessQueueSpace`` each is a process of its own. AMQP is measured when a
broker URL is given.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid

import trio

from dataspace_agency import (Agent, DataspaceSpace, MultiprocessQueueSpace, QueueSpace,
                              action)
from dataspace_agency.compare.agents import time_arequests

WARM_UP = 200  # untimed round trips before the timed ones (zenoh_dataspace.py counts them)


class Echo(Agent):
    def __init__(self, id: str, **kwargs) -> None:
        super().__init__(id, **kwargs)
        self.received = 0
        self.expected = 0

    @action
    async def echo(self, text: str) -> str:
        return text

    @action
    async def expect(self, count: int) -> None:
        self.received, self.expected = 0, count

    @action
    async def take(self, i: int) -> None:
        self.received += 1
        if self.received == self.expected:
            self.send({"to": "pinger", "action": {"name": "finished", "args": {}}})


class Pinger(Agent):
    def __init__(self, id: str, **kwargs) -> None:
        super().__init__(id, **kwargs)
        self.done: trio.Event | None = None

    @action
    async def round_trips(self, count: int) -> list:
        message = {"to": "echo", "action": {"name": "echo", "args": {"text": "hi"}}}
        samples = sorted(await time_arequests(self, message, count, warm_up=WARM_UP))
        return [statistics.median(samples) * 1e6, samples[int(len(samples) * 0.99)] * 1e6]

    @action
    async def one_way(self, count: int) -> float:
        await self.arequest({"to": "echo", "action": {"name": "expect",
                                                      "args": {"count": count}}})
        self.done = trio.Event()
        start = time.perf_counter()
        for i in range(count):
            self.send({"to": "echo", "action": {"name": "take", "args": {"i": i}}})
            if i % 100 == 99:
                await trio.sleep(0)  # let deliveries proceed while sending
        await self.done.wait()
        return count / (time.perf_counter() - start)

    @action
    async def finished(self) -> None:
        self.done.set()


def backends(amqp_url: str | None) -> dict:
    made = {
        "QueueSpace": QueueSpace,
        "MultiprocessQueueSpace": MultiprocessQueueSpace,
        'DataspaceSpace("message")': lambda: DataspaceSpace("message"),
        'DataspaceSpace("assertion")': lambda: DataspaceSpace("assertion"),
    }
    if amqp_url:
        from dataspace_agency import AMQPSpace
        made["AMQPSpace"] = lambda: AMQPSpace(url=amqp_url,
                                              exchange=f"bench-{uuid.uuid4().hex[:8]}")
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=3000, help="round trips")
    parser.add_argument("--messages", type=int, default=10000, help="one-way messages")
    parser.add_argument("--amqp-url", help="also measure AMQPSpace on this broker")
    args = parser.parse_args()
    print(f"{'backend':28s} {'RT median µs':>13s} {'RT p99 µs':>10s} {'one-way msg/s':>14s}"
          f"   ({args.count} round trips, {args.messages} messages)")
    for name, make in backends(args.amqp_url).items():
        with make() as space:
            space.add(Echo, "echo")
            space.add(Pinger, "pinger", max_concurrency=2)  # one_way waits for "finished"
            me = space.add_foreground(Agent, "me")
            ask = lambda name, **kw: me.request(  # noqa: E731
                {"to": "pinger", "action": {"name": name, "args": kw}}, timeout=120)
            median, p99 = ask("round_trips", count=args.count)
            rate = ask("one_way", count=args.messages)
        print(f"{name:28s} {median:13.0f} {p99:10.0f} {rate:14,.0f}", flush=True)


if __name__ == "__main__":
    main()
