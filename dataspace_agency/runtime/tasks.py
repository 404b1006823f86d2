"""Linked tasks and timers: trio tasks whose lifetime is tied to a facet.

A *linked task* runs ``async_fn(facet)`` in the runtime's nursery, inside its own cancel
scope. It keeps the facet from being stopped as inert while it runs, and is cancelled when
the facet stops or its actor crashes. When it returns, the facet is stopped, unless it
returned ``True`` (syndicate-py's contract for ``Facet.linked_task``).

``after(seconds)`` is the trio replacement for syndicate-py's ``Turn.after`` (which sleeps
with asyncio and cannot run here): inside a turn, ``@after(5)`` schedules a function to run
as a turn in the current facet five seconds later, unless the facet stops first. It does
not stop the facet. Under ``trio.testing.MockClock`` an hour passes instantly.

``LoopShim`` lets syndicate-py's own ``Facet.linked_task`` (used by ``turn.linked_task``
and the relay) run here: it is what that method finds as ``facet.loop``.
"""

from __future__ import annotations

import asyncio
import logging
import types
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Coroutine

import outcome
import trio
from syndicate.actor import Facet, Turn

if TYPE_CHECKING:
    from .system import TrioSystem

log = logging.getLogger(__name__)


class LinkedTask:
    """A trio task tied to a facet. ``cancel()`` is safe to call at any time, repeatedly."""

    def __init__(self) -> None:
        self.cancel_scope = trio.CancelScope()
        self.done = trio.Event()

    def cancel(self) -> None:
        self.cancel_scope.cancel()


def _system_of(facet: Facet) -> "TrioSystem":
    return facet.actor._system


def linked_task(facet: Facet, async_fn: Callable[[Facet], Awaitable[Any]]) -> LinkedTask:
    """Start ``async_fn(facet)`` as a trio task linked to ``facet`` (see module docstring).

    Call it from the runtime's thread (inside a turn, or from a trio task of the runtime).
    """
    system = _system_of(facet)
    task = LinkedTask()
    facet.linked_tasks.append(task)  # keeps the facet from being stopped as inert
    on_stop = facet.on_stop_or_crash(task.cancel)

    async def run() -> None:
        keep_facet = False
        try:
            with task.cancel_scope:
                keep_facet = (await async_fn(facet)) is True
        except Exception:
            log.exception("linked task of %r failed", facet)
        finally:
            task.done.set()

        def finish() -> None:
            if task in facet.linked_tasks:
                facet.linked_tasks.remove(task)
            facet.cancel_on_stop(on_stop)
            facet.actor.cancel_at_exit(on_stop)
            if not keep_facet and not task.cancel_scope.cancel_called:
                Turn.active.stop(facet)

        system.queue_task(lambda: Turn.run(facet, finish))

    system.nursery.start_soon(run)
    return task


def after(seconds: float) -> Callable[[Callable[[], Any]], LinkedTask]:
    """Decorator, used inside a turn: run the function as a turn in the current facet after
    ``seconds`` of trio time, unless the facet stops first."""
    def schedule(action: Callable[[], Any]) -> LinkedTask:
        facet = Turn.active._facet
        system = _system_of(facet)

        async def wait_then_act(facet: Facet) -> bool:
            await trio.sleep(seconds)
            system.queue_task(lambda: Turn.run(facet, action))
            return True  # a timer does not end its facet

        return linked_task(facet, wait_then_act)
    return schedule


# --- syndicate-py's Facet.linked_task, hosted on trio --------------------------------------

class _ShimTask:
    """What ``Facet.linked_task`` keeps and later ``cancel()``s."""

    def __init__(self) -> None:
        self.cancel_scope = trio.CancelScope()

    def cancel(self) -> None:
        self.cancel_scope.cancel()


class LoopShim:
    """The part of an asyncio loop that syndicate-py's ``Facet.linked_task`` uses."""

    def __init__(self, system: "TrioSystem") -> None:
        self._system = system

    def create_task(self, coro: Coroutine) -> _ShimTask:
        shim_task = _ShimTask()

        async def run() -> None:
            with shim_task.cancel_scope:
                await _as_asyncio_cancellation(coro)

        self._system.nursery.start_soon(run)
        return shim_task

    def run_in_executor(self, executor: Any, fn: Callable[[], Any]) -> Awaitable[Any]:
        if executor is not None:
            raise ValueError("only the default executor (None) is supported")
        return trio.to_thread.run_sync(fn, abandon_on_cancel=True)


@types.coroutine
def _as_asyncio_cancellation(coro: Coroutine) -> Any:
    """Drive an asyncio-minded coroutine under trio, turning trio's cancellation into
    ``asyncio.CancelledError``.

    Why: ``Facet.linked_task`` wraps every task in code that treats
    ``asyncio.CancelledError`` as a normal stop and prints a traceback for anything else.
    trio resumes a task by sending it an ``outcome``; when that outcome is a
    ``trio.Cancelled`` error we send an ``asyncio.CancelledError`` instead, so a facet
    stopping ends its tasks quietly, as it does on asyncio.
    """
    to_send: Any = None
    to_throw: BaseException | None = None
    while True:
        try:
            if to_throw is None:
                yielded = coro.send(to_send)
            else:
                yielded = coro.throw(to_throw)
        except StopIteration as stop:
            return stop.value
        to_send, to_throw = None, None
        try:
            to_send = yield yielded
        except BaseException as exc:  # trio throws in only when a task awaited something foreign
            to_throw = exc
            continue
        if isinstance(to_send, outcome.Error) and isinstance(to_send.error, trio.Cancelled):
            to_send = outcome.Error(asyncio.CancelledError())
