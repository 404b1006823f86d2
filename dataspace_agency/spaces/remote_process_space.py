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
removed on purpose. In message mode such a request times out, as on a queue. A watcher
thread waiting on the children's process sentinels notices the death at once too: it
is logged, and the agent is dropped from ``agents()``/``pid_of`` (its id can be used
again).

``reconnect`` (see :class:`RemoteDataspaceSpace`) applies to this process's connection
and to every child's.

The agent class and its constructor arguments are pickled to start the child (our own
child process: no wider trust than importing the agent's module); use
``multiprocessing.Manager()`` proxies to share queues or events with such agents. The
control messages between parent and child afterwards are JSON (``process_wire.py``),
never pickles; children are started and stopped by ``children.py``, as the queue space's.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import threading
import time
from typing import Any

from preserves import stringify

from ..classic.agent import Agent
from ..classic.message import validate_agent_id
from ..protocol.client import Reconnect, address_text
from ..protocol.sturdy import parse_cap
from .children import (ChildPids, WakePipe, agent_process, bootstrap_child, child_context,
                       end_process, failure_report, reported_error, start_agent_process)
from .process_wire import recv_control, send_control
from .remote_space import RemoteDataspaceSpace

__all__ = ["MultiprocessDataspaceSpace"]

log = logging.getLogger(__name__)


class _Child:
    def __init__(self, agent_id: str, process: Any, conn: Any) -> None:
        self.id = agent_id
        self.process = process
        self.conn = conn
        self.sentinel = process.sentinel
        self.leaving = False  # being stopped on purpose: its end is not a death
        self.forgotten = threading.Event()  # set once dropped from the space

    def exited(self) -> bool:
        """Its process has ended (without reading the exit code: see _watch_children)."""
        return bool(multiprocessing.connection.wait([self.sentinel], 0))


class MultiprocessDataspaceSpace(ChildPids, RemoteDataspaceSpace):
    """See the module docstring. ``address``/``cap``: an existing server (both None: a
    private one). ``stop_timeout``: how long :meth:`remove` / :meth:`destroy` wait for a
    child to run ``before_remove`` and exit before ending it."""

    def __init__(self, address: Any = None, cap: Any = None, mode: str = "assertion", *,
                 start_method: str | None = None, stop_timeout: float = 10.0,
                 timeout: float = 10.0, reconnect: bool | Reconnect = False) -> None:
        self._context = child_context(start_method)
        self._stop_timeout = stop_timeout
        self._connect_timeout = timeout
        self._children: dict[str, _Child] = {}
        self._children_lock = threading.Lock()
        super().__init__(address, cap, mode, timeout=timeout, reconnect=reconnect)
        # Handed to the children as text: any address form, canonical.
        self._address_text = address_text(self.address)
        self._cap_text = stringify(parse_cap(self.cap))
        self._wake = WakePipe()
        self._watcher = threading.Thread(target=self._watch_children, daemon=True,
                                         name="multiprocess-dataspace-watch")
        self._watcher.start()

    # --- agents in child processes ---------------------------------------------------------

    def add(self, agent_type: type[Agent], id: str, *args: Any, **kwargs: Any) -> None:
        """Start ``agent_type(id, *args, **kwargs)`` in a child process of its own; returns
        after its ``after_add`` ran there. Errors there are raised here (builtin types
        kept, others as ``RuntimeError``). A duplicate id raises ``ValueError``."""
        self._check_open()
        validate_agent_id(id)
        if not (isinstance(agent_type, type) and issubclass(agent_type, Agent)):
            raise TypeError(f"add() needs an Agent subclass, got {agent_type!r}")
        with self._children_lock:
            old = self._children.get(id)
        if old is not None and (old.leaving or old.exited()):  # it is being forgotten
            old.forgotten.wait(self._stop_timeout)
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
        self._wake_watcher()

    def _start_child(self, agent_type: type[Agent], agent_id: str, args: tuple,
                     kwargs: dict) -> _Child:
        ours, theirs = self._context.Pipe(duplex=True)
        process = agent_process(
            self._context, _child_main,
            (theirs, self._address_text, self._cap_text, self.mode, self._connect_timeout,
             self.reconnect, agent_type, agent_id, args, kwargs), agent_id)
        try:
            start_agent_process(self._context, process, agent_type, agent_id,
                                extra_preload=(__name__,))
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        child = _Child(agent_id, process, ours)
        try:
            reply = self._receive(child, self._connect_timeout + 60.0)
            if reply is None:
                raise RuntimeError(f'the process of agent "{agent_id}" died while starting '
                                   f"(exit code {process.exitcode})")
            if reply.get("op") == "failed":
                raise reported_error(reply, f'in the process of agent "{agent_id}"')
        except BaseException:
            self._end_process(child, time.monotonic())
            raise
        return child

    def _receive(self, child: _Child, timeout: float) -> dict | None:
        """The child's next control message; None if it died first."""
        ready = multiprocessing.connection.wait([child.conn, child.process.sentinel], timeout)
        if not ready:
            raise TimeoutError(f'agent "{child.id}" did not answer within {timeout} s')
        try:
            return recv_control(child.conn)
        except (EOFError, OSError, ValueError):
            return None

    def _running_child_pid(self, id: str) -> int | None:
        with self._children_lock:
            child = self._children.get(id)
        return child.process.pid if child is not None and not child.leaving else None

    def remove(self, id: str) -> None:
        """Remove an agent; returns after its ``before_remove`` ran (in its process) and it
        has left; a child process has then exited."""
        with self._children_lock:
            child = self._children.get(id)
            busy = child is not None and child.leaving
            if child is not None:
                child.leaving = True  # the watcher leaves it to us now
        if busy:  # it died (the watcher is forgetting it) or is being removed already
            child.forgotten.wait(self._stop_timeout)
            raise ValueError(f'no agent "{id}" in this space')
        if child is None:
            super().remove(id)
            return
        self._stop_child(child, force=False)

    def _stop_child(self, child: _Child, force: bool) -> None:
        deadline = time.monotonic() + self._stop_timeout
        error: BaseException | None = None
        try:
            send_control(child.conn, {"op": "stop", "force": force})
            reply = self._receive(child, self._stop_timeout)
            if reply is not None and reply.get("op") == "failed" and not force:
                error = reported_error(reply, f'in the process of agent "{child.id}"')
        except (OSError, EOFError, BrokenPipeError):
            pass  # it has gone already
        except TimeoutError:
            log.warning('agent "%s" did not stop within %s s: ending its process', child.id,
                        self._stop_timeout)
        if error is not None:
            child.leaving = False
            self._wake_watcher()
            raise error  # before_remove failed: the agent stays, as on every space
        self._end_process(child, deadline)
        self._forget(child)

    def _end_process(self, child: _Child, deadline: float) -> None:
        end_process(child.process, deadline)
        child.conn.close()

    def _forget(self, child: _Child) -> None:
        with self._children_lock:
            if self._children.get(child.id) is child:
                del self._children[child.id]
        with self._lock:
            if child.id in self._agents and self._agents[child.id] is None:
                del self._agents[child.id]
        child.forgotten.set()

    # --- noticing a child's death (the watcher thread) ---------------------------------------

    def _wake_watcher(self) -> None:
        self._wake.wake()

    def _watch_children(self) -> None:
        """Wait on every child's process sentinel (no polling); a child that exits
        without being asked to has died: log it and forget it at once. Children being
        stopped (``leaving``) are left to whoever stops them: only one thread ever
        waits for a given child's exit code."""
        while True:
            with self._children_lock:
                watched = {c.sentinel: c for c in self._children.values() if not c.leaving}
            try:
                ready = multiprocessing.connection.wait([self._wake.reader, *watched])
            except OSError:
                continue  # a sentinel was closed meanwhile: look again
            if self._wake.reader in ready:
                data = self._wake.drain()
                if data is None or b"x" in data:  # closed, or destroy()
                    return
            for sentinel in ready:
                child = watched.get(sentinel)
                if child is None:
                    continue
                with self._children_lock:
                    claimed = self._children.get(child.id) is child and not child.leaving
                    if claimed:  # it stays listed until forgotten (see add and remove)
                        child.leaving = True
                if not claimed:
                    continue
                try:
                    child.process.join(1.0)
                    log.warning('agent "%s": its process (pid %s) died (exit code %s); it'
                                " has left the space", child.id, child.process.pid,
                                child.process.exitcode)
                    self._end_process(child, time.monotonic())
                    self._forget(child)
                except Exception:  # noqa: BLE001 - keep watching the others
                    log.exception('forgetting agent "%s" failed', child.id)

    def destroy(self) -> None:
        """Stop every child (``before_remove`` runs in each), then as
        :meth:`RemoteDataspaceSpace.destroy`. Idempotent."""
        if self._destroyed:
            return
        with self._children_lock:
            # Children already leaving are being forgotten or removed by another thread.
            dying = [c for c in self._children.values() if c.leaving]
            children = [c for c in self._children.values() if not c.leaving]
            for child in children:
                child.leaving = True
        for child in children:
            try:
                send_control(child.conn, {"op": "stop", "force": True})
            except (OSError, ValueError):
                pass
        for child in children:
            try:
                self._receive(child, self._stop_timeout)
            except (TimeoutError, OSError, ValueError):
                pass
            self._end_process(child, time.monotonic() + self._stop_timeout)
            self._forget(child)
        for child in dying:
            child.forgotten.wait(self._stop_timeout)
        self._wake.wake(b"x")
        self._watcher.join(self._stop_timeout)
        self._wake.close()
        super().destroy()


def _child_main(conn: multiprocessing.connection.Connection, address: str, cap: str,
                mode: str, timeout: float, reconnect: bool | Reconnect,
                agent_type: type[Agent], agent_id: str, args: tuple, kwargs: dict) -> None:
    """A child's main: its own connection to the server, one agent, until told to stop
    or the parent goes (the pipe reaches end of file)."""
    bootstrap_child()
    try:
        space = RemoteDataspaceSpace(address, cap, mode, timeout=timeout, reconnect=reconnect)
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        send_control(conn, failure_report(exc))
        return
    try:
        try:
            space.add(agent_type, agent_id, *args, **kwargs)
        except BaseException as exc:  # noqa: BLE001
            send_control(conn, failure_report(exc))
            return
        send_control(conn, {"op": "ready"})
        while True:
            try:
                force = bool(recv_control(conn).get("force"))
            except (EOFError, OSError, ValueError):
                return  # the parent has gone: destroy below
            try:
                space.remove(agent_id)
            except BaseException as exc:  # noqa: BLE001 - before_remove failed
                if not force:
                    send_control(conn, failure_report(exc))
                    continue
            send_control(conn, {"op": "stopped"})
            return
    finally:
        space.destroy()
