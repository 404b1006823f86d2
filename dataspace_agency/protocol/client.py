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

``reconnect()`` drops the connection and makes a new one: what the handle asserted
before is gone (the server retracted it when the old connection closed) and observers
opened on the old connection end; publish and observe again.
"""

from __future__ import annotations

import contextlib
import math
import queue
import threading
import time
from typing import Any, AsyncIterator, Callable, Iterator

import preserves
import trio
from preserves import Embedded, Record, Symbol
from syndicate import turn
from syndicate.actor import Entity, Ref

from ..native import DataspaceHandle, Event
from ..runtime import BackgroundRuntime, Runtime
from .codec import DEFAULT_MAX_PACKET
from .relay import Relay
from .transport import run_stream
from .sturdy import parse_cap

__all__ = ["ConnectionFailed", "RemoteDataspaceHandle", "SyncDataspaceClient", "connect",
           "connect_sync", "open_connection", "parse_address"]

_TCP, _UNIX = Symbol("tcp"), Symbol("unix")
_RESOLVE, _ACCEPTED, _OK, _REJECTED = (Symbol("resolve"), Symbol("accepted"), Symbol("ok"),
                                       Symbol("rejected"))


class ConnectionFailed(ConnectionError):
    """Could not connect, or the server refused the capability; the text says which."""


def parse_address(address: Any) -> tuple[str, Any]:
    """``("tcp", (host, port))`` or ``("unix", path)`` from any accepted address form."""
    if isinstance(address, tuple) and len(address) == 2 and isinstance(address[1], int):
        return "tcp", (str(address[0]), address[1])
    if isinstance(address, str) and not address.lstrip().startswith("<"):
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
    raise ValueError(f'unsupported address {address!r}: want <tcp "HOST" PORT> or '
                     f'<unix "PATH">')


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
    relay = Relay(runtime, f"client {label}", import0=True)
    runtime.system.nursery.start_soon(
        lambda: run_stream(relay, stream, max_packet=max_packet, peer=label))
    resolution = _Resolution()

    def resolve() -> None:
        turn.publish(relay.peer0, Record(_RESOLVE, [step, Embedded(turn.ref(resolution))]))
    runtime.run_turn(relay.facet, resolve)
    with trio.move_on_after(timeout) as waited:
        async with trio.open_nursery() as nursery:
            async def closed() -> None:
                await relay.done.wait()
                nursery.cancel_scope.cancel()
            nursery.start_soon(closed)
            await resolution.answered.wait()
            nursery.cancel_scope.cancel()
    if resolution.ds is None:
        why = (resolution.error or (f"connection closed: {relay.close_reason}" if relay.closed
                                    else f"no answer within {timeout} s"))
        relay.close(why)
        raise ConnectionFailed(f"{label}: {why}")
    del waited
    return Connection(relay, resolution.ds, label)


# Events a handle makes within this long of its last immediately written one are
# batched (see RemoteDataspaceHandle._now).
_BURST = 50e-6


class RemoteDataspaceHandle(DataspaceHandle):
    """A :class:`~dataspace_agency.native.DataspaceHandle` whose dataspace is on a server:
    publish, retract, message, sync, observe, query and spawn work unchanged (``spawn``ed
    actors run here and reach the remote dataspace through the connection)."""

    def __init__(self, runtime: Runtime, connection: Connection, address: Any, cap: Any,
                 options: dict) -> None:
        super().__init__(runtime, connection.ds, None, runtime.spawn_host("remote-client"))
        self._last_immediate = -math.inf
        self.connection = connection
        self._address, self._cap, self._options = address, cap, options

    # publish, retract and message run what they cause at once (run_inline), so that a
    # lone event is on its way to the server when they return, with no wait for the
    # runtime's drain task to get its turn. Calls that follow one another closely (a
    # burst: within _BURST seconds of the last immediate one) are left to the drain
    # task instead, which sends all of them in one packet as soon as the caller yields,
    # so pipelined messages cost one write per burst, not one per message. Nothing
    # waits on a timer either way.

    def _now(self, action: Callable[[], Any]) -> Any:
        now = time.perf_counter()
        if now - self._last_immediate < _BURST:
            return action()
        self._last_immediate = now
        return self.runtime.system.run_inline(action)

    def publish(self, value: Any) -> int:
        return self._now(lambda: super(RemoteDataspaceHandle, self).publish(value))

    def retract(self, handle: int) -> None:
        self._now(lambda: super(RemoteDataspaceHandle, self).retract(handle))

    def message(self, value: Any) -> None:
        self._now(lambda: super(RemoteDataspaceHandle, self).message(value))

    @property
    def connected(self) -> bool:
        return not self.connection.closed

    async def reconnect(self) -> None:
        """Close this connection and open a new one (see the module docstring)."""
        self.close()
        connection = await open_connection_raw(self.runtime, self._address, self._cap,
                                               **self._options)
        self.connection, self.ref = connection, connection.ds
        self.facet = self.runtime.spawn_host("remote-client")

    def close(self) -> None:
        """Retract what this handle asserted and close the connection."""
        super().close()
        if not self.runtime.system.closed:
            self.connection.close()


async def open_connection(runtime: Runtime, address: Any, cap: Any, *, timeout: float = 10.0,
                          max_packet: int = DEFAULT_MAX_PACKET) -> RemoteDataspaceHandle:
    """A handle to the dataspace ``cap`` resolves to at ``address`` (runtime thread);
    close it with ``handle.close()``."""
    options = {"timeout": timeout, "max_packet": max_packet}
    connection = await open_connection_raw(runtime, address, cap, **options)
    return RemoteDataspaceHandle(runtime, connection, address, cap, options)


@contextlib.asynccontextmanager
async def connect(address: Any, cap: Any, runtime: Runtime | None = None, *,
                  timeout: float = 10.0,
                  max_packet: int = DEFAULT_MAX_PACKET) -> AsyncIterator[RemoteDataspaceHandle]:
    """A handle to a remote dataspace for the block (opens a runtime if none is given)."""
    if runtime is not None:
        handle = await open_connection(runtime, address, cap, timeout=timeout,
                                       max_packet=max_packet)
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
                                           max_packet=max_packet)
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
                 max_packet: int = DEFAULT_MAX_PACKET) -> None:
        self._timeout = timeout
        self._background = BackgroundRuntime(name="dataspace-client")
        try:
            self.handle: RemoteDataspaceHandle = self._background.call_async(
                lambda rt: open_connection(rt, address, cap, timeout=timeout,
                                           max_packet=max_packet))
        except BaseException:
            self._background.close()
            raise

    def publish(self, value: Any) -> int:
        return self._background.call(lambda rt: self.handle.publish(value))

    def retract(self, handle: int) -> None:
        self._background.call(lambda rt: self.handle.retract(handle))

    def message(self, value: Any) -> None:
        self._background.call(lambda rt: self.handle.message(value))

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
