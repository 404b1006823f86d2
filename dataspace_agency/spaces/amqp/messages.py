"""The messages' side of an AMQP link: publishing with confirms, deliveries, acks.

A mixin of :class:`~.link.Link` (its methods run on the I/O thread and use the link's
state). Publishes are pipelined (up to ``max_in_flight`` unconfirmed) and settled when the
broker confirms them, or failed by the sweep after ``delivery_timeout``; deliveries go to
the runtime thread in batches, and their acknowledgements go out in as few frames as is
safe (``state.Acks``).
"""

from __future__ import annotations

import collections
import functools
import logging
import time
from typing import Any

from ...classic.core import Ticket
from ...classic.message import BROADCAST
from ..wire import decode_message
from .state import Entry, Outgoing

try:
    import pika
except ImportError:  # the optional "amqp" extra: Link is never made without it
    pika = None

log = logging.getLogger(__name__)

SWEEP_INTERVAL = 0.25  # how often undeliverable messages are looked for


@functools.cache
def message_properties() -> Any:
    """The properties of every message: JSON, persistent."""
    return pika.BasicProperties(content_type="application/json",
                                delivery_mode=pika.DeliveryMode.Persistent)


class Delivery(Ticket):
    """An inbound delivery: acknowledged (on the channel it came from) once handled."""

    __slots__ = ("_link", "_channel", "_tag")

    def __init__(self, link: Any, channel: Any, tag: int) -> None:
        super().__init__()
        self._link = link
        self._channel = channel
        self._tag = tag

    def handled(self) -> None:
        self._link.ack(self._channel, self._tag)


class Messages:
    """Publishing, confirms, deliveries and acknowledgements (part of ``Link``)."""

    def _on_delivery(self, entry: Entry, channel: Any, method: Any, _props: Any,
                     body: bytes) -> None:
        if entry.detached or channel is not self._channel:
            return  # never acknowledged: the queue is being deleted, or the channel is gone
        tag = method.delivery_tag
        try:
            message = decode_message(body)
            if message["to"] not in (entry.agent_id, BROADCAST):
                raise ValueError(f'addressed to "{message["to"]}"')
        except Exception as error:  # noqa: BLE001 - not ours to handle: drop it
            log.warning('agent "%s": dropping an unusable message: %s', entry.agent_id, error)
            self._ack_soon(tag)
            return
        if not entry.recent.add(message["meta"]["id"]):
            self.duplicates += 1
            self._ack_soon(tag)  # a duplicate (sent again after a reconnection)
            return
        # Handed to the runtime thread in batches: one wake-up per batch, not per message.
        if not self._inbound:
            self._ioloop.call_later(0, self._hand_inbound)
        self._inbound.append((entry.core, message, Delivery(self, channel, tag)))

    def _hand_inbound(self) -> None:
        batch, self._inbound = self._inbound, []
        if batch:
            try:
                batch[0][0].token.run_sync_soon(_inbound_batch, batch)
            except Exception:  # noqa: BLE001 - the runtime has stopped
                pass

    def _ack_soon(self, tag: int) -> None:
        """Acknowledge a delivery of the current channel at the end of this loop round."""
        if not self._acks.due:
            self._ioloop.call_later(0, self._send_acks)
        self._acks.due.append(tag)

    def _send_acks(self) -> None:
        channel = self._channel
        if channel is None or not channel.is_open:
            self._acks.due.clear()
            return
        for tag, multiple in self._acks.take():
            channel.basic_ack(tag, multiple=multiple)

    # publishing

    def _flush(self) -> None:
        if not self._ready or not self._channel.is_open:
            return
        channel, outbox, unconfirmed = self._channel, self._outbox, self._unconfirmed
        exchange, properties = self._names.exchange, message_properties()
        while outbox and len(unconfirmed) < self._max_in_flight:
            item = outbox.popleft()
            channel.basic_publish(exchange, item.key, item.body, properties)
            unconfirmed[self._next_tag] = item
            self._next_tag += 1

    def _on_confirm(self, gen: int, frame: Any) -> None:
        if gen != self._gen:
            return
        method = frame.method
        tag, unconfirmed = method.delivery_tag, self._unconfirmed
        done: list[Outgoing] = []
        if method.multiple:
            while unconfirmed:
                first = next(iter(unconfirmed))
                if first > tag:
                    break
                done.append(unconfirmed.popitem(last=False)[1])
        else:
            item = unconfirmed.pop(tag, None)
            if item is not None:
                done.append(item)
        if isinstance(method, pika.spec.Basic.Nack):  # the broker could not take them
            log.warning("AMQP: the broker refused %d message(s); sending them again",
                        len(done))
            self._outbox.extend(done)
        elif self._flushes:
            self._settled(done)
        self._flush()
        if self._closing:
            self._maybe_finish_close()

    def _sweep(self) -> None:
        """Fail what could not be delivered within ``delivery_timeout``."""
        if self._stopped:
            return
        self._ioloop.call_later(SWEEP_INTERVAL, self._sweep)
        limit = time.monotonic() - self._delivery_timeout
        failed: list[Outgoing] = []
        if self._outbox and self._outbox[0].since < limit or not self._ready:
            kept: collections.deque[Outgoing] = collections.deque()
            for item in self._outbox:
                (failed if item.since < limit else kept).append(item)
            self._outbox = kept
        if self._unconfirmed and next(iter(self._unconfirmed.values())).since < limit:
            for tag in [t for t, item in self._unconfirmed.items() if item.since < limit]:
                failed.append(self._unconfirmed.pop(tag))
        if failed:
            reason = (f"the message could not be delivered to the AMQP broker within"
                      f" {self._delivery_timeout:g} s (last error: {self.last_error})")
            log.warning("AMQP: %d message(s) failed: %s", len(failed), reason)
            self._on_failed(failed, reason)
            self._settled(failed)

    def _settled(self, items: list[Outgoing]) -> None:
        """These are done with (confirmed, or failed and reported): count them off the
        flushes waiting for them."""
        if not self._flushes:
            return
        for flush in self._flushes:
            flush.waiting -= sum(1 for item in items if item.seq <= flush.mark)
            if flush.waiting <= 0 and not flush.future.done():
                flush.future.set_result(None)
        self._flushes = [flush for flush in self._flushes if flush.waiting > 0]


def _inbound_batch(batch: list[tuple]) -> None:
    """Runtime thread: deliveries into their agents' cores (one space: one runtime)."""
    for core, message, ticket in batch:
        core.inbound(message, ticket)


def coalesce_writes(conn: Any) -> None:
    """Make pika send what it has buffered in one ``send()`` per loop iteration instead of
    one per frame (a publish is three frames): fewer system calls, and fewer hand-overs
    of the GIL, which cost far more than the calls while other threads are busy. Relies
    on pika 1.x internals (the transport's ``_tx_buffers`` and ``_produce``); without
    them, nothing changes."""
    transport = getattr(conn, "_transport", None)
    buffers = getattr(transport, "_tx_buffers", None)
    produce = getattr(transport, "_produce", None)
    if not isinstance(buffers, collections.deque) or produce is None:
        return

    def coalescing_produce() -> None:
        if len(buffers) > 1:
            joined = b"".join(buffers)
            buffers.clear()
            buffers.append(joined)
        produce()

    transport._produce = coalescing_produce
