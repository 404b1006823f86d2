"""``RemoteDataspaceSpace``: classic agents on a dataspace served by another process.

::

    with RemoteDataspaceSpace('<tcp "127.0.0.1" 8001>', cap, mode="assertion") as space:
        space.add(Greeter, "greeter")            # runs here, talks through the server
        ...

    with RemoteDataspaceSpace() as space:        # no address: a server of its own, in a
        ...                                      # child process, stopped at destroy()

The full ``Space`` API of :class:`DataspaceSpace`, both adapter modes, with the
dataspace behind a Syndicate-protocol connection (``protocol/client.py``) instead of in
this process. It *is* a ``DataspaceSpace`` whose ``_ds`` is the server's dataspace as
seen through the connection (a proxy ref) and whose ``_client`` is a
``RemoteDataspaceHandle``; agents, ``_route``, ``agents()`` and ``connect()`` work
unchanged. What differs: ``fact_count()`` asks the server (there is no local entity),
and ``spawn_native`` actors run here, reaching the dataspace over the connection.

Agents in other processes sharing the same server see each other: see
``remote_process_space.py`` for a space that runs each added agent in a child process.

``reconnect=True`` (or a :class:`~dataspace_agency.protocol.client.Reconnect` policy)
keeps the space going across a lost connection or a restarted server (same address,
same key): the client reconnects with backoff and asserts again every agent's presence,
actions, subscriptions and held request/reply facts (``protocol/client.py`` explains
how). While disconnected the agents see everyone else leave (the server's facts are
retracted locally), so in assertion mode requests pending to other agents fail with
``ActionError``; requests made during the outage wait for their responder to come back,
and classic messages are queued (bounded). Without it, a lost connection is final:
``connected`` turns False.
"""

from __future__ import annotations

from typing import Any

import trio
from syndicate import patterns as P

from .dataspace.adapter import check_mode
from ..protocol.client import (Reconnect, RemoteDataspaceHandle, address_text,
                               open_connection)
from ..protocol.process import ServerProcess
from ..runtime import Runtime
from .dataspace_space import DataspaceSpace

__all__ = ["RemoteDataspaceSpace"]

_EVERYTHING = P.CAPTURE  # <bind <_>>: every assertion, once per distinct value


class RemoteDataspaceSpace(DataspaceSpace):
    """Agents on a remote dataspace (see the module docstring). ``address``/``cap``:
    where and with what capability; both None: start a private server (in a child
    process on a unix socket in a temp directory). ``timeout``: for connecting.
    ``reconnect``: reconnect, keeping every agent's facts (see the module docstring)."""

    _senders_are_local = False  # other processes write to the server: check sizes
    _sync_after_add = True  # add() returns once the server has the agent's subscriptions
    _wire_bodies = True  # agents' messages are written straight to the wire (one walk)

    _runtime_name = "remote-dataspace-space"

    def __init__(self, address: Any = None, cap: Any = None, mode: str = "assertion", *,
                 timeout: float = 10.0, reconnect: bool | Reconnect = False) -> None:
        check_mode(mode)  # bad arguments are refused before a server starts
        if (address is None) != (cap is None):
            raise ValueError("give both address and cap, or neither (a private server)")
        self.reconnect = reconnect
        Reconnect.of(reconnect)
        self._timeout = timeout
        self._server: ServerProcess | None = None
        if address is None:
            self._server = ServerProcess.start()
            address, cap = self._server.address, self._server.capability
        self.address, self.cap = address, cap
        try:
            super().__init__(mode)
        except BaseException:
            if self._server is not None:
                self._server.stop()
            raise

    def _open_dataspace(self) -> RemoteDataspaceHandle:
        return self._background.call_async(
            lambda rt: open_connection(rt, self.address, self.cap, timeout=self._timeout,
                                       reconnect=self.reconnect))

    def _connection_note(self) -> str | None:
        if self._client.connected:
            return None
        return (f"the connection to the dataspace server at {address_text(self.address)} is lost"
                + (" (reconnecting)" if self.reconnect else ""))

    @property
    def connected(self) -> bool:
        """False while there is no connection to the server (for good, without
        ``reconnect``)."""
        return self._client.connected

    @property
    def reconnections(self) -> int:
        """How many times the space has connected again after losing its connection."""
        return self._client.reconnections

    def wait_connected(self, timeout: float = 10.0) -> bool:
        """Wait up to ``timeout`` seconds until connected; True if so. With
        ``reconnect``, True also means every agent's facts are on their way to the
        server again (call :meth:`fact_count` or make a request to be sure they are
        there)."""
        self._check_open()

        async def wait(_runtime: Runtime) -> bool:
            with trio.move_on_after(timeout):
                return await self._client.wait_connected()
            return False
        return self._background.call_async(wait)

    def wire_stats(self) -> dict[str, int]:
        """What this space's connection has carried so far, counted on this side:
        packets, events, reads and writes (system calls) in and out, bytes written
        (``protocol.relay.WireStats``). Take it before and after a workload to see what
        each message costs on the wire (``benchmarks/remote_classic.py``)."""
        self._check_open()
        return self._background.call(lambda rt: self._client.connection.relay.stats.as_dict())

    def fact_count(self) -> int:
        """Distinct assertions in the server's dataspace (not counting the observation
        made to count them), once everything done here before the call has reached it."""
        self._check_open()

        async def count(_runtime: Runtime) -> int:
            with trio.fail_after(10):
                await self._client.sync()
                return len(await self._client.query(_EVERYTHING)) - 1
        return self._background.call_async(count)

    def destroy(self) -> None:
        """Remove every agent, close the connection, stop the runtime (and the private
        server, if this space started one). Idempotent."""
        try:
            super().destroy()
        finally:
            if self._server is not None:
                self._server.stop()
                self._server = None
