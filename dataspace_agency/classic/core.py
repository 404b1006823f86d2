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

    # --- lifecycle (runtime thread) -----------------------------------------------------

    def begin_processing(self) -> None:
        self.processing = True
        self._pump()

    def stop(self) -> None:
        """The agent has left: cancel its handlers, fail what its callers wait for."""
        self.stopped = True
        self.processing = False
        self._queue = _EMPTY_DEQUE
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
            entry = self._pending.pop(message["meta"].get("parent_id"), None)
            agent._message_log.append(message)
            if entry is not None:
                self.transport.withdraw(entry.message)
                self._resolve(entry, message, None)
            else:
                self._queue_reply_handler(message)
            _handled(ticket)
            return
        agent._message_log.append(message)
        if ticket is not None and ticket.withdrawn:
            _handled(ticket)
            return
        self._enqueue(lambda slot, scope: self._invoke(message, ticket, slot, scope))

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

    def _enqueue(self, work: Callable) -> None:
        if self._queue is _EMPTY_DEQUE:
            self._queue = collections.deque()
        self._queue.append(work)
        self._pump()

    def _pump(self) -> None:
        while self.processing and self._queue and self._free_slots > 0:
            self._free_slots -= 1
            self._start_task(self._perform, self._queue.popleft(), _Slot(self))

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
