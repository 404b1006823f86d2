"""The client: a dataspace on a server, with the same native API as an in-process one.

From trio code::

    async with connect('<tcp "127.0.0.1" 8001>', cap) as ds:   # a RemoteDataspaceHandle
        ds.publish(Record(Symbol("Present"), ["alice"]))
        async with ds.observe(P.rec("Present", P.CAPTURE)) as events: ...
        await ds.sync()

From synchronous code (a REPL, a script; ``sync_client.py``)::

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

* Its ``ref`` is a local forwarding entity (``reconnect.Forwarder``) that records every
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

The parts: ``addresses.py``, ``connection.py`` (the stream and the gatekeeper),
``reconnect.py`` (the policy and the forwarder), this module (the handle, ``connect``),
``sync_client.py`` (``connect_sync``).
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any, AsyncIterator

import trio
from syndicate import turn
from syndicate.actor import Turn

from ..native import DataspaceHandle
from ..runtime import Runtime
from .addresses import address_text, parse_address
from .codec import DEFAULT_MAX_PACKET
from .connection import COALESCE, Connection, ConnectionFailed, open_connection_raw
from .reconnect import Forwarder, Reconnect

__all__ = ["COALESCE", "ConnectionFailed", "Reconnect", "RemoteDataspaceHandle",
           "address_text", "connect", "open_connection", "parse_address"]

log = logging.getLogger(__name__)


class RemoteDataspaceHandle(DataspaceHandle):
    """A :class:`~dataspace_agency.native.DataspaceHandle` whose dataspace is on a server:
    publish, retract, message, sync, observe, query and spawn work unchanged (``spawn``ed
    actors run here and reach the remote dataspace through the connection). With a
    ``reconnect`` policy, its state survives the connection (see the module docstring)."""

    def __init__(self, runtime: Runtime, connection: Connection, address: Any, cap: Any,
                 options: dict, reconnect: Reconnect | None = None) -> None:
        facet = runtime.spawn_host("remote-client")
        self._policy = reconnect
        self._forwarder: Forwarder | None = None
        ref = connection.ds
        if reconnect is not None:
            self._forwarder = Forwarder(reconnect.max_queued)
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
