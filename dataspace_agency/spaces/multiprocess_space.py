"""``MultiprocessQueueSpace``: classic agents in child processes, routed by the parent.

::

    with MultiprocessQueueSpace() as space:
        space.add(Greeter, "greeter")            # runs in a child process of its own
        me = space.add_foreground(Agent, "me")   # runs here, like QueueSpace
        me.request({"to": "greeter", "action": {"name": "greet", "args": {"name": "ann"}}})

The process-separated counterpart of ``QueueSpace`` (same ``Space`` API, same routing by
the classic ``to`` field), without agency's ``multiprocessing.Manager`` queues (one
Manager process per agent, 100 ms polling, orphans left behind):

* Each agent added with :meth:`add` runs in its own child process: a small main that
  hosts the agent's core on a ``BackgroundRuntime``, exactly as in-process spaces do;
  that runtime reads the pipe from the parent itself (a trio task woken when the pipe is
  readable, so no extra thread hop per message). :meth:`add_foreground` agents run in
  this process.
* Parent and child talk over one ``multiprocessing.Pipe`` per child. Messages travel as
  JSON bytes (``send_bytes``), in the encoding every byte transport shares
  (``classic/wire_json.py``); they are never pickled. A message with no JSON form (an
  int over Python's int/str limit) is answered ``[error] MessageError: ...`` instead
  (``spaces/wire.py``). Only the agent class and its
  constructor arguments are pickled, by multiprocessing itself, to start the child: it is
  our own child process, started from our own code, so that is no wider trust than
  importing the agent's module. Those arguments must therefore be picklable: to share
  queues or events with a background agent, use ``multiprocessing.Manager()`` proxies.
* The parent is the router. Its router thread blocks in
  ``multiprocessing.connection.wait`` on every child's pipe and process sentinel (no
  polling); it forwards child-to-child messages as they are (the same bytes) and hands
  messages for local agents to the runtime thread. Local agents' messages are routed on
  the runtime thread. A broadcast reaches every agent, local and child.
* Children are started with the ``forkserver`` method (``spawn`` where there is none),
  never ``fork``: the parent has threads. The fork server preloads this package and the
  libraries the first agent's module imports, so a child starts in milliseconds plus
  the import of the agent's own module.

Failures, where a queue space is silent:

* A child that dies (crash, ``SIGKILL``, OOM) is noticed at once (its pipe reaches EOF and
  its sentinel fires), logged and dropped from the space. The router remembers every
  point-to-point action it routed to each child until the reply passes back; the ones
  left unanswered get an ``[error]`` reply from the router,
  ``RuntimeError: agent "X"'s process died (exit code -9)``, and so does every later
  message to that id (until an agent with that id is added again), so ``request()`` to
  it raises :class:`ActionError` at once instead of timing out. Other agents go on.
  Requests still unanswered when a child is removed with :meth:`remove` get an
  ``[error]`` reply too (later messages to a removed agent are dropped, as in
  ``QueueSpace``).
* No orphans: children are daemonic (joined or terminated when this process exits
  normally), :meth:`destroy` stops and joins them all (terminating, then killing, any
  that does not exit within ``stop_timeout``), and a child exits by itself as soon as the
  parent dies, even by ``SIGKILL``: its pipe reaches EOF, and a watchdog thread waiting
  on the parent's sentinel ends it even if the agent's runtime is stuck. Children
  ignore ``SIGINT``: Ctrl-C in a terminal reaches the whole process group, and it is the
  parent's job to handle it (``with MultiprocessQueueSpace() as space:`` destroys the
  space on ``KeyboardInterrupt``), so agents are never interrupted half-way by it.

Limits: a child that stops reading its pipe (e.g. ``SIGSTOP``) can block whoever writes
to it once the pipe's buffer is full; children are daemonic, so an agent cannot start
processes of its own with ``multiprocessing``.
"""

from __future__ import annotations

