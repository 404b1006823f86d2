"""Client handles: how a person at a REPL or in a notebook talks to the agents of a space.

::

    me = space.connect("me")                     # any space
    me.request("calc", "add", a=1, b=2)          # -> 3; raises ActionError / TimeoutError
    me.send("calc", "add", a=1, b=2)             # -> the message id; the answer arrives...
    me.receive(timeout=1)                        # ...here, as a message dict
    me.request("x", "f", args={"to": 1})         # an argument named to/action/timeout
    await me.arequest("calc", "add", a=1, b=2)   # asyncio (Jupyter) or trio
    me.facts(P.rec("agent", P.CAPTURE))          # dataspace spaces: current matches
    with me.watch(P.rec("agent", P.CAPTURE)) as events:   # added/removed Events
        for event in events: ...
    me.close()

A handle is not an agent, but it needs an address in the space so that answers reach it:
it is backed by a small endpoint agent with the handle's id, added in this process like a
foreground agent (so every backend routes to it as it routes to its own agents). The
endpoint offers no actions and publishes none (on a dataspace its presence ``<agent id>``
is visible, as an address must be). What reaches it goes to the handle's inbox:

* answers to :meth:`ClientHandle.send` (``[response]`` / ``[error]`` message dicts);
  Answers to requests it stopped waiting for (timeout, Ctrl-C) are dropped.
* messages other agents send to the handle: a point-to-point one is answered ``None``
  ("delivered"), a broadcast is not answered. A handle cannot answer with a value: for
  that, use a foreground agent (``space.add_foreground``) with an action.

Sending and requesting take the same path as an agent's (``classic/requests.py``):
inbox limits hold, a supplied ``meta.id`` is kept, and a blocked ``request()`` is
interrupted by Ctrl-C at once: it withdraws its request (in the dataspace's assertion
mode the request fact is retracted and the responder sees the withdrawal), raises
``KeyboardInterrupt``, and leaves the handle usable.
"""

from __future__ import annotations

import concurrent.futures
import queue
import threading
import time
from typing import TYPE_CHECKING, Any, Iterator

from syndicate import turn
from syndicate.schema import dataspace as dataspace_schema

from ..classic.agent import ACCESS_PERMITTED, ActionSpec, Agent
from ..classic.core import CURRENT, ActionError
from ..classic.message import BROADCAST, ERROR
from ..classic.requests import LoopCompletion, ThreadCompletion
from ..dataspace.patterns import compile_pattern
from ..native.handle import Event, _EventEntity

if TYPE_CHECKING:
    from .base import Space

__all__ = ["ClientHandle", "DataspaceClientHandle", "FactWatch"]

# How long a blocked caller sleeps between checks; Python delivers a pending Ctrl-C
# between two slices at the latest, so this bounds the interrupt latency.
_SLICE = 0.05
_INBOX_SPEC = ActionSpec(name="*", method_name="_to_inbox", help={},
                         access_policy=ACCESS_PERMITTED, is_async=False)


class _AnyAction(dict):
    """The endpoint's action table: empty (nothing offered, nothing published), yet every
    action name finds the spec that files the message in the inbox."""

    def get(self, name: Any, default: Any = None) -> ActionSpec:
        return _INBOX_SPEC


_ANY_ACTION = _AnyAction()


class _Endpoint(Agent):
    """The address of a handle in its space. Handles one message at a time, so the inbox
    keeps arrival order. Late answers to requests the person stopped waiting for are
    dropped by the core (``AgentCore.abandon``), never filed."""

    # Its reply handlers only put the reply in an unbounded queue: they never block.
    _replies_handled_inline = True

    def __init__(self, id: str, inbox: "queue.Queue[dict]") -> None:
        super().__init__(id, receive_own_broadcasts=False)
        self._inbox = inbox

    def _action_specs(self) -> dict:  # type: ignore[override]
        return _ANY_ACTION

    def _published_helps(self) -> dict:  # type: ignore[override]
        return {}

    def _to_inbox(self, **_args: Any) -> None:
        message = self.current_message()
        self._inbox.put(message)
        if message["to"] == BROADCAST:
            CURRENT.get().claim_answer()  # broadcasts of unknown actions: no answer
        return None  # point-to-point: answered None, "delivered"

    def handle_action_value(self, value: Any) -> None:
        self._inbox.put(self.current_message())

    def handle_action_error(self, error: ActionError) -> None:
        message = self.current_message()
        if message is None:  # the responder left before answering: no reply exists
            message = {"meta": {}, "from": "", "to": self.id,
                       "action": {"name": ERROR, "args": {"error": str(error)}}}
        self._inbox.put(message)


