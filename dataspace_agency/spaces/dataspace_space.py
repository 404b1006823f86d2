"""``DataspaceSpace``: classic agents on an in-process dataspace.

::

    with DataspaceSpace(mode="assertion") as space:
        space.add(Greeter, "greeter")
        me = space.add_foreground(Agent, "me")
        me.request({"to": "greeter", "action": {"name": "greet", "args": {"name": "ann"}}})

The runtime runs on a background thread, so the space works the same from plain
synchronous code and from inside trio programs. Each agent is an actor of its own holding
its presence, action facts and subscriptions; see ``classic/adapter.py`` for what the two
modes do.
"""

from __future__ import annotations

import math
import threading
from typing import Any, Callable

import trio
from syndicate import turn
from syndicate.actor import Ref

from ..classic import values
from ..classic.adapter import MODES, DataspaceTransport, parse_message
from ..classic.agent import Agent
from ..classic.core import AgentCore
from ..classic.message import (BROADCAST, ERROR, RESPONSE, new_message_id,
                               validate_agent_id, validate_message)
from ..classic.vocabulary import (ACTION, AGENT, CAPTURE, REPLY, lit, message_envelope, rec,
                                  request_fact)
from ..native import DataspaceHandle, spawn_dataspace
from ..runtime import BackgroundRuntime, Runtime
from ..classic.adapter import observe
from syndicate.during import During