import builtins
import concurrent.futures
import logging
import math
import multiprocessing
import multiprocessing.connection
import os
import pickle
import queue
import signal
import sys
import sysconfig
import threading
import time
import traceback
import types
from typing import Any

import trio

from ..classic.agent import Agent
from ..classic.core import AgentCore, Ticket
from ..classic.message import (BROADCAST, ERROR, RESPONSE, MessageError, make_reply,
                               new_message_id, validate_agent_id, validate_message)
from ..classic.wire_json import decode_json, encode_json
from ..runtime import BackgroundRuntime, Runtime
from .base import RouterTransport, Space
from .wire import encode_message, refusal

log = logging.getLogger(__name__)

# One tag byte before the JSON: a classic message, or a control message between the
# parent and a child (start-up, stop).
_MESSAGE = b"M"
_CONTROL = b"C"

_START_METHODS = ("forkserver", "spawn")
_preload_set = False  # the fork server's preload list is set once, before it starts


def _encode(tag: bytes, obj: dict) -> bytes:
    """A tagged frame; raises MessageError for a classic message with no JSON form."""
    return tag + (encode_message(obj) if tag == _MESSAGE else encode_json(obj))


def _decode(data: bytes) -> Any:
    # Frames come from our own processes (parent or child), written by _encode from
    # messages validated on the way out: read, not validated again.
    return decode_json(data[1:])


def _copy(message: dict) -> dict:
    """A receiver's own copy of a local sender's message. Not ``values.json_copy`` of the
    whole message: that counts nesting from the message, not from ``action.args`` as the
    validator does, so a valid message with args nested to the limit would fail here."""
    return validate_message(message)


def _refused(message: dict, error: MessageError, route: Any) -> None:
    """``message`` cannot be encoded for the pipe: log it, and route its refusal (see
    spaces/wire.py), which always can be."""
    log.warning('a message from "%s" to "%s" cannot be sent: %s', message["from"],
                message["to"], error)
    answer = refusal(message, error)
    if answer is not None:
        route(answer)


def _is_action(message: dict) -> bool:
    """A point-to-point action: the kind that must be answered."""
    return (message["to"] != BROADCAST
            and message["action"]["name"] not in (RESPONSE, ERROR))


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
    names = {__name__}
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


def _rebuild_error(type_name: str, text: str, where: str, details: str) -> BaseException:
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


# --- the parent's side --------------------------------------------------------------------

class _Child:
    """The parent's record of one child process and its agent."""

    def __init__(self, agent_id: str, conn: multiprocessing.connection.Connection,
                 process: multiprocessing.process.BaseProcess) -> None:
        self.id = agent_id
        self.conn = conn
        self.process = process
        self.pid: int | None = None  # set once started
        self.sentinel: int | None = None
        self.state = "starting"  # -> "ready" -> "gone"; or "failed"
        self.leaving = False  # removed on purpose: its end is not a death
        self.helps: dict[str, dict] = {}
        self.started: concurrent.futures.Future = concurrent.futures.Future()
        self.stopped: concurrent.futures.Future = concurrent.futures.Future()
        self.exited = threading.Event()  # set by the router once the process has gone
        # Point-to-point actions routed to it and not answered yet: id -> (from, name).
        # Guarded by the space's table lock.
        self.pending: dict[str, tuple[str, str]] = {}
        self.eof = False
        self._write_lock = threading.Lock()

    def send(self, data: bytes) -> bool:
        """Write to the child's pipe (any thread); False if it has gone."""
        try:
            with self._write_lock:
                self.conn.send_bytes(data)
            return True
        except (OSError, ValueError):  # the child died, or the pipe was closed
            return False