async def _await(future: concurrent.futures.Future, timeout: float | None) -> Any:
    """Await ``future`` from asyncio (Jupyter's top-level await) or trio code: woken the
    way an awaited request is (``requests.LoopCompletion``). A wait that ends does not
    cancel the future itself."""
    waiting = LoopCompletion()
    future.add_done_callback(lambda _future: waiting.complete(None))
    if not await waiting.wait(timeout):
        raise TimeoutError
    return future.result()


class ClientHandle:
    """Talk to a space's agents from any thread, like an agent would. Made by
    ``space.connect(id)``; see the module docstring."""

    def __init__(self, space: "Space", endpoint: _Endpoint, inbox: "queue.Queue[dict]"):
        self._space = space
        self._endpoint = endpoint
        self._inbox = inbox
        self._closed = False

    @classmethod
    def _open(cls, space: "Space", id: str) -> "ClientHandle":
        inbox: queue.Queue[dict] = queue.Queue()
        endpoint = space._add(_Endpoint, id, (inbox,), {})
        return cls(space, endpoint, inbox)

    @property
    def id(self) -> str:
        return self._endpoint.id

    @property
    def space(self) -> "Space":
        return self._space

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"in {type(self._space).__name__}"
        return f"<{type(self).__name__} {self.id!r} {state}>"

    # --- sending --------------------------------------------------------------------------

    @staticmethod
    def _message(to: Any, action: Any, args: dict | None, kwargs: dict) -> dict:
        if isinstance(to, dict) and action is None and args is None and not kwargs:
            return to  # a whole classic message, as agents send it
        if not isinstance(action, str) or not action:
            raise TypeError(f"the action name must be a non-empty string, got {action!r}")
        if args is not None and not isinstance(args, dict):
            raise TypeError(f"args must be a dict of action arguments, got {args!r}")
        both = set(args or ()) & set(kwargs)
        if both:
            raise TypeError(f"argument(s) {sorted(both)} given both in args= and as keywords")
        return {"to": to, "action": {"name": action, "args": {**(args or {}), **kwargs}}}

    def send(self, to: Any, action: str | None = None, *, args: dict | None = None,
             **kwargs: Any) -> str:
        """Send action ``action`` with ``kwargs`` (or ``args={...}``) to agent ``to``
        (``"*"``: everyone); returns the message id. Its answer arrives in the inbox.
        ``send(message_dict)`` sends a whole classic message."""
        self._check_open()
        return self._endpoint.send(self._message(to, action, args, kwargs))

    def request(self, to: Any, action: str | None = None, timeout: float = 3, *,
                args: dict | None = None, **kwargs: Any) -> Any:
        """Send and wait for the answer: returns its value, raises :class:`ActionError`
        for an error answer and ``TimeoutError`` when none comes within ``timeout``
        seconds. Arguments named ``to``, ``action``, ``timeout`` or ``args`` go in
        ``args={...}``. Ctrl-C withdraws the request and raises ``KeyboardInterrupt``.
        The same path as an agent's :meth:`~dataspace_agency.Agent.request`, inbox
        limits included."""
        self._check_open()
        return self._endpoint.request(self._message(to, action, args, kwargs), timeout)

    async def arequest(self, to: Any, action: str | None = None, timeout: float = 3, *,
                       args: dict | None = None, **kwargs: Any) -> Any:
        """:meth:`request` for ``await`` (asyncio, e.g. Jupyter, or trio); cancelling the
        awaiting task withdraws the request."""
        self._check_open()
        return await self._endpoint.arequest(self._message(to, action, args, kwargs),
                                             timeout)

    async def asend(self, to: Any, action: str | None = None, *, args: dict | None = None,
                    **kwargs: Any) -> str:
        """:meth:`send` for ``await``: waits for room in a full inbox without blocking
        the caller's loop."""
        self._check_open()
        return await self._endpoint.asend(self._message(to, action, args, kwargs))

    @property
    def pending(self) -> int:
        """How many requests and sends still await their answers."""
        core = self._endpoint._core
        if core is None or self._closed:
            return 0
        return self._space._background.call(lambda rt: core.pending_count)

    # --- receiving ------------------------------------------------------------------------

    @property
    def inbox(self) -> list[dict]:
        """The messages received and not yet taken by :meth:`receive`, oldest first."""
        with self._inbox.mutex:
            return list(self._inbox.queue)

    def receive(self, timeout: float | None = None) -> dict:
        """Take the oldest message from the inbox, waiting up to ``timeout`` seconds
        (``None``: for ever) for one; raises ``TimeoutError`` if none comes."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = _SLICE if deadline is None else min(_SLICE, deadline - time.monotonic())
            try:
                return self._inbox.get(timeout=max(remaining, 0))
            except queue.Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    raise TimeoutError(f'nothing arrived for "{self.id}" within'
                                       f" {timeout} s") from None

    async def areceive(self, timeout: float | None = None) -> dict:
        """:meth:`receive` for ``await``; cancelling it takes nothing from the inbox."""
        future: concurrent.futures.Future = concurrent.futures.Future()
        deadline = None if timeout is None else time.monotonic() + timeout

        def fail(error: Exception) -> None:
            try:
                future.set_exception(error)
            except concurrent.futures.InvalidStateError:
                pass  # the waiter has gone

        def take() -> None:
            # In slices, so that this thread ends once the waiter has gone (the future is
            # cancelled) or the handle or its space has closed, instead of outliving them.
            while not future.cancelled():
                remaining = _SLICE if deadline is None else min(_SLICE, deadline - time.monotonic())
                try:
                    message = self._inbox.get(timeout=max(remaining, 0))
                except queue.Empty:
                    if deadline is not None and time.monotonic() >= deadline:
                        return fail(TimeoutError(
                            f'nothing arrived for "{self.id}" within {timeout} s'))
                    if self._closed or self._space._destroyed:
                        return fail(RuntimeError(f'"{self.id}" was closed while waiting in'
                                                 f" areceive()"))
                    continue
                try:
                    future.set_result(message)
                except concurrent.futures.InvalidStateError:  # cancelled meanwhile: put it back
                    with self._inbox.mutex:
                        self._inbox.queue.appendleft(message)
                        self._inbox.not_empty.notify()
                return
        threading.Thread(target=take, daemon=True, name=f"{self.id}-areceive").start()
        try:
            return await _await(future, None)
        finally:
            future.cancel()  # if still waiting: the thread stops within a slice

    # --- lifetime -----------------------------------------------------------------------

    def close(self) -> None:
        """Leave the space (pending requests are withdrawn). Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            self._space.remove(self.id)
        except (ValueError, RuntimeError):
            pass  # already gone with its space

    def __enter__(self) -> "ClientHandle":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f'handle "{self.id}" is closed')


