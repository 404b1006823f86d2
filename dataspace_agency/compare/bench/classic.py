"""The classic agents benchmark: what ``Agent`` / ``@action`` cost on a ``DataspaceSpace``,
in both modes ("assertion" and "message") side by side.

Four parts, printed as four tables:

1. **request() round trip**, median and p99 of individually timed calls:
   (a) agent to agent with no thread hop: an ``async def`` action on A loops
   ``await self.arequest(...)`` to an ``async def`` action on B; (b) the same to a
   plain-function action on B (which runs on a worker thread); (c) a synchronous caller
   (a foreground agent used from the main thread, ``me.request(...)``) to each kind.
2. **One-way messages per second**: an ``async def`` action on A calls ``self.send(...)``
   N times to B, whose ``async def`` action counts and sets an event at N. Measured from
   the first send to B's last receipt; each send is also answered (the classic contract:
   the reply goes to A's ``handle_action_value``, on a worker thread), and the time until
   every reply is back is the second figure.
3. **Adding agents**: time per ``space.add(...)`` of idle agents, and the memory each costs
   (VmRSS delta after ``gc.collect()``), measured in a fresh Python process per mode so
   that memory freed by earlier parts cannot be reused and hide the cost.
4. **Failure detection**: a responder is removed while its action is running (blocked on a
   ``threading.Event``). Assertion mode fails the pending ``request()`` with an
   ``ActionError`` as soon as the responder's presence fact goes; message mode cannot
   notice, so the request only ends with ``TimeoutError`` at its (short) timeout.

Goals (shown with ✓/✗, for a 2-core machine): agent-to-agent round trip ≤ 100 µs median,
≥ 50,000 one-way messages/s, ≤ 1 ms per add and ≤ 20 KB per idle agent. For scale, agency
1.6.3 takes 103 ms per round trip and manages 539 messages/s.

Run ``python benchmarks/classic_agents.py [--quick]`` or ``dataspace-agency bench classic``.
:func:`run` returns every figure as a dict; :func:`report` prints them.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import psutil
import trio

from ...classic import ActionError, Agent, action
from ...spaces import DataspaceSpace
from ..agents import time_arequests
from ..machine import machine
from . import common
from .classic_report import (GOAL_ADD_MS, GOAL_IDLE_KB, GOAL_MESSAGES, GOAL_ROUND_TRIP_US,
                             ROUND_TRIPS, report)

MODES = ("assertion", "message")


MESSAGE_MODE_TIMEOUT = 0.5  # the request timeout used for failure detection in message mode
FAILURE_TIMEOUT = 10.0  # and in assertion mode (it should never be reached)

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Sizes:
    """How much work one run does."""

    round_trips: int  # timed request() calls per scenario and mode
    warm_up: int  # untimed calls before them
    messages: int  # one-way messages per run
    message_runs: int  # the median run is reported
    batch: int  # the sender yields to the scheduler after this many sends
    agents: int  # idle agents added
    failures: int  # removals timed in assertion mode (message mode: at most 2, each waits
    # for the timeout)


SIZES = {
    "full": Sizes(round_trips=5_000, warm_up=200, messages=10_000, message_runs=3,
                  batch=100, agents=10_000, failures=10),
    "quick": Sizes(round_trips=1_000, warm_up=100, messages=5_000, message_runs=1,
                   batch=100, agents=1_000, failures=5),
    # For tests only (hidden --tiny): that everything runs and prints, not the figures.
    "tiny": Sizes(round_trips=50, warm_up=10, messages=200, message_runs=1, batch=100,
                  agents=100, failures=1),
}


# --- the agents ------------------------------------------------------------------------------


class Responder(Agent):
    """B: the same echo as an ``async def`` action and as a plain function."""

    @action
    async def aecho(self, text: str) -> str:
        return text

    @action
    def echo(self, text: str) -> str:
        return text


def _median_p99_us(samples: list[float]) -> list[float]:
    """[median, p99] in µs of durations in seconds (p99: the nearest-rank percentile)."""
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, max(0, -(-99 * len(ordered) // 100) - 1))]
    return [statistics.median(ordered) * 1e6, p99 * 1e6]


class Caller(Agent):
    """A: times ``arequest`` round trips from inside an ``async def`` action."""

    @action
    async def time_requests(self, to: str, name: str, count: int, warm_up: int) -> list:
        message = {"to": to, "action": {"name": name, "args": {"text": "hi"}}}
        return _median_p99_us(await time_arequests(self, message, count, warm_up))


class Counter(Agent):
    """B for one-way messages: counts, and records when the ``target``-th arrived."""

    def __init__(self, id: str, *, target: int, done: threading.Event, record: dict) -> None:
        super().__init__(id)
        self._target, self._done, self._record = target, done, record
        self._count = 0

    @action
    async def count(self) -> None:
        self._count += 1
        if self._count == self._target:
            self._record["received"] = time.perf_counter()
            self._done.set()


class Sender(Agent):
    """A for one-way messages: sends, and counts the replies that come back."""

    def __init__(self, id: str, *, target: int, done: threading.Event, record: dict) -> None:
        super().__init__(id)
        self._target, self._done, self._record = target, done, record
        self._replies = 0
        self._lock = threading.Lock()  # replies are handled on worker threads

    @action
    async def blast(self, to: str, count: int, batch: int) -> None:
        message = {"to": to, "action": {"name": "count", "args": {}}}
        send = self.send
        self._record["start"] = time.perf_counter()
        for i in range(1, count + 1):
            send(message)
            if i % batch == 0:
                # Let the runtime deliver what is queued: a sender that never yields
                # would only fill a backlog (everything runs on one trio thread).
                await trio.lowlevel.checkpoint()
        self._record["sent"] = time.perf_counter()

    def handle_action_value(self, value: Any) -> None:
        with self._lock:
            self._replies += 1
            if self._replies == self._target:
                self._record["replied"] = time.perf_counter()
                self._done.set()

    def handle_action_error(self, error: ActionError) -> None:
        self._record.setdefault("errors", []).append(str(error))
        self.handle_action_value(None)


class Idle(Agent):
    """An agent that is only there: one action, nothing running."""

    @action
    async def ping(self) -> str:
        return "pong"


class Blocker(Agent):
    """A responder whose action blocks (on a worker thread) until released."""

    def __init__(self, id: str, *, started: threading.Event,
                 release: threading.Event) -> None:
        super().__init__(id)
        self._started, self._release = started, release

    @action
    def block(self) -> str:
        self._started.set()
        self._release.wait(60)
        return "released"


def _call(action_name: str, /, **args: Any) -> dict:
    return {"action": {"name": action_name, "args": args}}


# --- part 1: request() round trips -----------------------------------------------------------




def _sync_round_trips(me: Agent, to: str, name: str, count: int, warm_up: int) -> list:
    message = {"to": to, **_call(name, text="hi")}
    for _ in range(warm_up):
        me.request(message, timeout=30)
    samples = []
    clock = time.perf_counter
    for _ in range(count):
        start = clock()
        me.request(message, timeout=30)
        samples.append(clock() - start)
    return _median_p99_us(samples)


def measure_round_trips(space: DataspaceSpace, me: Agent, sizes: Sizes,
                        progress: Progress) -> dict:
    space.add(Responder, "responder")
    space.add(Caller, "caller")
    count, warm_up = sizes.round_trips, sizes.warm_up
    # Generous: the figures are the point, a timeout would only lose them.
    whole = 60 + count * 0.05
    figures = {}
    for key, (to_name, sync) in {"agent_async": ("aecho", False),
                                 "agent_thread": ("echo", False),
                                 "sync_async": ("aecho", True),
                                 "sync_thread": ("echo", True)}.items():
        progress(f"{space.mode} mode: {count:,} round trips, {dict(ROUND_TRIPS)[key]}")
        gc.collect()
        if sync:
            median, p99 = _sync_round_trips(me, "responder", to_name, count, warm_up)
        else:
            median, p99 = me.request(
                {"to": "caller", **_call("time_requests", to="responder", name=to_name,
                                         count=count, warm_up=warm_up)}, timeout=whole)
        figures[key] = {"median_us": median, "p99_us": p99}
    space.remove("caller")
    space.remove("responder")
    return figures


# --- part 2: one-way messages ----------------------------------------------------------------


def _one_message_run(space: DataspaceSpace, me: Agent, sizes: Sizes, run: int) -> dict:
    n = sizes.messages
    received, replied = threading.Event(), threading.Event()
    record: dict = {}
    counter, sender = f"counter-{run}", f"sender-{run}"
    space.add(Counter, counter, target=n, done=received, record=record)
    space.add(Sender, sender, target=n, done=replied, record=record)
    gc.collect()
    wait = 60 + n * 0.01  # far beyond any plausible figure: it only guards against a hang
    me.request({"to": sender, **_call("blast", to=counter, count=n, batch=sizes.batch)},
               timeout=wait)
    if not received.wait(wait):
        raise RuntimeError(f"{space.mode} mode: the counter did not receive all {n:,}"
                           " messages")
    if not replied.wait(wait):
        raise RuntimeError(f"{space.mode} mode: not every send was answered")
    space.remove(sender)
    space.remove(counter)
    start = record["start"]
    return {"receive_s": record["received"] - start, "reply_s": record["replied"] - start,
            "send_s": record["sent"] - start, "errors": len(record.get("errors", ()))}


def measure_messages(space: DataspaceSpace, me: Agent, sizes: Sizes,
                     progress: Progress) -> dict:
    runs = []
    for run in range(sizes.message_runs):
        progress(f"{space.mode} mode: {sizes.messages:,} one-way messages"
                 f" (run {run + 1} of {sizes.message_runs})")
        runs.append(_one_message_run(space, me, sizes, run))
    runs.sort(key=lambda r: r["receive_s"])
    median = runs[len(runs) // 2]
    n = sizes.messages
    return {**median, "messages": n, "runs": len(runs),
            "received_per_s": n / median["receive_s"],
            "replied_per_s": n / median["reply_s"]}


# --- part 3: adding agents (in a fresh process) ----------------------------------------------


def _rss_bytes() -> int:
    gc.collect()
    return psutil.Process().memory_info().rss


def measure_adding(mode: str, count: int) -> dict:
    """Add ``count`` idle agents to a fresh space; time and memory. Meant to run in a
    process of its own (see :func:`measure_adding_isolated`)."""
    space = DataspaceSpace(mode=mode)
    try:
        for i in range(20):  # one-off costs (caches, first thread) stay out of the figure
            space.add(Idle, f"warm-{i}")
        space.fact_count()
        before = _rss_bytes()
        clock = time.perf_counter
        tail_from = count - max(1, count // 10)
        start = clock()
        tail_start = start
        for i in range(count):
            if i == tail_from:
                tail_start = clock()
            space.add(Idle, f"idle-{i}")
        end = clock()
        facts = space.fact_count()  # also: everything the adds set off has settled
        after = _rss_bytes()
        start_remove = clock()
        space.destroy()
        removed = clock()
    finally:
        space.destroy()
    return {"mode": mode, "agents": count, "add_ms": (end - start) / count * 1e3,
            "add_tail_ms": (end - tail_start) / (count - tail_from) * 1e3,
            "idle_kb": (after - before) / count / 1024, "facts": facts,
            "remove_ms": (removed - start_remove) / (count + 20) * 1e3}


_CHILD = ("import json, sys\n"
          "from dataspace_agency.compare.bench.classic import measure_adding\n"
          "print(json.dumps(measure_adding(sys.argv[1], int(sys.argv[2]))))\n")


def measure_adding_isolated(mode: str, count: int) -> dict:
    """:func:`measure_adding` in a new Python process: memory freed by whatever ran
    before would otherwise be reused and hide what the agents cost."""
    package_root = str(Path(__file__).resolve().parents[3])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH"))
                                        if p)
    result = subprocess.run([sys.executable, "-c", _CHILD, mode, str(count)],
                            capture_output=True, text=True, env=env, timeout=600)
    if result.returncode != 0:
        raise RuntimeError(f"adding agents ({mode} mode) failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


# --- part 4: failure detection ---------------------------------------------------------------


def _one_failure(space: DataspaceSpace, me: Agent, responder: str, timeout: float) -> dict:
    started, release = threading.Event(), threading.Event()
    space.add(Blocker, responder, started=started, release=release)
    outcome: dict = {}
    # Earlier parts leave cyclic garbage (assertion mode: ~30 objects per request); a
    # collection of it landing here would be timed as detection.
    gc.collect()

    def ask() -> None:
        outcome["asked"] = time.perf_counter()
        try:
            me.request({"to": responder, **_call("block")}, timeout=timeout)
            outcome["raised"] = "nothing"
        except BaseException as exc:  # noqa: BLE001 - which one is the figure
            outcome["raised"] = type(exc).__name__
        outcome["at"] = time.perf_counter()

    asker = threading.Thread(target=ask, name=f"ask-{responder}")
    asker.start()
    remover = None
    try:
        if not started.wait(30):
            raise RuntimeError(f"{space.mode} mode: the blocking action never started")
        removed = time.perf_counter()
        # In a thread of its own: remove() must not be able to hold up the measurement.
        remover = threading.Thread(target=space.remove, args=(responder,),
                                   name=f"remove-{responder}")
        remover.start()
        asker.join(timeout + 30)
    finally:
        release.set()
        if remover is not None:
            remover.join(30)
    if asker.is_alive():
        raise RuntimeError(f"{space.mode} mode: request() neither answered nor failed")
    return {"raised": outcome["raised"], "after_remove_ms": (outcome["at"] - removed) * 1e3,
            "after_request_ms": (outcome["at"] - outcome["asked"]) * 1e3}


def measure_failure(space: DataspaceSpace, me: Agent, sizes: Sizes,
                    progress: Progress) -> dict:
    assertion = space.mode == "assertion"
    timeout = FAILURE_TIMEOUT if assertion else MESSAGE_MODE_TIMEOUT
    repeats = sizes.failures if assertion else min(2, sizes.failures)
    progress(f"{space.mode} mode: removing a responder mid-action ({repeats} times)")
    samples = [_one_failure(space, me, f"blocker-{i}", timeout) for i in range(repeats)]
    raised = sorted({s["raised"] for s in samples})
    return {"timeout_s": timeout, "repeats": repeats, "raised": raised,
            "median_ms": statistics.median(s["after_remove_ms"] for s in samples),
            "max_ms": max(s["after_remove_ms"] for s in samples),
            "after_request_ms": statistics.median(s["after_request_ms"] for s in samples)}


# --- the run ---------------------------------------------------------------------------------


def measure_mode(mode: str, sizes: Sizes, progress: Progress) -> dict:
    with DataspaceSpace(mode=mode) as space:
        me = space.add_foreground(Agent, "me")
        return {"round_trips": measure_round_trips(space, me, sizes, progress),
                "messages": measure_messages(space, me, sizes, progress),
                "failure": measure_failure(space, me, sizes, progress)}


def run(quick: bool, *, tiny: bool = False, progress: Progress | None = None) -> dict:
    """Run the benchmark and return every figure, printing nothing (``progress`` is told
    what is being measured). Keys: ``mode``, ``machine``, ``sizes``, ``modes`` (per space
    mode: ``round_trips``, ``messages``, ``failure``, ``adding``), ``goals`` (name -> space
    mode -> met), ``seconds``."""
    run_mode = "tiny" if tiny else "quick" if quick else "full"
    sizes = SIZES[run_mode]
    progress = progress or (lambda message: None)
    started = time.perf_counter()

    modes = {}
    for mode in MODES:
        modes[mode] = measure_mode(mode, sizes, progress)
        gc.collect()
    for mode in MODES:
        progress(f"{mode} mode: adding {sizes.agents:,} idle agents (fresh process)")
        modes[mode]["adding"] = measure_adding_isolated(mode, sizes.agents)

    goals = {
        "round_trip": {m: f["round_trips"]["agent_async"]["median_us"] <= GOAL_ROUND_TRIP_US
                       for m, f in modes.items()},
        "messages": {m: f["messages"]["received_per_s"] >= GOAL_MESSAGES
                     for m, f in modes.items()},
        "add": {m: f["adding"]["add_ms"] <= GOAL_ADD_MS for m, f in modes.items()},
        "idle_memory": {m: f["adding"]["idle_kb"] <= GOAL_IDLE_KB for m, f in modes.items()},
    }
    return {"mode": run_mode, "machine": machine(), "sizes": sizes.__dict__,
            "modes": modes, "goals": goals, "seconds": time.perf_counter() - started}


QUICK_HELP = "fewer calls and messages, 1,000 agents (under a minute)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The benchmark's options, shared by this module's :func:`main` and the CLI."""
    common.add_arguments(parser, QUICK_HELP)


def run_from_args(args: argparse.Namespace) -> int:
    """Run with parsed options, print the report; the exit status."""
    return common.run_and_report(run, report, "classic agents", args)


def main(argv: list[str] | None = None) -> int:
    return common.standalone_main("classic_agents", __doc__, run, report,
                                  "classic agents", QUICK_HELP, argv)
