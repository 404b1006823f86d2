"""What runs a classic agent, on any backend: dispatch, bounded concurrency, replies and
pending requests. It runs on a trio runtime thread; a space supplies a :class:`Transport`.

Rules it keeps (the classic contract, ../shared/reference/agency.md):

* Messages are handled in arrival order; at most ``max_concurrency`` at once per agent.
  There is no shared pool: each agent bounds itself, and worker threads come from trio's
  thread cache, so no agent can starve another.
* Plain-function actions run on worker threads, never on the runtime thread; ``async def``
  actions run as trio tasks. An action blocked in ``request()`` gives its slot back while
  it waits, so nested requests (A -> B -> A) cannot deadlock even with one slot.
* Every action invocation answers exactly once: ``[response]`` with the return value
  (None included) or ``[error]`` with ``"ExcClass: message"``; ``respond_with`` and
  ``raise_with`` answer early. Unknown actions in broadcasts are ignored silently.
* Replies resolve the pending ``request()`` they answer, or go to
  ``handle_action_value`` / ``handle_action_error``.
* Bounded inboxes (in-process spaces, see :class:`Inboxes` and docs/limits.md): an
  agent's pending messages (admitted, not yet started) never exceed its
  ``inbox_limit`` on account of local senders: a sender waits for room, and gives up
  with :class:`InboxFull` after its timeout.

Threads: ``Transport`` methods and everything here marked "runtime thread" run on the
runtime's trio thread; user threads reach it through the trio token.
"""

from __future__ import annotations

import collections
import contextvars
import logging
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Protocol

import trio

from . import values
from .message import BROADCAST, ERROR, RESPONSE, make_reply

if TYPE_CHECKING:
    from .agent import ActionSpec, Agent

log = logging.getLogger(__name__)


class ActionError(Exception):
    """An action answered with an error; ``str(error)`` is ``"ExcClass: message"``."""


class InboxFull(TimeoutError):
    """A receiver's inbox stayed at its limit for as long as the sender would wait.
    A ``TimeoutError``, so code that handles request timeouts handles this too."""

    def __init__(self, receiver: str, limit: int, waited: float | None) -> None:
        self.receiver, self.limit, self.waited = receiver, limit, waited
        how = "cannot wait here (runtime thread)" if waited is None else \
            f"waited {waited:g} s"
        super().__init__(f'the inbox of agent "{receiver}" is full ({limit} pending'
                         f" messages, its inbox_limit); the sender {how}")


class Inboxes:
    """The inbox limits of one in-process space: its agents' cores by id, and the one
    lock under which every admission is counted.

    Why a sender-side wait with a reservation, and one lock: a sender may run on a
    worker thread or on the runtime thread, and a message reaches its receiver's
    queue only later (through the dataspace or the router, on the runtime thread).
    Counting at arrival would let a fast sender put any number of messages in flight;
    so the sender *reserves* a place in the receiver's inbox before its message leaves,
    in its own thread, under this lock (a few hundred nanoseconds), and the place is
    given back when the receiver starts handling the message (or either agent leaves).
    Places freed are handed to waiting senders in arrival order."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.cores: dict[str, "AgentCore"] = {}  # written on the runtime thread only

    def register(self, core: "AgentCore") -> None:
        core.inboxes = self
        self.cores[core.agent.id] = core

    def unregister(self, core: "AgentCore") -> None:
        if self.cores.get(core.agent.id) is core:
            del self.cores[core.agent.id]


class _RoomWaiter:
    """A sender waiting for a place in a full inbox. Granted on the runtime thread."""

    __slots__ = ("sender", "message_id", "event", "granted", "cancelled")

    def __init__(self, sender: "AgentCore", message_id: str, event: Any) -> None:
        self.sender = sender
        self.message_id = message_id
        self.event = event  # threading.Event (worker threads) or trio.Event (async actions)
        self.granted = False
        self.cancelled = False


class Ticket:
    """What a transport attaches to an inbound message: a request its sender may withdraw
    (dataspace assertion mode, carrying the route for the reply), or a delivery to
    acknowledge once handled (a broker). Transports subclass it."""

    def __init__(self) -> None:
        self.withdrawn = False
        self.invocation: Invocation | None = None

    def handled(self) -> None:
        """Called once, when the core is done with the message: answered, resolved,
        ignored, or dropped because it was withdrawn. Override to acknowledge."""


class Transport(Protocol):
    """What a space provides to an agent's core (all called on the runtime thread)."""

    def deliver(self, message: dict) -> None:
        """Send a message (an action, a broadcast, or a reply without a ticket)."""

    def withdraw(self, message: dict) -> None:
        """The sender no longer waits for an answer to ``message``."""

    def reply(self, ticket: Ticket, reply: dict) -> None:
        """Answer the request behind ``ticket``."""


