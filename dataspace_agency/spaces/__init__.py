"""Spaces: where classic agents live, all with the same API (``add``, ``add_foreground``,
``remove``, ``destroy``, ``_route``, ``agents``).

* ``DataspaceSpace(mode)``: an in-process dataspace, in assertion or message mode.
* ``QueueSpace``: in-process queues, routed by the ``to`` field.
"""

from .base import Space
from .dataspace_space import DataspaceSpace
from .queue_space import QueueSpace

__all__ = ["DataspaceSpace", "QueueSpace", "Space"]
