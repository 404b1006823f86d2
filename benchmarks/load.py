"""Load: a long stream of messages with bounded memory (issue 9, part 3).

    python benchmarks/load.py [--messages 1000000] [--server-messages 100000]
                              [--backends message,assertion,queue,server] [--interval 0.25]

1. **In-process** (one backend per row): an ``async def`` action on a sender agent
   ``await self.asend(...)``s N classic messages to a counting agent; every one is
   answered (the classic contract), and the run ends when the counter has seen all N
   and the sender has every reply. ``message``: DataspaceSpace in message mode;
   ``assertion``: DataspaceSpace in assertion mode (each send is a held request fact,
   answered by a reply fact: request/reply); ``queue``: QueueSpace, for comparison.
   The receiver's inbox is bounded (``inbox_limit``, default 10,000), so a sender
   faster than the receiver waits instead of queueing without end.
2. **server**: a server process (``ServerProcess``), a producer client sending N
   ``<load i>`` messages (awaiting ``wait_writable()`` so its buffer stays bounded) and
   a consumer client observing them, both in this process.

RSS is sampled (psutil) every ``--interval`` seconds, of this process and, for the
server row, of the server process. Printed per row: messages, seconds, messages/s, RSS
after warm-up (10% of the messages), at the end, and the peak, in MiB, and for the
in-process rows the receiver's peak pending count and the sizes of the structures that
must not grow (message logs, pending replies). A flat RSS from warm-up to the end is
what "bounded" means here; the figures go into notes/reliability.md.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import psutil
import trio
from preserves import Record, Symbol
from rich.console import Console
from rich.table import Table
from syndicate import patterns as P

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from dataspace_agency.classic import Agent, action  # noqa: E402
from dataspace_agency.protocol.client import connect  # noqa: E402
from dataspace_agency.protocol.process import ServerProcess  # noqa: E402
from dataspace_agency.spaces import DataspaceSpace, QueueSpace  # noqa: E402

MiB = 1024 * 1024
WARM_UP = 0.1  # share of the messages after which the "warm" RSS is taken
BACKENDS = ("message", "assertion", "queue", "server")


@dataclass
class Run:
    """What one row measured."""

    backend: str
    messages: int
    seconds: float = 0.0
    samples: list = field(default_factory=list)  # (progress, rss of us, rss of server)
    extra: dict = field(default_factory=dict)

    def rss(self, column: int) -> tuple[float, float, float]:
        """(after warm-up, at the end, peak) in MiB for sample column 1 or 2."""
        values = [(s[0], s[column]) for s in self.samples if s[column] is not None]
        if not values:
            return (float("nan"),) * 3
        warm = next((v for p, v in values if p >= WARM_UP * self.messages), values[-1][1])
        return warm / MiB, values[-1][1] / MiB, max(v for _, v in values) / MiB


class Sampler:
    """Samples RSS on a thread; ``progress()`` says how far the run has got."""

    def __init__(self, run: Run, progress: Callable[[], int], server_pid: int | None,
                 interval: float) -> None:
        self.run, self.progress, self.interval = run, progress, interval
        self.me = psutil.Process()
        self.server = psutil.Process(server_pid) if server_pid else None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _sample(self) -> None:
        server = self.server.memory_info().rss if self.server is not None else None
        self.run.samples.append((self.progress(), self.me.memory_info().rss, server))

    def _loop(self) -> None:
        while not self.stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> "Sampler":
        self._sample()
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        self.thread.join()
        self._sample()


# --- in-process --------------------------------------------------------------------------------

class Counter(Agent):
    """Counts ``count`` messages; sets ``done`` at the target."""

    def __init__(self, id: str, *, target: int, done: threading.Event,
                 inbox_limit: int | None = None) -> None:
        super().__init__(id, inbox_limit=inbox_limit)
        self.target, self.done, self.seen = target, done, 0

    @action
    async def count(self, i: int) -> None:
        self.seen += 1
        if self.seen == self.target:
            self.done.set()


class Sender(Agent):
    """Sends ``count`` messages from an async action, awaiting room when the
    receiver's inbox is full."""

    sent = 0

    @action
    async def blast(self, to: str, count: int) -> int:
        asend = self.asend
        for i in range(count):
            await asend({"to": to, "action": {"name": "count", "args": {"i": i}}})
            self.sent = i + 1
            if i % 100 == 99:
                await trio.lowlevel.checkpoint()  # let the runtime deliver meanwhile
        return count


