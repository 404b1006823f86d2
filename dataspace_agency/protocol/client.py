"""The client: a dataspace on a server, with the same native API as an in-process one.

From trio code::

    async with connect('<tcp "127.0.0.1" 8001>', cap) as ds:   # a RemoteDataspaceHandle
        ds.publish(Record(Symbol("Present"), ["alice"]))
        async with ds.observe(P.rec("Present", P.CAPTURE)) as events: ...
        await ds.sync()

From synchronous code (a REPL, a script)::

    with connect_sync('<unix "/tmp/ds.sock">', cap) as ds:     # a SyncDataspaceClient
        ds.publish(...); ds.sync(); ds.query(pattern)

``address`` is ``<tcp "HOST" PORT>`` or ``<unix "PATH">`` (Preserves text or value), or
the ``(host, port)`` / path shorthand; ``cap`` is a sturdyref (text or value). The server's
gatekeeper may answer ``<accepted #:ds>`` (our server, syndicate-server of 0.19.3's era)
or ``<ok #:ds>`` (newer syndicate-server); both are understood.

Reconnection. By default a handle is bound to one connection: when it ends, what the
handle asserted is gone (the server retracted it), and ``reconnect()`` makes a fresh
connection on which everything must be published and observed again. With
``reconnect=True`` (or a :class:`Reconnect` policy) the handle keeps its state instead:

* Its ``ref`` is a local forwarding entity (:class:`_Forwarder`) that records every
  assertion made through it (presence, observers, request and reply facts: anything
  published by the handle, its observers, or actors it spawned) and forwards it to the
  current connection.
* A supervisor task notices the connection end and retries with bounded exponential
  backoff (``Reconnect.initial`` doubling up to ``Reconnect.maximum`` seconds, for
  ``Reconnect.attempts`` tries or for ever). On success the forwarder asserts
  everything it holds on the new connection, so observers get the server's replay.
* What the old connection delivered is retracted locally when it ends (the relay
  publishes inbound assertions from its own actor, which stops with the connection):
  observers see ``removed`` events for it, then ``added`` again after the replay.
* Messages sent while disconnected are queued, up to ``Reconnect.max_queued`` (then
  dropped, with one warning per outage; ``handle.dropped_messages`` counts them), and
  sent after the re-assertions. ``sync()`` while disconnected waits for the next
  connection; a sync in flight when the connection ended is sent again.
* Refs the server handed out through the old connection (other clients' objects) do
  not survive it; the dataspace ref does.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import queue
import threading
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable, Iterator

import preserves
import trio
from preserves import Embedded, Record, Symbol
from syndicate import turn
from syndicate.actor import Entity, Ref, Turn

from ..native import DataspaceHandle, Event
from ..runtime import BackgroundRuntime, Runtime
from .codec import DEFAULT_MAX_PACKET
from .relay import Relay
from .transport import run_stream
from .sturdy import parse_cap

__all__ = ["ConnectionFailed", "Reconnect", "RemoteDataspaceHandle", "SyncDataspaceClient",
           "address_text", "connect", "connect_sync", "open_connection", "parse_address"]

log = logging.getLogger(__name__)

_TCP, _UNIX = Symbol("tcp"), Symbol("unix")
_RESOLVE, _ACCEPTED, _OK, _REJECTED = (Symbol("resolve"), Symbol("accepted"), Symbol("ok"),
                                       Symbol("rejected"))


class ConnectionFailed(ConnectionError):
    """Could not connect, or the server refused the capability; the text says which."""


def parse_address(address: Any) -> tuple[str, Any]:
    """``("tcp", (host, port))`` or ``("unix", path)`` from any accepted address form:
    ``(host, port)``, ``<tcp "HOST" PORT>`` / ``<unix "PATH">`` (Preserves text or value),
    ``HOST:PORT`` (TCP, as ``serve --tcp`` takes it; ``[::1]:PORT`` for IPv6), or any other
    string, a unix socket path."""
    if isinstance(address, tuple) and len(address) == 2 and isinstance(address[1], int):
        return "tcp", (str(address[0]), address[1])
    if isinstance(address, str) and not address.lstrip().startswith("<"):
        # HOST:PORT is TCP, as `serve --tcp` writes it; a unix socket path that looks
        # like one can still be given as <unix "PATH">.
        host, sep, port = address.strip().rpartition(":")
        bracketed = host.startswith("[") and host.endswith("]")  # [::1]:PORT
        if (sep and host and port.isdigit() and int(port) <= 65535 and "/" not in host
                and (bracketed or ":" not in host)):
            return "tcp", (host[1:-1] if bracketed else host, int(port))
        return "unix", address
    if isinstance(address, str):
        try:
            address = preserves.parse(address)
        except Exception as exc:  # noqa: BLE001
            raise ValueError(f"not an address in Preserves text: {address!r} ({exc})") from None
    address = preserves.preserve(address)
    if isinstance(address, Record):
        fields = address.fields
        if (address.key == _TCP and len(fields) == 2 and isinstance(fields[0], str)
                and isinstance(fields[1], int)):
            return "tcp", (fields[0], fields[1])
        if address.key == _UNIX and len(fields) == 1 and isinstance(fields[0], str):
            return "unix", fields[0]
    raise ValueError(f'unsupported address {address!r}: want HOST:PORT, <tcp "HOST" PORT>'
                     f' or <unix "PATH">')


def address_text(address: Any) -> str:
    """The Preserves text of any accepted address form (``<tcp "H" P>`` / ``<unix "P">``),
    for handing an address to another process."""
    kind, where = parse_address(address)
    value = (Record(_TCP, [where[0], where[1]]) if kind == "tcp"
             else Record(_UNIX, [where]))
    return preserves.stringify(value)


@dataclass(frozen=True)
class Reconnect:
    """How a handle reconnects (see the module docstring). After a connection ends, try
    at once, then wait ``initial`` seconds, multiplied by ``factor`` after each failed
    try up to ``maximum``; give up after ``attempts`` failed tries (None: never, until
    the handle is closed). ``max_queued``: messages held while disconnected."""

    initial: float = 0.05
    factor: float = 2.0
    maximum: float = 2.0
    attempts: int | None = None
    max_queued: int = 1000

    def __post_init__(self) -> None:
        if not (self.initial > 0 and self.factor >= 1 and self.maximum >= self.initial):
            raise ValueError(f"want initial > 0, factor >= 1, maximum >= initial: {self!r}")
        if self.attempts is not None and self.attempts < 1:
            raise ValueError(f"attempts must be None or at least 1, got {self.attempts}")
        if self.max_queued < 0:
            raise ValueError(f"max_queued must be >= 0, got {self.max_queued}")

    @staticmethod
    def of(value: "bool | Reconnect | None") -> "Reconnect | None":
        """The policy for a ``reconnect=`` argument (True: the defaults; False: none)."""
        if value is None or value is False:
            return None
        if value is True:
            return Reconnect()
        if isinstance(value, Reconnect):
            return value
        raise TypeError(f"reconnect must be a bool or a Reconnect policy, got {value!r}")


class _Resolution(Entity):
    """Receives the gatekeeper's answer."""

    def __init__(self) -> None:
        self.answered = trio.Event()
        self.ds: Ref | None = None
        self.error: str | None = None

    def on_publish(self, value: Any, handle: int) -> None:
        if self.answered.is_set():
            return
        if (isinstance(value, Record) and value.key in (_ACCEPTED, _OK)
                and len(value.fields) >= 1 and isinstance(value.fields[0], Embedded)
                and isinstance(value.fields[0].embeddedValue, Ref)):
            self.ds = value.fields[0].embeddedValue
        elif isinstance(value, Record) and value.key == _REJECTED:
            self.error = f"the server rejected the capability: {value.fields[0] if value.fields else value!r}"
        else:
            self.error = f"unexpected answer from the gatekeeper: {value!r:.200}"
        self.answered.set()