class MultiprocessQueueSpace(Space):
    """A space whose background agents each run in a child process; see the module
    docstring. ``stop_timeout``: how long :meth:`remove` / :meth:`destroy` wait for a
    child to run ``before_remove`` and exit before terminating it."""

    def __init__(self, *, start_method: str | None = None, stop_timeout: float = 10.0) -> None:
        if start_method is None:
            start_method = ("forkserver" if "forkserver" in multiprocessing.get_all_start_methods()
                            else "spawn")
        if start_method not in _START_METHODS:
            raise ValueError(f"start_method must be one of {_START_METHODS} (never 'fork': "
                             f"this process has threads), got {start_method!r}")
        self._context = multiprocessing.get_context(start_method)
        self._stop_timeout = stop_timeout
        super().__init__(runtime_name="multiprocess-space")
        self._table_lock = threading.Lock()  # guards the four tables below
        self._cores: dict[str, AgentCore] = {}
        self._children: dict[str, _Child] = {}  # routable: starting or ready
        self._dead: dict[str, str] = {}  # id -> the error text later messages get
        self._waitables: dict[Any, tuple[str, _Child]] = {}  # for the router thread
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self._router_stop = False
        self._router = threading.Thread(target=self._router_main, daemon=True,
                                        name="multiprocess-space-router")
        self._router.start()

    # --- foreground agents (runtime thread) ---------------------------------------------

    def _start_agent(self, runtime: Runtime, agent: Agent) -> None:
        core = AgentCore(agent, RouterTransport(self), runtime.system.nursery.start_soon,
                         self._thread_limiter)
        agent._core = core
        with self._table_lock:
            self._cores[agent.id] = core
            self._dead.pop(agent.id, None)

    def _stop_agent(self, runtime: Runtime, agent: Agent) -> None:
        with self._table_lock:
            if self._cores.get(agent.id) is agent._core:
                del self._cores[agent.id]
        self._left(agent)

    # --- background agents ---------------------------------------------------------------

    def add(self, agent_type: type[Agent], id: str, *args: Any, **kwargs: Any) -> None:
        """Start ``agent_type(id, *args, **kwargs)`` in a child process of its own; returns
        after its ``after_add`` ran there. Errors in the child (constructor, ``after_add``)
        are raised here: the same type for builtin exceptions, else ``RuntimeError``.
        A duplicate id raises ``ValueError`` and leaves the existing agent alone."""
        self._check_open()
        validate_agent_id(id)
        with self._lock:
            if id in self._agents:
                raise ValueError(f'an agent with id "{id}" is already in this space')
            self._agents[id] = None  # reserved; a child's entry stays None (not local)
        try:
            self._start_child(agent_type, id, args, kwargs)
        except BaseException:
            with self._lock:
                self._agents.pop(id, None)
            raise

    def _start_child(self, agent_type: type[Agent], agent_id: str, args: tuple,
                     kwargs: dict) -> None:
        if not (isinstance(agent_type, type) and issubclass(agent_type, Agent)):
            raise TypeError(f"add() needs an Agent subclass, got {agent_type!r}")
        ours, theirs = self._context.Pipe(duplex=True)
        process = agent_process(self._context, _child_main,
                                (theirs, agent_type, agent_id, args, kwargs), agent_id)
        child = _Child(agent_id, ours, process)
        # Routable from now on: messages sent while it starts wait in its pipe (as they
        # wait in the core's queue on the other spaces).
        with self._table_lock:
            self._children[agent_id] = child
            self._dead.pop(agent_id, None)
        try:
            try:
                start_agent_process(self._context, process, agent_type, agent_id)
            finally:
                theirs.close()  # the child holds its end now; EOF then means it has gone
            child.pid, child.sentinel = process.pid, process.sentinel
            with self._table_lock:
                self._waitables[ours] = ("conn", child)
                self._waitables[process.sentinel] = ("sentinel", child)
            self._wake_router()
            child.started.result()  # resolved by the router: ready, failed or died
        except BaseException:
            with self._table_lock:
                if self._children.get(agent_id) is child:
                    del self._children[agent_id]
                child.state = "failed"
                pending, child.pending = child.pending, {}
            self._answer_pending(child, pending,
                                 f'RuntimeError: agent "{agent_id}" failed to start')
            if child.pid is not None:
                self._end_process(child, time.monotonic() + self._stop_timeout)
            else:
                ours.close()
            raise

    def pid_of(self, id: str) -> int:
        """The process id of the process agent ``id`` runs in (ours for foreground
        agents)."""
        with self._table_lock:
            child = self._children.get(id)
            if child is not None and child.state == "ready":
                return child.pid
            if id in self._cores:
                return os.getpid()
        raise ValueError(f'no agent "{id}" in this space')

    def remove(self, id: str) -> None:
        """Remove an agent; returns after its ``before_remove`` ran (in its process) and it
        has left; a child process has then exited."""
        with self._table_lock:
            child = self._children.get(id)
        if child is None or child.state != "ready":
            super().remove(id)
            return
        self._stop_children([child], force=False)

    def destroy(self) -> None:
        """Stop every child (``before_remove`` runs in each) and join it, remove the
        foreground agents, stop the router and the runtime. Idempotent."""
        if self._destroyed:
            return
        with self._table_lock:
            children = list(self._children.values())
        if children:
            self._stop_children(children, force=True)
        super().destroy()
        self._router_stop = True
        self._wake_router()
        self._router.join(self._stop_timeout)
        with self._table_lock:
            leftovers = {child for _, child in self._waitables.values()}
            self._waitables.clear()
        for child in leftovers:  # only if the router thread did not finish in time
            self._reap(child, time.monotonic())
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass

    def _stop_children(self, children: list[_Child], force: bool) -> None:
        """Ask children to stop, wait (bounded) until each has run ``before_remove`` and
        exited, then end any that has not. With ``force`` a failing ``before_remove`` is
        logged and the child stops anyway; without, its error is raised here and the
        agent stays (as on every space)."""
        deadline = time.monotonic() + self._stop_timeout
        for child in children:
            if not child.send(_encode(_CONTROL, {"op": "stop", "force": force})):
                self._resolve(child.stopped, None)  # it has gone already
        error: BaseException | None = None
        for child in children:
            try:
                child.stopped.result(max(0.0, deadline - time.monotonic()))
            except concurrent.futures.TimeoutError:
                log.warning('agent "%s" did not stop within %s s: ending its process',
                            child.id, self._stop_timeout)
            except Exception as exc:  # before_remove failed and the agent stays
                if not force:
                    child.stopped = concurrent.futures.Future()
                    error = exc
                    continue
            self._end_process(child, deadline)
            with self._lock:
                self._agents.pop(child.id, None)
        if error is not None:
            raise error

    def _end_process(self, child: _Child, deadline: float) -> None:
        """Make sure the child has exited: wait until ``deadline``, then terminate it,
        then kill it. Also forgets it as a route.

        Only the router thread polls a child's process (it waits on the sentinel, and
        reads the exit code from it): a second poller could steal the fork server's exit
        status. Others wait for the router to say so (``child.exited``)."""
        with self._table_lock:
            if self._children.get(child.id) is child:
                del self._children[child.id]
            child.leaving = True
        if not self._router.is_alive():  # only in destroy(), if the router got stuck
            self._reap(child, deadline)
            return
        if child.exited.wait(max(0.0, deadline - time.monotonic())):
            return
        for signal_it, grace in (("terminate", 1.0), ("kill", 5.0)):
            log.warning('agent "%s" did not exit: %s its process (pid %s)', child.id,
                        "terminating" if signal_it == "terminate" else "killing", child.pid)
            try:
                getattr(child.process, signal_it)()
            except (ValueError, AttributeError):
                return  # closed by the router meanwhile: it has exited
            if child.exited.wait(grace):
                return
        log.error('the process of agent "%s" (pid %s) does not exit', child.id, child.pid)

    def _reap(self, child: _Child, deadline: float) -> None:
        """:meth:`_end_process` without the router thread."""
        process = child.process
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
        self._close_child(child)

    # --- routing ------------------------------------------------------------------------

    def _deliver(self, message: dict, raw: bytes | None = None,
                 source: _Child | None = None) -> None:
        """The router, for one message: to the local core(s) and/or the children's pipes.
        Runs on the runtime thread (local senders) or the router thread (children; then
        ``raw`` holds the bytes read, forwarded unchanged to other children)."""
        to = message["to"]
        if to == BROADCAST:
            with self._table_lock:
                cores = list(self._cores.values())
                children = list(self._children.values())
            try:
                data = raw if raw is not None or not children else _encode(_MESSAGE, message)
            except MessageError as error:  # the children miss it; local agents get it
                _refused(message, error, self._deliver)
                children = []
            for child in children:
                child.send(data)  # a dead one is noticed by the router
            for core in cores:
                self._to_core(core, _copy(message))
            return
        action = _is_action(message)
        dead_text = None
        with self._table_lock:
            core = self._cores.get(to)
            child = None if core is not None else self._children.get(to)
            if child is not None and action:
                child.pending[message["meta"]["id"]] = (message["from"],
                                                        message["action"]["name"])
            elif core is None and child is None:
                dead_text = self._dead.get(to)
            if source is not None and not action:  # a reply from a child passing through
                source.pending.pop(message["meta"].get("parent_id"), None)
        if core is not None:
            self._to_core(core, message if source is not None else _copy(message))
        elif child is not None:
            try:
                data = raw if raw is not None else _encode(_MESSAGE, message)
            except MessageError as error:
                if action:
                    with self._table_lock:
                        child.pending.pop(message["meta"]["id"], None)
                _refused(message, error, self._deliver)
                return
            child.send(data)
        elif dead_text is not None and action:
            self._answer(message["meta"]["id"], message["from"], to, dead_text)
        else:
            log.debug('dropping a message to "%s": no such agent', to)

    def _to_core(self, core: AgentCore, message: dict) -> None:
        if core.on_runtime_thread():
            core.inbound(message)
        else:
            core.run_soon(lambda: core.inbound(message))

    def _answer(self, message_id: str, sender: str, agent_id: str, error: str) -> None:
        """Answer, on behalf of ``agent_id``, the action ``message_id`` from ``sender``."""
        reply = make_reply({"meta": {"id": message_id}, "from": sender}, agent_id,
                           error=error, check=False)
        self._deliver(reply)

    def _answer_pending(self, child: _Child, pending: dict[str, tuple[str, str]],
                        error: str) -> None:
        for message_id, (sender, _name) in pending.items():
            try:
                self._answer(message_id, sender, child.id, error)
            except Exception:  # noqa: BLE001 - e.g. the runtime has stopped
                log.debug("could not answer %s", message_id, exc_info=True)

    # --- the router thread --------------------------------------------------------------

    def _wake_router(self) -> None:
        try:
            os.write(self._wake_w, b"!")
        except OSError:
            pass

    def _router_main(self) -> None:
        """Blocks in ``connection.wait`` on every child's pipe and sentinel (and a wake-up
        pipe for changes), and handles what is ready. No polling."""
        while not self._router_stop:
            with self._table_lock:
                waitables = list(self._waitables)
            try:
                ready = multiprocessing.connection.wait([self._wake_r, *waitables])
            except OSError:
                continue  # a pipe was closed meanwhile: rebuild the list
            for obj in ready:
                if obj == self._wake_r and isinstance(obj, int):
                    try:
                        while os.read(self._wake_r, 4096):
                            pass
                    except (BlockingIOError, OSError):
                        pass
                    continue
                with self._table_lock:
                    entry = self._waitables.get(obj)
                if entry is None:
                    continue
                kind, child = entry
                try:
                    if kind == "conn":
                        self._read_child(child)
                    else:
                        self._child_exited(child)
                except Exception:  # noqa: BLE001 - keep routing for everyone else
                    log.exception('router: handling agent "%s" failed', child.id)

    def _read_child(self, child: _Child) -> None:
        """What the child has written so far (at least one message, or EOF); at most a
        batch, so that one busy child cannot starve the others."""
        conn = child.conn
        for _ in range(64):
            try:
                data = conn.recv_bytes()
            except (EOFError, OSError):
                # It has exited (or is exiting): the sentinel says when, with the code.
                child.eof = True
                with self._table_lock:
                    self._waitables.pop(conn, None)
                return
            self._from_child(child, data)
            try:
                if not conn.poll():
                    return
            except (EOFError, OSError):
                continue  # recv_bytes reports it

    def _from_child(self, child: _Child, data: bytes) -> None:
        if data[:1] == _MESSAGE:
            self._deliver(_decode(data), data, child)
            return
        control = _decode(data)
        op = control.get("op")
        if op == "ready":
            if child.state == "starting":  # not given up on by add() meanwhile
                child.helps = control.get("helps", {})
                child.state = "ready"
            self._resolve(child.started, None)
        elif op == "failed":
            self._resolve(child.started, _rebuild_error(
                control.get("type", "RuntimeError"), control.get("error", ""),
                f'in the process of agent "{child.id}"', control.get("traceback", "")))
        elif op == "stopped":
            with self._table_lock:
                if self._children.get(child.id) is child:
                    del self._children[child.id]
                child.leaving = True
                pending, child.pending = child.pending, {}
            self._answer_pending(child, pending,
                                 f'RuntimeError: agent "{child.id}" was removed before'
                                 " answering")
            self._resolve(child.stopped, None)
        elif op == "remove_failed":
            self._resolve(child.stopped, _rebuild_error(
                control.get("type", "RuntimeError"), control.get("error", ""),
                f'in before_remove() of agent "{child.id}"', control.get("traceback", "")))
        else:
            log.warning('agent "%s" sent an unknown control message %r', child.id, control)

    def _child_exited(self, child: _Child) -> None:
        """The child's process has ended: read what it wrote last, then forget it; if it
        did not leave on purpose, it died: fail what it owes and what comes later."""
        if not child.eof:
            try:
                while child.conn.poll():
                    self._read_child(child)
                    if child.eof:
                        break
            except (EOFError, OSError):
                pass
        # The sentinel is ready, so this returns at once: with the fork server the code is
        # on the sentinel; with spawn the sentinel may close a moment before the child
        # can be reaped (so exitcode would still say None), and join() does wait for that.
        child.process.join(1.0)
        exitcode = child.process.exitcode
        with self._table_lock:
            routed = self._children.get(child.id) is child
            if routed:
                del self._children[child.id]
            died = not child.leaving and child.state == "ready"
            if died:
                text = (f'RuntimeError: agent "{child.id}"\'s process died'
                        f" (exit code {exitcode})")
                self._dead[child.id] = text
            pending, child.pending = child.pending, {}
        self._close_child(child)
        if child.state == "starting":
            self._resolve(child.started, RuntimeError(
                f'the process of agent "{child.id}" died while starting'
                f" (exit code {exitcode})"))
        if died:
            log.warning('agent "%s": its process (pid %s) died (exit code %s); it has left'
                        " the space", child.id, child.pid, exitcode)
            with self._lock:
                self._agents.pop(child.id, None)
            self._answer_pending(child, pending, text)
        else:
            self._answer_pending(child, pending, f'RuntimeError: agent "{child.id}" has'
                                                 " left before answering")
        self._resolve(child.stopped, None)
        child.state = "gone"
        child.exited.set()

    def _close_child(self, child: _Child) -> None:
        with self._table_lock:
            self._waitables.pop(child.conn, None)
            self._waitables.pop(child.sentinel, None)
        try:
            child.conn.close()
        except OSError:
            pass
        try:
            child.process.close()  # its exit code is known (read by whoever polled)
        except ValueError:
            pass  # still running: only after a failed terminate/kill

    @staticmethod
    def _resolve(future: concurrent.futures.Future, outcome: BaseException | None) -> None:
        if future.done():
            return
        try:
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
        except concurrent.futures.InvalidStateError:
            pass

    # --- from outside any agent -----------------------------------------------------------

    def _route(self, message: dict) -> None:
        """Inject a message as if sent by ``message["from"]``; its answer goes to that
        agent, if there is one."""
        self._check_open()
        message = validate_message(message, require_id=False)
        message["meta"].setdefault("id", new_message_id())
        self._background.call(lambda rt: self._deliver(message))

    def agents(self) -> dict[str, dict[str, dict]]:
        """The agents in this space and their actions: ``{agent_id: {name: help}}``, from
        the space's registry (children reported their actions when they started)."""
        self._check_open()
        found = {agent.id: {name: spec.help for name, spec in agent._action_specs().items()
                            if name in agent._published_helps()}
                 for agent in self._local_agents()}
        with self._table_lock:
            for child in self._children.values():
                if child.state == "ready":
                    found[child.id] = dict(child.helps)
        return found


