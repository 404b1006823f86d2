"""The no-leak check run after every test module (the autouse fixture in conftest.py).

``take_baseline()`` before the module, ``find_leaks(baseline)`` after it: a list of what
the module left behind, one line each, naming it so it can be found:

* open objects, from the library's weak registries (``dataspace_agency.runtime.registry``):
  a space not destroyed that still holds agents, facts or a running runtime (see
  ``Space.leak_report``), a server still serving (its
  connections and facts), a runtime not closed (its live actors and trio tasks);
* threads alive that were not alive before the module (name, where each is now);
* child processes (recursive) that were not there before the module (pid, command line),
  leaving out the session's RabbitMQ broker, which the caller names by its pids.

Threads and processes get a short grace period to end, waited for on the event itself (a
thread's join, a process's pidfd), never a sleep. A child that has exited but not yet been
waited for (a zombie) counts as ended: it holds no resources but a process-table slot,
and its owner (a Popen, multiprocessing) collects it when it next looks.
"""

from __future__ import annotations

import gc
import os
import select
import sys
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable

import psutil

from dataspace_agency.runtime.registry import (OPEN_RUNTIMES, OPEN_SERVERS, OPEN_SPACES,
                                               OpenEntry, current_serial)

# Long-lived helpers that are not leaks, each with the reason.
ALLOWED_CHILD_COMMANDS = {
    "multiprocessing.forkserver": "started once per interpreter by multiprocessing (the "
                                  "multiprocess spaces' start method) and reused until exit",
    "multiprocessing.resource_tracker": "started once per interpreter by multiprocessing, "
                                        "lives until exit",
}
# Threads: idle workers of trio's thread cache (found precisely, see _idle_trio_workers)
# are allowed: trio keeps them up to 10 s for reuse, and an idle one holds nothing. A
# worker still running a job is reported like any other thread. pytest-timeout's watchdog
# (one per test, named "pytest_timeout <test id>") belongs to the test runner, not the code.

_LIBRARIES = (os.path.dirname(os.__file__),
              *(p for p in sys.path if p.endswith("site-packages")))


# Session-wide services (the RabbitMQ brokers the tests start once per session): each
# entry gives the pids of one's processes now. What they start, whenever they start it
# (an Erlang VM spawns short-lived helpers of its own), is no test's leak, in every check.
SESSION_SERVICES: list[Callable[[], set[int]]] = []


def _session_pids() -> set[int]:
    return set().union(*(pids() for pids in SESSION_SERVICES))


class LeakError(AssertionError):
    """Something was left over after a test module."""


@dataclass(frozen=True)
class Baseline:
    threads: frozenset[threading.Thread]
    children: frozenset[tuple[int, float]]  # (pid, create time): pids get reused
    serial: int  # registry entries after this one were opened since the baseline


def _children() -> dict[tuple[int, float], psutil.Process]:
    found = {}
    for proc in psutil.Process().children(recursive=True):
        try:
            found[(proc.pid, proc.create_time())] = proc
        except psutil.Error:
            continue  # gone meanwhile
    return found


def take_baseline() -> Baseline:
    return Baseline(frozenset(threading.enumerate()), frozenset(_children()), current_serial())


# --- open objects ------------------------------------------------------------------------

def _where(entry: OpenEntry) -> str:
    return f"opened at {entry.site} (thread {entry.thread!r})"


def _describe_space(entry: OpenEntry) -> str | None:
    space = entry.obj
    try:
        state = space.leak_report()
    except Exception as exc:  # a report must not hide the leak it reports
        state = f"(could not describe it: {exc!r})"
    if state is None:
        return None  # never destroyed, but it holds nothing and runs nothing
    return f"space {type(space).__name__} {_where(entry)} was not destroyed: {state}"


def _describe_server(entry: OpenEntry) -> str:
    server = entry.obj
    where = " and ".join(a for a in (server.tcp_address and server.tcp_address_text,
                                     server.unix_path) if a) or "no address"
    return (f"server {_where(entry)} is still serving on {where}: "
            f"{len(server.connections)} connection(s) {sorted(server.connections.values())}, "
            f"{server.dataspace.assertion_count} fact(s)")


def _describe_runtime(entry: OpenEntry) -> str:
    system = entry.obj
    try:
        actors = sorted(str(actor.name) for actor in system.live_actors())
    except RuntimeError:  # changed size while read from this thread
        actors = ["(changing)"]
    tasks = [name.rsplit(".", 1)[-1] for name in system.task_names()]
    return (f"runtime {_where(entry)} was not closed: {len(actors)} live actor(s) {actors}, "
            f"{len(tasks)} trio task(s) {tasks}")


def _open_objects(serial: int) -> list[str]:
    gc.collect()  # an object abandoned in a reference cycle is not open, just garbage
    spaces = [_describe_space(e) for e in OPEN_SPACES.open_since(serial)]
    return ([line for line in spaces if line is not None]
            + [_describe_server(e) for e in OPEN_SERVERS.open_since(serial)]
            + [_describe_runtime(e) for e in OPEN_RUNTIMES.open_since(serial)])


