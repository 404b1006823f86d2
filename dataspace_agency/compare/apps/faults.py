"""How the application workloads make agents depart: a crash or a graceful leave.

* a **crash** gives the agent no chance to say goodbye: ``SIGKILL`` of its process on
  backends whose agents have processes of their own; in process, ``space.remove()``
  with the agent's goodbye suppressed (:func:`quiet`), the nearest an in-process agent
  comes to dying;
* a **leave** is ``space.remove()``: the agent's ``before_remove`` runs (its goodbye).

Agents that say goodbye check :func:`quiet` first. The set is per process, which is
what an in-process crash needs (a process backend's crash is a real ``SIGKILL``).
"""

from __future__ import annotations

import threading
from typing import Any

_QUIET: set[str] = set()
_LOCK = threading.Lock()


def quiet(agent_id: str) -> bool:
    """True while ``agent_id`` is being crashed in this process: say no goodbye."""
    with _LOCK:
        return agent_id in _QUIET


def depart(ctx: Any, space: Any, agent_id: str, crash: bool) -> str:
    """Make ``agent_id`` leave (``crash``: without a goodbye); returns what was done."""
    if not crash:
        space.remove(agent_id)
        return "leave: remove(), goodbye said"
    with _LOCK:
        _QUIET.add(agent_id)
    try:
        how = ctx.kill(space, agent_id)
        return f"crash: {'SIGKILL' if 'SIGKILL' in how else 'remove(), no goodbye'}"
    finally:
        with _LOCK:
            _QUIET.discard(agent_id)
