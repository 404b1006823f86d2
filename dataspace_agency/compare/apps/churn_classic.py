"""Discovery under churn, the classic way: the same code on every backend.

Providers heartbeat to the client (``heartbeat`` every ``every_s``, started by a
``beat`` message when they join) and say goodbye when they leave gracefully. The client
is its own registry: a provider is in its view from a heartbeat until ``ttl_s`` after
its last one, until its goodbye, or until a call to it fails (error or timeout),
whichever comes first. Calls go round-robin over the view.
"""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any

from ...classic import ActionError, Agent, action
from .classic_common import say_goodbye
from .faults import quiet


class Provider(Agent):
    """Serves ``serve``; heartbeats while it lives; says goodbye on a graceful leave."""

    def __init__(self, id: str) -> None:
        super().__init__(id, max_concurrency=4)  # beat runs for its whole life
        self._gone = threading.Event()
        self._client: str | None = None

    @action
    def serve(self, n: int) -> str:
        return self.id

    @action
    def beat(self, client: str, every_s: float) -> None:
        self._client = client
        while True:
            try:
                self.send({"to": client, "action": {"name": "heartbeat",
                                                    "args": {"provider": self.id}}})
            except RuntimeError:
                return  # removed
            if self._gone.wait(every_s):
                return

    def before_remove(self) -> None:
        self._gone.set()
        if self._client is not None and not quiet(self.id):
            say_goodbye(self, self._client, "goodbye", {"provider": self.id})



def join(space: Any, client: "Client", provider: str) -> None:
    """Start a provider and its heartbeats to ``client``."""
    space.add(Provider, provider)
    client.send({"to": provider, "action": {"name": "beat", "args": {
        "client": client.id, "every_s": client.every_s}}})


class Client(Agent):
    """The caller and its own registry (see the module docstring)."""

    def __init__(self, id: str, every_s: float, ttl_s: float) -> None:
        super().__init__(id, receive_own_broadcasts=False)
        self.every_s, self._ttl_s = every_s, ttl_s
        self._lock = threading.Lock()
        self._last_beat: dict[str, float] = {}  # provider in the view -> last heartbeat
        self.left_view: dict[str, float] = {}  # provider -> when it last left the view
        self.discovery_messages = 0
        self._turn = itertools.count()

    @action
    async def heartbeat(self, provider: str) -> None:
        with self._lock:
            self.discovery_messages += 1
            self._last_beat[provider] = time.perf_counter()

    @action
    async def goodbye(self, provider: str) -> None:
        with self._lock:
            self.discovery_messages += 1
        self.forget(provider)

    def forget(self, provider: str) -> None:
        with self._lock:
            if self._last_beat.pop(provider, None) is not None:
                self.left_view[provider] = time.perf_counter()

    def view(self) -> list[str]:
        """The providers believed live now (expired ones leave the view)."""
        now = time.perf_counter()
        with self._lock:
            for provider, last in list(self._last_beat.items()):
                if now - last > self._ttl_s:
                    del self._last_beat[provider]
                    self.left_view[provider] = last + self._ttl_s
            return sorted(self._last_beat)

    def call_any(self, n: int, timeout: float) -> tuple[str | None, str | None]:
        """Call one provider from the view: (provider or None if the view is empty,
        None or the error's class name)."""
        view = self.view()
        if not view:
            return None, None
        provider = view[next(self._turn) % len(view)]
        try:
            self.request({"to": provider, "action": {"name": "serve", "args": {"n": n}}},
                         timeout=timeout)
        except (ActionError, TimeoutError) as error:
            self.forget(provider)
            return provider, type(error).__name__
        return provider, None