class Connection:
    """One connection to a server: the relay, its stream, and the resolved dataspace."""

    def __init__(self, relay: Relay, ds: Ref, address: str) -> None:
        self.relay = relay
        self.ds = ds
        self.address = address

    @property
    def closed(self) -> bool:
        return self.relay.closed

    @property
    def close_reason(self) -> str:
        return self.relay.close_reason

    async def wait_closed(self) -> None:
        await self.relay.done.wait()

    def close(self) -> None:
        """Close the connection (runtime thread); the server retracts what it held."""
        self.relay.close("closed by the client")


async def _open_stream(kind: str, where: Any) -> trio.SocketStream:
    if kind == "tcp":
        return await trio.open_tcp_stream(*where)
    return await trio.open_unix_socket(where)


# A client's relay gathers what it sends until this process has nothing else to run, for
# at most this long (Relay's ``coalesce``): a burst costs one packet, one write and one
# turn at the server instead of one per event (docs/server.md, "Where the time goes").
COALESCE = 0.001  # seconds


async def open_connection_raw(runtime: Runtime, address: Any, cap: Any, *,
                              timeout: float = 10.0,
                              max_packet: int = DEFAULT_MAX_PACKET) -> Connection:
    """Connect and resolve ``cap``; the connection's tasks run in the runtime's nursery
    (call from the runtime's trio thread)."""
    kind, where = parse_address(address)
    step = parse_cap(cap)
    label = f"{kind}:{where}"
    try:
        with trio.fail_after(timeout):
            stream = await _open_stream(kind, where)
    except (OSError, trio.TooSlowError) as exc:
        raise ConnectionFailed(f"cannot connect to {label}: {exc or 'timed out'}") from None
    relay = Relay(runtime, f"client {label}", import0=True, coalesce=COALESCE)
    runtime.system.nursery.start_soon(
        lambda: run_stream(relay, stream, max_packet=max_packet, peer=label))
    resolution = _Resolution()

    def resolve() -> None:
        turn.publish(relay.peer0, Record(_RESOLVE, [step, Embedded(turn.ref(resolution))]))
    try:
        runtime.run_turn(relay.facet, resolve)
        with trio.move_on_after(timeout) as waited:
            async with trio.open_nursery() as nursery:
                async def closed() -> None:
                    await relay.done.wait()
                    nursery.cancel_scope.cancel()
                nursery.start_soon(closed)
                await resolution.answered.wait()
                nursery.cancel_scope.cancel()
    except BaseException:  # cancelled (say, a reconnecting handle being closed)
        if not runtime.system.closed:
            relay.close("cancelled while connecting")
        raise
    if resolution.ds is None:
        why = (resolution.error or (f"connection closed: {relay.close_reason}" if relay.closed
                                    else f"no answer within {timeout} s"))
        relay.close(why)
        raise ConnectionFailed(f"{label}: {why}")
    del waited
    return Connection(relay, resolution.ds, label)




