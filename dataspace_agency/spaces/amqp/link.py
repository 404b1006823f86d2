"""The one connection of an AMQP space, owned by one I/O thread (pika's ``SelectConnection``).

Other threads hand it commands through a queue; everything else runs on the I/O thread:
connecting and reconnecting with back-off, the channels, the commands, closing. The
agents' queues (``agents.py``) and the messages (``messages.py``) are its two mixins.
"""

from __future__ import annotations

import collections
import concurrent.futures
import functools
import logging
import threading
from typing import Any, Callable

from ...classic.core import AgentCore
from .agents import AgentQueues
from .messages import SWEEP_INTERVAL, Messages, coalesce_writes
from .names import Names
from .state import Acks, Entry, Flush, Leaving, Outgoing

try:
    import pika
    import pika.exceptions
    from pika.adapters.select_connection import IOLoop
except ImportError:  # the optional "amqp" extra
    pika = None

log = logging.getLogger(__name__)

BACKOFF_MIN = 0.1
BACKOFF_MAX = 5.0


def _describe(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else repr(error)


class Link(AgentQueues, Messages):
    """The space's one connection, owned by one I/O thread.

    Other threads only call :meth:`publish`, :meth:`ack`, :meth:`attach`, :meth:`detach`
    and :meth:`close`, which queue a command and wake the loop; everything else runs on
    the I/O thread."""

    def __init__(self, url: str, names: Names, *, prefetch: int, delivery_timeout: float,
                 window: int, max_in_flight: int,
                 on_failed: Callable[[list[Outgoing], str], None], thread_name: str) -> None:
        params = pika.URLParameters(url)
        params.connection_attempts = 1
        params.socket_timeout = 5
        params.stack_timeout = 10
        params.blocked_connection_timeout = None
        params.client_properties = {"connection_name": f"dataspace-agency {names.exchange}",
                                    "product": "dataspace-agency AMQPSpace"}
        self._params = params
        self._names = names
        self._prefetch = prefetch
        self._delivery_timeout = delivery_timeout
        self._window = window
        self._max_in_flight = max_in_flight
        self._on_failed = on_failed
        self._ioloop = IOLoop()
        self._commands: collections.deque[tuple] = collections.deque()
        self._wake_pending = False
        self._stopped = False  # the I/O thread has ended (set on it, read elsewhere)
        self.opened = threading.Event()  # the first connection is ready
        self.ready_event = threading.Event()  # connected and set up, right now
        # --- I/O thread only ---------------------------------------------------------
        self._conn: Any = None
        self._channel: Any = None  # the main channel: publishes, consumers, queues
        self._presence_channel: Any = None
        self._gen = 0  # bumped whenever a connection ends
        self._ready = False  # connected, and the agents' queues are declared again
        self._setup_waiting: set[Entry] = set()
        self._outbox: collections.deque[Outgoing] = collections.deque()
        self._unconfirmed: collections.OrderedDict[int, Outgoing] = collections.OrderedDict()
        self._next_tag = 1
        self._seq = 0  # publishes taken in so far
        self._flushes: list[Flush] = []
        self._acks = Acks()
        self._entries: dict[str, Entry] = {}
        self._presence_ops: collections.deque[tuple] = collections.deque()
        self._presence_busy = False
        self._presence_gen = -1  # the connection whose agents have been queued for claims
        self._inbound: list[tuple] = []  # deliveries for the runtime thread
        self._leaving: list[Leaving] = []
        self._doomed: set[str] = set()  # queues to delete once connected again
        self._backoff = BACKOFF_MIN
        self._reconnect_timer: Any = None
        self._closing = False
        self._close_future: concurrent.futures.Future | None = None
        self._close_timer: Any = None
        self.last_error = "not connected yet"
        self.connections = 0  # connections opened so far (1 + reconnections)
        self.resent = 0  # publishes sent again (not confirmed when a connection dropped)
        self.duplicates = 0  # deliveries dropped as duplicates
        self._thread = threading.Thread(target=self._main, name=thread_name, daemon=True)
        self._thread.start()

    # --- any thread -------------------------------------------------------------------

    def _submit(self, command: tuple) -> None:
        if self._stopped:
            raise ConnectionError("the AMQP connection of this space is closed")
        self._commands.append(command)
        if not self._wake_pending:  # one wake-up per batch of commands
            self._wake_pending = True
            try:
                self._ioloop.add_callback_threadsafe(self._run_commands)
            except Exception:  # noqa: BLE001 - the loop has just closed
                self._wake_pending = False

    def publish(self, item: Outgoing) -> None:
        self._submit(("publish", item))

    def flush(self) -> concurrent.futures.Future:
        """A future resolved once every message published before this call is settled:
        confirmed by the broker, or failed (and reported to its sender)."""
        future: concurrent.futures.Future = concurrent.futures.Future()
        try:
            self._submit(("flush", future))
        except ConnectionError:
            future.set_result(None)  # closed: everything was settled (or failed) then
        return future

    def ack(self, channel: Any, tag: int) -> None:
        if not self._stopped:
            self._submit(("ack", channel, tag))

    def attach(self, agent_id: str, core: AgentCore) -> concurrent.futures.Future:
        entry = Entry(agent_id, core, self._names, self._window)
        self._submit(("attach", entry))
        return entry.attached

    def detach(self, agent_id: str, core: AgentCore) -> concurrent.futures.Future:
        future: concurrent.futures.Future = concurrent.futures.Future()
        try:
            self._submit(("detach", agent_id, core, future))
        except ConnectionError:
            future.set_result(None)
        return future

    def close(self, timeout: float) -> None:
        """Flush what is queued (for up to ``timeout`` s), close the connection and join
        the I/O thread. Idempotent."""
        if not self._stopped and self._thread.is_alive():
            future: concurrent.futures.Future = concurrent.futures.Future()
            try:
                self._submit(("close", future, timeout))
            except ConnectionError:
                pass
        self._thread.join(timeout + 10)
        if self._thread.is_alive():
            raise RuntimeError("the AMQP I/O thread did not stop")

    # --- the I/O thread -----------------------------------------------------------------

    def _main(self) -> None:
        try:
            self._connect()
            self._ioloop.call_later(SWEEP_INTERVAL, self._sweep)
            self._ioloop.start()
        except Exception:  # noqa: BLE001 - reported, then everything below is released
            log.exception("AMQP I/O thread failed")
        finally:
            self._stopped = True
            self._finish()

    def _finish(self) -> None:
        """The loop has ended: nothing more will be sent or received."""
        self._commands_drain_after_stop()
        lost = list(self._unconfirmed.values()) + list(self._outbox)
        self._unconfirmed.clear()
        self._outbox.clear()
        for flush in self._flushes:  # nothing more will be settled
            if not flush.future.done():
                flush.future.set_result(None)
        self._flushes.clear()
        if lost:
            log.warning("AMQP space closed with %d message(s) not confirmed by the broker",
                        len(lost))
            self._on_failed(lost, "the space was closed before the broker confirmed it")
        for entry in self._entries.values():
            if not entry.attached.done():
                entry.attached.set_exception(ConnectionError("the space was closed"))
        for leaving in self._leaving:
            if not leaving.future.done():
                leaving.future.set_result(None)
        if self._close_future is not None and not self._close_future.done():
            self._close_future.set_result(None)
        try:
            self._ioloop.close()
        except Exception:  # noqa: BLE001
            pass

    def _commands_drain_after_stop(self) -> None:
        while self._commands:
            command = self._commands.popleft()
            kind = command[0]
            if kind == "publish":
                self._outbox.append(command[1])
            elif kind == "attach":
                command[1].attached.set_exception(ConnectionError("the space was closed"))
            elif kind == "detach":
                command[3].set_result(None)
            elif kind in ("close", "flush"):
                command[1].set_result(None)

    # connection lifecycle

    def _connect(self) -> None:
        self._reconnect_timer = None
        if self._closing:
            self._ioloop.stop()
            return
        self._conn = pika.SelectConnection(
            self._params, on_open_callback=self._on_open,
            on_open_error_callback=self._on_open_error, on_close_callback=self._on_closed,
            custom_ioloop=self._ioloop)

    def _on_open_error(self, conn: Any, error: BaseException) -> None:
        if conn is not self._conn:
            return
        self.last_error = _describe(error)
        self._lost()
        if self._closing:
            self._ioloop.stop()
        else:
            self._schedule_reconnect()

    def _on_closed(self, conn: Any, reason: BaseException) -> None:
        if conn is not self._conn:
            return
        if not self._closing:
            self.last_error = _describe(reason)
            log.warning("AMQP connection lost (%s); reconnecting", self.last_error)
        self._lost()
        if self._closing:
            self._ioloop.stop()
        else:
            self._schedule_reconnect()

    def _schedule_reconnect(self) -> None:
        delay = self._backoff
        self._backoff = min(self._backoff * 2, BACKOFF_MAX)
        self._reconnect_timer = self._ioloop.call_later(delay, self._connect)

    def _lost(self) -> None:
        """The connection is gone: everything tied to it is void."""
        self._conn = self._channel = self._presence_channel = None
        self._gen += 1
        self._ready = False
        self.ready_event.clear()
        self._setup_waiting.clear()
        # Not confirmed: send again after reconnecting (receivers drop duplicates).
        if self._unconfirmed:
            self.resent += len(self._unconfirmed)
            self._outbox.extendleft(reversed(self._unconfirmed.values()))
            self._unconfirmed.clear()
        # Presence queues die with the connection; claims are made again on reconnection.
        self._presence_ops.clear()
        self._presence_busy = False
        for leaving in self._leaving:
            if leaving.entry.ever_claimed:
                self._doomed.add(leaving.entry.queue)
            if not leaving.future.done():
                leaving.future.set_result(None)
        self._leaving.clear()
        if self._closing:
            self._maybe_finish_close()

    def _on_open(self, conn: Any) -> None:
        if conn is not self._conn:
            return
        coalesce_writes(conn)
        conn.channel(on_open_callback=functools.partial(self._on_main_channel, self._gen))

    def _on_main_channel(self, gen: int, channel: Any) -> None:
        if gen != self._gen:
            return
        self._channel = channel
        self._next_tag = 1
        self._acks = Acks()  # delivery tags start again at 1 on a new channel
        channel.add_on_close_callback(functools.partial(self._on_main_channel_closed, gen))
        channel.confirm_delivery(functools.partial(self._on_confirm, gen))
        channel.basic_qos(prefetch_count=self._prefetch)
        channel.exchange_declare(self._names.exchange, exchange_type="topic", durable=True,
                                 callback=functools.partial(self._on_exchange, gen))

    def _on_main_channel_closed(self, gen: int, channel: Any, reason: BaseException) -> None:
        if gen != self._gen or self._conn is None:
            return
        if isinstance(reason, pika.exceptions.ChannelClosedByBroker):
            # Our own mistake or someone else's (e.g. the exchange deleted): start over.
            log.error("AMQP channel closed by the broker (%s); reconnecting", reason)
            self.last_error = _describe(reason)
            if self._conn.is_open:
                self._conn.close()

    def _on_exchange(self, gen: int, _frame: Any) -> None:
        if gen != self._gen:
            return
        for queue in self._doomed:
            self._channel.queue_delete(queue)
        self._doomed.clear()
        self._conn.channel(on_open_callback=functools.partial(self._on_presence_channel, gen))

    def _on_presence_channel(self, gen: int, channel: Any) -> None:
        if gen != self._gen:
            return
        self._presence_channel = channel
        self._presence_gen = gen
        channel.add_on_close_callback(functools.partial(self._on_presence_closed, gen))
        # After a reconnection: claim every agent again, and publish only once all are
        # bound and consumed (replies to them must find their queues).
        self._setup_waiting = set(self._entries.values())
        for entry in self._entries.values():
            self._presence_ops.append(("claim", entry))
        self._check_ready()
        self._next_presence_op()

    def _check_ready(self) -> None:
        if self._ready or self._presence_channel is None or self._setup_waiting:
            return
        self._ready = True
        self._backoff = BACKOFF_MIN
        self.connections += 1
        self.ready_event.set()
        if not self.opened.is_set():
            self.opened.set()
        elif not self._closing:
            log.warning("AMQP connection re-established; %d message(s) to send",
                        len(self._outbox))
        self._flush()

    def _setup_done(self, entry: Entry) -> None:
        if entry in self._setup_waiting:
            self._setup_waiting.discard(entry)
            self._check_ready()

    # commands from other threads

    def _run_commands(self) -> None:
        self._wake_pending = False
        commands = self._commands
        acks = []
        while commands:
            command = commands.popleft()
            kind = command[0]
            if kind == "publish":
                item = command[1]
                self._seq += 1
                item.seq = self._seq
                self._outbox.append(item)
            elif kind == "flush":
                # Every earlier publish is in the outbox or unconfirmed by now (commands
                # run in order): those are what this flush waits for.
                waiting = len(self._outbox) + len(self._unconfirmed)
                if waiting:
                    self._flushes.append(Flush(self._seq, waiting, command[1]))
                else:
                    command[1].set_result(None)
            elif kind == "ack":
                acks.append(command)
            elif kind == "attach":
                self._attach(command[1])
            elif kind == "detach":
                self._detach(*command[1:])
            elif kind == "close":
                self._close(*command[1:])
        # Publish first: an action's reply was queued before its acknowledgement, and
        # goes out before it.
        self._flush()
        for _, channel, tag in acks:
            if channel is self._channel:  # else its channel is gone: redelivered anyway
                self._acks.due.append(tag)
        self._send_acks()

    # closing

    def _close(self, future: concurrent.futures.Future, timeout: float) -> None:
        if self._closing:
            future.set_result(None)
            return
        self._closing = True
        self._close_future = future
        for entry in self._entries.values():
            if not entry.attached.done():
                entry.attached.set_exception(ConnectionError("the space is closing"))
        self._close_timer = self._ioloop.call_later(timeout, self._force_close)
        self._maybe_finish_close()

    def _maybe_finish_close(self) -> None:
        if self._conn is None:  # not connected: nothing can be flushed
            if self._reconnect_timer is not None:
                self._ioloop.remove_timeout(self._reconnect_timer)
                self._reconnect_timer = None
            self._ioloop.stop()
            return
        if self._ready and (self._outbox or self._unconfirmed or self._leaving):
            return  # wait for the broker (bounded by the close timer)
        self._force_close()

    def _force_close(self) -> None:
        conn = self._conn
        if conn is None:
            self._ioloop.stop()
            return
        if conn.is_closing or conn.is_closed:
            return  # _on_closed / _on_open_error stop the loop
        try:
            conn.close()
        except Exception:  # noqa: BLE001 - e.g. still opening in a state close() refuses
            self._ioloop.stop()
