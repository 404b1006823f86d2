"""What the inspector knows about a running system, kept up to date from observer events.

The view is plain state (no I/O): :mod:`.feed` calls its ``on_*`` methods as facts come
and go, and the web side (:mod:`.web`) reads JSON snapshots from it. It understands the
classic adapter's vocabulary (``spaces/dataspace/vocabulary.py``):

* ``<agent id>`` and ``<action agent name help>``: who is present and what they offer;
* ``<request to id body>`` (assertion mode): requests pending, with their age, requester
  (``body.from``) and responder (``to``); ``<reply to parentId from body>`` marks one
  answered (the requester has not yet withdrawn it);
* every classic message, counted per agent for the message rates: each ``<message to
  body>`` (message mode, broadcasts), each new ``<request ...>`` and ``<reply ...>``.

Everything runs on one trio thread, so there are no locks; :meth:`View.wait_changed`
lets the web side push a new snapshot when something changed.
"""

from __future__ import annotations

import collections
import json
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import preserves
import trio

from ..classic import values

__all__ = ["RATE_WINDOW", "View"]

RATE_WINDOW = 5.0  # seconds: message rates are averaged over this long


@dataclass
class _Request:
    to: str
    id: str
    requester: str | None
    action: str | None
    since: float
    answered: bool = False


@dataclass
class _Status:
    connected: bool = False
    target: str = ""  # what the inspector looks at: an address, or "this process"
    message: str = "connecting"
    since: float = field(default_factory=time.time)


def text(value: Any) -> str:
    """A Preserves value as Preserves text (what a person reads), never failing."""
    try:
        return preserves.stringify(value)
    except Exception:  # noqa: BLE001 - embedded refs and odd values have no text form
        return repr(value)


def _json(value: Any) -> Any:
    """A Preserves value as JSON when the classic mapping allows (and JSON can carry it:
    not NaN or infinities), else as its text, so that no fact can break the page."""
    try:
        converted = values.from_preserves(value)
        json.dumps(converted, allow_nan=False)
        return converted
    except (TypeError, ValueError, RecursionError):
        return {"preserves": text(value)}


def _field(body: Any, *path: str) -> str | None:
    """``body[path[0]][path[1]]...`` if it is a string (classic bodies are dicts with
    string keys); None for anything else, so a native actor's odd facts are harmless."""
    for key in path:
        if not isinstance(body, dict):
            return None
        body = body.get(key)
    return body if isinstance(body, str) else None


