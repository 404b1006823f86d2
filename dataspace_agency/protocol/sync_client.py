"""The client for synchronous code (a REPL, a script): :func:`connect_sync`, a
:class:`~.client.RemoteDataspaceHandle` driven on a background runtime thread."""

from __future__ import annotations

import contextlib
import queue
import threading
from typing import Any, Callable, Iterator

import trio
from syndicate.actor import Ref

from ..native import Event
from ..runtime import BackgroundRuntime, Runtime
from .client import RemoteDataspaceHandle, open_connection
from .codec import DEFAULT_MAX_PACKET
from .reconnect import Reconnect

__all__ = ["SyncDataspaceClient", "connect_sync"]


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
