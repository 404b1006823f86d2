"""What an action is, as the core dispatches it: its :class:`ActionSpec` and the access
policies. Apart from ``agent.py`` so that the core (which dispatches) and the agent
(which declares) both build on it without importing each other."""

from __future__ import annotations

from dataclasses import dataclass

ACCESS_PERMITTED = "permitted"
ACCESS_DENIED = "denied"
ACCESS_REQUESTED = "requested"
POLICIES = (ACCESS_PERMITTED, ACCESS_DENIED, ACCESS_REQUESTED)


@dataclass(frozen=True)
class ActionSpec:
    """How an action is offered: its name, the method behind it, help and policy."""

    name: str
    method_name: str
    help: dict
    access_policy: str
    is_async: bool
