"""Feeding a :class:`~.view.View` from a dataspace: observers, and the connection.

The inspector is read-only: it asserts nothing but its observers (``Observe``
assertions), through the native API's ``observe`` (``native/handle.py``), the same for
an in-process dataspace and a server (``protocol/client.py``). What it sees is what its
capability lets it see.

Against a server it connects with a reconnecting handle (``reconnect=True``): when the
connection ends the client retracts locally what the server had told it, so the view
empties by itself, and its observers are asserted again, so the view fills again, when
the connection is back. Until the first connection succeeds it keeps trying here. Either
way the view's status says what is going on, in words for the page.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any, Callable

import trio

from ..spaces.dataspace.vocabulary import (ACTION, AGENT, CAPTURE, DISCARD, MESSAGE, REPLY, REQUEST,
                                  rec)
from ..native import DataspaceHandle, Event
from ..protocol.client import (ConnectionFailed, Reconnect, RemoteDataspaceHandle,
                               address_text, open_connection)
from ..runtime import Runtime
from .view import View

__all__ = ["Source", "follow", "follow_remote", "watch_connection"]

log = logging.getLogger(__name__)

TICK = 1.0  # seconds between samples of the message totals (rates, ages on the page)

Apply = Callable[[View, str, tuple], None]  # how one observer's events reach the view

# (pattern, how its events reach the view). Raw patterns, as the adapter builds them.
_OBSERVERS: list[tuple[Any, Apply]] = [
    (rec(AGENT, CAPTURE), lambda view, kind, c: view.on_agent(kind, *c)),
    (rec(ACTION, CAPTURE, CAPTURE, CAPTURE), lambda view, kind, c: view.on_action(kind, *c)),
    (rec(REQUEST, CAPTURE, CAPTURE, CAPTURE), lambda view, kind, c: view.on_request(kind, *c)),
    (rec(REPLY, CAPTURE, CAPTURE, CAPTURE, DISCARD),
     lambda view, kind, c: view.on_reply(kind, *c)),
    (rec(MESSAGE, CAPTURE, CAPTURE), lambda view, kind, c: view.on_message(*c)),
]


class Source:
    """Where the inspector's dataspace handle comes from; ``handle`` is None until the
    first connection succeeds. ``remote`` is the client handle when the dataspace is on a
    server (its ``connected`` tells whether the server is reachable now)."""

    def __init__(self, view: View) -> None:
        self.view = view
        self.handle: DataspaceHandle | None = None
        self.remote: RemoteDataspaceHandle | None = None

    @property
    def connected(self) -> bool:
        return self.handle is not None and (self.remote is None or self.remote.connected)


async def follow(handle: DataspaceHandle, view: View, *,
                 task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Keep ``view`` up to date from ``handle`` until cancelled. Starts (for
    ``nursery.start``) once the view holds every fact there was when it was called."""
    def safely(apply: Apply, event: Event) -> None:
        try:
            apply(view, event.kind, event.captures)
        except Exception:  # noqa: BLE001 - one odd fact must not stop the inspector
            log.exception("inspector: could not take in %s", event)

    def apply_waiting(events: trio.MemoryReceiveChannel, apply: Apply) -> None:
        while True:
            try:
                event = events.receive_nowait()
            except trio.WouldBlock:
                return
            safely(apply, event)

    async def pump(events: trio.MemoryReceiveChannel, apply: Apply) -> None:
        async for event in events:
            safely(apply, event)
            apply_waiting(events, apply)  # a burst in one go

    async def tick() -> None:
        while True:
            view.tick()
            await trio.sleep(TICK)

    async with contextlib.AsyncExitStack() as stack:
        observing = [(await stack.enter_async_context(handle.observe(pattern)), apply)
                     for pattern, apply in _OBSERVERS]
        await handle.sync()  # the dataspace has replayed every current fact to us by now
        for events, apply in observing:
            apply_waiting(events, apply)
        async with trio.open_nursery() as nursery:
            for events, apply in observing:
                nursery.start_soon(pump, events, apply)
            nursery.start_soon(tick)
            task_status.started()


async def follow_remote(runtime: Runtime, address: Any, cap: Any, source: Source, *,
                        retry: Reconnect = Reconnect(initial=0.2, maximum=2.0),
                        timeout: float = 5.0) -> None:
    """Connect to the server at ``address`` with ``cap`` (retrying, with ``retry``'s
    backoff, until it answers) and keep ``source.view`` up to date, through lost
    connections, until cancelled."""
    view, target = source.view, address_text(address)
    view.set_status(False, f"connecting to {target}", target=target)
    delay, tries = retry.initial, 0
    while True:
        tries += 1
        try:
            handle = await open_connection(runtime, address, cap, timeout=timeout,
                                           reconnect=retry)
            break
        except ConnectionFailed as exc:
            view.set_status(False, f"cannot reach the dataspace ({exc}); trying again"
                                   f" every {retry.maximum:g} s at most")
            log.log(logging.WARNING if tries == 1 else logging.DEBUG,
                    "inspector: %s; trying again", exc)
        await trio.sleep(delay)
        delay = min(delay * retry.factor, retry.maximum)
    source.handle = source.remote = handle
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(follow, handle, view)
            nursery.start_soon(watch_connection, handle, view, target)
    finally:
        with trio.CancelScope(shield=True):
            handle.close()


async def watch_connection(handle: RemoteDataspaceHandle, view: View, target: str) -> None:
    """Keep the view's status in step with the handle's connection."""
    while True:
        connection = handle.connection
        view.set_status(True, f"connected to {target}")
        await connection.wait_closed()
        view.set_status(False, f"connection to {target} lost ({connection.close_reason});"
                               " reconnecting")
        if not await handle.wait_connected():
            view.set_status(False, f"connection to {target} lost; not reconnecting")
            return
