"""The classic request path, measured as a user meets it, each figure beside its goal.

    .venv/bin/python benchmarks/request_path.py [--quick] [--backends message,assertion,queue]

What it measures, in one run (so the ratios are of one machine state):

* **floor**: a plain thread hands a callable to a trio thread (``TrioToken.run_sync_soon``)
  and is handed the answer back through a ``queue.SimpleQueue``: the least a synchronous
  caller of a runtime on another thread can pay. Its samples alternate with the
  handle request's, in blocks of 100, so that the ratio compares the two in one machine
  state.
* **handle request**: ``me = space.connect("me"); me.request("echo", "echo", text=...)``
  from this (plain) thread to a plain-function action (run on a worker thread, as the
  classic model runs actions) and back: the median, and its ratio to the floor; back to
  back (a program's loop), and one at a time after 2 ms of idleness (a person at a
  prompt), each beside a floor measured the same way. Threads woken from idle take
  longer: both figures move, the floor with them. Also the runtime's scheduling rounds
  per request (a count, which load does not move), and the path's own crossings timed
  with no work (``PathFloor``: the plain thread, the trio thread, a worker and back, as a
  request to a plain-function action crosses them): what the crossings alone cost, so
  that the request's time is seen as crossings plus work.
* **handle send**: ``me.send(...)`` N times: accepted per second (how fast ``send()``
  returns), and the time until all N replies are in the handle's inbox.
* **agent to agent**: an ``async def`` action doing ``await self.arequest(...)`` to an
  ``async def`` action, the median; the dataspace's ratio to ``QueueSpace``.
* **one-way asend**: an ``async def`` action doing ``await self.asend(...)`` N times to a
  counting agent, until the counter has them all; beside a trio memory channel's rate
  (producer awaiting ``send()``) and ``QueueSpace``'s.

The garbage collector stays on throughout (what a user gets); nothing is warmed beyond
a few untimed round trips of the path being measured.
"""

from __future__ import annotations

import argparse
import queue
import statistics
import sys
import threading
import time
from typing import Any

import trio
from rich.console import Console
from rich.table import Table

from dataspace_agency import Agent, DataspaceSpace, QueueSpace, action
from dataspace_agency.compare.agents import Echo, time_arequests

GOALS = {
    "handle_request": {"message": 2.5, "assertion": 3.5, "queue": 2.0},
    "handle_send_per_s": 20_000,
    "arequest_vs_queue": {"message": 1.5, "assertion": 2.5},
    "asend_vs_channel": 0.1,
    "asend_vs_queue": 0.6,
}


def median_us(samples: list[float]) -> float:
    return statistics.median(samples) * 1e6


_BLOCK = 100  # floor samples and request samples alternate in blocks of this many
_IDLE = 0.002  # seconds of idleness before each sample measured "one at a time"


class RoundCounter(trio.abc.Instrument):
    """Counts the runtime's scheduling rounds (each ends in an epoll call): a figure of
    the path that, unlike its time, the machine's load does not move."""

    def __init__(self) -> None:
        self.rounds = 0

    def before_io_wait(self, timeout: float) -> None:
        self.rounds += 1


class FloorHop:
    """The floor: a plain thread hands a callable to a trio thread and is handed the
    answer back. ``hop()`` times one such round trip, in seconds."""

    def __init__(self) -> None:
        ready = threading.Event()
        box: dict[str, Any] = {}

        async def serve() -> None:
            box["token"] = trio.lowlevel.current_trio_token()
            box["stop"] = trio.Event()
            ready.set()
            await box["stop"].wait()

        self._thread = threading.Thread(target=trio.run, args=(serve,), daemon=True)
        self._thread.start()
        ready.wait()
        self._token, self._stop = box["token"], box["stop"]
        self._answers: queue.SimpleQueue = queue.SimpleQueue()
        for i in range(50):  # untimed, as the paths measured get
            self.hop()

    def hop(self) -> float:
        start = time.perf_counter()
        self._token.run_sync_soon(self._answers.put, None)
        self._answers.get()
        return time.perf_counter() - start

    def close(self) -> None:
        self._token.run_sync_soon(self._stop.set)
        self._thread.join()