def run_in_process(backend: str, messages: int, interval: float,
                   inbox_limit: int | None = None) -> Run:
    run = Run(backend, messages)
    space = QueueSpace() if backend == "queue" else DataspaceSpace(mode=backend)
    done = threading.Event()
    with space:
        counter = space.add_foreground(Counter, "counter", target=messages, done=done,
                                        inbox_limit=inbox_limit)
        sender = space.add_foreground(Sender, "sender")
        me = space.add_foreground(Agent, "me")
        gc.collect()
        with Sampler(run, lambda: counter.seen, None, interval):
            start = time.perf_counter()
            me.send({"to": "sender", "action": {"name": "blast", "args": {
                "to": "counter", "count": messages}}})
            if not done.wait(3600):
                raise RuntimeError(f"{backend}: only {counter.seen} of {messages} arrived")
            # Every send is answered: wait for the last replies too.
            deadline = time.monotonic() + 60
            while space._background.call(lambda rt: len(sender._core._pending)) and \
                    time.monotonic() < deadline:
                time.sleep(0.01)
            run.seconds = time.perf_counter() - start
        core = counter._core
        run.extra = {
            "peak pending": f"{core.inbox_peak}/{counter.inbox_limit}",
            "logs": f"{len(sender._message_log)}/{len(counter._message_log)}",
            "unanswered": space._background.call(
                lambda rt: len(sender._core._pending)),
        }
    return run


# --- through the server ----------------------------------------------------------------------

LOAD = Symbol("load")


def run_server(messages: int, interval: float, high_water: int | None = None) -> Run:
    run = Run("server", messages)
    seen = [0]
    extra_args = ("--high-water", str(high_water)) if high_water else ()
    with ServerProcess.start(extra_args=extra_args) as server:
        async def main() -> None:
            async with connect(server.address, server.capability) as producer, \
                    connect(server.address, server.capability) as consumer:
                async with consumer.observe(P.rec("load", P.CAPTURE)) as events:
                    await consumer.sync()
                    await producer.sync()
                    with Sampler(run, lambda: seen[0], server.pid, interval):
                        start = time.perf_counter()
                        async with trio.open_nursery() as nursery:
                            async def produce() -> None:
                                for i in range(messages):
                                    await producer.wait_writable()
                                    producer.message(Record(LOAD, [i]))
                                    if i % 64 == 63:
                                        await trio.lowlevel.checkpoint()
                            nursery.start_soon(produce)
                            with trio.fail_after(3600):
                                async for event in events:
                                    assert event.captures == (seen[0],), "out of order"
                                    seen[0] += 1
                                    if seen[0] == messages:
                                        break
                        run.seconds = time.perf_counter() - start
                run.extra = {"client peak buffer":
                             f"{producer.connection.relay.peak_out_bytes / MiB:.2f} MiB"}
        trio.run(main)
    return run


# --- the report ------------------------------------------------------------------------------

def report(runs: list[Run], console: Console) -> None:
    table = Table(title="Load: a long stream of messages, memory sampled (psutil)")
    for column in ("backend", "messages", "s", "msg/s", "RSS warm MiB", "RSS end MiB",
                   "RSS peak MiB", "server RSS warm/end/peak MiB", "notes"):
        table.add_column(column, justify="right" if column != "notes" else "left")
    for run in runs:
        warm, end, peak = run.rss(1)
        server = run.rss(2)
        server_text = ("-" if run.backend != "server"
                       else f"{server[0]:.1f} / {server[1]:.1f} / {server[2]:.1f}")
        notes = "; ".join(f"{k}: {v}" for k, v in run.extra.items())
        table.add_row(run.backend, f"{run.messages:,}", f"{run.seconds:.1f}",
                      f"{run.messages / run.seconds:,.0f}", f"{warm:.1f}", f"{end:.1f}",
                      f"{peak:.1f}", server_text, notes)
    console.print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1_000_000,
                        help="messages per in-process backend (default 1,000,000)")
    parser.add_argument("--server-messages", type=int, default=100_000,
                        help="messages through the server (default 100,000)")
    parser.add_argument("--backends", default=",".join(BACKENDS),
                        help=f"comma-separated, of {', '.join(BACKENDS)}")
    parser.add_argument("--inbox-limit", type=int, default=None,
                        help="the receiver's inbox_limit (default: Agent's, 10,000)")
    parser.add_argument("--high-water", type=int, default=None,
                        help="the server's --high-water (default: the server's, 8 MiB)")
    parser.add_argument("--interval", type=float, default=0.25,
                        help="seconds between RSS samples")
    args = parser.parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = set(backends) - set(BACKENDS)
    if unknown:
        parser.error(f"unknown backend(s) {sorted(unknown)}; choose from {BACKENDS}")
    console = Console(width=200)
    runs = []
    for backend in backends:
        console.print(f"[dim]running {backend}...[/dim]")
        if backend == "server":
            runs.append(run_server(args.server_messages, args.interval,
                                   args.high_water))
        else:
            runs.append(run_in_process(backend, args.messages, args.interval,
                                       args.inbox_limit))
    report(runs, console)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
