"""The reference: the compare workloads on agency 1.6.3 itself, its agents written
against agency's own API. A standalone script, run in a process of its own:

    .venv/bin/python reference/agency_reference.py --workload round_trip --params '{"count": 10, "warm_up": 1}'
        [--space local|amqp] [--stub-logging] [--amqp-url URL] [--namespace NAME]

It prints one result line in the worker's format (``worker.MARK`` + JSON). It imports
nothing from dataspace_agency (only agency, the standard library and
``dataspace_agency/compare/memory.py``, loaded by path): agency starts its background
agents with ``spawn``, and each such process re-imports this script, so importing our
package here would inflate agency's memory. For the same reason it lives outside the
package (``compare/worker.py`` runs it by its path from a checkout): its few lines that
repeat a workload's shape are written against agency's API, not ours.

What is done to agency, and why (the report says so too):

* **Pools sized.** agency runs every foreground agent's loop on one shared
  ``ThreadPoolExecutor`` and every background agent's loop on one ``ProcessPoolExecutor``,
  both ``max_workers=None`` by default (6 threads and 2 processes on a 2-CPU machine), and a
  loop holds its worker for the agent's whole life: the third background agent's
  ``add()`` never returns. So the pools are created first with ``max_workers`` = the
  agents the workload adds + 8 (``ResourceManager(max_workers=...)``, agency's own knob).
* **Logging, as shipped or stubbed.** agency's ``log()`` formats its object (JSON, then
  pygments highlighting) before the level check: ~0.56 ms per call even when logging is
  off. With ``--stub-logging`` the ``log`` name in each agency module is replaced by a
  no-op, in this process and (through an environment variable, read when the spawned
  children re-import this script) in every agent process.
* **Explicit answers.** In 1.6.3 an action answers only if it calls ``respond_with``; the
  responders here do.
"""

# No "from __future__ import annotations": agency reads the annotations of actions as
# types (their __name__) to build help.
import argparse
import importlib.util
import json
import os
import signal
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
_MEMORY = _HERE.parent / "dataspace_agency" / "compare" / "memory.py"
# Run as a script, this directory is sys.path[0]: nothing here is meant to be importable
# top-level (or to shadow anything).
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

STUB_ENV = "DSA_COMPARE_AGENCY_STUB_LOG"
MARK = "@@dsa-compare-result "  # worker.MARK

import agency.agent  # noqa: E402  (after the sys.path fix)
from agency.agent import Agent, action  # noqa: E402
from agency.resources import ResourceManager  # noqa: E402

_AGENCY_MODULES = ("agency.agent", "agency.space", "agency.processor",
                   "agency.spaces.local_space", "agency.spaces.amqp_space")


def _no_log(level: str, message: str, object: Any = None) -> None:
    """agency's log(), stubbed: nothing at all."""


def stub_logging() -> None:
    """Replace ``log`` in every agency module (they import it by name)."""
    import importlib
    for name in _AGENCY_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:  # agency's AMQP space needs kombu
            continue
        module.log = _no_log


if os.environ.get(STUB_ENV) == "1":  # also in spawned agent processes
    stub_logging()


# --- the agents, against agency's API ---------------------------------------------------------


class Echo(Agent):
    @action
    def echo(self, text: str):
        """Echo.

        Args:
            text: what to echo
        """
        self.respond_with(text)


class Counter(Agent):
    def __init__(self, id: str):
        super().__init__(id)
        self._lock = threading.Lock()  # agency runs a process's actions concurrently
        self._expected, self._received, self._reporter = 0, 0, ""

    @action
    def expect(self, count: int, reporter: str):
        """Expect count messages; tell reporter."""
        with self._lock:
            self._expected, self._received, self._reporter = count, 0, reporter
        self.respond_with(None)

    @action
    def take(self, i: int):
        """Count one."""
        with self._lock:
            self._received += 1
            done = self._received == self._expected
        if done:
            self.send({"to": self._reporter, "action": {"name": "finished", "args": {}}})


class Pong(Agent):
    @action
    def ping(self):
        """Answer with my id."""
        self.respond_with(self.id())


class Stuck(Agent):
    @action
    def work(self, driver: str):
        """Say it started, then block."""
        self.send({"to": driver, "action": {"name": "started",
                                            "args": {"pid": os.getpid()}}})
        threading.Event().wait(60)  # killed long before; bounded regardless
        self.respond_with("finished")


class Idle(Agent):
    pass


class Late(Agent):
    @action
    def add(self, a: int, b: int):
        """Add."""
        self.respond_with(a + b)


