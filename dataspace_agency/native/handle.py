"""A small native API to a dataspace, for trio code that does not want to write turns.

::

    async with open_dataspace() as ds:
        handle = ds.publish(Record(Symbol("Present"), ["alice"]))
        async with ds.observe(P.rec("Present", P.CAPTURE)) as events:
            async for event in events:      # Event(kind="added", captures=("alice",))
                ...
        ds.retract(handle)
        ds.message(Record(Symbol("Say"), ["alice", "hello"]))
        await ds.sync()                     # everything sent so far has been delivered

Native syndicate-py code runs against the same dataspace unchanged::

    def boot(ds_ref):                       # runs as the actor's first turn
        @dataspace.during(ds_ref, P.rec("Present", P.CAPTURE))
        def present(who): ...
    ds.spawn(boot)

Everything a handle published is retracted when the handle closes (the ``async with``
ends). Call a handle from the runtime's trio thread (the task that opened it, or others
of the same ``trio.run``).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable, Literal

import trio
from syndicate import turn
from syndicate.actor import Actor, Entity, Facet, Ref
from syndicate.schema import dataspace as dataspace_schema

from ..dataspace.entity import Dataspace
from ..dataspace.keys import to_key
from ..dataspace.patterns import compile_pattern
from ..runtime import Runtime, open_runtime


@dataclass(frozen=True)
class Event:
    """A change seen by an observer: ``kind`` is ``"added"``, ``"removed"`` or
    ``"message"``; ``captures`` are the values bound by the pattern, in order."""

    kind: Literal["added", "removed", "message"]
    captures: tuple


class _EventEntity(Entity):
    """Receives captures from the dataspace and turns them into :class:`Event`s."""

    def __init__(self, send: Callable[[Event], None]) -> None:
        self._send = send
        self._by_handle: dict[int, tuple] = {}

    def on_publish(self, captures: Any, handle: int) -> None:
        self._by_handle[handle] = captures
        self._send(Event("added", captures))

    def on_retract(self, handle: int) -> None:
        self._send(Event("removed", self._by_handle.pop(handle)))

    def on_message(self, captures: Any) -> None:
        self._send(Event("message", captures))


def spawn_dataspace(runtime: Runtime, name: str = "dataspace") -> tuple[Ref, Dataspace]:
    """Start an actor holding a fresh dataspace; returns its ref and the entity."""
    entity = Dataspace()
    refs: list[Ref] = []

    def boot() -> None:
        turn.prevent_inert_check()
        refs.append(turn.ref(entity))

    runtime.spawn(boot, name=name)
    return refs[0], entity


class DataspaceHandle:
    """Publish, retract, send and observe in one dataspace. Made by :func:`open_dataspace`."""

    def __init__(self, runtime: Runtime, ref: Ref, entity: Dataspace | None,
                 facet: Facet) -> None:
        self.runtime = runtime
        self.ref = ref
        self.entity = entity  # None when the dataspace lives elsewhere
        self.facet = facet  # the handle's own facet: run_turn in it to act as the handle

    def publish(self, value: Any) -> int:
        """Assert ``value``; returns a handle for :meth:`retract`."""
        to_key(value)  # a TypeError here, naming the problem, rather than inside a turn
        return self.runtime.run_turn(self.facet, lambda: turn.publish(self.ref, value))

    def retract(self, handle: int) -> None:
        """Retract what :meth:`publish` asserted under ``handle``."""
        if handle not in self.facet.actor.outbound:
            raise KeyError(f"handle {handle!r} is not asserted by this dataspace handle")
        self.runtime.run_turn(self.facet, lambda: turn.retract(handle))

    def message(self, value: Any) -> None:
        """Send ``value`` as a message: matching observers get it, nothing is stored."""
        to_key(value)
        self.runtime.run_turn(self.facet, lambda: turn.send(self.ref, value))

    async def sync(self) -> None:
        """Return once everything this handle sent before has been processed by the
        dataspace (and so routed to observers)."""
        done = trio.Event()
        self.runtime.run_turn(self.facet, lambda: turn.sync(self.ref, done.set))
        await done.wait()

    @contextlib.asynccontextmanager
    async def observe(self, pattern: Any) -> AsyncIterator[trio.MemoryReceiveChannel]:
        """Observe ``pattern`` (a ``syndicate.patterns`` pattern) for the block; yields a
        receive channel of :class:`Event`s, starting with the current matches.

        Events are buffered without bound: the dataspace never waits for a slow reader."""
        compile_pattern(pattern)  # reject a bad pattern here, with a clear InvalidPattern
        sender, receiver = trio.open_memory_channel[Event](math.inf)

        def deliver(event: Event) -> None:
            try:
                sender.send_nowait(event)
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                pass  # the reader has left; retractions still in flight are of no interest

        entity = _EventEntity(deliver)
        facets: list[Facet] = []

        def start() -> None:
            @turn.facet
            def facet() -> None:
                turn.publish(self.ref, dataspace_schema.Observe(pattern, turn.ref(entity)))
            facets.append(facet)

        self.runtime.run_turn(self.facet, start)
        try:
            async with receiver:
                yield receiver
        finally:
            if facets[0].alive and not self.runtime.system.closed:
                self.runtime.run_turn(self.facet, lambda: turn.stop(facets[0]))
            sender.close()

    async def query(self, pattern: Any) -> list[tuple]:
        """The captures of every current match of ``pattern``, once."""
        async with self.observe(pattern) as events:
            await self.sync()  # the dataspace has replayed every match by now
            found = []
            while True:
                try:
                    event = events.receive_nowait()
                except trio.WouldBlock:
                    return found
                if event.kind == "added":
                    found.append(event.captures)

    def spawn(self, boot: Callable[[Ref], Any], name: str | None = None) -> Actor:
        """Start a native syndicate-py actor; ``boot(dataspace_ref)`` is its first turn."""
        return self.runtime.spawn(lambda: boot(self.ref), name=name)

    def close(self) -> None:
        """Retract everything this handle asserted and stop its observers."""
        if self.facet.actor.alive and not self.runtime.system.closed:
            self.runtime.stop_actor(self.facet.actor)


@contextlib.asynccontextmanager
async def open_dataspace(runtime: Runtime | None = None,
                         name: str = "dataspace") -> AsyncIterator[DataspaceHandle]:
    """A fresh in-process dataspace and a handle to it, for the duration of the block.

    With ``runtime=None`` a runtime is opened (and shut down) too."""
    async with contextlib.AsyncExitStack() as stack:
        if runtime is None:
            runtime = await stack.enter_async_context(open_runtime())
        ref, entity = spawn_dataspace(runtime, name)
        facet = runtime.spawn_host(name=f"{name}-client")
        handle = DataspaceHandle(runtime, ref, entity, facet)
        try:
            yield handle
        finally:
            handle.close()
            if not runtime.system.closed:
                runtime.stop_actor(ref.facet.actor)
