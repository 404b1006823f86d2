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
* Children are started and stopped as ``children.py`` says (``forkserver``, never
  ``fork``). The parts: ``process_wire.py`` (the frames on the pipe),
  ``multiprocess_router.py`` (the parent's router), ``multiprocess_host.py`` (the
  child's side).

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

import concurrent.futures
import logging
import threading
import time
from typing import Any

from ..classic.agent import Agent
from ..classic.core import AgentCore
from ..classic.message import new_message_id, validate_agent_id, validate_message
from ..runtime import Runtime
from . import multiprocess_host
from .base import RouterTransport, Space
from .children import (ChildPids, WakePipe, agent_process, child_context, end_process,
                       start_agent_process)
from .multiprocess_router import Child, ProcessRouter
from .process_wire import CONTROL, encode_frame

log = logging.getLogger(__name__)


class MultiprocessQueueSpace(ChildPids, ProcessRouter, Space):
    """A space whose background agents each run in a child process; see the module
    docstring. ``stop_timeout``: how long :meth:`remove` / :meth:`destroy` wait for a
    child to run ``before_remove`` and exit before terminating it."""

    def __init__(self, *, start_method: str | None = None, stop_timeout: float = 10.0) -> None:
        self._context = child_context(start_method)
        self._stop_timeout = stop_timeout
        super().__init__(runtime_name="multiprocess-space")
        self._table_lock = threading.Lock()  # guards the four tables below
        self._cores: dict[str, AgentCore] = {}
        self._children: dict[str, Child] = {}  # routable: starting or ready
        self._dead: dict[str, str] = {}  # id -> the error text later messages get
        self._waitables: dict[Any, tuple[str, Child]] = {}  # for the router thread
        self._wake = WakePipe()
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
        process = agent_process(self._context, multiprocess_host.child_main,
                                (theirs, agent_type, agent_id, args, kwargs), agent_id)
        child = Child(agent_id, ours, process)
        # Routable from now on: messages sent while it starts wait in its pipe (as they
        # wait in the core's queue on the other spaces).
        with self._table_lock:
            self._children[agent_id] = child
            self._dead.pop(agent_id, None)
        try:
            try:
                start_agent_process(self._context, process, agent_type, agent_id,
                                    extra_preload=(multiprocess_host.__name__,))
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

    def _running_child_pid(self, id: str) -> int | None:
        with self._table_lock:
            child = self._children.get(id)
            return child.pid if child is not None and child.state == "ready" else None

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
        self._wake.close()

    def _stop_children(self, children: list[Child], force: bool) -> None:
        """Ask children to stop, wait (bounded) until each has run ``before_remove`` and
        exited, then end any that has not. With ``force`` a failing ``before_remove`` is
        logged and the child stops anyway; without, its error is raised here and the
        agent stays (as on every space)."""
        deadline = time.monotonic() + self._stop_timeout
        for child in children:
            if not child.send(encode_frame(CONTROL, {"op": "stop", "force": force})):
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

    def _end_process(self, child: Child, deadline: float) -> None:
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

    def _reap(self, child: Child, deadline: float) -> None:
        """:meth:`_end_process` without the router thread."""
        end_process(child.process, deadline)
        self._close_child(child)

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
