"""Spaces: where classic agents live, all with the same API (``add``, ``add_foreground``,
``remove``, ``destroy``, ``_route``, ``agents``).

* ``DataspaceSpace(mode)``: an in-process dataspace, in assertion or message mode.
* ``QueueSpace``: in-process queues, routed by the ``to`` field.
* ``MultiprocessQueueSpace``: each ``add``ed agent in a process of its own, messages over
  pipes, routed by the parent.
* ``RemoteDataspaceSpace(address, cap, mode)``: a dataspace on a server (another process).
* ``MultiprocessDataspaceSpace(mode)``: each ``add``ed agent in a process of its own, all
  meeting in one dataspace server.
* ``AMQPSpace(url, exchange)``: messages through RabbitMQ (needs the ``amqp`` extra: pika).
* ``ZenohDataspaceSpace(endpoints, mode)``: the dataspace on Zenoh routers (needs the
  ``zenoh`` extra: eclipse-zenoh).
"""

from typing import Any

from .base import Space
from .dataspace_space import DataspaceSpace
from .multiprocess_space import MultiprocessQueueSpace
from .queue_space import QueueSpace
from .remote_process_space import MultiprocessDataspaceSpace
from .remote_space import RemoteDataspaceSpace

__all__ = ["AMQPSpace", "DataspaceSpace", "MultiprocessDataspaceSpace", "MultiprocessQueueSpace",
           "QueueSpace", "RemoteDataspaceSpace", "Space", "ZenohDataspaceSpace"]


def __getattr__(name: str) -> Any:
    # AMQPSpace needs pika, an optional dependency: import it only when asked for.
    if name == "AMQPSpace":
        try:
            from .amqp import AMQPSpace
        except ImportError as exc:
            raise ImportError(f"AMQPSpace needs the amqp extra ({exc}): "
                              "pip install 'dataspace-agency[amqp]'") from exc
        return AMQPSpace
    if name == "ZenohDataspaceSpace":  # eclipse-zenoh, likewise optional
        try:
            from .zenoh_space import ZenohDataspaceSpace
        except ImportError as exc:
            raise ImportError(f"ZenohDataspaceSpace needs the zenoh extra ({exc}): "
                              "pip install 'dataspace-agency[zenoh]'") from exc
        return ZenohDataspaceSpace
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
