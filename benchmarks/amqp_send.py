"""AMQPSpace ``send()`` from a synchronous sender: messages accepted and received per second.

    python benchmarks/amqp_send.py [--messages N] [--runs R] [--url URL]

A client handle (``space.connect("me")``, the interactive user's path) calls
``me.send("counter", "take", i=i)`` N times in a loop on this thread; "counter" (an
``async def`` action, same space, so every message and every answer goes through the
broker) counts them. Figures, each the median of R runs on a fresh exchange:

* **accepted/s**: N / the time the loop of ``send()`` calls took;
* **received/s**: N / the time from the first send until the counter had all N;
* **answered/s**: N / the time until all N answers were in the handle's inbox (each
  ``send()`` is answered: the classic contract), i.e. everything confirmed and delivered;
* **CPU per message**: this process's CPU time (all threads) over the run, per message
  and its answer; it moves less than the rates when other processes load the machine.

Goal (issue 14): received >= 2,000 messages/s, nothing acknowledged lost (the run checks
that every message arrived exactly once and every answer came back).

Without ``--url`` (or ``$DATASPACE_AGENCY_AMQP_URL``) a private RabbitMQ node is started
for the run (``dataspace_agency.compare.rabbitmq``) and stopped after it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import threading
import time
import uuid

from dataspace_agency import Agent, AMQPSpace, action
from dataspace_agency.compare.rabbitmq import private_broker

GOAL_RECEIVED_PER_S = 2_000.0
WAIT_S = 120.0


class Counter(Agent):
    def __init__(self, id: str, *, expected: int, done: threading.Event, **kwargs) -> None:
        super().__init__(id, **kwargs)
        self.seen: list[int] = []
        self.expected = expected
        self.done = done

    @action
    async def take(self, i: int) -> None:
        self.seen.append(i)
        if len(self.seen) == self.expected:
            self.done.set()


def one_run(url: str, count: int) -> dict:
    space = AMQPSpace(url, exchange=f"bench-send-{uuid.uuid4().hex}")
    try:
        done = threading.Event()
        space.add(Counter, "counter", expected=count, done=done)
        counter = space._local_agents()[0]
        me = space.connect("me")
        me.request("counter", "take", i=-1)  # warm: queues declared, routes known
        counter.seen.clear()
        clock = time.perf_counter
        cpu = time.process_time()
        start = clock()
        for i in range(count):
            me.send("counter", "take", i=i)
        accepted = clock() - start
        if not done.wait(WAIT_S):
            raise RuntimeError(f"the counter got {len(counter.seen)} of {count} messages")
        received = clock() - start
        answers = [me.receive(timeout=WAIT_S) for _ in range(count)]
        answered = clock() - start
        cpu = time.process_time() - cpu
        errors = [a for a in answers if a["action"]["name"] != "[response]"]
        if sorted(counter.seen) != list(range(count)) or errors:
            raise RuntimeError(f"lost or duplicated: {len(counter.seen)} received,"
                               f" {len(set(counter.seen))} distinct; {len(errors)} errors")
        return {"accepted": count / accepted, "received": count / received,
                "answered": count / answered, "cpu_us": cpu / count * 1e6}
    finally:
        space.destroy()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--url", default=os.environ.get("DATASPACE_AGENCY_AMQP_URL"))
    args = parser.parse_args(argv)
    with contextlib.ExitStack() as stack:
        url = args.url or stack.enter_context(private_broker()).amqp_url
        runs = [one_run(url, args.messages) for _ in range(args.runs)]
    median = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    print(f"AMQPSpace send() from a synchronous sender, {args.messages:,} messages,"
          f" median of {args.runs} runs; load average {os.getloadavg()[0]:.2f} on"
          f" {os.cpu_count()} CPUs (a busy machine lowers these: compare runs side by side)")
    print(f"  accepted: {median['accepted']:9,.0f} /s")
    ok = "met" if median["received"] >= GOAL_RECEIVED_PER_S else "NOT met"
    print(f"  received: {median['received']:9,.0f} /s   goal >= {GOAL_RECEIVED_PER_S:,.0f}/s:"
          f" {ok}")
    print(f"  answered: {median['answered']:9,.0f} /s   (every answer back: all confirmed)")
    print(f"  CPU of this process (every thread) per message and its answer:"
          f" {median['cpu_us']:,.0f} us (less sensitive to other load than the rates)")
    print("  nothing lost or duplicated in any run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
