"""dataspace-agency: agents on a Syndicate-style dataspace, compared with message queues.

Layers, bottom up (no layer imports one above it):

* ``runtime``: syndicate-py's actor core hosted on trio.
* ``dataspace``: the assertion index and the Dataspace entity.
* ``native``: ``open_dataspace()`` for trio code: publish, retract, message, observe.
* ``classic``: ``Agent``, ``@action`` and the adapter to the dataspace.
* ``spaces``: ``DataspaceSpace``, ``QueueSpace``, ``MultiprocessQueueSpace``, ``AMQPSpace``,
  ``RemoteDataspaceSpace``, ``MultiprocessDataspaceSpace``, ``ZenohDataspaceSpace``.
* ``protocol``: the Syndicate wire protocol: ``dataspace-agency serve``, and a client.
"""

from typing import Any

from .classic import (ACCESS_DENIED, ACCESS_PERMITTED, ACCESS_REQUESTED, ActionError, Agent,
                      MessageError, action, during, on_message)
from .classic.eval_action import EvalAgent, EvalMixin
from .native import DataspaceHandle, Event, open_dataspace
from .spaces import (DataspaceSpace, MultiprocessDataspaceSpace, MultiprocessQueueSpace,
                     QueueSpace, RemoteDataspaceSpace)

__version__ = "0.1.0"
__all__ = [
    "ACCESS_DENIED", "ACCESS_PERMITTED", "ACCESS_REQUESTED", "AMQPSpace", "ActionError",
    "Agent", "DataspaceHandle", "DataspaceSpace", "EvalAgent", "EvalMixin", "Event",
    "MessageError",
    "MultiprocessDataspaceSpace", "MultiprocessQueueSpace", "QueueSpace",
    "RemoteDataspaceSpace", "ZenohDataspaceSpace", "action", "during", "on_message",
    "open_dataspace",
]


def __getattr__(name: str) -> Any:
    if name in ("AMQPSpace", "ZenohDataspaceSpace"):  # optional dependencies (pika,
        from . import spaces                          # eclipse-zenoh): imported when asked
        return getattr(spaces, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
