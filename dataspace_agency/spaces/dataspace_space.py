"""``DataspaceSpace``: classic agents on an in-process dataspace.

::

    with DataspaceSpace(mode="assertion") as space:
        space.add(Greeter, "greeter")
        me = space.add_foreground(Agent, "me")
        me.request({"to": "greeter", "action": {"name": "greet", "args": {"name": "ann"}}})

The runtime runs on a background thread, so the space works the same from plain
synchronous code and from inside trio programs. Each agent is an actor of its own holding
its presence, action facts and subscriptions; see ``spaces/dataspace/adapter.py`` for what the two
modes do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import trio
from syndicate import turn
from syndicate.actor import Ref
from syndicate.during import During

from ..classic import values
from ..classic.agent import Agent
from ..classic.core import AgentCore, Inboxes
from ..classic.message import BROADCAST, ERROR, RESPONSE, new_message_id, validate_message
from ..native import DataspaceHandle, spawn_dataspace
from ..runtime import Runtime
from .base import Space
from .dataspace.adapter import (DataspaceTransport, check_mode, message_body, observe,
                                parse_message)
from .dataspace.vocabulary import (ACTION, AGENT, CAPTURE, REPLY, lit, message_envelope, rec,
                                   request_fact)

if TYPE_CHECKING:
    from ..dataspace.entity import Dataspace
    from ..inspect import Inspector
    from .handle import DataspaceClientHandle

class DataspaceSpace(Space):
    """A space whose agents meet in one in-process dataspace."""

    _inboxes: Inboxes | None = None  # subclasses that do not set it bound no inbox
    # Every sender into an in-process dataspace is code of this process, whose messages
    # were validated on the way out; the inbound size check (DataspaceTransport.
    # max_message_size, a JSON encoding of each message: ~2.5 µs, a few per cent of a
    # round trip) is for dataspaces that other processes write to (RemoteDataspaceSpace).
    _senders_are_local = True
    # A dataspace behind a connection (a server, Zenoh routers): add() waits until it has
    # the new agent's facts and subscriptions, so that a message another process sends
    # once add() returned is not routed before the agent's subscription is in place.
    _sync_after_add = False
    # Messages an agent sends meet nothing in this process but a connection's relay
    # (DataspaceTransport.wire_bodies): a dataspace on a server, or the Zenoh proxy,
    # which only puts them.
    _wire_bodies = False

    _runtime_name = "dataspace-space"  # the runtime thread's name, before the mode

    def __init__(self, mode: str = "assertion") -> None:
        check_mode(mode)
        self.mode = mode
        self._entity: Dataspace | None = None  # the dataspace itself, when in this process
        super().__init__(runtime_name=f"{self._runtime_name}-{mode}")
        try:
            self._client: DataspaceHandle = self._open_dataspace()
        except BaseException:
            self._background.close()
            raise
        self._ds = self._client.ref

    def _open_dataspace(self) -> DataspaceHandle:
        """The dataspace the agents meet in, as a handle (called once, the runtime
        running): here a new one in this process. The spaces whose dataspace is elsewhere
        (a server, Zenoh routers) connect to it instead."""
        self._inboxes = Inboxes()  # bounded inboxes: local senders wait for room
        ds, self._entity = self._background.call(spawn_dataspace)
        return self._background.call(
            lambda rt: DataspaceHandle(rt, ds, self._entity, rt.spawn_host("space")))

    def _start_agent(self, runtime: Runtime, agent: Agent) -> None:
        """Each agent is an actor: its facts and subscriptions live and die with it."""
        reactions = [(kind, pattern, self._reaction(agent, method_name))
                     for kind, pattern, method_name in agent._reactions()]

        def boot() -> None:
            turn.prevent_inert_check()
            facet = turn.active_facet()
            transport = DataspaceTransport(self.mode, runtime, self._ds, facet, agent.id)
            if self._senders_are_local:
                transport.max_message_size = None
            transport.presence = self._presence
            transport.wire_bodies = self._wire_bodies
            transport.connection_note = self._connection_note
            core = AgentCore(agent, transport, runtime.system.nursery.start_soon,
                             self._thread_limiter)
            if self._inboxes is not None:
                self._inboxes.register(core)
            transport.start(core, agent._published_helps(), reactions)
            facet.actor.at_exit(lambda: self._left(agent))

        runtime.spawn(boot, name=agent.id)

    def _add(self, agent_type: type[Agent], agent_id: str, args: tuple,
             kwargs: dict) -> Agent:
        agent = super()._add(agent_type, agent_id, args, kwargs)
        if self._sync_after_add:
            async def sync(_runtime: Runtime) -> None:
                with trio.fail_after(30):
                    await self._client.sync()
            self._background.call_async(sync)
        return agent

    def _stop_agent(self, runtime: Runtime, agent: Agent) -> None:
        transport = agent.core.transport
        transport.flush()  # what it sent before leaving goes first
        runtime.stop_actor(transport.facet.actor)  # _left runs at its exit

    def _presence(self, fact: Any) -> bool | None:
        """Runtime thread: whether ``fact`` is asserted now, if this space can tell."""
        return self._entity.holds(fact) if self._entity is not None else None

    def _connection_note(self) -> str | None:
        """Runtime thread: why the dataspace cannot answer, if it is out of reach."""
        return None

    @staticmethod
    def _reaction(agent: Agent, method_name: str) -> Callable:
        method = getattr(agent, method_name)

        def react(*captures: Any) -> None:
            on_gone = method(*captures)
            if callable(on_gone):
                turn.on_stop(on_gone)
        return react

    # --- from outside any agent ---------------------------------------------------------------

    def _route(self, message: dict) -> None:
        """Inject a message as if sent by ``message["from"]`` (tests, tools). In assertion
        mode a point-to-point action is held as a request until answered; the answer is
        then sent on to ``from`` as a message."""
        self._check_open()
        message = validate_message(message, require_id=False)
        message["meta"].setdefault("id", new_message_id())
        body = message_body(message)
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

    def connect(self, id: str) -> "DataspaceClientHandle":
        """A client handle (see :meth:`Space.connect`) that also reads and watches facts:
        ``facts(pattern)``, ``watch(pattern)``."""
        from .handle import DataspaceClientHandle
        return DataspaceClientHandle._open(self, id)

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

    def inspect(self, http: "str | tuple[str, int]" = "127.0.0.1:8080") -> "Inspector":
        """Serve a live web page of this space (agents, actions, pending requests, message
        rates, facts matching a pattern) at ``http`` (``HOST:PORT``; port 0 picks a free
        one), on this space's runtime; returns the :class:`~dataspace_agency.inspect.
        Inspector` (its ``url``; ``close()`` it, or destroy the space). Read-only. Needs
        the ``inspect`` extra. See docs/inspect.md."""
        self._check_open()
        from ..inspect import Inspector  # a layer above: imported only when asked for
        return Inspector.for_space(self._background, self._ds, self._client, http)
