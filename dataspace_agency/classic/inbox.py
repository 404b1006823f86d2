"""Bounded inboxes: an agent's pending messages never exceed its ``inbox_limit`` on
account of senders in the same process (docs/limits.md).

Why a sender-side wait with a reservation, and one lock per space: a sender may run on
any thread, and its message reaches the receiver's queue only later (through the
dataspace or the router, on the runtime thread). Counting at arrival would let a fast
sender put any number of messages in flight; so the sender *reserves* a place in the
receiver's inbox before its message leaves, in its own thread, under :attr:`Inboxes.lock`
(a few hundred nanoseconds), and the place is given back when the receiver starts
handling the message (or either agent leaves). Places freed are handed to waiting
senders in arrival order.

Broadcasts and replies are never held back: a reply is owed to a request already
admitted, and holding it back could deadlock two agents answering each other.

Admission is one piece of code for every sender (agents, foreground agents, client
handles): :func:`admit` for callers on their own threads, :func:`aadmit` for ``async
def`` actions on the runtime. Both give the caller's concurrency slot back while they
wait, so an agent sending to itself, or two agents sending to each other at their
limits, cannot deadlock.
"""

from __future__ import annotations

import collections
import threading
from typing import TYPE_CHECKING, Any, Callable

import trio

from .message import BROADCAST, ERROR, RESPONSE

if TYPE_CHECKING:
    from .core import AgentCore

EMPTY_DEQUE: collections.deque = collections.deque(maxlen=0)  # shared, stays empty


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
    lock under which every admission is counted."""

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
        self.event = event  # threading.Event (other threads) or trio.Event (runtime)
        self.granted = False
        self.cancelled = False


class InboxAccounts:
    """The bookkeeping half of :class:`~.core.AgentCore`: as a receiver, the places
    reserved in its inbox and the senders waiting for one; as a sender, its
    reservations elsewhere. Everything here is under ``inboxes.lock``."""

    def _init_inbox(self, inbox_limit: int) -> None:
        self.inboxes: Inboxes | None = None  # set by Inboxes.register
        self.inbox_limit = inbox_limit
        # As receiver: ids local senders reserved a place for (in flight or queued) ->
        # the sender; queued work that came without a reservation; senders waiting for
        # room. As sender: our reservations not yet started -> the receiver.
        self._reserved: dict[str, AgentCore] = {}
        self._unreserved = 0
        self._room_waiters: collections.deque[_RoomWaiter] = EMPTY_DEQUE
        self._outstanding: dict[str, AgentCore] = {}
        self.inbox_peak = 0  # the most ever pending (statistics, tests)

    @property
    def inbox_pending(self) -> int:
        """Messages admitted to this agent and not yet started: reserved by local
        senders (in flight or queued) plus queued ones that came without a reservation
        (broadcasts, replies, messages from outside the process)."""
        return len(self._reserved) + self._unreserved

    def inbox_for(self, message: dict) -> "AgentCore | None":
        """The local receiver whose limit ``message`` must respect, or None."""
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
                      make_event: Callable[[], Any]) -> _RoomWaiter | None:
        """Any thread: reserve now (None), or queue a waiter whose event (made by
        ``make_event``, only when it must wait) is set once a place has been reserved
        for it (or this agent has left)."""
        with self.inboxes.lock:
            if not self._room_waiters and self._reserve_locked(sender, message_id):
                return None
            waiter = _RoomWaiter(sender, message_id, make_event())
            if self._room_waiters is EMPTY_DEQUE:
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

    def _count_arrival(self, message_id: str | None) -> str | None:
        """Runtime thread: work for this agent is queued; returns ``message_id`` if a
        local sender reserved its place, else None (and counts it as unreserved)."""
        inboxes = self.inboxes
        if inboxes is None:
            return message_id
        with inboxes.lock:
            if message_id is None or message_id not in self._reserved:
                self._unreserved += 1
                self._note_peak()
                return None
        return message_id

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


def admit(core: "AgentCore", message: dict, timeout: float) -> None:
    """From a thread of the caller's own: reserve a place for ``message`` in its local
    receiver's inbox, waiting up to ``timeout`` seconds for one, else :class:`InboxFull`.
    On the runtime thread it cannot wait, and raises at once when the inbox is full."""
    receiver = core.inbox_for(message)
    if receiver is None:
        return
    message_id = message["meta"]["id"]
    if core.on_runtime_thread():  # must not block the runtime
        if not receiver.try_reserve(core, message_id):
            raise InboxFull(receiver.agent.id, receiver.inbox_limit, None)
        return
    waiter = receiver.wait_for_room(core, message_id, threading.Event)
    if waiter is None:
        return
    slot = core.blocking_slot()
    if slot is not None:
        core.run_soon(slot.release)
    try:
        waiter.event.wait(timeout)
    except BaseException:
        if not receiver.cancel_wait(waiter):  # granted after all: give it back
            core.run_soon(lambda: receiver._started(message_id))
        raise
    finally:
        if slot is not None:
            trio.from_thread.run(slot.reacquire, trio_token=core.token)
    if receiver.cancel_wait(waiter):
        raise InboxFull(receiver.agent.id, receiver.inbox_limit, timeout)


async def aadmit(core: "AgentCore", message: dict, timeout: float) -> None:
    """:func:`admit` for ``async def`` actions, on the runtime thread: awaits room."""
    receiver = core.inbox_for(message)
    if receiver is None:
        return
    message_id = message["meta"]["id"]
    waiter = receiver.wait_for_room(core, message_id, trio.Event)
    if waiter is None:
        return
    slot = core.blocking_slot()
    if slot is not None:
        slot.release()
    try:
        with trio.move_on_after(timeout):
            await waiter.event.wait()
    except BaseException:
        if not receiver.cancel_wait(waiter):
            receiver._started(message_id)
        raise
    finally:
        if slot is not None:
            await slot.reacquire()
    if receiver.cancel_wait(waiter):
        raise InboxFull(receiver.agent.id, receiver.inbox_limit, timeout)
