"""The agents' side of an AMQP link: presence claims, queues, consumers, departures.

A mixin of :class:`~.link.Link` (its methods run on the I/O thread and use the link's
state). An agent's id is claimed by declaring an exclusive presence queue (one operation
at a time on the presence channel: a failed claim closes the channel, and releases must
follow the claims they undo); then its durable queue is declared, bound and consumed.
Leaving deletes both.
"""

from __future__ import annotations

import concurrent.futures
import functools
import logging
from typing import Any

from ...classic.core import AgentCore
from .names import BROADCAST_KEY
from .state import Entry, Leaving

log = logging.getLogger(__name__)

RESOURCE_LOCKED = 405


class AgentQueues:
    """The agents' presence queues and queues on the broker (part of ``Link``)."""

    def _next_presence_op(self) -> None:
        while not self._presence_busy and self._presence_ops and self._presence_channel:
            op = self._presence_ops.popleft()
            gen = self._gen
            if op[0] == "claim":
                entry = op[1]
                if entry.detached:
                    self._setup_done(entry)
                    continue
                self._presence_busy = op
                self._presence_channel.queue_declare(
                    entry.presence, exclusive=True, auto_delete=True,
                    callback=functools.partial(self._on_claimed, gen, entry))
            else:  # ("release", leaving)
                leaving = op[1]
                entry = leaving.entry
                current = self._entries.get(entry.agent_id)
                if entry.claimed_gen != gen or (current is not None and current is not entry):
                    self._left_one(leaving)  # not ours on this connection (or in use again)
                    continue
                self._presence_busy = op
                self._presence_channel.queue_delete(
                    entry.presence, callback=functools.partial(self._on_released, gen, leaving))

    def _on_claimed(self, gen: int, entry: Entry, _frame: Any) -> None:
        if gen != self._gen:
            return
        self._presence_busy = False
        entry.claimed_gen = gen
        entry.ever_claimed = True
        if entry.detached:
            self._setup_done(entry)
        else:
            self._declare(entry)
        self._next_presence_op()

    def _on_released(self, gen: int, leaving: Leaving, _frame: Any) -> None:
        if gen != self._gen:
            return
        self._presence_busy = False
        leaving.entry.claimed_gen = -1
        self._left_one(leaving)
        self._next_presence_op()

    def _on_presence_closed(self, gen: int, channel: Any, reason: BaseException) -> None:
        if gen != self._gen or self._conn is None or not self._conn.is_open:
            return  # the connection is going: handled there
        self._presence_channel = None
        op, self._presence_busy = self._presence_busy, False
        code = getattr(reason, "reply_code", None)
        if op and op[0] == "claim":
            entry = op[1]
            if code == RESOURCE_LOCKED:
                error: Exception = ValueError(
                    f'an agent with id "{entry.agent_id}" is already in another space on'
                    f' exchange "{self._names.exchange}"')
            else:
                error = ConnectionError(f"could not claim the agent id: {reason}")
            if self._entries.get(entry.agent_id) is entry:
                del self._entries[entry.agent_id]
            entry.detached = True
            if entry.attached.done():  # reconnection: someone took the id meanwhile
                log.error('agent "%s" lost its id to another space during an outage (%s);'
                          " it no longer receives messages", entry.agent_id, reason)
            else:
                entry.attached.set_exception(error)
            self._setup_done(entry)
        elif op:
            log.warning("AMQP: releasing a presence queue failed: %s", reason)
            self._left_one(op[1])
        else:
            log.warning("AMQP presence channel closed: %s", reason)
        self._conn.channel(on_open_callback=functools.partial(self._on_presence_reopened, gen))

    def _on_presence_reopened(self, gen: int, channel: Any) -> None:
        if gen != self._gen:
            return
        self._presence_channel = channel
        channel.add_on_close_callback(functools.partial(self._on_presence_closed, gen))
        self._check_ready()
        self._next_presence_op()

    # queues and consumers (main channel)

    def _declare(self, entry: Entry) -> None:
        gen, channel, exchange = self._gen, self._channel, self._names.exchange
        self._doomed.discard(entry.queue)
        channel.queue_declare(entry.queue, durable=True)
        channel.queue_bind(entry.queue, exchange, routing_key=entry.key)
        channel.queue_bind(entry.queue, exchange, routing_key=BROADCAST_KEY)
        channel.basic_consume(entry.queue, functools.partial(self._on_delivery, entry),
                              callback=functools.partial(self._on_consuming, gen, entry))

    def _on_consuming(self, gen: int, entry: Entry, _frame: Any) -> None:
        if gen != self._gen:
            return
        if not entry.attached.done():
            entry.attached.set_result(None)
        self._setup_done(entry)

    def _attach(self, entry: Entry) -> None:
        if self._closing:
            entry.attached.set_exception(ConnectionError("the space is closing"))
            return
        self._entries[entry.agent_id] = entry
        if self._presence_gen == self._gen:
            self._presence_ops.append(("claim", entry))
            self._next_presence_op()  # at once, or when the presence channel is back
        # else: claimed with every other agent once (re)connected

    def _gen_is_live(self) -> bool:
        return self._conn is not None and self._conn.is_open

    def _detach(self, agent_id: str, core: AgentCore,
                future: concurrent.futures.Future) -> None:
        entry = self._entries.get(agent_id)
        if entry is None or entry.core is not core:
            future.set_result(None)
            return
        del self._entries[agent_id]
        entry.detached = True
        if not entry.attached.done():
            entry.attached.set_exception(RuntimeError("removed before it was attached"))
        self._setup_done(entry)
        if not entry.ever_claimed and not self._presence_busy_with(entry):
            future.set_result(None)  # never declared anything of its own
            return
        if self._channel is None or not self._gen_is_live():
            if entry.ever_claimed:
                self._doomed.add(entry.queue)
            future.set_result(None)
            return
        leaving = Leaving(entry, future)
        self._leaving.append(leaving)
        gen = self._gen
        if entry.ever_claimed:
            leaving.waiting += 1
            self._channel.queue_delete(entry.queue,
                                       callback=functools.partial(self._on_deleted, gen, leaving))
        leaving.waiting += 1
        self._presence_ops.append(("release", leaving))
        self._next_presence_op()

    def _presence_busy_with(self, entry: Entry) -> bool:
        return bool(self._presence_busy) and self._presence_busy[1] is entry

    def _on_deleted(self, gen: int, leaving: Leaving, _frame: Any) -> None:
        if gen == self._gen:
            self._left_one(leaving)

    def _left_one(self, leaving: Leaving) -> None:
        if leaving.done_one():
            if leaving in self._leaving:
                self._leaving.remove(leaving)
            if self._closing:
                self._maybe_finish_close()