class _Forwarder(Entity):
    """A reconnecting handle's ``ref``: records what is asserted through it and forwards
    everything to the current connection's dataspace (see the module docstring). Runs
    in the handle's facet; :meth:`attach` / :meth:`detach` are called in turns there."""

    def __init__(self, max_queued: int) -> None:
        self.target: Ref | None = None  # the current connection's dataspace, if any
        self.held: dict[int, Any] = {}  # handle made to us -> value
        self.upstream: dict[int, int] = {}  # handle made to us -> handle on the connection
        self.syncs: dict[int, Ref] = {}  # unanswered syncs: key -> whom to answer
        self._next_sync = 0
        self.queued: collections.deque[Any] = collections.deque()
        self.max_queued = max_queued
        self.dropped = 0
        self._warned = False

    def on_publish(self, value: Any, handle: int) -> None:
        self.held[handle] = value
        if self.target is not None:
            self.upstream[handle] = turn.publish(self.target, value)

    def on_retract(self, handle: int) -> None:
        self.held.pop(handle, None)
        upstream = self.upstream.pop(handle, None)
        if upstream is not None:
            turn.retract(upstream)

    def on_message(self, value: Any) -> None:
        if self.target is not None:
            turn.send(self.target, value)
        elif len(self.queued) < self.max_queued:
            self.queued.append(value)
        else:
            self.dropped += 1
            if not self._warned:
                self._warned = True
                log.warning("disconnected and %d messages queued already: dropping messages"
                            " until the connection is back", self.max_queued)

    def on_sync(self, peer: Ref) -> None:
        key = self._next_sync
        self._next_sync += 1
        self.syncs[key] = peer
        if self.target is not None:
            self._sync_upstream(key)

    def _sync_upstream(self, key: int) -> None:
        def answered() -> None:
            peer = self.syncs.pop(key, None)  # None: answered through a later connection
            if peer is not None:
                turn.send(peer, True)
        turn.sync(self.target, answered)

    def attach(self, target: Ref) -> None:
        """A new connection: assert everything held, send what was queued, sync again."""
        self.target = target
        self._warned = False
        for handle, value in self.held.items():
            self.upstream[handle] = turn.publish(target, value)
        while self.queued:
            turn.send(target, self.queued.popleft())
        for key in list(self.syncs):
            self._sync_upstream(key)

    def detach(self) -> None:
        """The connection has ended (the server has dropped what we asserted there)."""
        self.target = None
        for upstream in self.upstream.values():
            turn.retract(upstream)  # to a closed relay: only forgets the handle here
        self.upstream.clear()


