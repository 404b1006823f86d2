"""Native API: a dataspace from trio code without writing turns (see ``handle.py``)."""

from .handle import DataspaceHandle, Event, open_dataspace, spawn_dataspace

__all__ = ["DataspaceHandle", "Event", "open_dataspace", "spawn_dataspace"]