# The invocation being handled in this thread or task, for current_message(),
# respond_with(), cancelled() and releasing the slot while blocked in request().
CURRENT: contextvars.ContextVar["Invocation | None"] = contextvars.ContextVar(
    "dataspace_agency_invocation", default=None)


class _Slot:
    """One of an agent's ``max_concurrency`` places, held by a running handler. An action
    blocked in ``request()`` releases it and reacquires it when the answer is in."""

    def __init__(self, core: "AgentCore") -> None:
        self._core = core
        self.held = True

    def release(self) -> None:
        if self.held:
            self.held = False
            self._core._release_slot()

    async def reacquire(self) -> None:
        if not self.held:
            await self._core._acquire_slot()
            self.held = True


@dataclass
class Invocation:
    """One action being handled."""

    core: "AgentCore"
    message: dict
    ticket: Ticket | None
    slot: _Slot
    cancel_scope: trio.CancelScope | None = None
    cancelled: bool = False
    _answered: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def claim_answer(self) -> bool:
        """True for the first caller only: the one that may answer."""
        with self._lock:
            if self._answered:
                return False
            self._answered = True
            return True


@dataclass
class _Pending:
    """A message we sent and await an answer to. ``waiter`` receives the reply for a
    ``request()``; None means the answer goes to the agent's handlers."""

    message: dict
    waiter: Callable[[dict | BaseException], None] | None


def _handled(ticket: Ticket | None) -> None:
    if ticket is not None:
        ticket.handled()


