"""One connection's membrane: the relay between local actors and a peer across a stream.

The same :class:`Relay` serves both ends (the server's side of each connection and our
client). It is an actor of its own on the runtime:

* **Exports** (our objects the peer may address, by oid) and **imports** (the peer's
  objects, each a local proxy ref whose entity turns every event into a packet event),
  both reference counted: a ref is pinned by every assertion that mentions it, for as
  long as that assertion stands, and forgotten when its count reaches zero. Oids we
  issue only grow, so an event for an oid we issued and have since retired (a harmless
  race with a retraction in flight) is ignored, while an oid we never issued is a
  protocol error.
* **Handle maps**: the peer's assertion handles -> the local handles we asserted for
  them (retracted when the peer retracts, or all at once when the connection closes:
  they are published from the relay actor, so stopping it retracts them).
* **Batching**: events for the peer are encoded, as they are made, into one open Turn
  packet (refs rewritten by the encoder as it goes: one walk per value). A server's
  relay writes it as soon as the turns that made it are done (on a socket, from
  inside the runtime's queue: see ``transport.py``); a client's (``coalesce``) once
  its process has nothing else to run, so a burst made by many trio tasks (classic
  actions answering, one per task) is one packet, one write and one turn at the
  server. A packet is closed at 16 KiB, or as soon as it would take the connection
  over its high-water mark.

* **Flow control** (:class:`FlowControl`, docs/limits.md): the bytes waiting to be
  written are counted. Over the high-water mark a connection is *congested*: a server
  stops reading from its other connections until it drains below the low-water mark
  (see ``transport.py``), which pushes back through TCP to whoever produces; one that
  stays congested for ``stall_timeout`` seconds is cut off with an ``Error`` packet
  naming the reason. A client awaits :meth:`Relay.wait_for_room` to be held back.

The parts: ``refs.py`` (table entries, proxies, the embedded-ref walk), ``output.py``
(queueing, writing, flow control: a mixin), ``flow.py`` (the limits shared by a
server's connections).

Bad input (malformed packet, unknown oid, retract of an unknown handle, oversized packet)
raises :class:`~.codec.ProtocolError`; :func:`~.transport.run_stream` answers it with an
``Error`` packet and closes that connection only.

Quirks of the syndicate-py 0.19.3 client tolerated here: a sync's peer embedded twice
(handled by the codec); and, because it crashes on them, we never send it a message
that would introduce a ref it does not hold (such a message is dropped with a warning).
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import trio
from preserves import Embedded
from syndicate import turn
from syndicate.actor import Entity, Ref

from ..runtime import Runtime
from .flow import (DEFAULT_HIGH_WATER, DEFAULT_STALL_TIMEOUT,  # noqa: F401 (re-exported)
                   FlowControl, WireStats)
from .codec import (Assert, ErrorPacket, Message, ProtocolError, Retract, Sync, WireRef,
                    encode_error, encode_event_into, parse_packet, show)
from .output import Output
from .refs import NewRef, Pinned, Proxy, SyncReply, drop_all, map_embedded

log = logging.getLogger(__name__)


class PeerError(ConnectionError):
    """The peer sent us an ``Error`` packet."""


# An open Turn packet is closed and written once it is this long: far below any peer's
# max_packet (DEFAULT_MAX_PACKET is 16 MiB), and large enough that a burst costs few
# packets (about 80 classic messages), and small beside a read (64 KiB): the input a
# server handles at once (one read, plus the rest of a packet it completes) stays near
# one read, which bounds the output it makes at once (docs/limits.md).
_PACKET_TARGET = 16 * 1024


class Relay(Output):
    """The membrane of one connection (see the module docstring). Create it on the
    runtime's thread; drive it with :func:`run_stream`.

    ``export0``: a ref the peer reaches as oid 0 (the server's gatekeeper), pinned for
    the life of the connection. ``import0``: make :attr:`peer0` a ref to the peer's
    oid 0 (the client's view of the gatekeeper). ``flow``: the :class:`FlowControl`
    shared with other connections (a server's); by default one of its own that never
    cuts the connection off (a client's). ``coalesce``: None, each packet is written
    as soon as the turns that made it are done (a server); or seconds, events wait
    until this process has nothing else to run, at most that long, and go out in one
    packet (a client; see :meth:`_plan_flush`). ``plain_bodies``: messages to an
    exported entity with a ``plain_json`` depth (the classic inbox) are read straight
    into JSON (:meth:`plain_depth`; a client's: no such entity lives in a server)."""

    def __init__(self, runtime: Runtime, name: str, *,
                 export0: Callable[["Relay"], Entity] | None = None,
                 import0: bool = False, flow: FlowControl | None = None,
                 coalesce: float | None = None, plain_bodies: bool = False) -> None:
        self.runtime = runtime
        self.name = name
        self.plain_bodies = plain_bodies
        self.facet = runtime.spawn_host(name=name)
        self.closed = False
        self.close_reason = ""
        self.done = trio.Event()  # set once the connection has closed
        self.closing = trio.Event()  # set as soon as the relay closes (before the grace
        # period in which what is queued, say an Error packet, may still be written)
        self._exports: dict[int, Pinned] = {}
        self._export_by_key: dict[tuple[int, int], Pinned] = {}
        self._imports: dict[int, Pinned] = {}
        self._next_oid = 0
        self._inbound: dict[int, tuple[int | None, list]] = {}  # peer handle -> (ours, pins)
        self._outbound: dict[int, list] = {}  # our handle -> pins
        self.coalesce = coalesce
        self._packet = bytearray()  # the open Turn packet's events (see _add_event)
        self._packet_events = 0
        self._flush_planned = False
        self._out: list[bytes | memoryview] = []  # written in order, then dropped
        self._wakeup: trio.Event | None = None  # the writer task waits on it
        self._finished = False
        self._fd: int | None = None  # the socket, once attached (see transport.py)
        self._write_error: OSError | None = None
        # Flow control (see FlowControl). The first entry of _out may be the rest of a
        # packet partly written (_head_partial); the others are whole packets, so that a
        # connection cut off can still end with a well-formed Error packet.
        self.flow = flow if flow is not None else FlowControl(stall_timeout=None)
        self.out_bytes = 0  # bytes waiting to be written
        self.peak_out_bytes = 0
        self.stats = WireStats()
        self._head_partial = False
        self._congested_since: float | None = None
        self._room: trio.Event | None = None  # set when a congestion ends
        self._write_scope: trio.CancelScope | None = None  # the writer's wait, if any
        self.peer0: Ref | None = None
        if export0 is not None:
            entry = self._export(Ref(self.facet, export0(self)), [])
            entry.permanent = True
        if import0:
            entry = self._import(0, [])
            entry.permanent = True
            self.peer0 = entry.ref
        self.facet.actor.at_exit(lambda: self._actor_exited())

    # --- tables ----------------------------------------------------------------------------

    def _export(self, ref: Ref, pins: list) -> Pinned:
        key = (id(ref.facet), id(ref.entity))
        entry = self._export_by_key.get(key)
        if entry is None or self._exports.get(entry.oid) is not entry:
            entry = Pinned(self._next_oid, ref, self._exports)
            self._next_oid += 1
            self._exports[entry.oid] = entry
            self._export_by_key[key] = entry
        entry.grab(pins)
        return entry

    def _import(self, oid: int, pins: list) -> Pinned:
        entry = self._imports.get(oid)
        if entry is None:
            proxy = Proxy(self, oid)
            entry = Pinned(oid, Ref(self.facet, proxy), self._imports)
            proxy.entry = entry
            self._imports[oid] = entry
        entry.grab(pins)
        return entry

    def plain_depth(self, oid: int) -> int:
        """How deep the JSON in a message to ``oid`` may nest, if its entity takes the
        message's captures as :class:`~.wire_values.PlainJSON` (a ``plain_json``
        attribute: the classic inbox, which converts them to JSON at once); else 0, and
        the message is decoded as Preserves values. Oids are never reused, so what an
        oid names when its message is decoded is what it names when it is delivered (or
        nothing, and the message is ignored)."""
        entry = self._exports.get(oid)
        return getattr(entry.ref.entity, "plain_json", 0) if entry is not None else 0

    @property
    def export_count(self) -> int:
        return len(self._exports)

    @property
    def import_count(self) -> int:
        return len(self._imports)

    # --- inbound ---------------------------------------------------------------------------

    def handle_value(self, value: Any, saw_embedded: bool = True) -> None:
        """Process one decoded packet (runtime thread). Raises :class:`ProtocolError` for
        bad input and :class:`PeerError` for an ``Error`` packet."""
        if self.closed:
            return
        packet = parse_packet(value)
        if packet is None:
            return
        if isinstance(packet, ErrorPacket):
            raise PeerError(f"peer reported an error: {packet.message:.200} "
                            f"({show(packet.detail)})")
        self.stats.packets_in += 1
        self.stats.events_in += len(packet)
        errors: list[ProtocolError] = []

        def run() -> None:
            try:
                self._in_turn(packet, saw_embedded)
            except ProtocolError as exc:
                errors.append(exc)

        self.runtime.run_turn(self.facet, run)
        if errors:
            raise errors[0]

    def _target(self, oid: int) -> Pinned | None:
        entry = self._exports.get(oid)
        if entry is None and not 0 <= oid < self._next_oid:
            raise ProtocolError(f"event for unknown OID {show(oid)}")
        return entry  # None: an oid we retired; the event is ignored

    def _in_turn(self, events: list, saw_embedded: bool) -> None:
        for oid, event in events:
            target = self._target(oid)
            kind = type(event)
            if kind is Message:
                if target is None:
                    continue
                pins: list = []
                body = self._rewrite_in(event.body, pins) if saw_embedded else event.body
                ref = target.ref
                if getattr(ref.entity, "routed_inline", False):
                    self._tell_inline(ref, body)
                else:
                    turn.send(ref, body)
                if pins:
                    drop_all(pins)
            elif kind is Assert:
                handle = event.handle
                if handle in self._inbound:
                    raise ProtocolError(f"assert of handle {show(handle)}, which is already asserted")
                pins = []
                if target is None:
                    self._inbound[handle] = (None, pins)
                    continue
                target.grab(pins)
                value = self._rewrite_in(event.value, pins) if saw_embedded else event.value
                self._inbound[handle] = (turn.publish(target.ref, value), pins)
            elif kind is Retract:
                found = self._inbound.pop(event.handle, None)
                if found is None:
                    raise ProtocolError(f"retract of unknown handle {show(event.handle)}")
                local, pins = found
                if local is not None:
                    turn.retract(local)
                drop_all(pins)
            else:  # Sync
                pins = []
                peer = self._ref_in(event.peer, pins)
                if target is None:
                    turn.send(peer, True)  # nothing to wait for at a retired object
                    drop_all(pins)
                    continue

                def answer(peer: Ref = peer, pins: list = pins) -> None:
                    turn.send(peer, True)
                    drop_all(pins)
                turn.sync(target.ref, answer)

    def _tell_inline(self, ref: Ref, body: Any) -> None:
        """A message for an entity of this process marked ``routed_inline`` (the
        classic adapter's inbox: it only parses and queues work of its own): told here,
        inside the relay's turn, as a dataspace of this process tells it inside its
        routing turn (``dataspace/entity.py``), instead of in a turn of its own actor
        made for the purpose (a closure, a queued delivery and a turn per message and
        agent). Skipped once its facet has stopped, as a message to a stopped facet is.
        Its failure is its own: logged, never taken for the connection's."""
        if not ref.facet.alive:
            return
        try:
            ref.entity.on_message(body)
        except Exception:
            log.exception("%s: a message handler failed (message dropped)", self.name)

    def _rewrite_in(self, value: Any, pins: list) -> Any:
        return map_embedded(value, lambda wire: Embedded(self._ref_in(wire, pins)))

    def _ref_in(self, wire: Any, pins: list) -> Ref:
        if not isinstance(wire, WireRef):
            raise ProtocolError(f"embedded value is not a wire ref: {show(wire, 100)}")
        if wire.mine:
            return self._import(wire.oid, pins).ref
        if wire.attenuation:
            raise ProtocolError("attenuated refs are not supported")
        entry = self._target(wire.oid)
        if entry is None:
            return Ref(self.facet, Entity())  # a retired object: events to it go nowhere
        entry.grab(pins)
        return entry.ref

    # --- outbound (runtime thread, in turns delivering to proxies) -------------------------

    def _ref_out(self, ref: Any, pins: list, transient: bool) -> tuple:
        """What goes on the wire after the embedded tag for ``ref``, pinned in ``pins``."""
        if not isinstance(ref, Ref):
            raise TypeError(f"only refs can be embedded in what goes to a peer, got {ref!r:.100}")
        entity = ref.entity
        if type(entity) is Proxy and entity.relay is self:
            entity.entry.grab(pins)
            return (1, entity.oid)
        if transient:
            entry = self._export_by_key.get((id(ref.facet), id(entity)))
            if entry is None or self._exports.get(entry.oid) is not entry:
                raise NewRef()
            entry.grab(pins)
            return (0, entry.oid)
        return (0, self._export(ref, pins).oid)

    # Events are encoded as they are made, into the open Turn packet (one walk of the
    # value, refs rewritten by the encoder's embed callback), so what a burst makes goes
    # out as one packet; and a value that cannot be sent is refused here, alone. The
    # packet is closed and written by _flush: see _plan_flush for when.

    def _add_event(self, oid: int, event: Any, pins: list | None, transient: bool) -> bool:
        """Encode ``event`` for ``oid`` into the open packet, its refs pinned in ``pins``
        (None: it has none to rewrite); False (nothing added) if it cannot be sent."""
        packet = self._packet
        mark = len(packet)
        try:
            if pins is None:
                encode_event_into(packet, oid, event)
            else:
                encode_event_into(packet, oid, event,
                                  lambda ref: self._ref_out(ref, pins, transient))
        except NewRef:
            del packet[mark:]
            log.warning("%s: dropping a message that would introduce a new ref to the peer "
                        "(the protocol forbids it): %s", self.name, show(event))
            return False
        except TypeError as exc:  # not a ref, or not a Preserves value
            del packet[mark:]
            log.warning("%s: not sending %s: %s", self.name, type(event).__name__.lower(), exc)
            return False
        self._packet_events += 1
        if not self._flush_planned:
            self._plan_flush()
        if (len(packet) >= _PACKET_TARGET
                or self.out_bytes + len(packet) > self.flow.high_water):
            # Bounded packets (the peer's max_packet; no long stall), and flow control
            # sees the open packet's bytes at once: over the high-water mark it is
            # written (queued) now, so the connection is congested one event past it.
            self._flush()
        return True

    def _plan_flush(self) -> None:
        """See that the open packet is written: as soon as what the runtime is running
        now is done (queued behind it), or, with ``coalesce`` (a client), once this
        process has nothing else to run (``_writer``). The first keeps a server's
        latency down; the second gathers the events that trio tasks make one after
        another (classic actions answering a burst, one per task) into one packet,
        instead of a packet, a write and a turn at the server for each."""
        self._flush_planned = True
        if self.coalesce is None:
            self.runtime.system.queue_task(self._flush)
        else:
            self._wake_writer()

    def _out_assert(self, proxy: Proxy, value: Any, handle: int) -> None:
        if self.closed:
            return
        pins: list = []
        if not self._add_event(proxy.oid, Assert(value, handle), pins, False):
            drop_all(pins)
            return
        proxy.entry.grab(pins)
        self._outbound[handle] = pins

    def _out_retract(self, proxy: Proxy, handle: int) -> None:
        pins = self._outbound.pop(handle, None)
        if pins is None or self.closed:
            return  # never sent (see _out_assert)
        self._add_event(proxy.oid, Retract(handle), None, False)
        drop_all(pins)

    def _out_message(self, proxy: Proxy, value: Any) -> None:
        if self.closed:
            return
        pins: list = []
        self._add_event(proxy.oid, Message(value), pins, True)
        if pins:
            drop_all(pins)

    def _out_sync(self, proxy: Proxy, peer: Ref) -> None:
        if self.closed:
            return
        pins: list = []
        proxy.entry.grab(pins)
        reply = Ref(self.facet, SyncReply(peer, pins))
        entry = self._export(reply, pins)
        self._add_event(proxy.oid, Sync(WireRef(True, entry.oid)), None, False)

    # --- closing ---------------------------------------------------------------------------

    def send_error(self, message: str, detail: Any = False) -> None:
        """Queue an ``Error`` packet (after what is pending); the caller then closes."""
        self._flush()
        self._write(encode_error(message, detail))

    def close(self, reason: str = "closed") -> None:
        """Stop the relay actor: everything the peer asserted here is retracted. No more
        packets are made after this (an error already queued is still written)."""
        if not self.closed:
            self.close_reason = reason
            self._flush()
            self.closed = True
            if self.facet.actor.alive and not self.runtime.system.closed:
                self.runtime.stop_actor(self.facet.actor)
        self._finish_output()

    def _actor_exited(self) -> None:
        # The relay actor stopped (or crashed, or the runtime is shutting down): the
        # connection goes with it.
        if not self.closed:
            self.close_reason = self.close_reason or "relay stopped"
            self.closed = True
        self._finish_output()
