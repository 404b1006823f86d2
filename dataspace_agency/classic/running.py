"""How an agent's core runs what it is given (a mixin of :class:`~.core.AgentCore`):
plain-function actions and reply handlers on worker threads straight from trio's thread
cache, ``async def`` actions as trio tasks, permission and the ``before_action`` /
``after_action`` callbacks around them, and the one answer each action gives.

Why no trio task for a plain-function action: a task costs a spawn, a cancel scope and
a scheduling round, and would only wait for the thread; the worker is started from the
runtime thread and reports back through ``run_soon``, with the reply already built on the
worker, off the runtime thread."""

from __future__ import annotations

import contextvars
import logging
from typing import TYPE_CHECKING, Any, Callable

import trio

from . import values
from .invocation import CURRENT, Invocation, Slot, Ticket, error_text, handled
from .message import BROADCAST, make_reply
from .spec import ACCESS_DENIED, ACCESS_REQUESTED, ActionSpec

if TYPE_CHECKING:
    from .agent import Agent

log = logging.getLogger("dataspace_agency.classic.core")


_ACTIONS_PER_TASK = 16  # see ActionRunner._perform_async


class ActionRunner:
    """Running handlers and answering, for :class:`~.core.AgentCore` (runtime thread
    unless a method says otherwise)."""

    agent: "Agent"
    inline: Callable[[Callable[[], Any]], Any]  # AgentCore.inline
    _tail: list | None = None  # set while an async action's task gives its slot back

    def _handle_inline(self, handler: Callable[[Any], None], argument: Any,
                       reply: dict) -> None:
        """Run a reply handler here, on the runtime thread, for agents of this package
        whose handlers only file the reply (a client handle's inbox): two thread
        crossings fewer per reply than a worker thread."""
        invocation = Invocation(self, reply, None, Slot(self))
        invocation.slot.held = False  # holds no slot: releasing it must do nothing
        invocation.claim_answer()  # a reply is never answered
        try:
            contextvars.Context().run(self._job, invocation, lambda: handler(argument))
        except Exception:
            log.exception('agent "%s": reply handler failed', self.agent.id)

    # --- handling (runtime thread; plain functions on worker threads) ------------------------

    def _start_action(self, message: dict, ticket: Ticket | None, slot: Slot) -> None:
        agent = self.agent
        invocation = Invocation(self, message, ticket, slot)
        if ticket is not None:
            if ticket.withdrawn:  # withdrawn while it waited in the queue
                handled(ticket)
                slot.release()
                return
            ticket.invocation = invocation
        spec = agent._action_specs().get(message["action"]["name"])
        if spec is None or spec.access_policy == ACCESS_DENIED:
            if spec is not None:
                self.answer(invocation, error=error_text(self._denied(spec)))
            elif message["to"] != BROADCAST:  # unknown actions in broadcasts: ignored
                self.answer(invocation, error=f'AttributeError: "{message["action"]["name"]}"'
                                              f' not found on "{agent.id}"')
            handled(ticket)
            slot.release()
        elif spec.is_async:
            tail = self._tail
            if tail is not None and tail[0] is None:
                tail[0] = (invocation, spec)  # the task finishing an action runs it next
            else:
                self._start_task(self._perform_async, invocation, spec)
        else:
            self._in_worker(invocation, lambda: self._run_plain(invocation, spec))

    def _denied(self, spec: ActionSpec) -> PermissionError:
        return PermissionError(f'"{self.agent.id}.{spec.name}" not permitted')

    def _in_worker(self, invocation: Invocation, call: Callable[[], Any]) -> None:
        """Run ``call()`` on a worker thread with ``invocation`` current; what it returns
        (a reply to send, or None) is sent and the slot released back on this thread."""
        self._threaded.add(invocation)

        def job() -> Any:
            # A fresh context per job: a cached worker thread must not carry one job's
            # current invocation into the next.
            return contextvars.Context().run(self._job, invocation, call)

        def done(result: Any) -> None:  # on the worker thread
            try:
                self.run_soon(lambda: self._worker_done(invocation, result))
            except RuntimeError:
                pass  # the runtime has gone: nobody to answer

        trio.lowlevel.start_thread_soon(job, done)

    @staticmethod
    def _job(invocation: Invocation, call: Callable[[], Any]) -> Any:
        CURRENT.set(invocation)
        return call()

    def _worker_done(self, invocation: Invocation, result: Any) -> None:
        self._threaded.discard(invocation)
        try:
            reply = result.unwrap()
        except Exception:
            log.exception('agent "%s": handler failed', self.agent.id)
        else:
            if reply is not None and not self.stopped:
                self._send_reply(invocation, reply)
        handled(invocation.ticket)
        invocation.slot.release()

    def _run_plain(self, invocation: Invocation, spec: ActionSpec) -> dict | None:
        """On the worker thread: permission, before_action, the action, after_action;
        returns the reply to send (built here, off the runtime thread)."""
        agent, message = self.agent, invocation.message
        if invocation.cancelled:  # withdrawn before it started
            return None
        if spec.access_policy == ACCESS_REQUESTED and not agent.request_permission(message):
            return self.reply_for(invocation, error=error_text(self._denied(spec)))
        method = getattr(agent, spec.method_name)
        args = message["action"].get("args", {})
        value, error = agent._around_action(message, lambda: method(**args))
        if error is not None:
            return self.reply_for(invocation, error=error_text(error))
        return self.reply_for(invocation, value=value)

    async def _perform_async(self, invocation: Invocation, spec: ActionSpec) -> None:
        """A task running ``async def`` actions of this agent: this one, then, while the
        agent has more waiting as each finishes, up to ``_ACTIONS_PER_TASK`` in all.

        Why not a task per action: a task costs a spawn, its exit, and a scheduling round
        of trio before it runs; an agent taking a stream of one-way messages paid them
        for every message. The next action is handed over when the finishing one gives
        its slot back (``_tail``), i.e. exactly when a new task would have been started
        for it, and it runs in a cancel scope of its own, as every action does. Actions
        running one after the other in a task share its context: each sets the current
        invocation itself (``CURRENT``). A bound keeps one busy agent from holding the
        runtime: after ``_ACTIONS_PER_TASK`` the next action gets a task of its own,
        which runs in trio's next round."""
        tail: list = [None]  # (invocation, spec) handed to this task; a list: no call
        for left in range(_ACTIONS_PER_TASK - 1, -1, -1):
            # This scope is cancelled when the agent stops, or when the sender
            # withdraws the request.
            with trio.CancelScope() as scope:
                self._running.add(scope)
                try:
                    if not (invocation.ticket is not None and invocation.ticket.withdrawn):
                        value, error = await self._run_async(invocation, spec, scope)
                        # Inline: the answer goes out now, not in the runtime's next round.
                        if error is not None:
                            self.inline(lambda: self.answer(invocation,
                                                            error=error_text(error)))
                        else:
                            self.inline(lambda: self.answer(invocation, value=value))
                except Exception:
                    log.exception('agent "%s": handler failed', self.agent.id)
                finally:
                    self._running.discard(scope)
                    handled(invocation.ticket)
                    # Giving the slot back starts what waits for it (``_pump``): an
                    # async action among it is handed to this task (``_start_action``).
                    self._tail = tail if left else None
                    try:
                        invocation.slot.release()
                    finally:
                        self._tail = None
            if tail[0] is None:
                return
            (invocation, spec), tail[0] = tail[0], None

    async def _run_async(self, invocation: Invocation, spec: ActionSpec,
                         scope: trio.CancelScope) -> tuple[Any, BaseException | None]:
        """Permission, before_action, the ``async def`` action, after_action."""
        agent, message = self.agent, invocation.message
        CURRENT.set(invocation)  # this task's context
        hooks = agent._overridden_hooks()
        if spec.access_policy == ACCESS_REQUESTED:
            allowed = await self._maybe_threaded(hooks, "request_permission", message,
                                                 default=False)
            if not allowed:
                return None, self._denied(spec)
        try:
            await self._maybe_threaded(hooks, "before_action", message)
        except Exception as error:
            return None, error
        value, error = None, None
        invocation.cancel_scope = scope
        if invocation.cancelled:
            scope.cancel()
        try:
            value = await getattr(agent, spec.method_name)(**message["action"].get("args", {}))
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

    # --- answering ------------------------------------------------------------------------------

    def reply_for(self, invocation: Invocation, *, value: Any = None,
                  error: str | None = None) -> dict | None:
        """Any thread: the one reply to ``invocation``, or None if it was answered
        already or withdrawn. The request was validated on arrival; the value is
        checked here."""
        if not invocation.claim_answer() or invocation.cancelled:
            return None
        if error is None:
            try:
                # One level less than args may nest: the reply's args hold it.
                values.check_json(value, "the return value", values.MAX_DEPTH - 1)
            except values.NotJSON as exc:
                error = error_text(exc)
        if error is not None:
            reply = make_reply(invocation.message, self.agent.id, error=error, check=False)
        else:
            reply = make_reply(invocation.message, self.agent.id, value=value, check=False)
        self.agent._message_log.append(reply)  # a deque: appends are thread-safe
        return reply

    def _send_reply(self, invocation: Invocation, reply: dict) -> None:
        if invocation.ticket is not None:
            self.transport.reply(invocation.ticket, reply)
        else:
            self.transport.deliver(reply)

    def answer(self, invocation: Invocation, *, value: Any = None,
               error: str | None = None) -> None:
        """Runtime thread: send the one reply to ``invocation`` (later calls do nothing)."""
        reply = self.reply_for(invocation, value=value, error=error)
        if reply is not None:
            self._send_reply(invocation, reply)
