"""The one request path: how every caller sends a classic message and waits for its
answer, whoever it is (an agent's action, a foreground agent, a client handle) and
wherever it runs (a plain thread, a trio task on the runtime, an asyncio or trio loop of
the caller's own).

A message's life, each step done once, in one place:

1. :func:`stamp`: the sender's id and a message id are set (a supplied ``meta.id`` is
   kept), and the message is validated, in the caller's thread.
2. :func:`~.inbox.admit` / :func:`~.inbox.aadmit`: a place is reserved in a local
   receiver's bounded inbox, waiting for one if it is full.
3. ``core.start_send`` (runtime thread): a request is registered as pending and handed
   to the transport.
4. ``core.reply_arrived`` (runtime thread): the answer is matched to its request and
   completes the caller's :class:`Completion`, which wakes the caller directly: a lock
   released for a thread, an event set for a task, a callback scheduled on the
   caller's own loop.
5. On timeout or interrupt the caller abandons the request (``core.abandon``): it is
   withdrawn, and a late answer is dropped.

The functions here are what ``Agent.send`` / ``request`` / ``asend`` / ``arequest``
and ``ClientHandle`` call; see ``core.py`` for the thread crossings and why each is
needed.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any, Callable

import sniffio
import trio

from .core import AgentCore, reply_outcome
from .inbox import aadmit, admit
from .message import BROADCAST, new_message_id, validate_message

_UNSET: Any = object()


class Completion:
    """The one outcome of one request (a reply dict, or an exception to raise), handed
    over on the runtime thread to whoever waits. Subclasses say how the waiter is woken."""

    __slots__ = ("outcome", "_notify")

    def __init__(self, notify: Callable[[], None]) -> None:
        self.outcome: Any = _UNSET
        self._notify = notify

    @property
    def done(self) -> bool:
        return self.outcome is not _UNSET

    def complete(self, outcome: Any) -> None:
        """The first outcome wins; the waiter is woken once. Called by one completer
        (for a request, the runtime thread that matched its answer)."""
        if self.outcome is _UNSET:
            self.outcome = outcome
            self._notify()


class ThreadCompletion(Completion):
    """For a caller blocked on a thread of its own: a lock, taken now, released by the
    completer. ``Lock.acquire(timeout=...)`` is the cheapest wake-up between threads
    and is interrupted by Ctrl-C (a signal) in the main thread."""

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        lock = threading.Lock()
        lock.acquire()
        self._lock = lock
        super().__init__(lock.release)

    def wait(self, timeout: float | None) -> bool:
        """True once completed; False after ``timeout`` seconds."""
        return self._lock.acquire(timeout=-1 if timeout is None else timeout)


class TaskCompletion(Completion):
    """For a trio task on the runtime thread itself."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = trio.Event()
        super().__init__(self._event.set)

    async def wait(self, timeout: float) -> bool:
        with trio.move_on_after(timeout):
            await self._event.wait()
        return self.done


class LoopCompletion(Completion):
    """For a task on an event loop other than the runtime's: asyncio (Jupyter's
    top-level ``await``) or a trio program of the caller's."""

    __slots__ = ("_library", "_wake", "_waiter")

    def __init__(self) -> None:
        self._library = sniffio.current_async_library()
        if self._library == "asyncio":
            import asyncio
            loop = asyncio.get_running_loop()
            self._waiter: Any = loop.create_future()
            self._wake = lambda: loop.call_soon_threadsafe(self._set_future)
        elif self._library == "trio":
            token = trio.lowlevel.current_trio_token()
            self._waiter = trio.Event()
            self._wake = lambda: token.run_sync_soon(self._waiter.set)
        else:
            raise RuntimeError(f"awaiting works in asyncio and trio, not in"
                               f" {self._library}")
        super().__init__(self._notify_loop)

    def _set_future(self) -> None:
        if not self._waiter.done():
            self._waiter.set_result(None)

    def _notify_loop(self) -> None:
        try:
            self._wake()
        except (RuntimeError, trio.RunFinishedError):
            pass  # the caller's loop has closed: nobody waits any more

    async def wait(self, timeout: float | None) -> bool:
        if self._library == "asyncio":
            import asyncio
            try:
                # shield: a timed-out wait must not cancel the shared future.
                await asyncio.wait_for(asyncio.shield(self._waiter), timeout)
            except TimeoutError:
                pass
        else:
            with trio.move_on_after(math.inf if timeout is None else timeout):
                await self._waiter.wait()
        return self.done