class DataspaceSpace:
    """A space whose agents meet in one in-process dataspace."""

    def __init__(self, mode: str = "assertion") -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.mode = mode
        self._lock = threading.Lock()
        self._agents: dict[str, Agent | None] = {}  # None: being added
        self._destroyed = False
        self._background = BackgroundRuntime(name=f"dataspace-space-{mode}")
        self._ds, self._entity = self._background.call(spawn_dataspace)
        self._client: DataspaceHandle = self._background.call(
            lambda rt: DataspaceHandle(rt, self._ds, self._entity, rt.spawn_host("space")))
        # Agents bound their own concurrency; worker threads must not also queue behind
        # trio's default limiter (40 threads, shared: the starvation agency suffers).
        self._thread_limiter = self._background.call(
            lambda rt: trio.CapacityLimiter(math.inf))

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
                self._background.call(lambda rt: self._start(rt, agent))
                agent.after_add()
                self._background.call(lambda rt: agent._core.begin_processing())
            else:  # one trip to the runtime thread instead of two
                self._background.call(lambda rt: (self._start(rt, agent),
                                                  agent._core.begin_processing()))
        except BaseException:
            with self._lock:
                self._agents.pop(agent_id, None)
            if agent is not None and agent._core is not None:
                self._stop_actor(agent)
            raise
        with self._lock:
            self._agents[agent_id] = agent
        return agent

    def _start(self, runtime: Runtime, agent: Agent) -> None:
        helps = agent._published_helps()
        reactions = [(kind, pattern, self._reaction(agent, method_name))
                     for kind, pattern, method_name in agent._reactions()]

        def boot() -> None:
            turn.prevent_inert_check()
            facet = turn.active_facet()
            transport = DataspaceTransport(self.mode, runtime, self._ds, facet, agent.id)
            core = AgentCore(agent, transport, runtime.system.nursery.start_soon,
                             self._thread_limiter)
            agent._core = core
            transport.start(core, helps, reactions)
            facet.actor.at_exit(lambda: self._left(agent))

        runtime.spawn(boot, name=agent.id)

    @staticmethod
    def _reaction(agent: Agent, method_name: str) -> Callable:
        method = getattr(agent, method_name)

        def react(*captures: Any) -> None:
            on_gone = method(*captures)
            if callable(on_gone):
                turn.on_stop(on_gone)
        return react

    def _left(self, agent: Agent) -> None:
        """The agent's actor ended (removed, crashed, or the space shut down)."""
        agent._core.stop()
        with self._lock:
            if self._agents.get(agent.id) is agent:
                del self._agents[agent.id]

    def _stop_actor(self, agent: Agent) -> None:
        facet = agent._core.transport.facet
        self._background.call(lambda rt: rt.stop_actor(facet.actor))

    def remove(self, id: str) -> None:
        """Remove an agent; returns after its ``before_remove`` ran and it has left."""
        with self._lock:
            agent = self._agents.get(id)
        if agent is None:
            raise ValueError(f'no agent "{id}" in this space')
        agent.before_remove()
        self._stop_actor(agent)

    def destroy(self) -> None:
        """Remove every agent and stop the runtime. Idempotent."""
        if self._destroyed:
            return
        with self._lock:
            agents = [a for a in self._agents.values() if a is not None]
        for agent in agents:
            try:
                self.remove(agent.id)
            except ValueError:
                pass  # it left meanwhile
        self._destroyed = True
        self._background.close()

    def __enter__(self) -> "DataspaceSpace":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.destroy()

    def _check_open(self) -> None:
        if self._destroyed:
            raise RuntimeError("this space has been destroyed")

    # --- from outside any agent ---------------------------------------------------------------

    def _route(self, message: dict) -> None:
        """Inject a message as if sent by ``message["from"]`` (tests, tools). In assertion
        mode a point-to-point action is held as a request until answered; the answer is
        then sent on to ``from`` as a message."""
        self._check_open()
        message = validate_message(message, require_id=False)
        message["meta"].setdefault("id", new_message_id())
        body = values.to_preserves(message)
        to, name = message["to"], message["action"]["name"]
        held = self.mode == "assertion" and to != BROADCAST and name not in (RESPONSE, ERROR)

        def route(runtime: Runtime) -> None:
            if held:
                runtime.run_turn(self._client.facet, lambda: self._hold_routed(message, body))
            else:
                runtime.run_turn(self._client.facet,
                                 lambda: turn.send(self._ds, message_envelope(to, body)))
        self._background.call(route)

    def _hold_routed(self, message: dict, body: Any) -> None:
        ds, message_id, sender = self._ds, message["meta"]["id"], message["from"]

        @turn.facet
        def routed() -> None:
            turn.publish(ds, request_fact(message["to"], message_id, body))

            def answered(_responder: Any, reply_body: Any) -> None:
                if parse_message(reply_body, "answering a routed message") is not None:
                    turn.send(ds, message_envelope(sender, reply_body))
                turn.stop(routed)
            observe(ds, rec(REPLY, lit(sender), lit(message_id), CAPTURE, CAPTURE),
                    During().add_handler(answered))

    def agents(self) -> dict[str, dict[str, dict]]:
        """Who is present and what they offer, read from the facts:
        ``{agent_id: {action_name: help}}``."""
        self._check_open()

        async def read(_runtime: Runtime) -> tuple[list, list]:
            return (await self._client.query(rec(AGENT, CAPTURE)),
                    await self._client.query(rec(ACTION, CAPTURE, CAPTURE, CAPTURE)))
        present, offered = self._background.call_async(read)
        found: dict[str, dict[str, dict]] = {agent_id: {} for (agent_id,) in present}
        for agent_id, name, help_value in offered:
            if agent_id in found:
                found[agent_id][name] = values.from_preserves(help_value)
        return found

    def fact_count(self) -> int:
        """Distinct assertions in the dataspace, once everything done before this call
        has reached it."""
        if not self._destroyed:
            async def settle(_runtime: Runtime) -> None:
                await self._client.sync()
                await _runtime.settle()  # and what that delivery set off
            self._background.call_async(settle)
        return self._entity.assertion_count

    def spawn_native(self, boot: Callable[[Ref], Any], name: str | None = None) -> None:
        """Start a native syndicate-py actor; ``boot(dataspace_ref)`` is its first turn."""
        self._check_open()
        self._background.call(lambda rt: rt.spawn(lambda: boot(self._ds), name=name))