class RemoteDataspaceHandle(DataspaceHandle):
    """A :class:`~dataspace_agency.native.DataspaceHandle` whose dataspace is on a server:
    publish, retract, message, sync, observe, query and spawn work unchanged (``spawn``ed
    actors run here and reach the remote dataspace through the connection). With a
    ``reconnect`` policy, its state survives the connection (see the module docstring)."""

    def __init__(self, runtime: Runtime, connection: Connection, address: Any, cap: Any,
                 options: dict, reconnect: Reconnect | None = None) -> None:
        facet = runtime.spawn_host("remote-client")
        self._policy = reconnect
        self._forwarder: _Forwarder | None = None
        ref = connection.ds
        if reconnect is not None:
            self._forwarder = _Forwarder(reconnect.max_queued)
            ref = runtime.run_turn(facet, lambda: turn.ref(self._forwarder))
        super().__init__(runtime, ref, None, facet)
        self.connection = connection
        self._address, self._cap, self._options = address, cap, options
        self.reconnections = 0  # connections made again after one ended
        self.last_disconnect = ""  # why the last connection ended
        self.gave_up = False  # the policy's tries ran out: no more reconnecting
        self._closing = False
        self._changed = trio.Event()  # set (and replaced) at each connect / disconnect
        self._supervisor = trio.CancelScope()
        if reconnect is not None:
            runtime.run_turn(facet, lambda: self._forwarder.attach(connection.ds))
            runtime.system.nursery.start_soon(self._supervise)

    # publish, retract and message run what they cause at once (run_inline), so that
    # the event is in the relay's open packet when they return, with no wait for the
    # runtime's drain task to get its turn; the packet goes out once this process is
    # idle (the relay's ``coalesce``), so a burst of calls costs one write.

    def publish(self, value: Any) -> int:
        return self.runtime.system.run_inline(
            lambda: super(RemoteDataspaceHandle, self).publish(value))

    def retract(self, handle: int) -> None:
        self.runtime.system.run_inline(
            lambda: super(RemoteDataspaceHandle, self).retract(handle))

    def message(self, value: Any) -> None:
        self.runtime.system.run_inline(
            lambda: super(RemoteDataspaceHandle, self).message(value))

    async def wait_writable(self) -> None:
        """Backpressure for a producer (docs/limits.md): returns at once unless more
        than the high-water mark waits to be written to the server, else once it has
        drained below the low-water mark. Await it between sends in a loop."""
        await self.connection.relay.wait_for_room()

    @property
    def connected(self) -> bool:
        return not self.connection.closed

    @property
    def dropped_messages(self) -> int:
        """Messages dropped while disconnected (the queue was full)."""
        return self._forwarder.dropped if self._forwarder is not None else 0

    async def wait_connected(self) -> bool:
        """Wait until connected; True then, False if it never will be (no reconnect
        policy, the policy gave up, or the handle is closed). Bound it with a timeout."""
        while True:
            changed = self._changed
            if self.connected:
                return True
            if self._policy is None or self.gave_up or self._closing:
                return False
            await changed.wait()

    def _notify(self) -> None:
        changed, self._changed = self._changed, trio.Event()
        changed.set()

    async def _supervise(self) -> None:
        """Notice each connection end and connect again (reconnecting handles)."""
        policy = self._policy
        assert policy is not None and self._forwarder is not None
        with self._supervisor:
            while True:
                await self.connection.wait_closed()
                if self._closing or self.runtime.system.closed:
                    return
                self.last_disconnect = self.connection.close_reason
                log.warning("connection to %s ended (%s): reconnecting",
                            self.connection.address, self.last_disconnect)
                self.runtime.run_turn(self.facet, self._forwarder.detach)
                self._notify()
                connection = await self._connect_again(policy)
                if connection is None:
                    self.gave_up = True
                    self._notify()
                    return
                self.connection = connection
                self.reconnections += 1
                self.runtime.run_turn(self.facet, lambda: self._forwarder.attach(connection.ds))
                self._notify()
                log.info("reconnected to %s", connection.address)

    async def _connect_again(self, policy: Reconnect) -> Connection | None:
        delay, tries = policy.initial, 0
        while True:
            tries += 1
            try:
                return await open_connection_raw(self.runtime, self._address, self._cap,
                                                 **self._options)
            except ConnectionFailed as exc:
                if policy.attempts is not None and tries >= policy.attempts:
                    log.error("giving up reconnecting after %d tries: %s", tries, exc)
                    return None
                log.debug("reconnecting (try %d) failed: %s; next in %.3f s", tries, exc,
                          delay)
            await trio.sleep(delay)
            delay = min(delay * policy.factor, policy.maximum)

    async def reconnect(self) -> None:
        """Without a reconnect policy: close this connection and open a new one (see the
        module docstring). With one: drop the connection and wait until the handle has
        reconnected with its state."""
        if self._policy is not None:
            old = self.connection
            old.close()
            while True:
                changed = self._changed
                if self.connection is not old or self.gave_up or self._closing:
                    break
                await changed.wait()
            if not await self.wait_connected():
                raise ConnectionFailed(f"could not reconnect to {old.address}")
            return
        self.close()
        connection = await open_connection_raw(self.runtime, self._address, self._cap,
                                               **self._options)
        self.connection, self.ref = connection, connection.ds
        self.facet = self.runtime.spawn_host("remote-client")

    def close(self) -> None:
        """Retract what this handle asserted and close the connection; the retractions
        are written before the connection closes."""
        self._closing = True
        self._supervisor.cancel()
        self._notify()
        if self.runtime.system.closed:
            return
        if Turn.active is None:
            # Stop the handle's actor and deliver what that retracts now, so that the
            # relay has the retractions queued when it closes (it flushes them then).
            self.runtime.system.run_inline(lambda: DataspaceHandle.close(self))
            self.runtime.system.drain_now()
        else:
            DataspaceHandle.close(self)
        self.connection.close()