# --- threads -------------------------------------------------------------------------------

def _idle_trio_workers() -> set[threading.Thread]:
    """Threads of trio's thread cache waiting for work (private API, so defensively)."""
    try:
        from trio._core._thread_cache import THREAD_CACHE
        return {worker._thread for worker in list(THREAD_CACHE._idle_workers)}
    except Exception:  # trio changed: fall back on the workers' default names
        return {t for t in threading.enumerate() if t.name.startswith("Trio thread ")}


def _now_in(thread: threading.Thread) -> str:
    """Where a thread is now: its innermost frame outside the standard library and
    site-packages (so in this project's code), else its innermost frame."""
    frame = sys._current_frames().get(thread.ident or -1)
    innermost = frame
    while frame is not None and frame.f_code.co_filename.startswith(_LIBRARIES):
        frame = frame.f_back
    frame = frame or innermost
    if frame is None:
        return "(no frame)"
    return f"{os.path.relpath(frame.f_code.co_filename)}:{frame.f_lineno} in {frame.f_code.co_name}"


def _threads(baseline: Baseline, deadline: float) -> list[str]:
    def new_threads() -> list[threading.Thread]:
        idle = _idle_trio_workers()
        return [t for t in threading.enumerate()
                if t not in baseline.threads and t is not threading.current_thread()
                and t not in idle and t.is_alive()
                and not t.name.startswith("pytest_timeout ")]

    for thread in new_threads():
        thread.join(max(0.0, deadline - time.monotonic()))  # the grace: its ending
    return [f"thread {t.name!r} ({'daemon' if t.daemon else 'non-daemon'}) still running, "
            f"now at {_now_in(t)}" for t in new_threads()]


# --- child processes -----------------------------------------------------------------------

def _running(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _allowed(proc: psutil.Process) -> bool:
    try:
        command = " ".join(proc.cmdline())
    except psutil.Error:
        return True  # gone
    return any(marker in command for marker in ALLOWED_CHILD_COMMANDS)


def _wait_ended(procs: Iterable[psutil.Process], deadline: float) -> None:
    """Wait until each process has exited (pidfd readable), or the deadline."""
    fds = []
    try:
        for proc in procs:
            try:
                fds.append(os.pidfd_open(proc.pid))
            except OSError:
                continue  # already gone
        pending = list(fds)
        while pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            ready, _, _ = select.select(pending, [], [], remaining)
            pending = [fd for fd in pending if fd not in ready]
    finally:
        for fd in fds:
            os.close(fd)


def _describe_process(proc: psutil.Process) -> str:
    try:
        command = " ".join(proc.cmdline()) or proc.name()
        parent = proc.parent()
        parent_text = f"{parent.pid} {parent.name()}" if parent is not None else "none"
        return f"child process {proc.pid} (parent {parent_text}) still running: {command[:300]}"
    except psutil.Error:
        return f"child process {proc.pid} (ended while being described)"


def _processes(baseline: Baseline, deadline: float,
               exclude_pids: Callable[[], set[int]]) -> list[str]:
    def new_children() -> list[psutil.Process]:
        children = _children()
        # After listing: covers what a broker started meanwhile.
        excluded = exclude_pids() | _session_pids()
        return [proc for key, proc in children.items()
                if key not in baseline.children and proc.pid not in excluded
                and _running(proc) and not _allowed(proc)]

    # Each process gets the grace, including one that appears while others are waited for
    # (a process that is ending may start a short-lived helper); bounded by the deadline.
    waited: set[int] = set()
    while True:
        fresh = [proc for proc in new_children() if proc.pid not in waited]
        if not fresh or time.monotonic() >= deadline:
            break
        _wait_ended(fresh, deadline)
        waited.update(proc.pid for proc in fresh)
    return [_describe_process(proc) for proc in new_children()]


# --- the check -----------------------------------------------------------------------------

def find_leaks(baseline: Baseline, *, grace: float = 5.0,
               exclude_pids: Callable[[], set[int]] = set) -> list[str]:
    """What was left over since ``baseline``, one line each (empty: nothing). Threads and
    processes may take up to ``grace`` seconds in all to end."""
    deadline = time.monotonic() + grace
    threads = _threads(baseline, deadline)
    processes = _processes(baseline, deadline, exclude_pids)
    return _open_objects(baseline.serial) + threads + processes


def check_no_leaks(baseline: Baseline, *, grace: float = 5.0,
                   exclude_pids: Callable[[], set[int]] = set) -> None:
    """Raise :class:`LeakError` listing what was left over since ``baseline``."""
    leaks = find_leaks(baseline, grace=grace, exclude_pids=exclude_pids)
    if leaks:
        raise LeakError(describe(leaks))


def describe(leaks: list[str]) -> str:
    """The lines of :func:`find_leaks` as one message."""
    return f"{len(leaks)} leak(s) left over:\n" + "\n".join(f"  - {line}" for line in leaks)
