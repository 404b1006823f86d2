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
* A reply is matched to its request in one place, :meth:`AgentCore.reply_arrived`,
  whichever way the transport carried it: only the agent the request went to may answer
  it; the answer completes the waiting ``request()`` or goes to ``handle_action_value``
  / ``handle_action_error``; a late answer to a request its sender stopped waiting for
  is dropped.
* Bounded inboxes (``inbox.py``, docs/limits.md).

The contract with transports (every method of :class:`Transport` and every method here
marked "runtime thread" runs on the runtime's trio thread): the core hands a transport
finished message dicts (validated once, by their sender: ``requests.py``); a transport
hands the core validated dicts through :meth:`AgentCore.inbound` (actions, broadcasts,
replies that came as messages), :meth:`AgentCore.reply_arrived` (replies that came as
facts answering a request this agent holds), :meth:`AgentCore.withdrawn` and
:meth:`AgentCore.requests_failed`. Other threads reach the core only through
:meth:`AgentCore.run_soon`.

The core is three files: this one (lifecycle, the way in from other threads, outbound,
matching replies, inbound, scheduling), ``running.py`` (running handlers on worker
threads and tasks, and answering) and ``inbox.py`` (bounded inboxes); ``invocation.py``
holds what they, the transports and the callers share.

Thread crossings of a request from a plain thread to a plain-function action, and why
each is needed: (1) caller -> runtime, to route the message (the dataspace and routers
live there); (2) runtime -> worker thread, because a plain action may block; (3) worker
-> runtime, to route the reply; (4) runtime -> caller, by releasing the lock the caller
waits on, directly from the code that matched the reply. No trio task is started for a
plain-function action: the worker is started from the runtime thread straight from
trio's thread cache, and the reply is built on the worker, off the runtime thread.
"""

from __future__ import annotations

import collections
import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import trio

from .inbox import EMPTY_DEQUE, InboxAccounts, InboxFull, Inboxes
from .invocation import (CURRENT, ActionError, Invocation, Slot, Ticket, Transport,
                         error_text, handled, reply_outcome)
from .message import BROADCAST, ERROR, RESPONSE
from .running import ActionRunner

if TYPE_CHECKING:
    from .agent import Agent
    from .requests import Completion

__all__ = ["ActionError", "AgentCore", "CURRENT", "InboxFull", "Inboxes", "Invocation",
           "Ticket", "Transport", "error_text", "reply_outcome"]

log = logging.getLogger(__name__)

# How many ids of requests their senders stopped waiting for (timeout, Ctrl-C) an agent
# remembers, so that their late answers are dropped instead of reaching its handlers.
_ABANDONED_KEPT = 10_000


@dataclass(eq=False)
class _Pending:
    """A message we sent and await an answer to. ``completion`` receives the reply for a
    ``request()``; None means the answer goes to the agent's handlers."""

    message: dict
    completion: "Completion | None"


class AgentCore(InboxAccounts, ActionRunner):
    """Runs one agent: created by a space, fed by its transport, driven by :meth:`run`."""

    def __init__(self, agent: "Agent", transport: Transport,
                 start_task: Callable[..., None],
                 thread_limiter: trio.CapacityLimiter) -> None:
        """``start_task(async_fn, *args)`` starts a trio task (e.g. a nursery's
        ``start_soon``); ``thread_limiter`` bounds the worker threads of ``async def``
        actions' callbacks (the agent bounds itself, so it should not be a small shared
        limiter). The core attaches itself to ``agent``."""
        self.agent = agent
        self.transport = transport
        self.token = trio.lowlevel.current_trio_token()
        self.thread = threading.get_ident()
        self.processing = False
        self.stopped = False
        self._start_task = start_task
        self._threads = thread_limiter
        # Work waits here in arrival order; it is started while slots are free. Nothing
        # runs while the agent is idle, and the containers below are made on first use:
        # an idle agent costs little (thousands of agents are the point).
        self._queue: collections.deque = EMPTY_DEQUE
        self._free_slots = agent.max_concurrency
        self._slot_waiters: collections.deque[trio.Event] = EMPTY_DEQUE
        self._running: set[trio.CancelScope] = set()  # async handlers
        self._threaded: set[Invocation] = set()  # handlers on worker threads
        self._pending: dict[str, _Pending] = {}
        self._abandoned: collections.OrderedDict[str, None] = collections.OrderedDict()
        # Calls from other threads, run on the runtime thread in order, with one wake-up
        # of the runtime per burst instead of one per call (see run_soon).
        self._calls: collections.deque[Callable[[], Any]] = collections.deque()
        self._calls_scheduled = False
        self._init_inbox(agent.inbox_limit)
        agent._core = self

    # --- lifecycle (runtime thread) -----------------------------------------------------

    def begin_processing(self) -> None:
        self.processing = True
        self._pump()

    def stop(self) -> None:
        """The agent has left: cancel its handlers, fail what its callers wait for."""
        self.stopped = True
        self.processing = False
        self._queue = EMPTY_DEQUE
        self._release_inbox()
        for scope in list(self._running):
            scope.cancel()
        for invocation in self._threaded:  # they finish unheard: nobody is answered
            invocation.cancelled = True
        pending, self._pending = self._pending, {}
        for entry in pending.values():
            if entry.completion is not None:
                entry.completion.complete(RuntimeError(
                    f'agent "{self.agent.id}" was removed while waiting for a reply'))

    def on_runtime_thread(self) -> bool:
        return threading.get_ident() == self.thread

    def run_soon(self, fn: Callable[[], Any]) -> None:
        """Run ``fn`` on the runtime thread (from any thread), in order.

        From other threads, calls are queued here and the runtime is woken once per
        burst: a caller sending many messages costs one wake-up of the runtime (a
        write to trio's wake-up socket, and a scheduling round) rather than one each.
        ``_calls_scheduled`` is cleared *before* the queue is drained, so a call queued
        while a drain runs is either taken by that drain or schedules the next."""
        if threading.get_ident() == self.thread:
            fn()
            return
        self._calls.append(fn)
        if not self._calls_scheduled:
            try:
                self._calls_scheduled = True
                self.token.run_sync_soon(self._run_calls)
            except trio.RunFinishedError:
                self._calls_scheduled = False
                raise RuntimeError(f'agent "{self.agent.id}": its space has been'
                                   " destroyed") from None
            except BaseException:
                # Ctrl-C in the middle: maybe nothing was scheduled, so the next call
                # schedules (a second drain finds nothing to do, which is harmless).
                self._calls_scheduled = False
                raise

    def _run_calls(self) -> None:
        # Run inline: what the calls queue on the runtime (a dataspace's turns, say)
        # runs in this scheduling round, not the next: a round fewer for each crossing
        # from another thread (a handle's request, a worker's reply).
        self.inline(self._drain_calls)

    def inline(self, action: Callable[[], Any]) -> Any:
        """Runtime thread, outside turns: ``action()``, then at once what it made the
        transport queue on the runtime (``Transport.run_inline``), instead of in the
        runtime's next scheduling round. Used where someone waits for the outcome: a
        request being sent, an answer being given, calls from other threads. Sends
        that wait for nothing go the ordinary way, so a burst of them still goes as
        one."""
        run_inline = getattr(self.transport, "run_inline", None)
        return action() if run_inline is None else run_inline(action)

    def _drain_calls(self) -> None:
        self._calls_scheduled = False
        calls = self._calls
        while calls:
            try:
                calls.popleft()()
            except Exception:
                log.exception('agent "%s": a call on the runtime thread failed',
                              self.agent.id)

    def blocking_slot(self) -> Slot | None:
        """The slot of the handler of this agent running in this thread or task, if
        any: a caller about to block gives it back meanwhile."""
        invocation = CURRENT.get()
        if invocation is not None and invocation.core is self:
            return invocation.slot
        return None

    # --- outbound (runtime thread) --------------------------------------------------------

    def start_send(self, message: dict, completion: "Completion | None" = None) -> None:
        """Send ``message``; a point-to-point action is pending until answered, and its
        answer goes to ``completion`` (a ``request()``) or to the agent's handlers."""
        if self.stopped:
            if completion is not None:
                completion.complete(RuntimeError(f'agent "{self.agent.id}" has been'
                                                 " removed"))
            return
        if message["to"] != BROADCAST and message["action"]["name"] not in (RESPONSE, ERROR):
            message_id = message["meta"]["id"]
            if message_id in self._pending:  # a supplied id: checked early, again here
                if completion is not None:
                    completion.complete(ValueError(
                        f'a message with id "{message_id}" from "{self.agent.id}" is'
                        " already waiting for its answer"))
                return
            self._pending[message_id] = _Pending(message, completion)
        self.transport.deliver(message)

    @property
    def pending_count(self) -> int:
        """How many sent messages await their answers."""
        return len(self._pending)

    def is_pending(self, message_id: str) -> bool:
        """Any thread: whether a message with this id awaits its answer."""
        return message_id in self._pending

    def abandon(self, message_id: str) -> None:
        """Stop waiting for an answer (timeout, interrupt): the request is withdrawn and
        a late answer to it is dropped."""
        entry = self._pending.pop(message_id, None)
        if entry is not None:
            self.transport.withdraw(entry.message)
            abandoned = self._abandoned
            abandoned[message_id] = None
            if len(abandoned) > _ABANDONED_KEPT:
                abandoned.popitem(last=False)

    def requests_failed(self, message_ids: set[str], agent_id: str,
                        why: str | None = None) -> None:
        """Transport: ``agent_id`` left (removed, crashed), or the way to it was lost
        (``why``), while these requests to it were pending: fail them now rather than at
        their timeouts."""
        for message_id in message_ids:
            entry = self._pending.pop(message_id, None)
            if entry is None:
                continue  # answered or abandoned meanwhile
            self.transport.withdraw(entry.message)
            name = entry.message["action"]["name"]
            self._resolve(entry, None, ActionError(
                f'no answer from "{agent_id}" to "{name}": {why}' if why else
                f'agent "{agent_id}" stopped before answering "{name}"'))

    def reply_arrived(self, reply: dict, sender: str, *, held: bool = False) -> None:
        """Transport: ``reply`` (a ``[response]`` or ``[error]``), known by the transport
        to come from ``sender``. ``held``: it is a fact answering a request this agent
        holds (assertion mode), so without a pending request it is stale and dropped;
        a reply that came as a message answers a ``send()`` or a broadcast."""
        parent_id = reply["meta"].get("parent_id")
        entry = self._pending.get(parent_id)
        if entry is not None and (sender != entry.message["to"] or reply["from"] != sender):
            # Only the agent the request went to may answer it (no impersonation).
            log.warning('agent "%s": ignoring a reply to %s from "%s": the request went to'
                        ' "%s"', self.agent.id, parent_id, sender, entry.message["to"])
            return
        if entry is None:
            if held or parent_id in self._abandoned:
                return  # withdrawn meanwhile: nobody waits for it
            self.agent._message_log.append(reply)
            self._queue_reply_handler(reply)
            return
        del self._pending[parent_id]
        self.agent._message_log.append(reply)
        self.transport.withdraw(entry.message)
        self._resolve(entry, reply, None)

    def _resolve(self, entry: _Pending, reply: dict | None, error: BaseException | None):
        if entry.completion is not None:
            entry.completion.complete(error if error is not None else reply)
        elif error is not None:
            if "handle_action_error" in self.agent._overridden_hooks():
                self._enqueue(("handler", self.agent.handle_action_error,
                               ActionError(str(error)), None))
        else:
            self._queue_reply_handler(reply)

    # --- inbound (runtime thread) ---------------------------------------------------------

    def inbound(self, message: dict, ticket: Ticket | None = None) -> None:
        """Transport: a message for this agent (``ticket`` for a withdrawable request)."""
        agent = self.agent
        if (message["to"] == BROADCAST and message["from"] == agent.id
                and not agent.receive_own_broadcasts):
            handled(ticket)
            return
        if message["action"]["name"] in (RESPONSE, ERROR):
            self.reply_arrived(message, message["from"])
            handled(ticket)
            return
        agent._message_log.append(message)
        message_id = message["meta"]["id"]
        if ticket is not None and ticket.withdrawn:
            if message_id in self._reserved:
                self._started(message_id)
            handled(ticket)
            return
        self._enqueue(("action", message, ticket), message_id)

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
        if agent._replies_handled_inline:
            self._handle_inline(handler, argument, reply)
        else:
            self._enqueue(("handler", handler, argument, reply))

    # --- scheduling (runtime thread) ------------------------------------------------------

    def _enqueue(self, work: tuple, message_id: str | None = None) -> None:
        """Queue ``work``; ``message_id``: the message it handles, whose reservation (if
        a local sender made one) is given back when the work starts."""
        if self.stopped:
            return
        if self._queue is EMPTY_DEQUE:
            self._queue = collections.deque()
        self._queue.append((work, self._count_arrival(message_id)))
        self._pump()

    def _pump(self) -> None:
        while self.processing and self._queue and self._free_slots > 0:
            self._free_slots -= 1
            work, message_id = self._queue.popleft()
            self._started(message_id)
            if work[0] == "action":
                self._start_action(work[1], work[2], Slot(self))
            else:
                _, handler, argument, reply = work
                invocation = Invocation(self, reply, None, Slot(self))
                invocation.claim_answer()  # a reply is never answered
                self._in_worker(invocation, lambda: handler(argument))

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
        if self._slot_waiters is EMPTY_DEQUE:
            self._slot_waiters = collections.deque()
        self._slot_waiters.append(handed_over)
        await handed_over.wait()