class PathFloor(FloorHop):
    """The handle request's own four thread crossings, with no work at either end: the
    plain thread hands a callable to the trio thread, which starts a worker from trio's
    thread cache (``start_thread_soon``, as plain-function actions are run); the worker
    hands back to the trio thread (``run_sync_soon``, as the action's reply is), which
    hands the answer to the plain thread. A request's time above this is its work (the
    classic stack, the transport); the floor above is what any runtime on another thread
    costs. Both are printed, so that the two parts are seen apart."""

    def hop(self) -> float:
        start = time.perf_counter()
        self._token.run_sync_soon(self._to_worker)
        self._answers.get()
        return time.perf_counter() - start

    def _to_worker(self) -> None:  # on the trio thread
        trio.lowlevel.start_thread_soon(lambda: None, self._from_worker)

    def _from_worker(self, _result: Any) -> None:  # on the worker thread
        self._token.run_sync_soon(self._answers.put, None)


def measure_channel(count: int) -> float:
    """Messages/s through a trio memory channel, producer awaiting ``send()``."""
    async def main() -> float:
        send, receive = trio.open_memory_channel(1000)
        start = time.perf_counter()
        async with trio.open_nursery() as nursery:
            async def consume() -> None:
                async for _ in receive:
                    pass
            nursery.start_soon(consume)
            async with send:
                for i in range(count):
                    await send.send(i)
        return count / (time.perf_counter() - start)
    return trio.run(main)


class Counter(Agent):
    """Counts ``take`` messages; sets ``done`` at the expected count."""

    def __init__(self, id: str, expected: int, done: threading.Event) -> None:
        super().__init__(id)
        self.expected, self.done, self.received = expected, done, 0

    @action
    async def take(self, i: int) -> None:
        self.received += 1
        if self.received == self.expected:
            self.done.set()


class Blaster(Agent):
    """Sends ``count`` one-way messages with ``await self.asend``."""

    @action
    async def blast(self, to: str, count: int) -> float:
        start = time.perf_counter()
        for i in range(count):
            await self.asend({"to": to, "action": {"name": "take", "args": {"i": i}}})
        return time.perf_counter() - start


class Pinger(Agent):
    @action
    async def round_trips(self, to: str, count: int, warm_up: int) -> list:
        message = {"to": to, "action": {"name": "aecho", "args": {"text": "hi"}}}
        return await time_arequests(self, message, count, warm_up)


def make_space(backend: str) -> Any:
    return QueueSpace() if backend == "queue" else DataspaceSpace(mode=backend)


