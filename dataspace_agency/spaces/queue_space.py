"""``QueueSpace``: classic agents exchanging messages through in-process queues.

The queue-based counterpart of ``DataspaceSpace``, as good as an in-process queue space
can be, so that comparisons are fair: each agent has its own inbound queue (its core's
FIFO), and a router hands every message straight to the receivers' queues, which wake
their agents at once. There is no polling anywhere and no shared pool.

Routing is by the classic ``to`` field only; the space holds no facts. So, unlike the
dataspace's assertion mode: a message to an agent that is not there is dropped (a
``request()`` to it times out), a responder that leaves mid-request is noticed only by
the requester's timeout, and discovery means asking the space (``agents()``) rather than
querying shared state.
"""

from __future__ import annotations

import logging

from ..classic import values
from ..classic.agent import Agent
from ..classic.core import AgentCore, Inboxes
from ..classic.message import BROADCAST, validate_message, new_message_id
from ..runtime import Runtime
from .base import RouterTransport, Space

log = logging.getLogger(__name__)


class QueueSpace(Space):
    """A space whose agents exchange messages through in-process queues."""

    def __init__(self) -> None:
        super().__init__(runtime_name="queue-space")
        # The router's table is the inbox registry: receivers' inboxes are bounded and
        # local senders wait for room (see classic/inbox.py).
        self._inboxes = Inboxes()
        self._cores: dict[str, AgentCore] = self._inboxes.cores  # runtime thread only

    def _start_agent(self, runtime: Runtime, agent: Agent) -> None:
        core = AgentCore(agent, RouterTransport(self), runtime.system.nursery.start_soon,
                         self._thread_limiter)
        self._inboxes.register(core)

    def _stop_agent(self, runtime: Runtime, agent: Agent) -> None:
        if self._cores.get(agent.id) is agent._core:
            del self._cores[agent.id]
        self._left(agent)

    def _deliver(self, message: dict) -> None:
        """The router: a copy of ``message`` into each receiver's queue (runtime thread).
        Each receiver gets its own copy, as it would from a real queue (a plain copy:
        the message was validated when it was sent)."""
        to = message["to"]
        if to == BROADCAST:
            receivers = list(self._cores.values())
        else:
            core = self._cores.get(to)
            if core is None:
                log.debug('dropping a message to "%s": no such agent', to)
                return
            receivers = [core]
        for core in receivers:
            core.inbound(values.plain_copy(message))  # validated by its sender

    def whereabouts_of(self, agent_id: str) -> str:
        """Runtime thread: the router knows every agent of the space."""
        if agent_id in self._cores:
            return f'agent "{agent_id}" is in the space and has not answered'
        return f'no agent "{agent_id}" is in the space'

    # --- from outside any agent ---------------------------------------------------------

    def _route(self, message: dict) -> None:
        """Inject a message as if sent by ``message["from"]``; its answer goes to that
        agent's queue, if there is one."""
        self._check_open()
        message = validate_message(message, require_id=False)
        message["meta"].setdefault("id", new_message_id())
        self._background.call(lambda rt: self._deliver(message))

    def agents(self) -> dict[str, dict[str, dict]]:
        """The agents in this space and their actions: ``{agent_id: {name: help}}``.
        A queue space has no shared state to query: it answers from its own registry."""
        self._check_open()
        return {agent.id: {name: spec.help for name, spec in agent._action_specs().items()
                           if name in agent._published_helps()}
                for agent in self._local_agents()}