def error_text(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def reply_outcome(reply: dict) -> Any:
    """The value a reply carries, or raise the ActionError it carries."""
    args = reply["action"].get("args", {})
    if reply["action"]["name"] == ERROR:
        raise ActionError(args.get("error", ""))
    return args.get("value")


_EMPTY_DEQUE: collections.deque = collections.deque(maxlen=0)  # shared, stays empty


class AgentCore:
    """Runs one agent: created by a space, fed by its transport, driven by :meth:`run`."""

    def __init__(self, agent: "Agent", transport: Transport,
                 start_task: Callable[..., None],
                 thread_limiter: trio.CapacityLimiter) -> None:
        """``start_task(async_fn, *args)`` starts a trio task (e.g. a nursery's
        ``start_soon``); ``thread_limiter`` is passed to ``trio.to_thread.run_sync`` (the
        agent bounds itself, so it should not be a small shared limiter)."""
        self.agent = agent
        self.transport = transport
        self.token = trio.lowlevel.current_trio_token()
        self.thread = threading.get_ident()
        self.processing = False
        self.stopped = False
        self._start_task = start_task
        self._threads = thread_limiter
        # Work waits here in arrival order; a task is started per item while slots are
        # free. No task runs while the agent is idle, and the containers below are made
        # on first use: an idle agent costs little (thousands of agents are the point).
        self._queue: collections.deque[Callable] = _EMPTY_DEQUE
        self._free_slots = agent.max_concurrency
        self._slot_waiters: collections.deque[trio.Event] = _EMPTY_DEQUE
        self._running: set[trio.CancelScope] = set()
        self._pending: dict[str, _Pending] = {}
        # Inbox limit bookkeeping (see Inboxes), under inboxes.lock. As receiver: ids
        # local senders reserved a place for (in flight or queued) -> the sender; queued
        # work that came without a reservation; senders waiting for room. As sender: our
        # reservations not yet started -> the receiver.
        self.inboxes: Inboxes | None = None  # set by Inboxes.register
        self.inbox_limit = agent.inbox_limit
        self._reserved: dict[str, AgentCore] = {}
        self._unreserved = 0
        self._room_waiters: collections.deque[_RoomWaiter] = _EMPTY_DEQUE
        self._outstanding: dict[str, AgentCore] = {}
        self.inbox_peak = 0  # the most ever pending (statistics, tests)

    # --- lifecycle (runtime thread) -----------------------------------------------------

    def begin_processing(self) -> None:
        self.processing = True
        self._pump()

    def stop(self) -> None:
        """The agent has left: cancel its handlers, fail what its callers wait for."""
        self.stopped = True
        self.processing = False
        self._queue = _EMPTY_DEQUE
        self._release_inbox()
        for scope in list(self._running):
            scope.cancel()
        pending, self._pending = self._pending, {}
        for entry in pending.values():
            if entry.waiter is not None:
                entry.waiter(RuntimeError(f'agent "{self.agent.id}" was removed while'
                                          " waiting for a reply"))

    def on_runtime_thread(self) -> bool:
        return threading.get_ident() == self.thread

    def run_soon(self, fn: Callable[[], Any]) -> None:
        """Run ``fn`` on the runtime thread (from any thread), in order."""
        if self.on_runtime_thread():
            fn()
        else:
            self.token.run_sync_soon(fn)

    # --- inbox limits (see Inboxes) -------------------------------------------------------

    @property
    def inbox_pending(self) -> int:
        """Messages admitted to this agent and not yet started: reserved by local
        senders (in flight or queued) plus queued ones that came without a reservation
        (broadcasts, replies, messages from outside the process)."""
        return len(self._reserved) + self._unreserved

    def inbox_for(self, message: dict) -> "AgentCore | None":
        """The local receiver whose limit ``message`` must respect, or None: broadcasts
        and replies are never held back (a reply is owed to a request already admitted,
        and holding it back could deadlock two agents answering each other)."""
        inboxes = self.inboxes
        if (inboxes is None or message["to"] == BROADCAST
                or message["action"]["name"] in (RESPONSE, ERROR)):
            return None
        return inboxes.cores.get(message["to"])

    def try_reserve(self, sender: "AgentCore", message_id: str) -> bool:
        """Any thread: reserve a place in this inbox for ``message_id``; False if full."""
        with self.inboxes.lock:
            return self._reserve_locked(sender, message_id)

    def _reserve_locked(self, sender: "AgentCore", message_id: str) -> bool:
        if self.stopped or sender.stopped:
            return True  # nobody to count for: the message goes (or not) as it would
        if self.inbox_pending >= self.inbox_limit:
            return False
        self._reserved[message_id] = sender
        sender._outstanding[message_id] = self
        self._note_peak()
        return True

    def _note_peak(self) -> None:
        pending = len(self._reserved) + self._unreserved
        if pending > self.inbox_peak:
            self.inbox_peak = pending

    def wait_for_room(self, sender: "AgentCore", message_id: str,
                      event: Any) -> _RoomWaiter | None:
        """Any thread: reserve now (None), or queue a waiter whose ``event`` is set once
        a place has been reserved for it (or this agent has left)."""
        with self.inboxes.lock:
            if not self._room_waiters and self._reserve_locked(sender, message_id):
                return None
            waiter = _RoomWaiter(sender, message_id, event)
            if self._room_waiters is _EMPTY_DEQUE:
                self._room_waiters = collections.deque()
            self._room_waiters.append(waiter)
            return waiter

    def cancel_wait(self, waiter: _RoomWaiter) -> bool:
        """Any thread: give up waiting; True if no place was granted (the sender then
        fails), False if one was granted meanwhile (the sender goes ahead)."""
        with self.inboxes.lock:
            if waiter.granted:
                return False
            waiter.cancelled = True
            try:  # gone from the line, so that senders retrying cannot grow it
                self._room_waiters.remove(waiter)
            except ValueError:
                pass
            return True

    def _make_room(self) -> None:
        """Runtime thread, lock held: hand freed places to waiting senders, in order.
        Once the inbox was full, waiters are let in only when an eighth of it has
        drained: a sender then goes on for many messages instead of being woken for
        each single place (which costs a task switch per message at the limit)."""
        waiters = self._room_waiters
        if not waiters or (not self.stopped and self.inbox_pending
                           > self.inbox_limit - max(1, self.inbox_limit // 8)):
            return
        while waiters and (self.stopped or self.inbox_pending < self.inbox_limit):
            waiter = waiters.popleft()
            if waiter.cancelled:
                continue
            self._reserve_locked(waiter.sender, waiter.message_id)
            waiter.granted = True
            waiter.event.set()

    def _started(self, message_id: str | None) -> None:
        """Runtime thread: a queued item leaves the queue (started, or dropped)."""
        inboxes = self.inboxes
        if inboxes is None:
            return
        with inboxes.lock:
            if message_id is None:
                self._unreserved -= 1
            else:
                sender = self._reserved.pop(message_id, None)
                if sender is not None:
                    sender._outstanding.pop(message_id, None)
            self._make_room()

    def _release_inbox(self) -> None:
        """Runtime thread, at stop: places we hold elsewhere and others hold here are
        given back; senders waiting for room here go ahead (to an agent that has left)."""
        inboxes = self.inboxes
        if inboxes is None:
            return
        with inboxes.lock:
            for message_id, sender in self._reserved.items():
                sender._outstanding.pop(message_id, None)
            self._reserved = {}
            self._unreserved = 0
            self._make_room()  # stopped: every waiter is woken
            outstanding, self._outstanding = self._outstanding, {}
            for message_id, receiver in outstanding.items():
                if receiver._reserved.pop(message_id, None) is not None:
                    receiver._make_room()
        inboxes.unregister(self)

    # --- outbound (runtime thread) --------------------------------------------------------

    def start_send(self, message: dict, waiter: Callable | None = None) -> None:
        if self.stopped:
            if waiter is not None:
                waiter(RuntimeError(f'agent "{self.agent.id}" has been removed'))
            return
        if message["to"] != BROADCAST and message["action"]["name"] not in (RESPONSE, ERROR):
            self._pending[message["meta"]["id"]] = _Pending(message, waiter)
        self.transport.deliver(message)

    def abandon(self, message_id: str) -> None:
        """Stop waiting for an answer (timeout, interrupt)."""
        entry = self._pending.pop(message_id, None)
        if entry is not None:
            self.transport.withdraw(entry.message)

    def requests_failed(self, message_ids: set[str], agent_id: str) -> None:
        """Transport: ``agent_id`` left (removed, crashed) while these requests to it
        were pending: fail them now rather than at their timeouts."""
        for message_id in message_ids:
            entry = self._pending.pop(message_id, None)
            if entry is None:
                continue  # answered or abandoned meanwhile
            self.transport.withdraw(entry.message)
            error = ActionError(f'agent "{agent_id}" stopped before answering'
                                f' "{entry.message["action"]["name"]}"')
            self._resolve(entry, None, error)

    def reply_received(self, reply: dict, sender: str) -> None:
        """Transport: a reply fact. Only the agent the request went to may answer it."""
        entry = self._pending.get(reply["meta"].get("parent_id"))
        if entry is None:
            return  # withdrawn meanwhile, or meant for a routed message
        if sender != entry.message["to"] or reply["from"] != sender:
            log.warning('agent "%s": ignoring a reply to %s from "%s": the request went to'
                        ' "%s"', self.agent.id, reply["meta"].get("parent_id"), sender,
                        entry.message["to"])
            return
        self.agent._message_log.append(reply)
        del self._pending[reply["meta"]["parent_id"]]
        self.transport.withdraw(entry.message)
        self._resolve(entry, reply, None)

    def _resolve(self, entry: _Pending, reply: dict | None, error: BaseException | None):
        if entry.waiter is not None:
            entry.waiter(error if error is not None else reply)
        elif error is not None:
            if "handle_action_error" not in self.agent._overridden_hooks():
                return
            self._enqueue(lambda slot, scope: self._call_handler(
                self.agent.handle_action_error, ActionError(str(error)), None, slot, scope))
        else:
            self._queue_reply_handler(reply)

    # --- inbound (runtime thread) ---------------------------------------------------------

    def inbound(self, message: dict, ticket: Ticket | None = None) -> None:
        """Transport: a message for this agent (``ticket`` for a withdrawable request)."""
        agent = self.agent
        if (message["to"] == BROADCAST and message["from"] == agent.id
                and not agent.receive_own_broadcasts):
            _handled(ticket)
            return
        name = message["action"]["name"]
        if name in (RESPONSE, ERROR):
            parent_id = message["meta"].get("parent_id")
            entry = self._pending.get(parent_id)
            if entry is not None and message["from"] != entry.message["to"]:
                # Only the agent the request went to may answer it (no impersonation).
                log.warning('agent "%s": ignoring a reply to %s from "%s": the request went'
                            ' to "%s"', agent.id, parent_id, message["from"],
                            entry.message["to"])
                _handled(ticket)
                return
            self._pending.pop(parent_id, None)
            agent._message_log.append(message)
            if entry is not None:
                self.transport.withdraw(entry.message)
                self._resolve(entry, message, None)
            else:
                self._queue_reply_handler(message)
            _handled(ticket)
            return
        agent._message_log.append(message)
        message_id = message["meta"]["id"]
        if ticket is not None and ticket.withdrawn:
            if message_id in self._reserved:
                self._started(message_id)
            _handled(ticket)
            return
        self._enqueue(lambda slot, scope: self._invoke(message, ticket, slot, scope),
                      message_id)

    def withdrawn(self, ticket: Ticket) -> None:
        """Transport: the sender withdrew the request behind ``ticket``."""
        ticket.withdrawn = True
        invocation = ticket.invocation
        if invocation is not None:
            invocation.cancelled = True
            if invocation.cancel_scope is not None:
                invocation.cancel_scope.cancel()

    def _queue_reply_handler(self, reply: dict) -> None:
        agent = self.agent
        if reply["action"]["name"] == ERROR:
            if "handle_action_error" not in agent._overridden_hooks():
                return  # the base handler does nothing: skip the worker-thread trip
            handler = agent.handle_action_error
            argument: Any = ActionError(reply["action"].get("args", {}).get("error", ""))
        else:
            if "handle_action_value" not in agent._overridden_hooks():
                return
            handler = agent.handle_action_value
            argument = reply["action"].get("args", {}).get("value")
        self._enqueue(
            lambda slot, scope: self._call_handler(handler, argument, reply, slot, scope))

    # --- scheduling (runtime thread) ------------------------------------------------------

    def _enqueue(self, work: Callable, message_id: str | None = None) -> None:
        """Queue ``work``; ``message_id``: the message it handles, whose reservation (if
        a local sender made one) is given back when the work starts."""
        if self.stopped:
            return
        if self._queue is _EMPTY_DEQUE:
            self._queue = collections.deque()
        inboxes = self.inboxes
        if inboxes is not None:
            with inboxes.lock:
                if message_id is None or message_id not in self._reserved:
                    message_id = None
                    self._unreserved += 1
                    self._note_peak()
        self._queue.append((work, message_id))
        self._pump()

    def _pump(self) -> None:
        while self.processing and self._queue and self._free_slots > 0:
            self._free_slots -= 1
            work, message_id = self._queue.popleft()
            self._started(message_id)
            self._start_task(self._perform, work, _Slot(self))

    def _release_slot(self) -> None:
        if self._slot_waiters:  # actions resuming after request() go first
            self._slot_waiters.popleft().set()
        else:
            self._free_slots += 1
            self._pump()

    async def _acquire_slot(self) -> None:
        if self._free_slots > 0:
            self._free_slots -= 1
            return
        handed_over = trio.Event()
        if self._slot_waiters is _EMPTY_DEQUE:
            self._slot_waiters = collections.deque()
        self._slot_waiters.append(handed_over)
        await handed_over.wait()

    # --- handling (trio tasks on the runtime thread) -----------------------------------------

    async def _perform(self, work: Callable, slot: _Slot) -> None:
        # This scope is cancelled when the agent stops, or (async actions) when the
        # sender withdraws the request.
        with trio.CancelScope() as scope:
            self._running.add(scope)
            try:
                await work(slot, scope)
            except Exception:
                log.exception('agent "%s": handler failed', self.agent.id)
            finally:
                self._running.discard(scope)
                slot.release()

    async def _call_handler(self, handler: Callable, argument: Any, reply: dict | None,
                            slot: _Slot, scope: trio.CancelScope) -> None:
        """A reply handler, on a worker thread, with the reply as the current message."""
        if reply is not None:
            handling = Invocation(self, reply, None, slot)
            handling.claim_answer()  # replies are never answered
            CURRENT.set(handling)
        await trio.to_thread.run_sync(handler, argument, limiter=self._threads,
                                      abandon_on_cancel=True)

    async def _invoke(self, message: dict, ticket: Ticket | None, slot: _Slot,
                      scope: trio.CancelScope) -> None:
        try:
            await self._invoke_action(message, ticket, slot, scope)
        finally:
            _handled(ticket)  # answered (the reply went out first), or nothing to answer

    async def _invoke_action(self, message: dict, ticket: Ticket | None, slot: _Slot,
                             scope: trio.CancelScope) -> None:
        agent = self.agent
        invocation = Invocation(self, message, ticket, slot)
        if ticket is not None:
            if ticket.withdrawn:
                return
            ticket.invocation = invocation
        spec = agent._action_specs().get(message["action"]["name"])
        if spec is None:
            if message["to"] != BROADCAST:  # unknown actions in broadcasts: ignored
                self.answer(invocation, error=f'AttributeError: "{message["action"]["name"]}"'
                                              f' not found on "{agent.id}"')
            return
        value, error = await self._run_action(invocation, spec, scope)
        if error is not None:
            self.answer(invocation, error=error_text(error))
        else:
            self.answer(invocation, value=value)

    async def _run_action(self, invocation: Invocation, spec: "ActionSpec",
                          scope: trio.CancelScope) -> tuple[Any, BaseException | None]:
        """Permission, before_action, the action, after_action: ``(value, error)``.
        An async action whose request is withdrawn is cancelled through ``scope``."""
        from .agent import ACCESS_DENIED, ACCESS_REQUESTED  # noqa: avoid an import cycle

        agent, message = self.agent, invocation.message
        CURRENT.set(invocation)  # this task's context; copied into worker threads
        def denied() -> PermissionError:
            return PermissionError(f'"{agent.id}.{spec.name}" not permitted')

        if spec.access_policy == ACCESS_DENIED:
            return None, denied()
        method = getattr(agent, spec.method_name)
        args = message["action"].get("args", {})
        asks = spec.access_policy == ACCESS_REQUESTED

        if not spec.is_async:
            def in_worker_thread() -> tuple[Any, BaseException | None]:
                if asks and not agent.request_permission(message):
                    return None, denied()
                return agent._around_action(message, lambda: method(**args))

            return await trio.to_thread.run_sync(in_worker_thread, limiter=self._threads,
                                                 abandon_on_cancel=True)

        hooks = agent._overridden_hooks()
        if asks:
            allowed = await self._maybe_threaded(hooks, "request_permission", message,
                                                 default=False)
            if not allowed:
                return None, denied()
        try:
            await self._maybe_threaded(hooks, "before_action", message)
        except Exception as error:
            return None, error
        value, error = None, None
        invocation.cancel_scope = scope
        if invocation.cancelled:
            scope.cancel()
        try:
            value = await method(**args)
        except Exception as exc:
            error = exc
        try:
            await self._maybe_threaded(hooks, "after_action", message, value, error)
        except Exception:
            log.exception('agent "%s": after_action failed', agent.id)
        return value, error

    async def _maybe_threaded(self, hooks: frozenset, name: str, *args: Any,
                              default: Any = None) -> Any:
        """Call an overridable callback on a worker thread, or skip it if not overridden."""
        if name not in hooks:
            return default
        return await trio.to_thread.run_sync(getattr(self.agent, name), *args,
                                             limiter=self._threads, abandon_on_cancel=True)

    # --- answering (runtime thread) ---------------------------------------------------------

    def answer(self, invocation: Invocation, *, value: Any = None,
               error: str | None = None) -> None:
        """Send the one reply to ``invocation`` (later calls do nothing)."""
        if not invocation.claim_answer() or invocation.cancelled:
            return
        if error is None:
            try:
                values.check_json(value, "the return value")
            except values.NotJSON as exc:
                error = error_text(exc)
        # The request was validated on arrival and the value just now.
        if error is not None:
            reply = make_reply(invocation.message, self.agent.id, error=error, check=False)
        else:
            reply = make_reply(invocation.message, self.agent.id, value=value, check=False)
        self.agent._message_log.append(reply)
        if invocation.ticket is not None:
            self.transport.reply(invocation.ticket, reply)
        else:
            self.transport.deliver(reply)
