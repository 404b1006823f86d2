"""``MultiprocessDataspaceSpace``: each added agent in a child process of its own, all
meeting in one dataspace server (the dataspace counterpart of ``MultiprocessQueueSpace``).

::

    with MultiprocessDataspaceSpace(mode="assertion") as space:   # its own server
        space.add(Greeter, "greeter")           # a child process, connected to the server
        me = space.add_foreground(Agent, "me")  # runs here, connected to the same server
        me.request({"to": "greeter", "action": {"name": "greet", "args": {"name": "ann"}}})

How it works: this space is a :class:`RemoteDataspaceSpace` (with no address it starts a
private server in a child process, on a unix socket in a temp directory). :meth:`add`
starts a child process (``forkserver``, never ``fork``: this process has threads) whose
main opens its own ``RemoteDataspaceSpace`` on the same server and adds the agent there;
the agent's presence, actions and subscriptions are the child's connection's assertions.
So the classic and native APIs work unchanged across processes, in both modes, and
nothing routes through this process.

Failures: when a child dies (crash, ``SIGKILL``), the kernel closes its connection, the
server retracts everything it asserted, and in assertion mode every request pending to
its agent fails at once (``ActionError``: the agent left), the same path as an agent
removed on purpose. In message mode such a request times out, as on a queue.

The agent class and its constructor arguments are pickled to start the child (our own
child process: no wider trust than importing the agent's module); use
``multiprocessing.Manager()`` proxies to share queues or events with such agents.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
import threading
import time
import traceback
from typing import Any

from preserves import stringify

from ..classic.agent import Agent
from ..classic.message import validate_agent_id
from . import multiprocess_space as _mp
from .remote_space import RemoteDataspaceSpace

__all__ = ["MultiprocessDataspaceSpace"]

log = logging.getLogger(__name__)


class _Child:
    def __init__(self, agent_id: str, process: Any, conn: Any) -> None:
        self.id = agent_id
        self.process = process
        self.conn = conn


class MultiprocessDataspaceSpace(RemoteDataspaceSpace):
    """See the module docstring. ``address``/``cap``: an existing server (both None: a
    private one). ``stop_timeout``: how long :meth:`remove` / :meth:`destroy` wait for a
    child to run ``before_remove`` and exit before ending it."""

    def __init__(self, address: Any = None, cap: Any = None, mode: str = "assertion", *,
                 start_method: str | None = None, stop_timeout: float = 10.0,
                 timeout: float = 10.0) -> None:
        if start_method is None:
            start_method = ("forkserver" if "forkserver" in multiprocessing.get_all_start_methods()
                            else "spawn")
        if start_method not in ("forkserver", "spawn"):
            raise ValueError(f"start_method must be 'forkserver' or 'spawn' (never 'fork': "
                             f"this process has threads), got {start_method!r}")
        self._context = multiprocessing.get_context(start_method)
        self._stop_timeout = stop_timeout
        self._connect_timeout = timeout
        self._children: dict[str, _Child] = {}
        self._children_lock = threading.Lock()
        super().__init__(address, cap, mode, timeout=timeout)

    # --- agents in child processes ---------------------------------------------------------

    def add(self, agent_type: type[Agent], id: str, *args: Any, **kwargs: Any) -> None:
        """Start ``agent_type(id, *args, **kwargs)`` in a child process of its own; returns
        after its ``after_add`` ran there. Errors there are raised here (builtin types
        kept, others as ``RuntimeError``). A duplicate id raises ``ValueError``."""
        self._check_open()
        validate_agent_id(id)
        self._reap_dead()
        if not (isinstance(agent_type, type) and issubclass(agent_type, Agent)):
            raise TypeError(f"add() needs an Agent subclass, got {agent_type!r}")
        with self._lock:
            if id in self._agents:
                raise ValueError(f'an agent with id "{id}" is already in this space')
            self._agents[id] = None  # reserved; a child's entry stays None (not local)
        try:
            child = self._start_child(agent_type, id, args, kwargs)
        except BaseException:
            with self._lock:
                self._agents.pop(id, None)
            raise
        with self._children_lock:
            self._children[id] = child

    def _start_child(self, agent_type: type[Agent], agent_id: str, args: tuple,
                     kwargs: dict) -> _Child:
        if self._context.get_start_method() == "forkserver" and not _mp._preload_set:
            self._context.set_forkserver_preload([*_mp._preload_for(agent_type), __name__])
            _mp._preload_set = True
        ours, theirs = self._context.Pipe(duplex=True)
        process = self._context.Process(
            target=_child_main,
            args=(theirs, stringify(self.address), stringify(self.cap), self.mode,
                  self._connect_timeout, agent_type, agent_id, args, kwargs),
            name=f"agent:{agent_id}", daemon=True)
        try:
            try:
                process.start()
            except (pickle.PicklingError, TypeError, AttributeError, ValueError) as exc:
                raise TypeError(
                    f'cannot start agent "{agent_id}" in a child process: its class must be'
                    f" importable (defined at module level) and its constructor arguments"
                    f" picklable (use multiprocessing.Manager() proxies, or"
                    f" add_foreground()): {exc}") from exc
        finally:
            theirs.close()
        child = _Child(agent_id, process, ours)
        try:
            reply = self._receive(child, self._connect_timeout + 60.0)
            if reply is None:
                raise RuntimeError(f'the process of agent "{agent_id}" died while starting '
                                   f"(exit code {process.exitcode})")
            if reply[0] == "failed":
                raise _mp._rebuild_error(reply[1], reply[2],
                                         f'in the process of agent "{agent_id}"', reply[3])
        except BaseException:
            self._end_process(child, time.monotonic())
            raise
        return child

    def _receive(self, child: _Child, timeout: float) -> tuple | None:
        """The child's next control message; None if it died first."""
        ready = multiprocessing.connection.wait([child.conn, child.process.sentinel], timeout)
        if not ready:
            raise TimeoutError(f'agent "{child.id}" did not answer within {timeout} s')
        try:
            return child.conn.recv()
        except (EOFError, OSError):
            return None

    def pid_of(self, id: str) -> int:
        """The process agent ``id`` runs in (ours for foreground agents)."""
        with self._children_lock:
            child = self._children.get(id)
        if child is not None:
            return child.process.pid
        with self._lock:
            if self._agents.get(id) is not None:
                return os.getpid()
        raise ValueError(f'no agent "{id}" in this space')

    def remove(self, id: str) -> None:
        """Remove an agent; returns after its ``before_remove`` ran (in its process) and it
        has left; a child process has then exited."""
        self._reap_dead()
        with self._children_lock:
            child = self._children.get(id)
        if child is None:
            super().remove(id)
            return
        self._stop_child(child, force=False)

    def _stop_child(self, child: _Child, force: bool) -> None:
        deadline = time.monotonic() + self._stop_timeout
        error: BaseException | None = None
        try:
            child.conn.send(("stop", force))
            reply = self._receive(child, self._stop_timeout)
            if reply is not None and reply[0] == "failed" and not force:
                error = _mp._rebuild_error(reply[1], reply[2],
                                           f'in the process of agent "{child.id}"', reply[3])
        except (OSError, EOFError, BrokenPipeError):
            pass  # it has gone already
        except TimeoutError:
            log.warning('agent "%s" did not stop within %s s: ending its process', child.id,
                        self._stop_timeout)
        if error is not None:
            raise error  # before_remove failed: the agent stays, as on every space
        self._end_process(child, deadline)
        self._forget(child)

    def _end_process(self, child: _Child, deadline: float) -> None:
        process = child.process
        process.join(max(0.0, deadline - time.monotonic()))
        if process.exitcode is None:
            process.terminate()
            process.join(1.0)
        if process.exitcode is None:
            process.kill()
            process.join(5.0)
        child.conn.close()

    def _forget(self, child: _Child) -> None:
        with self._children_lock:
            if self._children.get(child.id) is child:
                del self._children[child.id]
        with self._lock:
            if child.id in self._agents and self._agents[child.id] is None:
                del self._agents[child.id]

    def _reap_dead(self) -> None:
        """Forget children that died (their agents' presence is already gone)."""
        with self._children_lock:
            dead = [c for c in self._children.values() if c.process.exitcode is not None]
        for child in dead:
            log.warning('agent "%s" process exited (code %s)', child.id,
                        child.process.exitcode)
            self._end_process(child, time.monotonic())
            self._forget(child)

    def destroy(self) -> None:
        """Stop every child (``before_remove`` runs in each), then as
        :meth:`RemoteDataspaceSpace.destroy`. Idempotent."""
        if self._destroyed:
            return
        with self._children_lock:
            children = list(self._children.values())
        for child in children:
            try:
                child.conn.send(("stop", True))
            except (OSError, ValueError):
                pass
        for child in children:
            try:
                self._receive(child, self._stop_timeout)
            except (TimeoutError, OSError, ValueError):
                pass
            self._end_process(child, time.monotonic() + self._stop_timeout)
            self._forget(child)
        super().destroy()


def _failure(exc: BaseException) -> tuple:
    return ("failed", type(exc).__name__, str(exc), traceback.format_exc())


def _child_main(conn: multiprocessing.connection.Connection, address: str, cap: str,
                mode: str, timeout: float, agent_type: type[Agent], agent_id: str,
                args: tuple, kwargs: dict) -> None:
    """A child's main: its own connection to the server, one agent, until told to stop
    or the parent goes (the pipe reaches end of file)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    try:
        space = RemoteDataspaceSpace(address, cap, mode, timeout=timeout)
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        conn.send(_failure(exc))
        return
    try:
        try:
            space.add(agent_type, agent_id, *args, **kwargs)
        except BaseException as exc:  # noqa: BLE001
            conn.send(_failure(exc))
            return
        conn.send(("ready",))
        while True:
            try:
                _op, force = conn.recv()
            except (EOFError, OSError):
                return  # the parent has gone: destroy below
            try:
                space.remove(agent_id)
            except BaseException as exc:  # noqa: BLE001 - before_remove failed
                if not force:
                    conn.send(_failure(exc))
                    continue
            conn.send(("stopped",))
            return
    finally:
        space.destroy()
