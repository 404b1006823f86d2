"""Child processes of agents: start one, its bootstrap, stop it; shared by both process
spaces (``MultiprocessQueueSpace`` and ``MultiprocessDataspaceSpace``).

A child is started with the ``forkserver`` method (``spawn`` where there is none), never
``fork``: the parent has threads. The fork server preloads this package and the libraries
the first agent's module imports, so a child starts in milliseconds plus the import of the
agent's own module. The agent class and its constructor arguments are pickled by
multiprocessing to start the child (our own process, from our own code); everything
between parent and child afterwards is JSON (``process_wire.py``).
"""

from __future__ import annotations

import builtins
import logging
import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
import sys
import sysconfig
import time
import traceback
import types
from typing import Any

START_METHODS = ("forkserver", "spawn")
_preload_set = False  # the fork server's preload list is set once, before it starts


def child_context(start_method: str | None) -> Any:
    """The multiprocessing context children are started with: ``forkserver`` where there
    is one, else ``spawn``; never ``fork`` (the parent has threads)."""
    if start_method is None:
        start_method = ("forkserver" if "forkserver" in multiprocessing.get_all_start_methods()
                        else "spawn")
    if start_method not in START_METHODS:
        raise ValueError(f"start_method must be one of {START_METHODS} (never 'fork': "
                         f"this process has threads), got {start_method!r}")
    return multiprocessing.get_context(start_method)


def _preload_for(agent_type: type) -> list[str]:
    """What the fork server imports before it forks the first child (if that starts it):
    this package and what the agent's module imports from installed libraries, i.e. what
    each child would import anyway. A child then starts in milliseconds, not in the time
    its imports take. Modules found by other paths (e.g. the agent's module itself, or a
    test directory) are left to the child: the 3.11 fork server does not get the parent's
    ``sys.path``, and a same-named module elsewhere on the path must not stand in."""
    paths = sysconfig.get_paths()
    roots = tuple(os.path.join(os.path.realpath(paths[key]), "")
                  for key in ("stdlib", "platstdlib", "purelib", "platlib") if key in paths)
    names = {__name__}  # and the caller's extra_preload: where the child's main lives
    module = sys.modules.get(getattr(agent_type, "__module__", ""))
    for value in list(vars(module).values()) if module is not None else ():
        try:
            name = (value.__name__ if isinstance(value, types.ModuleType)
                    else getattr(value, "__module__", None))
        except Exception:  # noqa: BLE001 - an odd object; it does not matter
            continue
        if (not isinstance(name, str) or name in ("__main__", "__mp_main__")
                or name.startswith("_frozen")):
            continue
        file = getattr(sys.modules.get(name), "__file__", None)
        if name.startswith("dataspace_agency.") or (
                isinstance(file, str) and os.path.realpath(file).startswith(roots)):
            names.add(name)
    return ["__main__", *sorted(names)]


def agent_process(context: Any, target: Any, args: tuple,
                  agent_id: str) -> multiprocessing.process.BaseProcess:
    """A daemonic, not yet started child process for agent ``agent_id``."""
    return context.Process(target=target, args=args, name=f"agent:{agent_id}", daemon=True)


def start_agent_process(context: Any, process: multiprocessing.process.BaseProcess,
                        agent_type: type, agent_id: str,
                        extra_preload: tuple[str, ...] = ()) -> None:
    """Start an agent's child ``process`` (made by :func:`agent_process`); both process
    spaces start their children here. Before the first child, the fork server's preload
    list is set (once per process: :func:`_preload_for` ``agent_type``, and
    ``extra_preload``). A class or arguments that cannot be pickled raise a
    ``TypeError`` that says what to do instead."""
    global _preload_set
    if context.get_start_method() == "forkserver" and not _preload_set:
        context.set_forkserver_preload([*_preload_for(agent_type), *extra_preload])
        _preload_set = True
    try:
        process.start()
    except (pickle.PicklingError, TypeError, AttributeError, ValueError) as exc:
        # Pickling the class or the arguments failed (before any process exists).
        raise TypeError(
            f'cannot start agent "{agent_id}" in a child process: its class must be'
            f" importable (defined at module level) and its constructor arguments"
            f" picklable (use multiprocessing.Manager() proxies to share queues or"
            f" events, or add_foreground()): {exc}") from exc


