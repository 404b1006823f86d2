"""Discovery under churn in the dataspace's idiom: the client's view is a watch on the
``<action provider "serve" _>`` facts the adapter publishes for every agent offering
``serve``. A provider is in the view while its fact stands: it goes when the provider
leaves or dies. No heartbeats, no registry, no goodbye.
"""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any

from syndicate import patterns as P

from ...classic import ActionError, Agent, action


class Provider(Agent):
    @action
    def serve(self, n: int) -> str:
        return self.id


def join(space: Any, client: "Client", provider: str) -> None:
    space.add(Provider, provider)


class Client:
    """The caller: a client handle, its view kept by a watch (read on a thread)."""

    def __init__(self, space: Any, id: str) -> None:
        self.handle = space.connect(id)
        self._watch = self.handle.watch(P.rec("action", P.CAPTURE, P.lit("serve"), P._))
        self._view: set[str] = set()
        self.left_view: dict[str, float] = {}
        self.discovery_messages = 0  # facts only: the presence the adapter asserts anyway
        self._turn = itertools.count()
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._follow, name=f"{id}-watch")
        self._reader.start()

    def _follow(self) -> None:
        for event in self._watch:  # ends when the watch is closed
            with self._lock:
                if event.kind == "added":
                    self._view.add(event.captures[0])
                else:
                    self._view.discard(event.captures[0])
                    self.left_view[event.captures[0]] = time.perf_counter()

    def view(self) -> list[str]:
        with self._lock:
            return sorted(self._view)

    def call_any(self, n: int, timeout: float) -> tuple[str | None, str | None]:
        view = self.view()
        if not view:
            return None, None
        provider = view[next(self._turn) % len(view)]
        try:
            self.handle.request(provider, "serve", n=n, timeout=timeout)
        except (ActionError, TimeoutError) as error:
            return provider, type(error).__name__
        return provider, None

    def close(self) -> None:
        self._watch.close()
        self._reader.join(10)
        self.handle.close()
