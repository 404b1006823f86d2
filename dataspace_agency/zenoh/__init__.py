"""The dataspace on Zenoh (Eclipse Zenoh, ``pip install eclipse-zenoh``): assertions as
liveliness tokens, observers as liveliness subscribers and replay queries matched locally,
messages as publications. See ``docs/zenoh.md``.

* ``keys``: values and patterns as key expressions.
* ``proxy``: the local entity that carries a dataspace's events over a Zenoh session.
* ``session``: sessions and in-process routers.
* ``client``: the native handle, :func:`connect`.
"""

from .client import ZenohDataspaceHandle, connect, open_handle
from .keys import MAX_VALUE_BYTES, MalformedKey, NotTransferable, ValueTooLarge
from .session import Router, ZenohUnreachable, free_endpoint

__all__ = ["MAX_VALUE_BYTES", "MalformedKey", "NotTransferable", "Router",
           "ValueTooLarge", "ZenohDataspaceHandle", "ZenohUnreachable", "connect",
           "free_endpoint", "open_handle"]