# --- the child's side ---------------------------------------------------------------------

class _PipeTransport:
    """The child agent's way out: every message goes up the pipe to the parent's router."""

    def __init__(self, host: "_ChildHost") -> None:
        self._host = host

    def deliver(self, message: dict) -> None:
        try:
            data = _encode(_MESSAGE, message)
        except MessageError as error:  # the parent routes the refusal back to the sender
            _refused(message, error, self.deliver)
            return
        self._host.send(data)

    def withdraw(self, message: dict) -> None:
        pass

    def reply(self, ticket: Ticket, reply: dict) -> None:
        self.deliver(reply)


class _ChildHost:
    """Runs one agent in a child process. The agent's runtime reads the pipe itself (a
    trio task woken by the pipe's readability feeds ``core.inbound`` directly); a
    watchdog thread waits on the parent's sentinel and ends the process when the parent
    has gone, even if the agent's runtime is stuck; the main thread starts the agent,
    then waits for a stop request or the parent's end.

    (A reader *thread* handing each message over with ``core.run_soon`` would cost one
    more thread wake-up per message: about 50 us of the round trip here.)"""

    def __init__(self, conn: multiprocessing.connection.Connection, agent_id: str) -> None:
        self.conn = conn
        self.agent_id = agent_id
        self._write_lock = threading.Lock()
        self._core: AgentCore | None = None  # runtime thread only, like _early
        self._early: list[dict] = []  # messages read before the core existed
        self._requests: queue.Queue = queue.Queue()  # ("stop", force) or ("gone",)
        self._exiting = threading.Event()

    def send(self, data: bytes) -> None:
        try:
            with self._write_lock:
                self.conn.send_bytes(data)
        except (OSError, ValueError):
            self._requests.put(("gone",))  # the parent has gone

    def _control(self, control: dict) -> None:
        self.send(_encode(_CONTROL, control))

    async def _read_pipe(self) -> None:
        """Feed the pipe into the core, on the runtime thread; no thread in between."""
        conn = self.conn
        fd = conn.fileno()
        try:
            while True:
                await trio.lowlevel.wait_readable(fd)
                while True:  # everything that is there (a frame arrives whole)
                    data = conn.recv_bytes()
                    if data[:1] == _MESSAGE:
                        message = _decode(data)
                        if self._core is None:
                            self._early.append(message)
                        else:
                            self._core.inbound(message)
                    else:
                        control = _decode(data)
                        if control.get("op") == "stop":
                            self._requests.put(("stop", bool(control.get("force"))))
                    if not conn.poll():
                        break
        except (EOFError, OSError):
            self._requests.put(("gone",))  # the parent has gone, or we are leaving

    def _watch_parent(self) -> None:
        """Wait for the parent process to end (its sentinel: a pipe only it holds open),
        then make sure this process ends too."""
        parent = multiprocessing.parent_process()
        if parent is None or parent.sentinel is None:
            return
        multiprocessing.connection.wait([parent.sentinel])
        self._requests.put(("gone",))
        if not self._exiting.wait(5.0):  # the main thread is stuck (e.g. in after_add)
            _exit_now(0)

    def _start_core(self, runtime: Runtime, agent: Agent,
                    limiter: trio.CapacityLimiter) -> None:
        core = AgentCore(agent, _PipeTransport(self), runtime.system.nursery.start_soon,
                         limiter)
        agent._core = core
        early, self._early = self._early, []
        for message in early:
            core.inbound(message)
        self._core = core

    def run(self, agent_type: type[Agent], args: tuple, kwargs: dict) -> None:
        threading.Thread(target=self._watch_parent, daemon=True, name="parent-watch").start()
        runtime: BackgroundRuntime | None = None
        try:
            runtime = BackgroundRuntime(name=f"agent:{self.agent_id}")
            runtime.call(lambda rt: rt.system.nursery.start_soon(self._read_pipe))
            limiter = runtime.call(lambda rt: trio.CapacityLimiter(math.inf))
            agent = agent_type(self.agent_id, *args, **kwargs)
            if not isinstance(agent, Agent) or agent.id != self.agent_id:
                raise ValueError(f"{agent_type.__name__}({self.agent_id!r}, ...) must be an"
                                 f" Agent with that id")
            runtime.call(lambda rt: self._start_core(rt, agent, limiter))
            if "after_add" in agent._overridden_hooks():
                agent.after_add()
            runtime.call(lambda rt: agent._core.begin_processing())
            helps = {name: spec.help for name, spec in agent._action_specs().items()
                     if name in agent._published_helps()}
        except BaseException as exc:  # noqa: BLE001 - reported to add()
            self._control({"op": "failed", "type": type(exc).__name__, "error": str(exc),
                           "traceback": traceback.format_exc()})
            self._finish(runtime, 1)
            return
        self._control({"op": "ready", "pid": os.getpid(), "helps": helps})
        while True:
            request = self._requests.get()
            if request[0] == "gone":  # nobody left to tell or to wait for: just go
                self._exiting.set()
                _exit_now(0)
            force = request[1]
            try:
                agent.before_remove()
            except Exception as exc:  # noqa: BLE001 - reported to remove()
                if not force:
                    self._control({"op": "remove_failed", "type": type(exc).__name__,
                                   "error": str(exc), "traceback": traceback.format_exc()})
                    continue
                log.exception('agent "%s": before_remove failed', self.agent_id)
            try:
                runtime.call(lambda rt: agent._core.stop(), timeout=self._STOP_WAIT)
            except Exception:  # noqa: BLE001 - we are leaving anyway
                log.exception('agent "%s": stopping failed', self.agent_id)
            self._control({"op": "stopped"})
            self._finish(runtime, 0)
            return

    _STOP_WAIT = 5.0

    def _finish(self, runtime: BackgroundRuntime | None, code: int) -> None:
        self._exiting.set()
        if runtime is not None:
            try:
                runtime.close(timeout=self._STOP_WAIT)
            except Exception:  # noqa: BLE001
                log.exception('agent "%s": the runtime did not stop', self.agent_id)
        try:
            self.conn.close()
        except OSError:
            pass
        _exit_now(code)


def _exit_now(code: int) -> None:
    """Leave the process now: flush what can be flushed, skip waiting for threads (a
    blocked action must not keep the process alive)."""
    try:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


def _child_main(conn: multiprocessing.connection.Connection, agent_type: type[Agent],
                agent_id: str, args: tuple, kwargs: dict) -> None:
    """A child process's main: host one agent until told to stop or the parent goes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    _ChildHost(conn, agent_id).run(agent_type, args, kwargs)
