"""``AMQPSpace``: classic agents in this process exchanging messages through RabbitMQ.

The broker-backed counterpart of ``QueueSpace``: the same ``Space`` API, the same
routing by the classic ``to`` field, but every message (replies included) goes through
an AMQP 0-9-1 broker, so agents in several processes (several ``AMQPSpace`` objects on
one exchange) can talk to each other.

Client library: pika (``pip install dataspace-agency[amqp]``). pika's ``SelectConnection``
is a callback-driven client on an I/O loop we own, which is what a robust transport
needs here: publisher confirms arrive asynchronously (publishes are pipelined instead of
waiting one round trip each, as the blocking clients -- pika's ``BlockingConnection``,
kombu/py-amqp -- do), the loop has one thread-safe entry point
(``add_callback_threadsafe``) to hand work to it, and reconnection is ours to control
(kombu's automatic retries hide exactly the state -- unconfirmed publishes, delivery tags
of the old channel -- that must be handled to lose and duplicate nothing).

Layout on the broker (``exchange`` is a namespace: spaces on different exchanges never
see each other):

* a durable topic exchange named ``exchange``;
* per agent, a durable queue ``<exchange>.<id>`` bound with the routing keys
  ``agent.<id>`` and ``broadcast``, consumed with manual acknowledgements and a bounded
  prefetch; and an exclusive queue ``<exchange>.present.<id>`` held by the owning
  space's connection: declaring it fails with RESOURCE_LOCKED while another space holds
  it, which is how a duplicate id across spaces is refused on ``add``.

In those names ids (and the exchange) are escaped: ``%``, ``.``, ``#`` and ``*`` are
percent-encoded, so an id can never act as a topic wildcard or match another id's key;
a name that would exceed AMQP's 255-byte limit keeps an escaped prefix and gets
``.h-<sha256>`` appended (the ``.`` marks it: an escaped id never contains one).

Delivery guarantees:

* Messages are JSON in the encoding every byte transport shares (``spaces/wire.py``,
  ``classic/wire_json.py``: lossless for every value ``validate_message`` accepts, or a
  request answered ``[error] MessageError: ...`` when a value has no JSON form),
  persistent, and published with publisher confirms. One connection per space, owned by
  one I/O thread; other threads hand it commands through a queue.
* ``send()`` never waits for the broker: the I/O thread pipelines publishes (up to
  ``max_in_flight`` unconfirmed) and tracks each by its delivery tag until the broker
  confirms it (confirms arrive in batches, ``multiple``); a message counts as sent when
  confirmed. :meth:`AMQPSpace.flush` waits until every message sent so far is confirmed
  (or failed, below); ``remove()`` and ``destroy()`` do the same before they return.
* An inbound delivery is acknowledged only when the core calls ``Ticket.handled()``,
  i.e. after the reply was handed to the I/O thread (which publishes in order, so the
  reply goes out before the ack). Acknowledgements handled in order go out as one
  ``multiple`` frame per loop round (``_Acks``), never reaching past an unhandled one.
* The connection is re-established after a failure with bounded exponential back-off
  (0.1 s .. 5 s); exchange, queues, bindings, presence and consumers are declared again.
  Publishes made while disconnected wait, publishes not confirmed when the connection
  dropped are sent again; receivers drop duplicates (a bounded window of recent
  ``meta.id`` per agent). A message not confirmed within ``delivery_timeout`` (default
  30 s) is failed: a request/``send()`` gets an ``[error]`` reply
  ``"ConnectionError: ..."`` from its addressee, so ``request()`` raises ``ActionError``
  instead of a silent loss (its sender may still receive a reply if the broker did take
  the message: "delivered or reported", never neither).

As on any queue backend, and unlike the dataspace: a message to an agent that is not
there is dropped by the broker (a ``request()`` to it times out), a departure is noticed
only through timeouts, and ``agents()`` lists the agents of *this* space only: discovery
across spaces is not available (the broker holds queues, not facts about agents).

Threads: ``add()`` blocks the space's runtime thread while the broker declares the agent's
queues (a few round trips; at most ``operation_timeout`` during an outage).
"""

from __future__ import annotations

import collections
import concurrent.futures
import functools
import hashlib
import logging
import threading
import time
from typing import Any, Callable

from ...classic.agent import Agent
from ...classic.core import AgentCore, Ticket
from ...classic.message import (BROADCAST, ERROR, RESPONSE, MessageError, make_reply,
                               new_message_id, validate_message)
from ...runtime import Runtime, RuntimeClosed
from ..base import Space
from ..wire import decode_message, encode_message, refusal

try:
    import pika
    import pika.exceptions
    from pika.adapters.select_connection import IOLoop
except ImportError:  # the optional "amqp" extra
    pika = None