async def in_thread(fn: Callable[..., Any], *args: Any) -> Any:
    """Run blocking ``fn(*args)`` on a thread from an asyncio or trio task."""
    if sniffio.current_async_library() == "asyncio":
        import asyncio
        return await asyncio.to_thread(fn, *args)
    return await trio.to_thread.run_sync(fn, *args)


# --- stamping ---------------------------------------------------------------------------


def check_timeout(timeout: Any, name: str = "timeout") -> float:
    """``timeout`` itself if it is a number of seconds, else a ``TypeError`` /
    ``ValueError`` naming it."""
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, got {timeout!r}"
                        f" ({type(timeout).__name__})")
    if not timeout >= 0:
        raise ValueError(f"{name} must be >= 0 seconds, got {timeout!r}")
    return timeout


def stamp(core: AgentCore, message: Any, *, request: bool = False) -> dict:
    """The message ``core``'s agent sends: validated (a deep copy), ``from`` set to the
    agent, ``meta.id`` fresh unless supplied. A supplied ``from`` must be the agent's
    id; a supplied id must not be one this agent already awaits an answer to."""
    if not isinstance(message, dict):
        raise TypeError(f"a message is a dict, got {type(message).__name__}")
    sender = core.agent.id
    if "from" in message and message["from"] != sender:
        raise ValueError(f'the message says it is from "{message["from"]}", but agent'
                         f' "{sender}" is sending it')
    meta = message.get("meta")
    meta = dict(meta) if isinstance(meta, dict) else ({} if meta is None else meta)
    if isinstance(meta, dict) and "id" not in meta:
        meta["id"] = new_message_id()
    stamped = validate_message({**message, "meta": meta, "from": sender})
    if request and stamped["to"] == BROADCAST:
        raise ValueError("request() needs one recipient; use send() to broadcast")
    message_id = stamped["meta"]["id"]
    if core.is_pending(message_id):
        raise ValueError(f'a message with id "{message_id}" from "{sender}" is already'
                         " waiting for its answer: ids must be unique")
    return stamped


# --- sending ----------------------------------------------------------------------------


def send(core: AgentCore, message: dict, timeout: float) -> str:
    """From any thread: admit ``message`` (stamped), then hand it to the core. The
    caller does not wait for the runtime: many sends cost it one wake-up."""
    admit(core, message, timeout)
    core.agent._message_log.append(message)
    core.run_soon(lambda: core.start_send(message))
    return message["meta"]["id"]


async def asend(core: AgentCore, message: dict, timeout: float) -> str:
    """:func:`send` from a task: on the runtime thread it awaits room; elsewhere (asyncio
    or another trio loop) it waits for room on a thread only if the inbox is full."""
    if core.on_runtime_thread():
        await aadmit(core, message, timeout)
        core.agent._message_log.append(message)
        core.start_send(message)
        return message["meta"]["id"]
    await _admit_elsewhere(core, message, timeout)
    core.agent._message_log.append(message)
    core.run_soon(lambda: core.start_send(message))
    return message["meta"]["id"]


async def _admit_elsewhere(core: AgentCore, message: dict, timeout: float) -> None:
    """Admission from a loop other than the runtime's: reserved at once when there is
    room; else waited for on a thread, so that the caller's loop is not blocked."""
    receiver = core.inbox_for(message)
    if receiver is not None and not receiver.try_reserve(core, message["meta"]["id"]):
        await in_thread(admit, core, message, timeout)


# --- requesting -------------------------------------------------------------------------


