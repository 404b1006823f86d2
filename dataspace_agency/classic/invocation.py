"""What the core, its transports and the callers share: an action being handled
(:class:`Invocation`, its concurrency :class:`Slot`, and :data:`CURRENT`, the invocation
of this thread or task), what a transport attaches to an inbound message
(:class:`Ticket`) and provides (:class:`Transport`), and the error an answer carries
(:class:`ActionError`)."""

from __future__ import annotations

import contextvars
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import trio

from .message import ERROR

if TYPE_CHECKING:
    from .core import AgentCore


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

    # Optional: ``whereabouts(agent_id) -> str | None``, what the transport knows of
    # an agent's presence, for the text of a request's TimeoutError; and
    # ``run_inline(action)``, which runs ``action()`` and then, at once, the work it
    # queued on the runtime (calls arriving from other threads go through it).


# The invocation being handled in this thread or task, for current_message(),
# respond_with(), cancelled() and releasing the slot while blocked in request().
CURRENT: contextvars.ContextVar["Invocation | None"] = contextvars.ContextVar(
    "dataspace_agency_invocation", default=None)


class Slot:
    """One of an agent's ``max_concurrency`` places, held by a running handler. An action
    blocked in ``request()`` releases it and reacquires it when the answer is in."""

    __slots__ = ("_core", "held")

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


@dataclass(eq=False)
class Invocation:
    """One action (or reply handler) being handled."""

    core: "AgentCore"
    message: dict
    ticket: Ticket | None
    slot: Slot
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


def handled(ticket: Ticket | None) -> None:
    if ticket is not None:
        ticket.handled()
        ticket.invocation = None  # the two point at each other: no cycle left behind


def error_text(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def reply_outcome(reply: dict) -> Any:
    """The value a reply carries, or raise the ActionError it carries."""
    args = reply["action"].get("args", {})
    if reply["action"]["name"] == ERROR:
        raise ActionError(args.get("error", ""))
    return args.get("value")
