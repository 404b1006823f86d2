"""The classic programming model: ``Agent``, ``@action``, access policies, and the reactive
``@during`` / ``@on_message`` decorators.

An agent is added to a space (``space.add(MyAgent, "id")``); the space gives it a core
(``core.py``) that runs it. What an agent can do::

    class Greeter(Agent):
        @action
        def greet(self, name: str) -> str:
            \"\"\"Greet someone.

            Args:
                name: Who to greet.
            \"\"\"
            return f"hello, {name}"

    reply_id = agent.send({"to": "greeter", "action": {"name": "greet", "args": {"name": "ann"}}})
    value = agent.request({"to": "greeter", "action": {"name": "greet", "args": {"name": "ann"}}})

Plain-function actions run on worker threads and may block (and call ``self.request``);
``async def`` actions run as trio tasks (and use ``await self.arequest``). See ``core.py``
for the rules every backend keeps, and ``../shared/reference/agency.md`` for the contract.
"""

from __future__ import annotations

import collections
import functools
import inspect
from typing import Any, Callable

from . import requests, values
# InboxFull and the access policies are re-exported: users import them from here.
from .core import CURRENT, ActionError, AgentCore, InboxFull, Invocation, error_text  # noqa: F401
from .help import generate_help
from .message import validate_agent_id
from .spec import (ACCESS_DENIED, ACCESS_PERMITTED, ACCESS_REQUESTED,  # noqa: F401
                   POLICIES, ActionSpec)

_POLICIES = POLICIES

# Limits (docs/limits.md); each is a class attribute a subclass may override, and an
# Agent() keyword argument.
DEFAULT_INBOX_LIMIT = 10_000  # pending messages per agent (admitted, not yet started)
DEFAULT_MESSAGE_LOG_LIMIT = 1_000  # messages kept for parent_message()
DEFAULT_SEND_TIMEOUT = 10.0  # seconds send() waits for room in a full inbox


class MessageLog(collections.deque):
    """The agent's recent messages, oldest first, at most ``maxlen`` of them (the oldest
    are forgotten): what :meth:`Agent.parent_message` searches. Compares equal to a list
    with the same messages."""

    def __eq__(self, other: object) -> bool:
        if isinstance(other, list):
            return list(self) == other
        return super().__eq__(other)

    __hash__ = None  # type: ignore[assignment]


_HOOKS = ("request_permission", "before_action", "after_action", "after_add",
          "handle_action_value", "handle_action_error")


def action(method: Callable | None = None, *, name: str | None = None,
           help: dict | None = None, access_policy: str = ACCESS_PERMITTED) -> Any:
    """Mark a method as an action: ``@action`` or ``@action(name=..., help=...,
    access_policy=...)``. Help is generated from the signature and docstring unless given;
    the action is dispatched by ``name`` (default: the method's name)."""
    if access_policy not in _POLICIES:
        raise ValueError(f"access_policy must be one of {_POLICIES}, got {access_policy!r}")

    def mark(fn: Callable) -> Callable:
        fn.__action__ = ActionSpec(  # type: ignore[attr-defined]
            name=name or fn.__name__, method_name=fn.__name__,
            help=help if help is not None else generate_help(fn),
            access_policy=access_policy, is_async=inspect.iscoroutinefunction(fn))
        return fn

    return mark(method) if method is not None else mark


def during(pattern: Any) -> Callable[[Callable], Callable]:
    """React to facts matching ``pattern`` (a ``syndicate.patterns`` pattern): the method
    runs with the captures when a match appears; it may return a function, run when the
    match goes. Runs inside a turn of the agent's actor: keep it short, don't block.
    Facts it publishes are retracted when the match goes. Dataspace spaces only."""
    def mark(fn: Callable) -> Callable:
        fn.__reaction__ = ("during", pattern)  # type: ignore[attr-defined]
        return fn
    return mark


def on_message(pattern: Any) -> Callable[[Callable], Callable]:
    """React to Syndicate messages matching ``pattern``; like :func:`during`."""
    def mark(fn: Callable) -> Callable:
        fn.__reaction__ = ("message", pattern)  # type: ignore[attr-defined]
        return fn
    return mark