def request(core: AgentCore, message: dict, timeout: float) -> Any:
    """From a plain thread: send the stamped request ``message`` and wait for its answer
    (at most ``timeout`` seconds, for room and answer together). Returns the value;
    raises ``ActionError`` for an error answer, ``TimeoutError`` when none comes.
    Interruptible (Ctrl-C): the request is then abandoned. An action waiting here
    gives its concurrency slot back meanwhile."""
    if core.on_runtime_thread():
        raise RuntimeError("request() would block the runtime; in async actions use"
                           " 'await self.arequest(...)'")
    started = time.monotonic()
    admit(core, message, timeout)
    completion = ThreadCompletion()
    core.agent._message_log.append(message)
    slot = core.blocking_slot()
    try:
        with _AbandonedOnError(core, message):  # an interrupt even right after the send
            core.run_soon(lambda: core.start_send(message, completion))
            if slot is not None:  # let this agent handle other messages meanwhile
                core.run_soon(slot.release)
            if not completion.wait(_left(started, timeout)):
                raise _timed_out(core, message, timeout)
    finally:
        if slot is not None:
            trio.from_thread.run(slot.reacquire, trio_token=core.token)
    return _outcome(completion.outcome)


async def arequest(core: AgentCore, message: dict, timeout: float) -> Any:
    """:func:`request` from a task: a trio task on the runtime thread (an ``async def``
    action), or a task on a loop of the caller's (asyncio, e.g. Jupyter, or trio);
    cancelling the task abandons the request."""
    on_runtime = core.on_runtime_thread()
    started = time.monotonic()
    if on_runtime:
        await aadmit(core, message, timeout)
        completion: TaskCompletion | LoopCompletion = TaskCompletion()
    else:
        await _admit_elsewhere(core, message, timeout)
        completion = LoopCompletion()
    core.agent._message_log.append(message)
    slot = core.blocking_slot() if on_runtime else None
    try:
        with _AbandonedOnError(core, message):  # a cancellation even right after the send
            if on_runtime:
                def start() -> None:
                    core.start_send(message, completion)
                    if slot is not None:
                        slot.release()
                core.inline(start)  # routed now, not in the next round: we wait for it
            else:
                core.run_soon(lambda: core.start_send(message, completion))
            if not await completion.wait(_left(started, timeout)):
                raise _timed_out(core, message, timeout)
    finally:
        if slot is not None:
            await slot.reacquire()
    return _outcome(completion.outcome)


def _left(started: float, timeout: float) -> float:
    """Seconds left of ``timeout`` from ``started`` (monotonic), never negative."""
    return max(0.0, timeout - (time.monotonic() - started))


class _AbandonedOnError:
    """Around a request from its send on: an exception (the timeout, an interrupt, a
    cancellation) abandons it, so that a late answer is dropped. A class rather than
    ``contextlib.contextmanager``: it is on every request's path, and costs less."""

    __slots__ = ("core", "message")

    def __init__(self, core: AgentCore, message: dict) -> None:
        self.core, self.message = core, message

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type | None, *_rest: object) -> None:
        if kind is not None:
            _abandon(self.core, self.message)


def _abandon(core: AgentCore, message: dict) -> None:
    try:  # queued after the send, so it always finds it
        core.run_soon(lambda: core.abandon(message["meta"]["id"]))
    except RuntimeError:
        pass  # the space has gone, and the request with it


def _outcome(outcome: Any) -> Any:
    if isinstance(outcome, BaseException):
        raise outcome
    return reply_outcome(outcome)


def _timed_out(core: AgentCore, message: dict, timeout: float) -> TimeoutError:
    """The error for a request that got no answer, with what the transport knows of
    the responder (absent, left, present but silent, connection lost)."""
    text = (f'no answer from "{message["to"]}" to "{message["action"]["name"]}" within'
            f" {timeout} s")
    whereabouts = getattr(core.transport, "whereabouts", None)
    if whereabouts is not None:
        try:
            note = _on_runtime(core, lambda: whereabouts(message["to"]))
        except Exception:
            note = None
        if note:
            text += f": {note}"
    return TimeoutError(text)


def _on_runtime(core: AgentCore, fn: Callable[[], Any]) -> Any:
    if core.on_runtime_thread():
        return fn()
    box = ThreadCompletion()

    def call() -> None:
        try:
            box.complete(fn())
        except Exception:
            box.complete(None)
    core.run_soon(call)
    return box.outcome if box.wait(1.0) else None