def end_process(process: multiprocessing.process.BaseProcess, deadline: float) -> None:
    """Make sure ``process`` has exited: wait until ``deadline``, then terminate it, then
    kill it. Only for a process no other thread waits on (one poller of its exit code)."""
    try:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.exitcode is None:
            process.terminate()
            process.join(1.0)
        if process.exitcode is None:
            process.kill()
            process.join(5.0)
    except ValueError:
        pass  # closed: it had exited


def rebuild_error(type_name: str, text: str, where: str, details: str) -> BaseException:
    """An exception reported by a child: the same builtin type if it is one, else a
    RuntimeError naming the type; the child's traceback is attached as a note."""
    cls = getattr(builtins, type_name, None)
    error: BaseException
    if isinstance(cls, type) and issubclass(cls, Exception):
        try:
            error = cls(text)
        except Exception:  # noqa: BLE001 - a constructor with other arguments
            error = RuntimeError(f"{type_name}: {text}")
    else:
        error = RuntimeError(f"{type_name}: {text}")
    if details:
        error.add_note(f"{where}:\n{details.rstrip()}")
    return error


def failure_report(exc: BaseException) -> dict:
    """A child's report of an exception, for :func:`reported_error` in the parent."""
    return {"op": "failed", "type": type(exc).__name__, "error": str(exc),
            "traceback": traceback.format_exc()}


def reported_error(report: dict, where: str) -> BaseException:
    """The exception a child reported with :func:`failure_report`."""
    return rebuild_error(report.get("type", "RuntimeError"), report.get("error", ""), where,
                         report.get("traceback", ""))


def bootstrap_child() -> None:
    """First thing in a child's main: Ctrl-C reaches the whole process group, and it is
    the parent's to handle, so agents are never interrupted half-way by it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def exit_now(code: int) -> None:
    """Leave the process now: flush what can be flushed, skip waiting for threads (a
    blocked action must not keep the process alive)."""
    try:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


class WakePipe:
    """A pipe that wakes a thread blocked in ``multiprocessing.connection.wait`` on
    ``reader`` (with the other things it waits on): no polling."""

    def __init__(self) -> None:
        self.reader, self._writer = os.pipe()
        os.set_blocking(self.reader, False)

    def wake(self, data: bytes = b"!") -> None:
        try:
            os.write(self._writer, data)
        except OSError:
            pass  # closed

    def drain(self) -> bytes | None:
        """What was written since the last drain; None once closed."""
        chunks = []
        try:
            while data := os.read(self.reader, 4096):
                chunks.append(data)
        except BlockingIOError:
            pass
        except OSError:
            return None
        return b"".join(chunks)

    def close(self) -> None:
        for fd in (self.reader, self._writer):
            try:
                os.close(fd)
            except OSError:
                pass


class ChildPids:
    """``pid_of()`` for the spaces whose agents may run in child processes (a mixin of
    :class:`~.base.Space` subclasses): each says which child runs an agent now
    (``_running_child_pid``); a foreground agent runs in this process."""

    def _running_child_pid(self, id: str) -> int | None:
        raise NotImplementedError

    def pid_of(self, id: str) -> int:
        """The process id of the process agent ``id`` runs in (ours for foreground
        agents); ``ValueError`` naming it if the space has no such agent."""
        pid = self._running_child_pid(id)
        if pid is not None:
            return pid
        with self._lock:  # type: ignore[attr-defined]  (Space's)
            if self._agents.get(id) is not None:  # type: ignore[attr-defined]
                return os.getpid()
        raise ValueError(f'no agent "{id}" in this space')