async def open_connection(runtime: Runtime, address: Any, cap: Any, *, timeout: float = 10.0,
                          max_packet: int = DEFAULT_MAX_PACKET,
                          reconnect: bool | Reconnect = False) -> RemoteDataspaceHandle:
    """A handle to the dataspace ``cap`` resolves to at ``address`` (runtime thread);
    close it with ``handle.close()``. ``reconnect``: keep the handle's state across
    connections (True, or a :class:`Reconnect` policy; see the module docstring)."""
    policy = Reconnect.of(reconnect)
    options = {"timeout": timeout, "max_packet": max_packet}
    connection = await open_connection_raw(runtime, address, cap, **options)
    return RemoteDataspaceHandle(runtime, connection, address, cap, options, policy)


@contextlib.asynccontextmanager
async def connect(address: Any, cap: Any, runtime: Runtime | None = None, *,
                  timeout: float = 10.0, max_packet: int = DEFAULT_MAX_PACKET,
                  reconnect: bool | Reconnect = False) -> AsyncIterator[RemoteDataspaceHandle]:
    """A handle to a remote dataspace for the block (opens a runtime if none is given)."""
    if runtime is not None:
        handle = await open_connection(runtime, address, cap, timeout=timeout,
                                       max_packet=max_packet, reconnect=reconnect)
        try:
            yield handle
        finally:
            handle.close()
        return
    from ..runtime import open_runtime
    failure: ConnectionFailed | None = None
    async with open_runtime() as runtime:
        try:
            handle = await open_connection(runtime, address, cap, timeout=timeout,
                                           max_packet=max_packet, reconnect=reconnect)
        except ConnectionFailed as exc:
            failure = exc  # raised below, outside the runtime's nursery (not in a group)
        else:
            try:
                yield handle
            finally:
                handle.close()
    if failure is not None:
        raise failure


