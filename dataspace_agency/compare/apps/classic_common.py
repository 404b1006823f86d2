"""What the classic-style agents share (counted in each classic style's lines of code)."""

from __future__ import annotations

from ...classic import ActionError, Agent


def say_goodbye(agent: Agent, to: str, name: str, args: dict) -> None:
    """A goodbye as a request, so that it is known to have arrived before the agent's
    connection closes (on a dataspace space a ``send()`` in ``before_remove`` is lost
    with it)."""
    try:
        agent.request({"to": to, "action": {"name": name, "args": args}}, timeout=0.5)
    except (ActionError, TimeoutError):
        pass  # the other side has gone too
