"""dataspace-agency: agents on a Syndicate-style dataspace, compared with message queues.

Layers, bottom up (no layer imports one above it):

* ``runtime``: syndicate-py's actor core hosted on trio.
* ``dataspace``: the assertion index and the Dataspace entity.
* ``native``: ``open_dataspace()`` for trio code: publish, retract, message, observe.
"""

from .native import DataspaceHandle, Event, open_dataspace

__version__ = "0.1.0"
__all__ = ["DataspaceHandle", "Event", "open_dataspace"]
