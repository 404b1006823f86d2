"""What every space shares: the classic ``Space`` API over agents whose cores run on a
background runtime thread.

A space subclass says how an agent is started and stopped (``_start_agent`` /
``_stop_agent``, on the runtime thread) and how messages travel (its transport); the
lifecycle rules live here once:

* ``add`` reserves the id first, so a duplicate raises ``ValueError`` and never touches
  the agent already there; it returns after ``after_add`` ran; messages that arrive before
  then wait, and ``request()`` inside ``after_add`` raises ``RuntimeError``.
* ``remove`` returns after ``before_remove`` ran and the agent has left.
* ``destroy`` removes every agent, then stops the runtime; the context manager calls it.
"""

from __future__ import annotations

import math
import threading
from typing import TYPE_CHECKING, Any

import trio

from ..classic.agent import Agent
from ..classic.core import Ticket
from ..classic.message import validate_agent_id
from ..runtime import BackgroundRuntime, Runtime, collector
from ..runtime.registry import OPEN_SPACES

if TYPE_CHECKING:
    from .handle import ClientHandle


class Space:
    """Base of every space; see the module docstring. Subclasses implement the hooks."""

    def __init__(self, runtime_name: str) -> None:
        self._lock = threading.Lock()
        self._agents: dict[str, Agent | None] = {}  # None: being added
        self._destroyed = False
        self._background = BackgroundRuntime(name=runtime_name)
        # Agents bound their own concurrency; worker threads must not also queue behind
        # trio's default limiter (40 threads, shared: the starvation agency suffers).
        self._thread_limiter = self._background.call(
            lambda rt: trio.CapacityLimiter(math.inf))
        OPEN_SPACES.add(self)  # until destroy(): what a leak check looks at

    # --- hooks for subclasses (runtime thread) ---------------------------------------------

    def _start_agent(self, runtime: Runtime, agent: Agent) -> None:
        """Give ``agent`` a core (``agent._core``) and connect it; don't begin processing."""
        raise NotImplementedError

    def _stop_agent(self, runtime: Runtime, agent: Agent) -> None:
        """Disconnect ``agent``; call :meth:`_left` once it has gone."""
        raise NotImplementedError

    # --- agents ---------------------------------------------------------------------------

    def add(self, agent_type: type[Agent], id: str, *args: Any, **kwargs: Any) -> None:
        """Create and start an agent; returns after its ``after_add`` ran.
        A duplicate id raises ``ValueError`` and leaves the existing agent alone."""
        self._add(agent_type, id, args, kwargs)

    def add_foreground(self, agent_type: type[Agent], id: str, *args: Any,
                       **kwargs: Any) -> Agent:
        """Like :meth:`add`, and returns the live agent for use from this thread."""
        return self._add(agent_type, id, args, kwargs)

    def _add(self, agent_type: type[Agent], agent_id: str, args: tuple, kwargs: dict) -> Agent:
        self._check_open()
        validate_agent_id(agent_id)
        with self._lock:
            if agent_id in self._agents:
                raise ValueError(f'an agent with id "{agent_id}" is already in this space')
            self._agents[agent_id] = None
        agent: Agent | None = None
        try:
            agent = agent_type(agent_id, *args, **kwargs)
            if not isinstance(agent, Agent) or agent.id != agent_id:
                raise ValueError(f"{agent_type.__name__}({agent_id!r}, ...) must be an Agent"
                                 f" with that id")
            if "after_add" in agent._overridden_hooks():
                self._background.call(lambda rt: self._start_agent(rt, agent))
                agent.after_add()
                self._background.call(lambda rt: agent._core.begin_processing())
            else:  # one trip to the runtime thread instead of two
                self._background.call(lambda rt: (self._start_agent(rt, agent),
                                                  agent._core.begin_processing()))
        except BaseException:
            with self._lock:
                self._agents.pop(agent_id, None)
            if agent is not None and agent._core is not None:
                self._background.call(lambda rt: self._stop_agent(rt, agent))
            raise
        with self._lock:
            self._agents[agent_id] = agent
        collector.after_setup()  # agents are long-lived: see runtime/collector.py
        return agent

    def connect(self, id: str) -> "ClientHandle":
        """A client handle with address ``id`` for talking to this space's agents from
        a REPL, a notebook or any thread: ``send``, ``request``, ``inbox``/``receive``
        (see ``spaces/handle.py``). A duplicate id raises ``ValueError``."""
        from .handle import ClientHandle
        return ClientHandle._open(self, id)

    def _left(self, agent: Agent) -> None:
        """The agent has gone (removed, crashed, or the space shut down)."""
        agent._core.stop()
        with self._lock:
            if self._agents.get(agent.id) is agent:
                del self._agents[agent.id]

    def _local_agents(self) -> list[Agent]:
        with self._lock:
            return [a for a in self._agents.values() if a is not None]

    def remove(self, id: str) -> None:
        """Remove an agent; returns after its ``before_remove`` ran and it has left."""
        with self._lock:
            agent = self._agents.get(id)
        if agent is None:
            raise ValueError(f'no agent "{id}" in this space')
        agent.before_remove()
        self._background.call(lambda rt: self._stop_agent(rt, agent))

    def destroy(self) -> None:
        """Remove every agent and stop the runtime. Idempotent."""
        if self._destroyed:
            return
        for agent in self._local_agents():
            try:
                self.remove(agent.id)
            except ValueError:
                pass  # it left meanwhile
        self._destroyed = True
        OPEN_SPACES.discard(self)
        self._background.close()

    def __enter__(self) -> "Space":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.destroy()

    def leak_report(self) -> str | None:
        """What this undestroyed space still holds, in a few words, or None if it holds
        nothing (no agents, no facts, its runtime stopped: say, a constructor that failed
        after starting the runtime). For leak checks: reads without locking or waiting,
        so it is safe on a space whose runtime is stuck."""
        agents = sorted(a.id for a in self._local_agents())
        entity = getattr(self, "_entity", None)  # the in-process dataspace, if any
        facts = entity.assertion_count if entity is not None else 0
        running = self._background.thread.is_alive()
        if not (agents or facts or running):
            return None
        parts = [f"{len(agents)} agent(s) {agents}"]
        if entity is not None:
            parts.append(f"{facts} fact(s)")
        parts.append(f"runtime thread {self._background.thread.name!r}"
                     f" {'alive' if running else 'stopped'}")
        return ", ".join(parts)

    def _check_open(self) -> None:
        if self._destroyed:
            raise RuntimeError("this space has been destroyed")


class RouterTransport:
    """An in-process agent's way out on a queue backend: every message goes to the space's
    router, ``space._deliver(message)`` (called on the runtime thread). Nothing is held,
    so there is nothing to withdraw: a queue cannot take a message back."""

    def __init__(self, space: Any) -> None:
        self._space = space

    def deliver(self, message: dict) -> None:
        self._space._deliver(message)

    def withdraw(self, message: dict) -> None:
        pass

    def reply(self, ticket: Ticket, reply: dict) -> None:
        self._space._deliver(reply)

    def whereabouts(self, agent_id: str) -> str | None:
        """For a request's ``TimeoutError``: what the space knows of the agent."""
        known = getattr(self._space, "whereabouts_of", None)
        return known(agent_id) if known is not None else None
