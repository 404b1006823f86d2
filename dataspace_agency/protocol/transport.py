"""Carrying a relay's packets over a stream: :func:`run_stream`.

Latency is what this module is about (issue 5: a round trip through the server, which
crosses four relays, should take <= 400 us). On a socket (a ``trio.SocketStream``:
TCP, with ``TCP_NODELAY`` set by trio, or unix) the relay works on the file
descriptor directly:

* **Reading**: ``os.read``, then wait for the socket to be readable only once a read
  came back short (it took all there was) or would block. trio's ``receive_some``
  yields to the scheduler after every successful read as well: one more trip round
  trio's loop per packet. Fairness is kept by yielding after a run of full reads.
* **Running what arrived**: the packets of a read are handled (each is one turn, run
  at once) and then the deliveries they queued are run right here too
  (``TrioSystem.run_inline``), instead of waking the runtime's drain task for them;
  the relays write the resulting packets (to other connections, or answers) from
  inside those turns. A hop through the server is then one task step and one trip
  round trio's loop: read, turns, writes.
* **Writing**: events are encoded into the relay's open Turn packet as they are made;
  the packet is written (non-blocking ``os.write``) by :meth:`Relay._flush`: on a
  server as soon as the turns that made it are done, on a client once the process has
  nothing else to run (at most ``client.COALESCE`` later), so that what a burst of
  trio tasks makes goes out as one packet (see ``Relay._plan_flush``). The writer
  task only waits for the kernel when a write came back short, and writes the rest
  in order.

* **Backpressure**: before each read, a connection whose :class:`~.relay.FlowControl`
  has another connection congested (too much output waiting for a slow reader) waits
  until that one drains or is cut off (``relay.py``). Input not read stays in the
  kernel's buffers, so the peer's writes block: the producer is slowed, not buffered.
  Likewise a reader waits once the runtime's queue holds more than ``_QUEUE_HIGH``
  deliveries, until it is down to ``_QUEUE_LOW`` (input taken faster than its effects
  are delivered would otherwise pile up there, unbounded, before it ever reaches an
  outgoing buffer: 140 MiB in the server for 300,000 messages, measured).

Any other stream (say, an SSL stream) gets the same protocol through trio's
``receive_some`` / ``send_all`` and a writer task.
"""

from __future__ import annotations

import os

import trio

from ..runtime import RuntimeClosed, TurnFailed
from .codec import DEFAULT_MAX_DEPTH, PacketReader, ProtocolError
from .relay import PeerError, Relay, log

__all__ = ["run_stream"]

_READ_SIZE = 65536
# Reads in a row that found data waiting before the reader yields to other tasks
# anyway (a peer flooding us must not starve the rest of the process).
_GREEDY_READS = 4
# Deliveries queued on the runtime above which readers wait for it to drain to the low
# mark (see the module docstring). A read of 64 KiB of small messages queues about a
# thousand.
_QUEUE_HIGH = 8192
_QUEUE_LOW = 2048


async def _hold_back(relay: Relay) -> None:
    """Before a read: wait while another connection is congested, or while the
    runtime has more queued than it should take on."""
    flow = relay.flow
    if flow.must_wait(relay):
        await flow.wait_clear(relay)
    system = relay.runtime.system
    queue = system._queue
    if len(queue) > _QUEUE_HIGH:
        flow.queue_pauses += 1
        # Not wait_idle(): other work on the same runtime (agents, timers) may keep the
        # queue from ever being empty. Each checkpoint lets the drain task run a batch.
        while len(queue) > _QUEUE_LOW and not system.closed:
            await trio.lowlevel.checkpoint()