log = logging.getLogger(__name__)

__all__ = ["AMQPSpace", "escape_id"]

DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
BROADCAST_KEY = "broadcast"
AGENT_KEY_PREFIX = "agent."
PRESENCE_WORD = "present"
MAX_NAME_BYTES = 255  # AMQP short strings: queue names and routing keys
BACKOFF_MIN = 0.1
BACKOFF_MAX = 5.0
SWEEP_INTERVAL = 0.25  # how often undeliverable messages are looked for
RESOURCE_LOCKED = 405

_ESCAPES = str.maketrans({"%": "%25", ".": "%2E", "#": "%23", "*": "%2A"})


def escape_id(text: str) -> str:
    """Percent-encode ``%``, ``.``, ``#`` and ``*``: the result is one topic word that is
    never a wildcard, and distinct ids stay distinct."""
    return text.translate(_ESCAPES)


def _describe(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else repr(error)


class _Names:
    """Broker names for one exchange (see the module docstring)."""

    def __init__(self, exchange: str) -> None:
        self.exchange = exchange
        self.prefix = escape_id(exchange)
        # One word serves the queue, the presence queue and the routing key; the presence
        # queue's name is the longest of the three.
        self.room = MAX_NAME_BYTES - len(f"{self.prefix}.{PRESENCE_WORD}.".encode())
        if self.room < 100:
            raise ValueError(f"exchange name {exchange!r} is too long to prefix queue names"
                             f" (at most {MAX_NAME_BYTES - 110} bytes once escaped)")
        self.word = functools.lru_cache(maxsize=4096)(self._word)

    def _word(self, agent_id: str) -> str:
        word = escape_id(agent_id)
        if len(word.encode()) <= self.room:
            return word
        tail = ".h-" + hashlib.sha256(agent_id.encode()).hexdigest()[:32]
        head = word.encode()[:self.room - len(tail)].decode(errors="ignore")
        return head + tail

    def queue(self, agent_id: str) -> str:
        return f"{self.prefix}.{self.word(agent_id)}"

    def presence(self, agent_id: str) -> str:
        return f"{self.prefix}.{PRESENCE_WORD}.{self.word(agent_id)}"

    def key(self, to: str) -> str:
        return BROADCAST_KEY if to == BROADCAST else AGENT_KEY_PREFIX + self.word(to)


class _Outgoing:
    """A message on its way to the broker (kept until confirmed, or failed)."""

    __slots__ = ("body", "key", "message", "report", "since", "seq")

    def __init__(self, body: bytes, key: str, message: dict, report: bool) -> None:
        self.body = body
        self.key = key
        self.message = message
        self.report = report  # a failure goes back to the sender as an [error] reply
        self.since = time.monotonic()
        self.seq = 0  # its place in the order of publishing (set on the I/O thread)


class _Flush:
    """A ``flush()``: waits for the messages published up to ``mark`` to be settled."""

    __slots__ = ("mark", "waiting", "future")

    def __init__(self, mark: int, waiting: int, future: concurrent.futures.Future) -> None:
        self.mark = mark
        self.waiting = waiting
        self.future = future


class _Recent:
    """The last ``size`` message ids seen (duplicate detection)."""

    def __init__(self, size: int) -> None:
        self._order: collections.deque[str] = collections.deque()
        self._ids: set[str] = set()
        self._size = size

    def add(self, message_id: str) -> bool:
        """False if ``message_id`` was seen already."""
        if message_id in self._ids:
            return False
        self._ids.add(message_id)
        self._order.append(message_id)
        if len(self._order) > self._size:
            self._ids.discard(self._order.popleft())
        return True


class _Acks:
    """Acknowledgements of one channel's deliveries, sent in as few frames as is safe.

    The broker numbers a channel's deliveries 1, 2, 3...; ``basic_ack(tag, multiple=True)``
    acknowledges every outstanding one up to ``tag``. Handled in order (the usual case),
    a whole round of acknowledgements is one frame instead of one per message. A delivery
    handled out of order, or one never acknowledged (its agent left while it waited), is
    acknowledged alone: a multiple acknowledgement never reaches past a delivery still
    being handled, so nothing unhandled is ever acknowledged.

    Bounded: if more than ``ABOVE_LIMIT`` acknowledged deliveries wait above one never
    acknowledged (an action running for a long time, or a delivery dropped because its
    agent left), this channel goes back to one frame per acknowledgement."""

    ABOVE_LIMIT = 4096

    def __init__(self) -> None:
        self.due: list[int] = []  # handled since the last round
        self._floor: int | None = 0  # every tag up to this one is acknowledged; None: off
        self._above: set[int] = set()  # acknowledged, above the floor

    def take(self) -> list[tuple[int, bool]]:
        """The ``(tag, multiple)`` acknowledgements to send for what is due."""
        due, self.due = self.due, []
        if not due:
            return []
        if self._floor is None:
            return [(tag, False) for tag in due]
        floor, above = self._floor, self._above
        above.update(due)
        while floor + 1 in above:
            floor += 1
            above.discard(floor)
        frames = []
        # Covered by one multiple frame ending at the highest newly due tag within the
        # floor: below it, outstanding tags are all due now (acknowledged ones are not
        # outstanding, and the broker skips them).
        covered = max((tag for tag in due if tag <= floor), default=0)
        if covered:
            frames.append((covered, True))
        frames.extend((tag, False) for tag in due if tag > floor)  # out of order: alone
        self._floor = floor
        if len(above) > self.ABOVE_LIMIT:
            self._floor, self._above = None, set()
        return frames


class _Entry:
    """An agent as the I/O thread sees it."""

    def __init__(self, agent_id: str, core: AgentCore, names: _Names, window: int) -> None:
        self.agent_id = agent_id
        self.core = core
        self.queue = names.queue(agent_id)
        self.presence = names.presence(agent_id)
        self.key = names.key(agent_id)
        self.recent = _Recent(window)
        self.attached: concurrent.futures.Future = concurrent.futures.Future()
        self.claimed_gen = -1  # the connection on which its presence queue was last declared
        self.ever_claimed = False  # so its durable queue is ours to delete
        self.detached = False


class _Leaving:
    """A detach in progress: the queue deletions still awaited."""

    def __init__(self, entry: _Entry, future: concurrent.futures.Future) -> None:
        self.entry = entry
        self.future = future
        self.waiting = 0

    def done_one(self) -> bool:
        """One deletion done; True once all are."""
        self.waiting -= 1
        if self.waiting > 0:
            return False
        if not self.future.done():
            self.future.set_result(None)
        return True


class _Delivery(Ticket):
    """An inbound delivery: acknowledged (on the channel it came from) once handled."""

    __slots__ = ("_link", "_channel", "_tag")

    def __init__(self, link: "_Link", channel: Any, tag: int) -> None:
        super().__init__()
        self._link = link
        self._channel = channel
        self._tag = tag

    def handled(self) -> None:
        self._link.ack(self._channel, self._tag)


_PROPERTIES = None  # pika.BasicProperties, made once pika is known to be there


class _Link:
    """The space's one connection, owned by one I/O thread.

    Other threads only call :meth:`publish`, :meth:`ack`, :meth:`attach`, :meth:`detach`
    and :meth:`close`, which queue a command and wake the loop; everything else runs on
    the I/O thread."""

    def __init__(self, url: str, names: _Names, *, prefetch: int, delivery_timeout: float,
                 window: int, max_in_flight: int,
                 on_failed: Callable[[list[_Outgoing], str], None], thread_name: str) -> None:
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
        self._setup_waiting: set[_Entry] = set()
        self._outbox: collections.deque[_Outgoing] = collections.deque()
        self._unconfirmed: collections.OrderedDict[int, _Outgoing] = collections.OrderedDict()
        self._next_tag = 1
        self._seq = 0  # publishes taken in so far
        self._flushes: list[_Flush] = []
        self._acks = _Acks()
        self._entries: dict[str, _Entry] = {}
        self._presence_ops: collections.deque[tuple] = collections.deque()
        self._presence_busy = False
        self._presence_gen = -1  # the connection whose agents have been queued for claims
        self._inbound: list[tuple] = []  # deliveries for the runtime thread
        self._leaving: list[_Leaving] = []
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

    def publish(self, item: _Outgoing) -> None:
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
        entry = _Entry(agent_id, core, self._names, self._window)
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
        _coalesce_writes(conn)
        conn.channel(on_open_callback=functools.partial(self._on_main_channel, self._gen))

    def _on_main_channel(self, gen: int, channel: Any) -> None:
        if gen != self._gen:
            return
        self._channel = channel
        self._next_tag = 1
        self._acks = _Acks()  # delivery tags start again at 1 on a new channel
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

    def _setup_done(self, entry: _Entry) -> None:
        if entry in self._setup_waiting:
            self._setup_waiting.discard(entry)
            self._check_ready()

    # presence (one operation at a time on the presence channel: a failed claim closes
    # the channel, and releases must follow the claims they undo)

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

    def _on_claimed(self, gen: int, entry: _Entry, _frame: Any) -> None:
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

    def _on_released(self, gen: int, leaving: _Leaving, _frame: Any) -> None:
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

    def _declare(self, entry: _Entry) -> None:
        gen, channel, exchange = self._gen, self._channel, self._names.exchange
        self._doomed.discard(entry.queue)
        channel.queue_declare(entry.queue, durable=True)
        channel.queue_bind(entry.queue, exchange, routing_key=entry.key)
        channel.queue_bind(entry.queue, exchange, routing_key=BROADCAST_KEY)
        channel.basic_consume(entry.queue, functools.partial(self._on_delivery, entry),
                              callback=functools.partial(self._on_consuming, gen, entry))

    def _on_consuming(self, gen: int, entry: _Entry, _frame: Any) -> None:
        if gen != self._gen:
            return
        if not entry.attached.done():
            entry.attached.set_result(None)
        self._setup_done(entry)

    def _on_delivery(self, entry: _Entry, channel: Any, method: Any, _props: Any,
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
        self._inbound.append((entry.core, message, _Delivery(self, channel, tag)))

    def _hand_inbound(self) -> None:
        batch, self._inbound = self._inbound, []
        if batch:
            try:
                batch[0][0].token.run_sync_soon(_inbound_batch, batch)
            except Exception:  # noqa: BLE001 - the runtime has stopped
                pass

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
                    self._flushes.append(_Flush(self._seq, waiting, command[1]))
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

    def _attach(self, entry: _Entry) -> None:
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
        leaving = _Leaving(entry, future)
        self._leaving.append(leaving)
        gen = self._gen
        if entry.ever_claimed:
            leaving.waiting += 1
            self._channel.queue_delete(entry.queue,
                                       callback=functools.partial(self._on_deleted, gen, leaving))
        leaving.waiting += 1
        self._presence_ops.append(("release", leaving))
        self._next_presence_op()

    def _presence_busy_with(self, entry: _Entry) -> bool:
        return bool(self._presence_busy) and self._presence_busy[1] is entry

    def _on_deleted(self, gen: int, leaving: _Leaving, _frame: Any) -> None:
        if gen == self._gen:
            self._left_one(leaving)

    def _left_one(self, leaving: _Leaving) -> None:
        if leaving.done_one():
            if leaving in self._leaving:
                self._leaving.remove(leaving)
            if self._closing:
                self._maybe_finish_close()

    # publishing

    def _flush(self) -> None:
        if not self._ready or not self._channel.is_open:
            return
        channel, outbox, unconfirmed = self._channel, self._outbox, self._unconfirmed
        exchange, properties = self._names.exchange, _PROPERTIES
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
        done: list[_Outgoing] = []
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
        failed: list[_Outgoing] = []
        if self._outbox and self._outbox[0].since < limit or not self._ready:
            kept: collections.deque[_Outgoing] = collections.deque()
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

    def _settled(self, items: list[_Outgoing]) -> None:
        """These are done with (confirmed, or failed and reported): count them off the
        flushes waiting for them."""
        if not self._flushes:
            return
        for flush in self._flushes:
            flush.waiting -= sum(1 for item in items if item.seq <= flush.mark)
            if flush.waiting <= 0 and not flush.future.done():
                flush.future.set_result(None)
        self._flushes = [flush for flush in self._flushes if flush.waiting > 0]

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


def _inbound_batch(batch: list[tuple]) -> None:
    """Runtime thread: deliveries into their agents' cores (one space: one runtime)."""
    for core, message, ticket in batch:
        core.inbound(message, ticket)


def _coalesce_writes(conn: Any) -> None:
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
        global _PROPERTIES
        if _PROPERTIES is None:
            _PROPERTIES = pika.BasicProperties(content_type="application/json",
                                               delivery_mode=pika.DeliveryMode.Persistent)
        if not isinstance(exchange, str) or not exchange or exchange.startswith("amq."):
            raise ValueError(f"exchange must be a non-empty name not starting 'amq.',"
                             f" got {exchange!r}")
        if prefetch < 1:
            raise ValueError("prefetch must be at least 1")
        self._names = _Names(exchange)
        self._operation_timeout = operation_timeout
        super().__init__(runtime_name="amqp-space")
        self._cores: dict[str, AgentCore] = {}  # runtime thread only
        self._leaving: dict[AgentCore, concurrent.futures.Future] = {}
        self._link: _Link | None = None
        try:
            self._link = _Link(url, self._names, prefetch=prefetch,
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
            self._link.publish(_Outgoing(body, self._names.key(message["to"]), message, report))
        except ConnectionError as error:
            self._failed([_Outgoing(body, "", message, report)], str(error))

    def _failed(self, items: list[_Outgoing], reason: str) -> None:
        """Messages that will not reach the broker (I/O thread): tell their senders."""
        try:
            self._background.submit(lambda rt: self._report_failed(items, reason))
        except RuntimeClosed:
            log.warning("AMQP: %d message(s) undelivered: %s", len(items), reason)

    def _report_failed(self, items: list[_Outgoing], reason: str) -> None:
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