class Driver(Agent):
    def __init__(self, id: str):
        super().__init__(id, receive_own_broadcasts=False)
        self.finished_event = threading.Event()
        self.started_event = threading.Event()
        self.started_pid: int | None = None
        self._lock = threading.Lock()
        self.replies: list = []
        self.replies_target = 0
        self.replies_done = threading.Event()

    def expect_replies(self, count: int) -> None:
        with self._lock:
            self.replies, self.replies_target = [], count
            self.replies_done.clear()

    @action
    def finished(self):
        """The stream finished."""
        self.finished_event.set()

    @action
    def started(self, pid: int):
        """The stuck action started."""
        self.started_pid = pid
        self.started_event.set()

    def handle_action_value(self, value):
        with self._lock:
            self.replies.append(value)
            if len(self.replies) >= self.replies_target > 0:
                self.replies_done.set()


# --- the workloads, the same scenarios as workloads/*.py ------------------------------------


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    rank = max(1, -(-int(q * len(ordered)) // 100))
    return ordered[min(rank, len(ordered)) - 1]


def _latency(prefix: str, samples: list[float], scale: float = 1e6) -> dict:
    return {f"{prefix}_median": statistics.median(samples) * scale,
            f"{prefix}_p90": _percentile(samples, 90) * scale,
            f"{prefix}_p99": _percentile(samples, 99) * scale}


class Harness:
    """Makes agency spaces with sized pools and tears them down within bounds."""

    def __init__(self, args: argparse.Namespace, memory: Any) -> None:
        self.args = args
        self.memory_module = memory
        self.space: Any = None

    def make_space(self, agents: int) -> Any:
        workers = agents + 8
        ResourceManager(max_workers=workers)  # the first call sizes agency's pools
        self.pools = workers
        if self.args.space == "amqp":
            from urllib.parse import unquote, urlparse

            from agency.spaces.amqp_space import AMQPOptions, AMQPSpace
            url = urlparse(self.args.amqp_url)
            options = AMQPOptions(hostname=url.hostname or "127.0.0.1",
                                  port=url.port or 5672, username=url.username or "guest",
                                  password=url.password or "guest",
                                  virtual_host=unquote(url.path[1:]) if len(url.path) > 1
                                  else "/")
            self.space = AMQPSpace(amqp_options=options, exchange_name=self.args.namespace)
        else:
            from agency.spaces.local_space import LocalSpace
            self.space = LocalSpace(max_workers=workers)
        return self.space

    def destroy(self, bound: float = 20.0) -> None:
        """``space.destroy()`` within ``bound`` seconds (agency's can hang: a lost stop
        signal, a broken pool after a SIGKILL)."""
        if self.space is None:
            return
        done = threading.Event()

        def destroy() -> None:
            try:
                self.space.destroy()
            except Exception:  # noqa: BLE001 - a broken pool after the failure workload
                pass
            done.set()
        threading.Thread(target=destroy, daemon=True).start()
        self.destroyed_cleanly = done.wait(bound)
        self.space = None


def round_trip(h: Harness, p: dict) -> dict:
    space = h.make_space(1)
    space.add(Echo, "echo")
    me = space.add_foreground(Driver, "driver")
    message = {"to": "echo", "action": {"name": "echo", "args": {"text": "hi"}}}
    for _ in range(p["warm_up"]):
        me.request(dict(message), timeout=30)
    samples = []
    for _ in range(p["count"]):
        start = time.perf_counter()
        me.request(dict(message), timeout=30)
        samples.append(time.perf_counter() - start)
    h.destroy()
    figures = _latency("rt_us", samples)
    figures["requests_per_s"] = len(samples) / sum(samples)
    return {"figures": figures, "samples": {"rt_s": samples, "async_rt_s": []},
            "outcome": {"requests": len(samples), "async_requests": 0}}


def throughput(h: Harness, p: dict) -> dict:
    count = p["messages"]
    space = h.make_space(1)
    space.add(Counter, "counter")
    me = space.add_foreground(Driver, "driver")
    me.request({"to": "counter", "action": {"name": "expect", "args": {
        "count": count, "reporter": "driver"}}}, timeout=30)
    start = time.perf_counter()
    for i in range(count):
        me.send({"to": "counter", "action": {"name": "take", "args": {"i": i}}})
    sent = time.perf_counter() - start
    received = me.finished_event.wait(600)
    elapsed = time.perf_counter() - start
    h.destroy()
    if not received:
        raise TimeoutError(f"the counter did not receive {count} messages")
    return {"figures": {"messages_per_s": count / elapsed, "send_per_s": count / sent,
                        "elapsed_s": elapsed},
            "samples": {"elapsed_s": [elapsed]},
            "outcome": {"messages": count, "all_received": received}}


def broadcast(h: Harness, p: dict) -> dict:
    k = p["agents"]
    space = h.make_space(k)
    for i in range(k):
        space.add(Pong, f"pong-{i}")
    me = space.add_foreground(Driver, "driver")
    samples = []
    for _ in range(p["rounds"]):
        me.expect_replies(k)
        start = time.perf_counter()
        me.send({"to": "*", "action": {"name": "ping", "args": {}}})
        if not me.replies_done.wait(60):
            raise TimeoutError(f"{len(me.replies)} of {k} broadcast answers")
        samples.append(time.perf_counter() - start)
        if sorted(me.replies) != sorted(f"pong-{i}" for i in range(k)):
            raise AssertionError("wrong broadcast answers")
    h.destroy()
    return {"figures": _latency("fanout_ms", samples, 1e3), "samples": {"fanout_s": samples},
            "outcome": {"agents": k, "rounds": len(samples)}}


def scale(h: Harness, p: dict) -> dict:
    import gc
    k = int(p["agents"])
    memory = h.memory_module
    space = h.make_space(k)
    me = space.add_foreground(Driver, "driver")
    gc.collect()
    empty = memory.tree_memory()
    adds = []
    for i in range(k):
        start = time.perf_counter()
        space.add(Idle, f"idle-{i}")
        adds.append(time.perf_counter() - start)
    me.request({"to": f"idle-{k - 1}", "action": {"name": "help", "args": {}}}, timeout=30)
    gc.collect()
    full = memory.tree_memory()
    cpu_before, wall_before = memory.tree_cpu_times(), time.perf_counter()
    time.sleep(p["idle_s"])  # the idle window being measured
    idle_cpu = memory.cpu_between(cpu_before, memory.tree_cpu_times())
    idle_wall = time.perf_counter() - wall_before
    h.destroy()
    figures = _latency("add_ms", adds, 1e3)
    figures.update({
        "add_ms_mean": statistics.fmean(adds) * 1e3,
        "rss_mib": full["rss_mib"], "pss_mib": full["pss_mib"],
        "processes": full["processes"],
        "rss_per_agent_kib": (full["rss_mib"] - empty["rss_mib"]) * 1024 / k,
        "pss_per_agent_kib": (None if full["pss_mib"] is None or empty["pss_mib"] is None
                              else (full["pss_mib"] - empty["pss_mib"]) * 1024 / k),
        "idle_cpu_pct": 100 * idle_cpu / idle_wall,
    })
    return {"figures": figures, "samples": {"add_s": adds},
            "outcome": {"agents": k, "empty": empty, "full": full}}


def _ask(me: Any, message: dict, timeout: float, result: dict) -> threading.Thread:
    from agency.agent import ActionError

    def ask() -> None:
        try:
            result["value"] = me.request(message, timeout=timeout)
            result["error"] = None
        except (ActionError, TimeoutError) as exc:
            result["error"] = type(exc).__name__
            result["message"] = str(exc) or type(exc).__name__
        result["at"] = time.perf_counter()
    thread = threading.Thread(target=ask, daemon=True)
    thread.start()
    return thread


def failure(h: Harness, p: dict) -> dict:
    timeout = float(p["timeout_s"])
    space = h.make_space(1)
    space.add(Stuck, "stuck")
    me = space.add_foreground(Driver, "driver")
    result: dict = {}
    asked_at = time.perf_counter()
    asker = _ask(me, {"to": "stuck", "action": {"name": "work", "args": {"driver": "driver"}}},
                 timeout, result)
    if not me.started_event.wait(30):
        raise TimeoutError("the stuck action never started")
    import psutil
    # The agent process's own children (agency starts a Manager in each agent process)
    # are orphaned by the kill, outside our process tree: remember them to end them.
    orphans = psutil.Process(me.started_pid).children(recursive=True)
    killed_at = time.perf_counter()
    os.kill(me.started_pid, signal.SIGKILL)
    asker.join(timeout + 30)
    if asker.is_alive():
        raise TimeoutError("the request neither failed nor timed out")
    h.destroy(bound=10)
    left_behind = [o.pid for o in orphans if o.is_running()]
    for orphan in orphans:
        try:
            orphan.kill()
        except psutil.Error:
            pass
    detect = result["at"] - killed_at
    return {"figures": {"detect_ms": detect * 1e3,
                        "waited_ms": (result["at"] - asked_at) * 1e3,
                        "timed_out": 1 if result["error"] == "TimeoutError" else 0},
            "samples": {"detect_s": [detect]},
            "outcome": {"how": "SIGKILL of its process", "error": result["error"],
                        "message": result.get("message"), "timeout_s": timeout,
                        "orphaned_processes": len(left_behind)}}


def late_join(h: Harness, p: dict) -> dict:
    timeout = float(p["timeout_s"])
    space = h.make_space(1)
    me = space.add_foreground(Driver, "driver")
    result: dict = {}
    asked_at = time.perf_counter()
    asker = _ask(me, {"to": "late", "action": {"name": "add", "args": {"a": 1, "b": 2}}},
                 timeout, result)
    time.sleep(p["join_after_s"])  # the scenario: the responder comes later
    joined_at = time.perf_counter()
    space.add(Late, "late")
    asker.join(timeout + 30)
    h.destroy()
    answered = result.get("error", "none") is None
    return {"figures": {"answered": 1 if answered else 0,
                        "after_join_ms": (result["at"] - joined_at) * 1e3 if answered
                        else None,
                        "waited_ms": (result["at"] - asked_at) * 1e3},
            "samples": {},
            "outcome": {"answered": answered, "value": result.get("value"),
                        "error": result.get("error"), "message": result.get("message"),
                        "timeout_s": timeout, "join_after_s": p["join_after_s"]}}


def state(h: Harness, p: dict) -> dict:
    n = int(p["agents"])
    space = h.make_space(n)
    for i in range(n):
        space.add(Idle, f"idle-{i}")
    me = space.add_foreground(Driver, "newcomer")
    me.expect_replies(n)
    start = time.perf_counter()
    me.send({"to": "*", "action": {"name": "help", "args": {}}})
    complete = me.replies_done.wait(60)
    took = time.perf_counter() - start
    h.destroy()
    methods = {"broadcast": {"complete": complete, "ms": took * 1e3,
                             "messages": 1 + len(me.replies), "knows_when_done": False,
                             "note": "a newcomer that does not know N must wait for a"
                                     " timeout"},
               "registry": {"complete": False, "ms": None, "messages": 0,
                            "knows_when_done": False,
                            "note": "agency has no registry to ask (processors are private)"}}
    return {"figures": {"broadcast_ms": took * 1e3}, "samples": {},
            "outcome": {"agents": n, "methods": methods}}


WORKLOADS = {f.__name__: f for f in (round_trip, throughput, broadcast, scale, failure,
                                     late_join, state)}


def _end_children() -> None:
    """Stop every process this one started (agency's Manager, pool and agent processes,
    and their own Managers), by pid, so that none outlives the run."""
    import psutil
    try:
        children = psutil.Process().children(recursive=True)
    except psutil.Error:
        return
    for child in children:
        try:
            child.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(children, timeout=5)


def main() -> None:
    parser = argparse.ArgumentParser(description="compare workloads on agency 1.6.3")
    parser.add_argument("--workload", required=True, choices=sorted(WORKLOADS))
    parser.add_argument("--params", default="{}")
    parser.add_argument("--space", choices=("local", "amqp"), default="local")
    parser.add_argument("--stub-logging", action="store_true")
    parser.add_argument("--amqp-url", default=None)
    parser.add_argument("--namespace", default=f"dsa-compare-{os.getpid()}")
    args = parser.parse_args()
    if args.stub_logging:
        os.environ[STUB_ENV] = "1"  # before any agent process is spawned
        stub_logging()
    spec = importlib.util.spec_from_file_location("_dsa_compare_memory", _MEMORY)
    memory = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(memory)
    harness = Harness(args, memory)
    started = time.perf_counter()
    status = 0
    try:
        if args.space == "amqp" and not args.amqp_url:
            raise ValueError("--space amqp needs --amqp-url")
        result = WORKLOADS[args.workload](harness, json.loads(args.params))
        result = {"ok": True, **result}
        result["outcome"]["agency"] = {
            "version": _version(), "space": args.space, "pool_max_workers": harness.pools,
            "logging": "stubbed" if args.stub_logging else "as shipped",
            "destroyed_cleanly": getattr(harness, "destroyed_cleanly", None)}
        result["memory_end"] = memory.tree_memory()
    except Exception as exc:  # noqa: BLE001 - reported as data
        import traceback
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}",
                  "traceback": traceback.format_exc(limit=8)}
        status = 1
    result["wall_s"] = time.perf_counter() - started
    sys.stdout.write(MARK + json.dumps(result) + "\n")
    sys.stdout.flush()
    harness.destroy(bound=5)
    _end_children()
    os._exit(status)


def _version() -> str:
    from importlib.metadata import version
    return version("agency")


if __name__ == "__main__":
    main()
