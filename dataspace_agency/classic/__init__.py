"""The classic agency programming model: agents with ``@action`` methods exchanging
JSON-like messages, and the adapter that carries them through a dataspace.

* ``agent``: ``Agent``, ``@action``, access policies, ``@during`` / ``@on_message``.
* ``core``: what runs an agent on any backend (dispatch, concurrency, replies).
* ``message``, ``values``, ``help``: the message schema, JSON <-> Preserves, help text.
* ``vocabulary``, ``adapter``: classic agents and messages as dataspace facts.
"""

from .agent import (ACCESS_DENIED, ACCESS_PERMITTED, ACCESS_REQUESTED, ActionSpec, Agent,
                    action, during, on_message)
from .core import ActionError, InboxFull
from .message import MessageError

__all__ = [
    "ACCESS_DENIED", "ACCESS_PERMITTED", "ACCESS_REQUESTED", "ActionError", "ActionSpec",
    "Agent", "InboxFull", "MessageError", "action", "during", "on_message",
]
