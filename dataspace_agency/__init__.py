"""dataspace-agency: agents on a Syndicate-style dataspace, compared with message queues.

Layers, bottom up (no layer imports one above it; README.md's table says more):

* ``runtime``: syndicate-py's actor core hosted on trio.
* ``dataspace``: the assertion index and the Dataspace entity.
* ``native``: ``open_dataspace()`` for trio code: publish, retract, message, observe.
* ``protocol``: the Syndicate wire protocol: ``dataspace-agency serve``, and a client.
* ``zenoh``: the dataspace on Eclipse Zenoh routers.
* ``classic``: ``Agent``, ``@action``, the request path and the core that runs an agent.
* ``spaces``: the transports of classic agents (``spaces/dataspace/``: the adapter) and
  the spaces on them: ``DataspaceSpace``, ``RemoteDataspaceSpace``,
  ``MultiprocessDataspaceSpace``, ``ZenohDataspaceSpace``, ``QueueSpace``,
  ``MultiprocessQueueSpace``, ``AMQPSpace``.
* ``inspect``, ``compare`` (with ``compare/bench``), ``commands``: the inspector,
  measurement, and the command line.
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