class FactWatch:
    """Added and removed :class:`~dataspace_agency.native.Event` s for one pattern, from
    any thread: iterate (blocks; ends when closed), or :meth:`get` with a timeout.
    Starts with the current matches. Close it (or use ``with``) to stop watching."""

    _CLOSED = object()

    def __init__(self, handle: "DataspaceClientHandle", pattern: Any) -> None:
        compile_pattern(pattern)  # a bad pattern fails here, with a clear InvalidPattern
        self._events: queue.Queue = queue.Queue()
        self._closed = False
        self._space = handle._space
        self._client = handle._space._client
        self._background = handle._space._background
        client, events = self._client, self._events

        def deliver(event: Event) -> None:
            if not self._closed:
                events.put(event)
        entity = _EventEntity(deliver)

        def start(runtime: Any) -> Any:
            def in_turn() -> Any:
                @turn.facet
                def watching() -> None:
                    turn.publish(client.ref,
                                 dataspace_schema.Observe(pattern, turn.ref(entity)))
                return watching
            return runtime.run_turn(client.facet, in_turn)
        self._facet = self._background.call(start)

    def sync(self, timeout: float | None = 5) -> None:
        """Return once the dataspace has delivered every event due so far."""
        done = ThreadCompletion()  # the wait a blocked request() uses: Ctrl-C gets through
        client = self._client
        self._background.call(lambda rt: rt.run_turn(
            client.facet, lambda: turn.sync(client.ref, lambda: done.complete(None))))
        if not done.wait(timeout):
            lost = self._space._connection_note()
            if lost:
                raise ConnectionError(lost)
            raise TimeoutError(f"the dataspace did not answer a sync within {timeout} s")

    def get(self, timeout: float | None = None) -> Event:
        """The next event; ``TimeoutError`` if none comes in time, ``StopIteration``
        once the watch is closed."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = _SLICE if deadline is None else min(_SLICE, deadline - time.monotonic())
            try:
                event = self._events.get(timeout=max(remaining, 0))
            except queue.Empty:
                if self._closed:
                    raise StopIteration from None
                if deadline is not None and time.monotonic() >= deadline:
                    raise TimeoutError(f"no fact appeared or disappeared within {timeout} s")
                continue
            if event is self._CLOSED:
                self._events.put(event)  # for any other reader
                raise StopIteration
            return event

    def pending(self) -> list[Event]:
        """The events delivered and not yet read, without waiting."""
        found = []
        while True:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                return found
            if event is self._CLOSED:
                self._events.put(event)
                return found
            found.append(event)

    def __iter__(self) -> Iterator[Event]:
        return self

    def __next__(self) -> Event:
        return self.get()

    def __aiter__(self) -> "FactWatch":
        return self

    async def __anext__(self) -> Event:
        future: concurrent.futures.Future = concurrent.futures.Future()

        def take() -> None:
            try:
                future.set_result(self.get())
            except StopIteration:
                future.set_exception(StopAsyncIteration())
            except BaseException as exc:
                future.set_exception(exc)
        threading.Thread(target=take, daemon=True, name="fact-watch-anext").start()
        return await _await(future, None)

    def close(self) -> None:
        """Stop watching; iteration ends. Idempotent."""
        if self._closed:
            return
        self._closed = True
        facet, client = self._facet, self._client

        def stop(runtime: Any) -> None:
            if facet.alive and client.facet.alive and client.facet.actor.alive:
                runtime.run_turn(client.facet, lambda: turn.stop(facet))
        try:
            self._background.call(stop)
        except Exception:
            pass  # the space (and the watch with it) is gone already
        self._events.put(self._CLOSED)

    def __enter__(self) -> "FactWatch":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


class DataspaceClientHandle(ClientHandle):
    """A handle on a dataspace space: also reads and watches facts."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._watches: list[FactWatch] = []

    def facts(self, pattern: Any) -> list[tuple]:
        """The captures of every fact matching ``pattern`` (a ``syndicate.patterns``
        pattern) now."""
        self._check_open()
        with FactWatch(self, pattern) as watch:
            watch.sync()
            found: dict[tuple, int] = {}  # a match may come and go before the sync
            for event in watch.pending():
                found[event.captures] = found.get(event.captures, 0) + (
                    1 if event.kind == "added" else -1)
            return [captures for captures, count in found.items() if count > 0]

    def watch(self, pattern: Any) -> FactWatch:
        """Watch facts matching ``pattern`` appear and disappear (current ones first)."""
        self._check_open()
        watch = FactWatch(self, pattern)
        self._watches.append(watch)
        return watch

    def close(self) -> None:
        for watch in self._watches:
            watch.close()
        super().close()