class SyncDataspaceClient:
    """The client for synchronous code: a :class:`RemoteDataspaceHandle` driven on a
    :class:`~dataspace_agency.runtime.BackgroundRuntime`. Made by :func:`connect_sync`."""

    def __init__(self, address: Any, cap: Any, *, timeout: float = 10.0,
                 max_packet: int = DEFAULT_MAX_PACKET,
                 reconnect: bool | Reconnect = False) -> None:
        self._timeout = timeout
        self._background = BackgroundRuntime(name="dataspace-client")
        try:
            self.handle: RemoteDataspaceHandle = self._background.call_async(
                lambda rt: open_connection(rt, address, cap, timeout=timeout,
                                           max_packet=max_packet, reconnect=reconnect))
        except BaseException:
            self._background.close()
            raise

    def publish(self, value: Any) -> int:
        self._hold_back()
        return self._background.call(lambda rt: self.handle.publish(value))

    def retract(self, handle: int) -> None:
        self._background.call(lambda rt: self.handle.retract(handle))

    def message(self, value: Any) -> None:
        self._hold_back()
        self._background.call(lambda rt: self.handle.message(value))

    def _hold_back(self) -> None:
        # Backpressure (docs/limits.md): block while the outgoing buffer is congested.
        if self.handle.connection.relay.congested:
            self._background.call_async(lambda rt: self.handle.wait_writable())

    def sync(self) -> None:
        """Return once the server has processed everything sent before."""
        async def sync(_rt: Runtime) -> None:
            with trio.fail_after(self._timeout):
                await self.handle.sync()
        self._background.call_async(sync)

    def query(self, pattern: Any) -> list[tuple]:
        async def query(_rt: Runtime) -> list[tuple]:
            with trio.fail_after(self._timeout):
                return await self.handle.query(pattern)
        return self._background.call_async(query)

    @contextlib.contextmanager
    def observe(self, pattern: Any) -> Iterator["queue.Queue[Event]"]:
        """Observe ``pattern`` for the block; yields a ``queue.Queue`` of :class:`Event`s
        (filled from the runtime's thread)."""
        events: queue.Queue[Event] = queue.Queue()
        opened = threading.Event()
        stops: list[trio.Event] = []
        failures: list[Exception] = []

        async def pump() -> None:
            done = trio.Event()
            stops.append(done)
            try:
                async with self.handle.observe(pattern) as channel:
                    opened.set()
                    async with trio.open_nursery() as nursery:
                        async def forward() -> None:
                            async for event in channel:
                                events.put(event)
                        nursery.start_soon(forward)
                        await done.wait()
                        nursery.cancel_scope.cancel()
            except Exception as exc:  # noqa: BLE001 - reported to the caller below
                failures.append(exc)
                opened.set()

        self._background.call(lambda rt: rt.system.nursery.start_soon(pump))
        if not opened.wait(self._timeout):
            raise TimeoutError("observing did not start")
        if failures:
            raise failures[0]
        try:
            yield events
        finally:
            self._background.call(lambda rt: stops[0].set())

    def spawn(self, boot: Callable[[Ref], Any], name: str | None = None) -> None:
        """Start a native syndicate-py actor here; ``boot(dataspace_ref)`` is its first
        turn."""
        self._background.call(lambda rt: self.handle.spawn(boot, name=name))

    @property
    def connected(self) -> bool:
        return self.handle.connected

    def reconnect(self) -> None:
        self._background.call_async(lambda rt: self.handle.reconnect())

    def wait_connected(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds until connected (see
        :meth:`RemoteDataspaceHandle.wait_connected`); False if not connected by then."""
        async def wait(_rt: Runtime) -> bool:
            with trio.move_on_after(timeout):
                return await self.handle.wait_connected()
            return False
        return self._background.call_async(wait)

    def close(self) -> None:
        """Close the connection and stop the runtime thread. Idempotent."""
        try:
            self._background.call(lambda rt: self.handle.close())
        except Exception:  # noqa: BLE001 - the runtime has stopped already
            pass
        self._background.close()

    def __enter__(self) -> "SyncDataspaceClient":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


def connect_sync(address: Any, cap: Any, **options: Any) -> SyncDataspaceClient:
    """A synchronous client (see :class:`SyncDataspaceClient`)."""
    return SyncDataspaceClient(address, cap, **options)