class View:
    """The inspector's state; see the module docstring. ``clock`` gives wall-clock
    seconds (ages and ``since`` are shown to people)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self.agents: dict[str, float] = {}  # present agent -> since
        self.actions: dict[str, dict[str, Any]] = collections.defaultdict(dict)
        self.requests: dict[tuple[str, str], _Request] = {}  # (to, id) -> request
        self._replies: collections.Counter[tuple[str, str]] = collections.Counter()
        self.sent: collections.Counter[str] = collections.Counter()
        self.received: collections.Counter[str] = collections.Counter()
        # (time, sent, received) totals, one a tick, for rates over RATE_WINDOW
        self._history: collections.deque = collections.deque()
        self.status = _Status()
        self.version = 0
        self._changed = trio.Event()

    # --- changes ---------------------------------------------------------------------

    def _touch(self) -> None:
        self.version += 1
        changed, self._changed = self._changed, trio.Event()
        changed.set()

    async def wait_changed(self, version: int) -> None:
        """Return once the view's version is past ``version``."""
        while self.version <= version:
            await self._changed.wait()

    def set_status(self, connected: bool, message: str, target: str | None = None) -> None:
        if target is not None:
            self.status.target = target
        if (connected, message) != (self.status.connected, self.status.message):
            self.status.connected, self.status.message = connected, message
            self.status.since = self._clock()
            self._touch()

    def on_agent(self, kind: str, agent_id: Any) -> None:
        if not isinstance(agent_id, str):
            return
        if kind == "added":
            self.agents[agent_id] = self._clock()
        else:
            self.agents.pop(agent_id, None)
        self._touch()

    def on_action(self, kind: str, agent_id: Any, name: Any, help_value: Any) -> None:
        if not (isinstance(agent_id, str) and isinstance(name, str)):
            return
        if kind == "added":
            self.actions[agent_id][name] = _json(help_value)
        else:
            offered = self.actions.get(agent_id, {})
            offered.pop(name, None)
            if not offered:
                self.actions.pop(agent_id, None)
        self._touch()

    def on_request(self, kind: str, to: Any, message_id: Any, body: Any) -> None:
        if not (isinstance(to, str) and isinstance(message_id, str)):
            return
        key = (to, message_id)
        if kind == "added":
            requester = _field(body, "from")
            self.requests[key] = _Request(to, message_id, requester,
                                          _field(body, "action", "name"), self._clock(),
                                          answered=(requester, message_id) in self._replies)
            self._count(requester, to)
        else:
            self.requests.pop(key, None)
        self._touch()

    def on_reply(self, kind: str, to: Any, parent_id: Any, sender: Any) -> None:
        key = (to, parent_id)
        if kind == "added":
            self._replies[key] += 1
            self._count(sender if isinstance(sender, str) else None, to)
        else:
            self._replies[key] -= 1
            if self._replies[key] <= 0:
                del self._replies[key]
        if isinstance(sender, str) and isinstance(parent_id, str):
            request = self.requests.get((sender, parent_id))
            if request is not None:
                request.answered = key in self._replies
        self._touch()

    def on_message(self, to: Any, body: Any) -> None:
        self._count(_field(body, "from"), to)
        # no _touch: rates change on the tick, not on every message

    def _count(self, sender: str | None, to: Any) -> None:
        if sender is not None:
            self.sent[sender] += 1
        if isinstance(to, str) and to != "*":
            self.received[to] += 1

    def tick(self) -> None:
        """Take a sample of the message totals (call about once a second)."""
        now = self._clock()
        self._history.append((now, dict(self.sent), dict(self.received)))
        while len(self._history) > 2 and now - self._history[1][0] >= RATE_WINDOW:
            self._history.popleft()
        self._touch()

    def clear(self) -> None:
        """Forget every fact (the connection to the dataspace is gone; the totals of
        messages seen so far stay)."""
        self.agents.clear()
        self.actions.clear()
        self.requests.clear()
        self._replies.clear()
        self._touch()

    # --- reading ---------------------------------------------------------------------

    def _rates(self) -> tuple[dict[str, float], dict[str, float]]:
        if len(self._history) < 2:
            return {}, {}
        (then, sent0, received0), (now, sent1, received1) = self._history[0], self._history[-1]
        span = now - then
        if span <= 0:
            return {}, {}
        return ({a: (n - sent0.get(a, 0)) / span for a, n in sent1.items()},
                {a: (n - received0.get(a, 0)) / span for a, n in received1.items()})

    def agents_json(self) -> list[dict]:
        """Present agents, by id: ``id``, ``actions`` (``[{name, help}]`` by name),
        ``since``, message totals and rates (per second, over the last few seconds)."""
        sent_rate, received_rate = self._rates()
        return [{"id": agent_id,
                 "actions": [{"name": name, "help": help_value} for name, help_value
                             in sorted(self.actions.get(agent_id, {}).items())],
                 "since": since,
                 "sent": self.sent.get(agent_id, 0),
                 "received": self.received.get(agent_id, 0),
                 "sent_per_s": round(sent_rate.get(agent_id, 0.0), 2),
                 "received_per_s": round(received_rate.get(agent_id, 0.0), 2)}
                for agent_id, since in sorted(self.agents.items())]

    def requests_json(self) -> list[dict]:
        """Pending requests (assertion mode), oldest first: ``requester``, ``responder``,
        ``action``, ``id``, ``since``, ``age_s``, ``answered``, ``responder_present``."""
        now = self._clock()
        return [{"id": r.id, "requester": r.requester, "responder": r.to,
                 "action": r.action, "since": r.since, "age_s": round(now - r.since, 3),
                 "answered": r.answered, "responder_present": r.to in self.agents}
                for r in sorted(self.requests.values(), key=lambda r: r.since)]

    def status_json(self) -> dict:
        return {"connected": self.status.connected, "target": self.status.target,
                "message": self.status.message, "since": self.status.since}

    def snapshot(self) -> dict:
        """Everything the page shows, in one JSON object."""
        return {"status": self.status_json(), "now": self._clock(),
                "rate_window_s": RATE_WINDOW, "agents": self.agents_json(),
                "requests": self.requests_json()}
