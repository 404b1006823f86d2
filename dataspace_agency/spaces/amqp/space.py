"""``AMQPSpace``: the ``Space`` whose agents exchange messages through RabbitMQ.

The broker layout and the delivery guarantees are described in the package docstring
(``spaces/amqp/__init__.py``); the connection is a :class:`~.link.Link`.
"""

from __future__ import annotations

import concurrent.futures
import logging

from ...classic.agent import Agent
from ...classic.core import AgentCore, Ticket
from ...classic.message import (BROADCAST, ERROR, RESPONSE, MessageError, make_reply,
                                new_message_id, validate_message)
from ...runtime import Runtime, RuntimeClosed
from ..base import Space
from ..wire import encode_message, refusal
from .link import Link, pika
from .names import Names
from .state import Outgoing

log = logging.getLogger(__name__)

__all__ = ["AMQPSpace", "DEFAULT_URL"]

DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"


class _AMQPTransport:
    """One agent's way out: every message is published to the exchange."""

    __slots__ = ("_space",)

    def __init__(self, space: "AMQPSpace") -> None:
        self._space = space

    def deliver(self, message: dict) -> None:
        report = message["to"] != BROADCAST and message["action"]["name"] not in (RESPONSE,
                                                                                   ERROR)
        self._space._publish(message, report)

    def withdraw(self, message: dict) -> None:
        pass  # a queue cannot take a message back

    def reply(self, ticket: Ticket, reply: dict) -> None:
        self._space._publish(reply, False)


