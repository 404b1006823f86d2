"""syndicate-py's ``System``, with trio owning the event loop.

syndicate-py's actor core (``syndicate.actor``: Actor, Facet, Turn) talks to its host
through four hooks on ``System``; everything else (turns, facets, crashes, ``during``) is
its own and runs unchanged. :class:`TrioSystem` supplies the hooks:

``queue_task(thunk)``
    Every turn ends by queueing the delivery of its effects. Thunks go on a deque that one
    trio task drains in order, so effects keep syndicate's FIFO order.
``queue_task_threadsafe(thunk)``
    ``Turn.external`` from any thread: handed over through the trio token.
``adjust_engine_inhabitant_count(delta)``
    Counted, for statistics; trio decides when the program ends, not the actor count.
``loop``
    Read only by ``Facet.linked_task``: a shim whose ``create_task`` starts the coroutine
    as a trio task in its own cancel scope (see ``tasks.py``).

Why the drain task is KI-protected: ``Turn.run`` has a bare ``except:`` that turns any
exception, KeyboardInterrupt included, into a crash of the actor. Under trio's KI
protection a Ctrl-C arriving mid-turn is held and raised in the main task instead.

The few repairs this hosting makes to syndicate-py itself live in ``repairs.py``; a leaner
turn on its hot path (the same contract, fewer Python calls) in ``turns.py``.
"""

from __future__ import annotations

import collections
import logging
import threading
import weakref
from typing import Any, Callable

import trio
from syndicate.actor import Actor, System

from . import repairs, turns  # noqa: F401  (applied to syndicate-py on import)
from .registry import OPEN_RUNTIMES
from .tasks import LoopShim

log = logging.getLogger(__name__)


# How many queued thunks run before the drain task lets other trio tasks in.
_BATCH = 256


class RuntimeClosed(RuntimeError):
    """The runtime has shut down; nothing more can run on it."""


class TrioSystem(System):
    def __init__(self, nursery: trio.Nursery) -> None:
        # No super().__init__(): it would fetch (and maybe create) an asyncio event loop.
        self.inhabitant_count = 0
        self.nursery = nursery
        self.loop = LoopShim(self)
        # Live actors in creation order (shutdown stops them newest first, so a service
        # such as a dataspace outlives the actors that assert into it).
        self.actors: weakref.WeakValueDictionary[int, Actor] = weakref.WeakValueDictionary()
        self._next_actor = 0
        self.closed = False
        self._queue: collections.deque[Callable[[], Any]] = collections.deque()
        self._wakeup: trio.Event | None = None
        self._idle_waiters: list[trio.Event] = []
        self._token = trio.lowlevel.current_trio_token()
        self._thread = threading.get_ident()
        OPEN_RUNTIMES.add(self)  # until mark_closed(): what a leak check looks at

    def mark_closed(self) -> None:
        """Nothing more runs here (the runtime's shutdown calls this)."""
        self.closed = True
        OPEN_RUNTIMES.discard(self)

    def task_names(self) -> list[str]:
        """Names of the trio tasks running in this runtime's nursery (for diagnostics;
        safe to call from another thread, the answer may be slightly stale)."""
        for _ in range(3):  # the set may change size under us when read from elsewhere
            try:
                return sorted(task.name for task in list(self.nursery.child_tasks))
            except RuntimeError:
                continue
        return ["(tasks changing too fast to list)"]

    # --- the hooks syndicate-py calls ----------------------------------------------------

    def queue_task(self, thunk: Callable[[], Any]) -> None:
        self._queue.append(thunk)
        wakeup = self._wakeup
        if wakeup is not None:
            self._wakeup = None
            wakeup.set()

    def queue_task_threadsafe(self, thunk: Callable[[], Any]) -> None:
        if threading.get_ident() == self._thread:
            self.queue_task(thunk)
            return
        try:
            self._token.run_sync_soon(self.queue_task, thunk)
        except trio.RunFinishedError:
            raise RuntimeClosed("the runtime has shut down") from None

    def adjust_engine_inhabitant_count(self, delta: int) -> None:
        self.inhabitant_count += delta

    def run(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("TrioSystem is driven by trio: use dataspace_agency.runtime."
                           "open_runtime(), not System.run")

    # --- the drain task ------------------------------------------------------------------

    @property
    def idle(self) -> bool:
        """Nothing queued (every delivered effect has been processed)."""
        return not self._queue

    async def wait_idle(self) -> None:
        """Return once the queue has been drained empty."""
        if self._queue:
            waiter = trio.Event()
            self._idle_waiters.append(waiter)
            await waiter.wait()

    def drain_now(self) -> None:
        """Run queued thunks until none is left (used at shutdown)."""
        while self._queue:
            self._run_thunk(self._queue.popleft())

    @trio.lowlevel.enable_ki_protection
    def run_inline(self, action: Callable[[], Any]) -> Any:
        """Run ``action()`` (say, turns for input that just arrived), then up to a batch of
        queued thunks, here in the calling task, without waking the drain task for them:
        what the action caused runs now, not after a trip round trio's loop (the I/O
        relays use this; see protocol/transport.py). Order is the queue's, as ever; what
        is left beyond the batch goes to the drain task. Called from inside a turn, it
        only runs ``action`` (running the queue there would break the turn's atomicity)."""
        if getattr(repairs._ACTIVE, "turn", None) is not None:  # Turn.active, read directly
            return action()
        parked, self._wakeup = self._wakeup, None  # queue_task must not wake it meanwhile
        queue = self._queue
        try:
            return action()
        finally:
            for _ in range(_BATCH):
                if not queue:
                    break
                self._run_thunk(queue.popleft())
            if parked is not None:
                if queue:
                    parked.set()  # the rest is the drain task's
                else:
                    self._wakeup = parked  # still waiting: leave it waiting
            if not queue and self._idle_waiters:
                self._notify_idle()

    def _notify_idle(self) -> None:
        if self._idle_waiters:
            waiters, self._idle_waiters = self._idle_waiters, []
            for waiter in waiters:
                waiter.set()

    @trio.lowlevel.enable_ki_protection
    async def drain_forever(self) -> None:
        queue = self._queue
        while True:
            if not queue:
                self._notify_idle()
                self._wakeup = wakeup = trio.Event()
                await wakeup.wait()
                continue
            for _ in range(_BATCH):
                if not queue:
                    break
                self._run_thunk(queue.popleft())
            # Let timers, I/O and other tasks in between batches.
            await trio.lowlevel.checkpoint()

    def _run_thunk(self, thunk: Callable[[], Any]) -> None:
        try:
            result = thunk()
        except Exception:
            # Turn.run already catches what entities raise; this is a bug in a host hook.
            log.exception("queued task failed")
            return
        if isinstance(result, Actor):
            # Turn.spawn queues `lambda: Actor(...)`: this is how spawned actors are tracked.
            self.track(result)

    def track(self, actor: Actor) -> None:
        self.actors[self._next_actor] = actor
        self._next_actor += 1

    def live_actors(self) -> list[Actor]:
        """Live actors, oldest first."""
        return [actor for _, actor in sorted(self.actors.items()) if actor.alive]