def measure_backend(backend: str, sizes: dict) -> dict:
    figures: dict[str, float] = {}
    with make_space(backend) as space:
        space.add(Echo, "echo")
        me = space.connect("me")
        for _ in range(50):
            me.request("echo", "echo", text="hi")
        # The floor's samples alternate with the requests' in blocks, so that both are
        # taken in the same machine state: a thread's wake-up costs 30 µs on a busy
        # machine and over 100 µs on an idle one, and a floor measured apart moved the
        # ratio more than any change to the path did. Blocks, not single samples: the
        # work a request leaves behind (assertion mode's withdrawals, say) would
        # otherwise delay the floor sample right after it.
        counter = RoundCounter()  # space._background: the space's runtime thread
        space._background.call(lambda rt: trio.lowlevel.add_instrument(counter))
        floor, path_floor = FloorHop(), PathFloor()
        samples, floor_samples, path_samples = [], [], []
        for _ in range(0, sizes["requests"], _BLOCK):
            floor_samples += [floor.hop() for _ in range(_BLOCK)]
            path_samples += [path_floor.hop() for _ in range(_BLOCK)]
            for _ in range(_BLOCK):
                start = time.perf_counter()
                me.request("echo", "echo", text="hi")
                samples.append(time.perf_counter() - start)
        figures["handle_request_us"] = median_us(samples)
        figures["floor_us"] = median_us(floor_samples)
        figures["path_floor_us"] = median_us(path_samples)
        figures["handle_rounds"] = counter.rounds / len(samples)
        # One at a time, as a person at a prompt makes them: each request, and each
        # floor hop, after the machine has been idle for a moment (so that threads
        # wake from idle, as they then do).
        samples, floor_samples, path_samples = [], [], []
        for _ in range(sizes["requests"] // 4):
            time.sleep(_IDLE)
            floor_samples.append(floor.hop())
            time.sleep(_IDLE)
            path_samples.append(path_floor.hop())
            time.sleep(_IDLE)
            start = time.perf_counter()
            me.request("echo", "echo", text="hi")
            samples.append(time.perf_counter() - start)
        floor.close()
        path_floor.close()
        figures["idle_request_us"] = median_us(samples)
        figures["idle_floor_us"] = median_us(floor_samples)
        figures["idle_path_floor_us"] = median_us(path_samples)

        count = sizes["sends"]
        start = time.perf_counter()
        for i in range(count):
            me.send("echo", "echo", text="hi")
        accepted = time.perf_counter() - start
        for _ in range(count):
            me.receive(timeout=60)
        figures["handle_send_per_s"] = count / accepted
        figures["handle_replies_per_s"] = count / (time.perf_counter() - start)

        space.add(Pinger, "pinger")
        me.request("pinger", "round_trips", timeout=120, args={
            "to": "echo", "count": 0, "warm_up": 50})
        counter.rounds = 0
        samples = me.request("pinger", "round_trips", timeout=120, args={
            "to": "echo", "count": sizes["requests"], "warm_up": 0})
        figures["arequest_us"] = median_us(samples)
        figures["arequest_rounds"] = counter.rounds / sizes["requests"]

        done = threading.Event()
        count = sizes["asends"]
        space.add(Counter, "counter", count, done)
        space.add(Blaster, "blaster")
        start = time.perf_counter()
        me.request("blaster", "blast", timeout=120, args={"to": "counter", "count": count})
        if not done.wait(120):
            raise TimeoutError("the counter did not get every message")
        figures["asend_per_s"] = count / (time.perf_counter() - start)
        me.close()
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples")
    parser.add_argument("--backends", default="message,assertion,queue")
    args = parser.parse_args(argv)
    sizes = ({"requests": 300, "sends": 2_000, "asends": 5_000} if args.quick
             else {"requests": 2_000, "sends": 10_000, "asends": 20_000})
    console = Console(width=150)
    channel = measure_channel(sizes["asends"] * 5)
    results = {b: measure_backend(b, sizes) for b in args.backends.split(",")}
    queue_figures = results.get("queue")

    table = Table(title=f"request path (load {open('/proc/loadavg').read().split()[0]};"
                        f" trio channel {channel:,.0f} msg/s)")
    for column in ("figure", *results, "goal"):
        table.add_column(column, justify="right" if column != "figure" else "left")

    def row(name: str, cell: Any, goal: str) -> None:
        table.add_row(name, *[cell(b, f) for b, f in results.items()], goal)

    row("handle request back to back, median µs (x floor)",
        lambda b, f: f"{f['handle_request_us']:.0f} ({f['handle_request_us'] / f['floor_us']:.2f}x"
        f" of {f['floor_us']:.0f})",
        "<= 2.5x msg, 3.5x assn, 2x queue")
    row("handle request one at a time (x floor)",
        lambda b, f: f"{f['idle_request_us']:.0f} ({f['idle_request_us'] / f['idle_floor_us']:.2f}x"
        f" of {f['idle_floor_us']:.0f})", "")
    row("  the path's 4 crossings, no work: back to back, one at a time (x floor)",
        lambda b, f: f"{f['path_floor_us']:.0f} ({f['path_floor_us'] / f['floor_us']:.2f}x),"
        f" {f['idle_path_floor_us']:.0f} ({f['idle_path_floor_us'] / f['idle_floor_us']:.2f}x)",
        "")
    row("  scheduling rounds per request", lambda b, f: f"{f['handle_rounds']:.2f}", "")
    row("handle send, accepted/s", lambda b, f: f"{f['handle_send_per_s']:,.0f}",
        ">= 20,000")
    row("handle send, replies received/s",
        lambda b, f: f"{f['handle_replies_per_s']:,.0f}", "all received")

    def vs_queue(b: str, f: dict, key: str, fmt: str) -> str:
        text = fmt.format(f[key])
        if queue_figures and b != "queue":
            text += f" ({f[key] / queue_figures[key]:.2f}x queue)"
        return text
    row("agent->agent await arequest, median µs",
        lambda b, f: vs_queue(b, f, "arequest_us", "{:.0f}"), "<= 1.5x msg, 2.5x assn")
    row("  scheduling rounds per request", lambda b, f: f"{f['arequest_rounds']:.2f}", "")
    row("one-way await asend, msg/s",
        lambda b, f: vs_queue(b, f, "asend_per_s", "{:,.0f}")
        + f" ({f['asend_per_s'] / channel:.2f}x chan)", ">= 0.6x queue, 0.1x chan")
    console.print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