class Agent:
    """A classic agent. Subclass it, add ``@action`` methods, add it to a space.

    Limits (docs/limits.md), as keyword arguments or class attributes: ``inbox_limit``
    (pending messages a local sender may add before it must wait), ``send_timeout``
    (how long :meth:`send` waits for room before raising :class:`InboxFull`) and
    ``message_log_limit`` (messages kept for :meth:`parent_message`)."""

    inbox_limit: int = DEFAULT_INBOX_LIMIT
    # Package-internal: reply handlers that never block (they only file the reply) run
    # on the runtime thread instead of a worker thread (the client handle's endpoint).
    _replies_handled_inline = False
    send_timeout: float = DEFAULT_SEND_TIMEOUT
    message_log_limit: int = DEFAULT_MESSAGE_LOG_LIMIT

    def __init__(self, id: str, receive_own_broadcasts: bool = True, *,
                 max_concurrency: int = 1, inbox_limit: int | None = None,
                 send_timeout: float | None = None,
                 message_log_limit: int | None = None) -> None:
        self._id = validate_agent_id(id)
        self.receive_own_broadcasts = receive_own_broadcasts
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, got {max_concurrency}")
        self.max_concurrency = max_concurrency
        if inbox_limit is not None:
            self.inbox_limit = inbox_limit
        if send_timeout is not None:
            self.send_timeout = send_timeout
        if message_log_limit is not None:
            self.message_log_limit = message_log_limit
        for name in ("inbox_limit", "message_log_limit"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not self.send_timeout >= 0:
            raise ValueError(f"send_timeout must be >= 0 seconds, got {self.send_timeout!r}")
        self._message_log: MessageLog = MessageLog(maxlen=self.message_log_limit)
        self._core: AgentCore | None = None

    @property
    def id(self) -> str:
        return self._id

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._id!r}>"

    # --- class-level lookups ------------------------------------------------------------

    @classmethod
    @functools.cache
    def _action_specs(cls) -> dict[str, ActionSpec]:
        specs: dict[str, ActionSpec] = {}
        for klass in reversed(cls.__mro__):
            for attribute in vars(klass).values():
                spec = getattr(attribute, "__action__", None)
                if spec is not None:
                    specs = {n: s for n, s in specs.items()
                             if s.method_name != spec.method_name}  # overridden
                    specs[spec.name] = spec
        return specs

    @classmethod
    @functools.cache
    def _published_helps(cls) -> dict[str, Any]:
        """Help of each offered (not denied) action, in Preserves form: built once per
        class and shared by every agent of it, since each agent publishes it as a fact."""
        return {name: values.to_preserves(spec.help, f"help of {name}")
                for name, spec in cls._action_specs().items()
                if spec.access_policy != ACCESS_DENIED}

    @classmethod
    @functools.cache
    def _reactions(cls) -> tuple[tuple[str, Any, str], ...]:
        """``(kind, pattern, method name)`` for each ``@during`` / ``@on_message``."""
        found: dict[str, tuple[str, Any, str]] = {}
        for klass in reversed(cls.__mro__):
            for name, attribute in vars(klass).items():
                reaction = getattr(attribute, "__reaction__", None)
                if reaction is not None:
                    found[name] = (*reaction, name)
        return tuple(found.values())

    @classmethod
    @functools.cache
    def _overridden_hooks(cls) -> frozenset[str]:
        """Callbacks a subclass overrides; the base ones do nothing and are skipped."""
        return frozenset(h for h in _HOOKS if getattr(cls, h) is not getattr(Agent, h))

    # --- sending (one path for every caller: requests.py) ---------------------------------

    @property
    def core(self) -> AgentCore | None:
        """What runs this agent in its space (None until it is added)."""
        return self._core

    def _running_core(self, what: str) -> AgentCore:
        core = self._core
        if core is None or not core.processing:
            raise RuntimeError(f'{what} needs agent "{self._id}" to be processing messages:'
                               " add it to a space first, and do not call it from"
                               " after_add()")
        return core

    def send(self, message: dict, timeout: float | None = None) -> str:
        """Send ``message`` (with ``to`` and ``action``); returns its ``meta.id`` (a
        supplied one is kept). Its reply goes to :meth:`handle_action_value` /
        :meth:`handle_action_error`.

        If the receiver is an agent of this process whose inbox is full
        (``inbox_limit``), this waits for room, at most ``timeout`` seconds (default
        ``send_timeout``), then raises :class:`InboxFull`; an action waiting here gives
        its concurrency slot back meanwhile, as in :meth:`request`. On the runtime
        thread (``async def`` actions, reactions) it cannot wait and raises at once:
        use ``await self.asend(...)`` there."""
        core = self._running_core("send()")
        wait = self.send_timeout if timeout is None else requests.check_timeout(timeout)
        return requests.send(core, requests.stamp(core, message), wait)

    async def asend(self, message: dict, timeout: float | None = None) -> str:
        """:meth:`send` for ``async def`` actions: awaits room in a full inbox."""
        core = self._running_core("asend()")
        wait = self.send_timeout if timeout is None else requests.check_timeout(timeout)
        return await requests.asend(core, requests.stamp(core, message), wait)

    def request(self, message: dict, timeout: float = 3) -> Any:
        """Send ``message`` and wait for its answer: returns the value, raises
        :class:`ActionError` for an error answer and ``TimeoutError`` if none comes
        within ``timeout`` seconds (its text says what the space knows of the
        responder). Ctrl-C withdraws the request."""
        core = self._running_core("request()")
        timeout = requests.check_timeout(timeout)
        return requests.request(core, requests.stamp(core, message, request=True), timeout)

    async def arequest(self, message: dict, timeout: float = 3) -> Any:
        """:meth:`request` for ``async def`` actions, and for asyncio or trio code of
        the caller's own (e.g. Jupyter); cancelling the awaiting task withdraws it."""
        core = self._running_core("arequest()")
        timeout = requests.check_timeout(timeout)
        return await requests.arequest(core, requests.stamp(core, message, request=True),
                                       timeout)

    # --- answering ------------------------------------------------------------------------

    def _current_invocation(self, what: str) -> Invocation:
        invocation = CURRENT.get()
        if invocation is None or invocation.core.agent is not self:
            raise RuntimeError(f"{what} must be called while handling an action")
        return invocation

    def respond_with(self, value: Any) -> None:
        """Answer the current action now with ``value``; its return value is then ignored."""
        self._answer_now(self._current_invocation("respond_with()"), value=value)

    def raise_with(self, error: BaseException) -> None:
        """Answer the current action now with ``error``."""
        self._answer_now(self._current_invocation("raise_with()"), error=error_text(error))

    @staticmethod
    def _answer_now(invocation: Invocation, **answer: Any) -> None:
        core = invocation.core
        reply = core.reply_for(invocation, **answer)  # built here, in the caller's thread
        if reply is not None:
            core.run_soon(lambda: core._send_reply(invocation, reply))

    def current_message(self) -> dict | None:
        """The message being handled in this thread or task, if any."""
        invocation = CURRENT.get()
        return invocation.message if invocation is not None else None

    def parent_message(self, message: dict | None = None) -> dict | None:
        """The message that ``message`` (default: the current one) answers, from the log
        of this agent's last ``message_log_limit`` messages (None if not found there)."""
        message = message if message is not None else self.current_message()
        parent_id = (message or {}).get("meta", {}).get("parent_id")
        if parent_id is None:
            return None
        # A copy (made at once, under the GIL): the runtime thread may append meanwhile,
        # and a deque must not change while it is iterated.
        return next((m for m in reversed(list(self._message_log))
                     if m["meta"]["id"] == parent_id), None)

    def cancelled(self) -> bool:
        """True once the sender withdrew the request being handled (assertion mode: it
        left or stopped waiting). ``async def`` actions are cancelled outright."""
        invocation = CURRENT.get()
        return bool(invocation is not None and invocation.cancelled)

    # --- facts (dataspace spaces) ---------------------------------------------------------

    def publish(self, value: Any) -> Any:
        """Assert a Preserves value in the agent's dataspace; returns a handle. Retracted
        by :meth:`retract`, or when the agent leaves."""
        return self._fact_transport("publish()").publish(value)

    def retract(self, handle: Any) -> None:
        self._fact_transport("retract()").retract(handle)

    def _fact_transport(self, what: str) -> Any:
        core = self._core
        if core is None:
            raise RuntimeError(f"{what} needs the agent to be added to a space")
        if not hasattr(core.transport, "publish"):
            raise NotImplementedError(f"{what} needs a dataspace space; this agent runs on"
                                      f" {type(core.transport).__name__}")
        return core.transport

    # --- building interactively (this process) ---------------------------------------------

    def add_action(self, fn: Callable, name: str | None = None, help: dict | None = None,
                   access_policy: str | None = None) -> str:
        """Add (or replace) an action on this agent only, while it runs; returns its name.

        ``fn`` is a plain function or an ``async def``; if its first parameter is named
        ``self`` it is bound to this agent, like a method. A function already marked with
        ``@action`` brings its name, help and policy (the arguments here override them).
        Help is generated from the signature and docstring unless given. The agent's
        ``help`` action answers with it at once; on a dataspace space its action fact is
        republished (an ``ACCESS_DENIED`` action is not listed). Messages handled from now
        on see the change; one already running finishes with the old action."""
        if not callable(fn):
            raise TypeError(f"add_action() needs a function, got {fn!r}")
        marked: ActionSpec | None = getattr(fn, "__action__", None)
        name = name if name is not None else (marked.name if marked else fn.__name__)
        if not isinstance(name, str) or not name or name.startswith("["):
            raise ValueError(f"an action name is a non-empty string not starting with '[',"
                             f" got {name!r}")
        policy = access_policy or (marked.access_policy if marked else ACCESS_PERMITTED)
        if policy not in _POLICIES:
            raise ValueError(f"access_policy must be one of {_POLICIES}, got {policy!r}")
        if help is None:
            help = marked.help if marked else generate_help(fn)
        help_value = values.to_preserves(help, f"help of {name}")  # JSON-like, or an error
        params = list(inspect.signature(fn).parameters)
        bound = fn.__get__(self) if params and params[0] == "self" else fn
        method_name = f"_added_action_{name}"
        setattr(self, method_name, bound)
        spec = ActionSpec(name=name, method_name=method_name, help=help,
                          access_policy=policy, is_async=inspect.iscoroutinefunction(fn))
        self._change_actions(name, spec, help_value if policy != ACCESS_DENIED else None)
        return name

    def remove_action(self, name: str) -> None:
        """Remove an action from this agent (one of its class's too) while it runs; a
        message naming it is then answered like any unknown action."""
        if name not in self._action_specs():
            raise ValueError(f'agent "{self._id}" has no action "{name}"')
        self._change_actions(name, None, None)
        self.__dict__.pop(f"_added_action_{name}", None)

    def _change_actions(self, name: str, spec: ActionSpec | None, help_value: Any) -> None:
        # The class-level tables are cached and shared by every agent of the class, so
        # this agent gets tables of its own, instance attributes that shadow the
        # classmethods (the core and the spaces call agent._action_specs()). They are
        # replaced whole, never mutated: the runtime thread may be reading the old ones.
        specs = dict(self._action_specs())
        helps = dict(self._published_helps())
        specs.pop(name, None)
        helps.pop(name, None)
        if spec is not None:
            specs[name] = spec
            if help_value is not None:
                helps[name] = help_value
        self._action_specs = lambda: specs  # type: ignore[method-assign]
        self._published_helps = lambda: helps  # type: ignore[method-assign]
        core = self._core
        offer = getattr(core.transport, "offer_action", None) if core is not None else None
        if offer is not None:  # a dataspace: the fact others discover actions by
            offer(name, help_value)

    # --- callbacks (override as needed) -------------------------------------------------------

    def after_add(self) -> None:
        """Called once the agent is in its space, before it handles messages."""

    def before_remove(self) -> None:
        """Called when the agent is being removed, before it leaves."""

    def before_action(self, message: dict) -> None:
        """Called before each action runs."""

    def after_action(self, message: dict, return_value: Any, error: BaseException | None):
        """Called after each action ran (``error`` is what it raised, or None)."""

    def request_permission(self, message: dict) -> bool:
        """Decides ``ACCESS_REQUESTED`` actions; denies unless overridden."""
        return False

    def handle_action_value(self, value: Any) -> None:
        """Receives the value of each answer to :meth:`send`."""

    def handle_action_error(self, error: ActionError) -> None:
        """Receives each error answer to :meth:`send`."""

    # --- the built-in help action -------------------------------------------------------------

    @action
    async def help(self, action_name: str | None = None) -> dict:
        """Describe this agent's actions.

        Args:
            action_name: Only this action (default: all of them).

        Returns:
            A dict from action name to its help.
        """
        return {name: spec.help for name, spec in self._action_specs().items()
                if (name == action_name if action_name is not None
                    else name != "help" and spec.access_policy != ACCESS_DENIED)}

    def _around_action(self, message: dict, call: Callable[[], Any]) -> tuple:
        """before_action, the action, after_action, in the calling (worker) thread."""
        try:
            self.before_action(message)
            value, error = call(), None
        except Exception as exc:
            value, error = None, exc
        self.after_action(message, value, error)
        return value, error