async def run_stream(relay: Relay, stream: trio.abc.Stream, *, max_packet: int,
                     peer: str, max_depth: int = DEFAULT_MAX_DEPTH,
                     frozen: bool = False, keep_bytes: bool = False) -> str:
    """Carry ``relay``'s packets over ``stream`` until either side ends it; returns why it
    ended. Bad input from the peer gets an ``Error`` packet, is logged with ``peer``, and
    ends this connection only. On any end the relay is closed (the peer's assertions are
    retracted) and the stream closed. ``frozen``, ``keep_bytes``: see
    :class:`PacketReader`."""
    reader = PacketReader(max_packet, max_depth,
                          relay.plain_depth if relay.plain_bodies else None, frozen,
                          keep_bytes)
    reason = "closed"
    fd = _socket_fd(stream)
    if fd is not None:
        relay._fd = fd
        if relay._out:  # packets made before the stream was attached
            relay._send_now(fd)
    try:
        async with trio.open_nursery() as nursery:
            async def write() -> None:
                try:
                    await relay._writer(stream)
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                    relay.close_reason = relay.close_reason or f"write failed: {exc}"
                nursery.cancel_scope.cancel()

            nursery.start_soon(write)
            try:
                if fd is not None:
                    reason = await _read_socket(relay, fd, reader, peer)
                else:
                    reason = await _read_stream(relay, stream, reader, peer)
            finally:
                relay.close(reason)
                # The writer sends what is queued (an Error packet), then ends; a peer
                # that does not read gets a bounded wait.
                nursery.cancel_scope.deadline = min(nursery.cancel_scope.deadline,
                                                    trio.current_time() + 2)
    finally:
        relay.close(reason)
        relay._fd = None  # never write to the descriptor once it is closed (and reused)
        relay.done.set()
        with trio.CancelScope(shield=True):
            with trio.move_on_after(1):
                try:
                    await stream.aclose()
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                    pass
    return relay.close_reason or reason


def _socket_fd(stream: trio.abc.Stream) -> int | None:
    if isinstance(stream, trio.SocketStream):
        fd = stream.socket.fileno()
        if fd >= 0:
            return fd
    return None


async def _read_socket(relay: Relay, fd: int, reader: PacketReader, peer: str) -> str:
    greedy = 0
    wait = False  # False: try reading first
    while True:
        await _hold_back(relay)
        if wait:
            greedy = 0
            try:
                await trio.lowlevel.wait_readable(fd)
            except trio.ClosedResourceError as exc:
                return f"connection lost: {exc}"
        try:
            data = os.read(fd, _READ_SIZE)
        except BlockingIOError:
            wait = True
            continue
        except OSError as exc:
            return f"connection lost: {exc}"
        reason = _take(relay, reader, data, peer)
        if reason is not None:
            return reason
        # A short read took all there was: wait for more, rather than pay for a read
        # that would only say so (the wait is level-triggered: bytes that arrived
        # meanwhile end it at once).
        wait = len(data) < _READ_SIZE
        if not wait:
            greedy += 1
            if greedy >= _GREEDY_READS:
                greedy = 0
                await trio.lowlevel.checkpoint()


async def _read_stream(relay: Relay, stream: trio.abc.ReceiveStream, reader: PacketReader,
                       peer: str) -> str:
    while True:
        await _hold_back(relay)
        try:
            data = await stream.receive_some(_READ_SIZE)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            return f"connection lost: {exc}"
        reason = _take(relay, reader, data, peer)
        if reason is not None:
            return reason


def _take(relay: Relay, reader: PacketReader, data: bytes, peer: str) -> str | None:
    """Handle the packets completed by ``data`` (a read's bytes; empty: the end of the
    stream) and run what they caused, all now (see the module docstring); None to go on
    reading, or why the connection ends."""
    if not data:
        return "end of stream"
    if relay.closed:
        return relay.close_reason or "closed"
    relay.stats.reads += 1
    reader.feed(data)
    try:
        return relay.runtime.system.run_inline(lambda: _handle(relay, reader))
    except ProtocolError as exc:
        log.warning("%s (%s): protocol error, closing the connection: %s",
                    relay.name, peer, exc)
        relay.send_error(str(exc))
        return f"protocol error: {exc}"
    except PeerError as exc:
        log.warning("%s (%s): %s", relay.name, peer, exc)
        return str(exc)
    except (TurnFailed, RuntimeClosed) as exc:
        if not relay.closed:
            log.error("%s (%s): relay failed: %s", relay.name, peer, exc)
        return f"relay stopped: {exc}"


def _handle(relay: Relay, reader: PacketReader) -> str | None:
    for value in reader:
        relay.handle_value(value, reader.saw_embedded)
        if relay.closed:
            return relay.close_reason or "closed"
    return None
