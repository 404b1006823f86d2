"""The Syndicate wire protocol on trio: a dataspace server (gatekeeper at OID 0) and a client.

* ``codec``: Preserves binary values and packets <-> bytes (streaming, with limits).
* ``sturdy``: sturdyrefs (HMAC-BLAKE2s), ``KeyRing``.
* ``relay``: one connection's membrane (import/export tables, handles, batching).
* ``transport``: ``run_stream``, carrying a relay's packets over a socket with low latency.
* ``server``: ``open_server(...)`` / ``serve(...)``; ``dataspace-agency serve`` on top.
* ``client``: ``connect(address, cap)`` (trio), over ``addresses``, ``connection`` (the
  gatekeeper) and ``reconnect``; ``sync_client``: ``connect_sync`` (synchronous).
* ``server_main``: the server options and ``python -m dataspace_agency.protocol.server_main``.
* ``process``: ``ServerProcess``, a server in a child process (started with that entry).

See docs/server.md. Imports runtime, dataspace and native only.
"""

from .client import ConnectionFailed, RemoteDataspaceHandle, connect
from .server import Server, open_server, serve
from .sturdy import KeyRing, mint
from .sync_client import connect_sync

__all__ = ["ConnectionFailed", "KeyRing", "RemoteDataspaceHandle", "Server", "connect",
           "connect_sync", "mint", "open_server", "serve"]