class AMQPSpace(Space):
    """A space whose agents exchange messages through a RabbitMQ (AMQP 0-9-1) broker.

    ``url``: the broker (``amqp://user:password@host:port/vhost``); ``exchange``: the
    topic exchange, a namespace shared by the spaces that should see each other.
    ``prefetch``: unacknowledged deliveries per agent; ``delivery_timeout``: how long a
    message may wait for the broker before it is reported as failed;
    ``dedupe_window``: message ids remembered per agent to drop duplicates;
    ``operation_timeout``: bound on ``add``/``remove`` waiting for the broker;
    ``connect_timeout``: bound on reaching the broker at construction.
    """

    def __init__(self, url: str = DEFAULT_URL, exchange: str = "dataspace-agency", *,
                 prefetch: int = 256, delivery_timeout: float = 30.0,
                 dedupe_window: int = 10_000, operation_timeout: float = 10.0,
                 connect_timeout: float = 10.0, max_in_flight: int = 10_000) -> None:
        if pika is None:
            raise ImportError("AMQPSpace needs pika: pip install 'dataspace-agency[amqp]'")
        if not isinstance(exchange, str) or not exchange or exchange.startswith("amq."):
            raise ValueError(f"exchange must be a non-empty name not starting 'amq.',"
                             f" got {exchange!r}")
        if prefetch < 1:
            raise ValueError("prefetch must be at least 1")
        self._names = Names(exchange)
        self._operation_timeout = operation_timeout
        super().__init__(runtime_name="amqp-space")
        self._cores: dict[str, AgentCore] = {}  # runtime thread only
        self._leaving: dict[AgentCore, concurrent.futures.Future] = {}
        self._link: Link | None = None
        try:
            self._link = Link(url, self._names, prefetch=prefetch,
                               delivery_timeout=delivery_timeout, window=dedupe_window,
                               max_in_flight=max_in_flight, on_failed=self._failed,
                               thread_name=f"amqp-space-io {exchange}")
            if not self._link.opened.wait(connect_timeout):
                raise ConnectionError(f"could not connect to the AMQP broker within"
                                      f" {connect_timeout:g} s ({self._link.last_error})")
        except BaseException:
            if self._link is not None:
                self._link.close(timeout=1.0)
            self._destroyed = True
            self._background.close()
            raise

    @property
    def exchange(self) -> str:
        return self._names.exchange

    @property
    def connected(self) -> bool:
        """Whether the space is connected to the broker and set up, right now."""
        return self._link.ready_event.is_set()

    def wait_connected(self, timeout: float | None = None) -> bool:
        """Wait until :attr:`connected` (e.g. after an outage); False on timeout."""
        return self._link.ready_event.wait(timeout)

    # --- hooks (runtime thread) ----------------------------------------------------------

    def _start_agent(self, runtime: Runtime, agent: Agent) -> None:
        core = AgentCore(agent, _AMQPTransport(self), runtime.system.nursery.start_soon,
                         self._thread_limiter)
        agent._core = core
        self._cores[agent.id] = core
        # Blocks the runtime thread for a few broker round trips (bounded): add() must
        # return only once the agent's queue is bound and consumed.
        try:
            self._link.attach(agent.id, core).result(self._operation_timeout)
        except concurrent.futures.TimeoutError:
            raise ConnectionError(f'could not declare agent "{agent.id}" on the AMQP broker'
                                  f" within {self._operation_timeout:g} s"
                                  f" ({self._link.last_error})") from None

    def _stop_agent(self, runtime: Runtime, agent: Agent) -> None:
        core = agent._core
        if self._cores.get(agent.id) is core:
            del self._cores[agent.id]
        future = self._link.detach(agent.id, core)
        with self._lock:
            if self._agents.get(agent.id) is agent:  # a remove(): it waits for the broker
                self._leaving[core] = future
        self._left(agent)

    def remove(self, id: str) -> None:
        """Remove an agent; returns after its ``before_remove`` ran, it has left, what it
        sent is confirmed by the broker (see :meth:`flush`; while connected) and its
        queues are deleted on the broker (each wait bounded by ``operation_timeout``)."""
        with self._lock:
            agent = self._agents.get(id)
        super().remove(id)
        with self._lock:
            future = self._leaving.pop(agent._core, None) if agent is not None else None
        # While connected only: during an outage what it sent waits in the outbox for the
        # reconnection (or fails after delivery_timeout, reported), and destroy() must not
        # wait operation_timeout once per agent for that.
        if self.connected and not self.flush(self._operation_timeout):
            log.warning('agent "%s": messages sent before it left were not all confirmed by'
                        " the broker within %g s (they are still sent, or reported)", id,
                        self._operation_timeout)
        if future is not None:
            try:
                future.result(self._operation_timeout)
            except concurrent.futures.TimeoutError:
                log.warning('agent "%s": its queues were not deleted within %g s', id,
                            self._operation_timeout)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every message this space's agents and handles have sent so far is
        settled: confirmed by the broker (it holds the message, persistently), or failed
        after ``delivery_timeout`` (and reported to its sender as an ``[error]`` reply).
        ``send()`` does not wait for the broker; this is the point where the sends before
        it are known to be safe. False if ``timeout`` seconds passed first."""
        if self._destroyed:
            return True
        # Through the runtime thread first: a send() that has returned may still be queued
        # there, and it is published (handed to the I/O thread) in that order.
        try:
            future = self._background.call(lambda rt: self._link.flush())
        except RuntimeClosed:
            return True
        try:
            future.result(timeout)
        except concurrent.futures.TimeoutError:
            return False
        return True

    def destroy(self) -> None:
        """Remove every agent (deleting their queues), close the connection and join the
        I/O thread. Idempotent."""
        try:
            super().destroy()
        finally:
            if self._link is not None:
                self._link.close(timeout=5.0)

    # --- messages ---------------------------------------------------------------------------

    def _publish(self, message: dict, report: bool) -> None:
        try:
            body = encode_message(message)
        except MessageError as error:  # no JSON form: the sender is told instead
            log.warning('AMQP: a message from "%s" to "%s" cannot be sent: %s',
                        message["from"], message["to"], error)
            answer = refusal(message, error)
            if answer is not None:
                self._publish(answer, False)
            return
        try:
            self._link.publish(Outgoing(body, self._names.key(message["to"]), message, report))
        except ConnectionError as error:
            self._failed([Outgoing(body, "", message, report)], str(error))

    def _failed(self, items: list[Outgoing], reason: str) -> None:
        """Messages that will not reach the broker (I/O thread): tell their senders."""
        try:
            self._background.submit(lambda rt: self._report_failed(items, reason))
        except RuntimeClosed:
            log.warning("AMQP: %d message(s) undelivered: %s", len(items), reason)

    def _report_failed(self, items: list[Outgoing], reason: str) -> None:
        """Runtime thread: an ``[error]`` reply to each request's sender."""
        for item in items:
            message = item.message
            core = self._cores.get(message["from"]) if item.report else None
            if core is None or core.stopped:
                log.warning('AMQP: a message from "%s" to "%s" was not delivered: %s',
                            message["from"], message["to"], reason)
                continue
            core.inbound(make_reply(message, sender=message["to"],
                                    error=f"ConnectionError: {reason}", check=False))

    def _route(self, message: dict) -> None:
        """Publish a message as if sent by ``message["from"]``; its answer goes to that
        agent's queue, if there is one (in any space on this exchange)."""
        self._check_open()
        message = validate_message(message, require_id=False)
        message["meta"].setdefault("id", new_message_id())
        self._publish(message, False)

    def agents(self) -> dict[str, dict[str, dict]]:
        """The agents in *this* space and their actions: ``{agent_id: {name: help}}``.
        Agents of other spaces on the same exchange are not listed: a queue backend has
        no shared state to discover them from (ask them, e.g. a broadcast ``help``)."""
        self._check_open()
        return {agent.id: {name: spec.help for name, spec in agent._action_specs().items()
                           if name in agent._published_helps()}
                for agent in self._local_agents()}
