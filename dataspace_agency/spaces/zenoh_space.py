"""``ZenohDataspaceSpace``: classic agents on the dataspace carried by Zenoh routers.

::

    with ZenohDataspaceSpace(["tcp/10.0.0.5:7447"], mode="assertion") as space:
        space.add(Greeter, "greeter")      # runs here; meets agents of every process
        ...                                # attached to the same routers

    with ZenohDataspaceSpace() as space:   # no endpoints: a private router in this
        print(space.endpoints)             # process, which others may join

The full ``Space`` API of :class:`DataspaceSpace`, both adapter modes. Like
``RemoteDataspaceSpace`` it *is* a ``DataspaceSpace`` whose ``_ds`` is a local proxy ref
(``zenoh/proxy.py``) and whose ``_client`` is the native handle
(:class:`~dataspace_agency.zenoh.ZenohDataspaceHandle`); agents, ``_route``,
``agents()`` and ``connect()`` work unchanged. ``namespace`` separates dataspaces sharing
routers. ``fact_count()`` counts the assertions on the routers (Observe assertions stay
in the process that made them, see docs/zenoh.md).

A router restart: while no router is reachable the agents see everyone else leave (in
assertion mode, requests pending to other agents fail with ``ActionError``) and messages
sent meanwhile are lost; the session reconnects by itself and every agent's facts and
subscriptions are declared again. A killed process's facts vanish within milliseconds
(its connection closes); a machine that vanishes silently, within the lease
(``lease_ms``, Zenoh's default 10 s).
"""

from __future__ import annotations

from typing import Sequence

import trio
from syndicate import patterns as P

from ..classic import values
from ..runtime import Runtime
from ..zenoh import ZenohDataspaceHandle, open_handle
from ..zenoh.keys import DEFAULT_NAMESPACE
from .dataspace_space import DataspaceSpace

__all__ = ["ZenohDataspaceSpace"]


class ZenohDataspaceSpace(DataspaceSpace):
    """Agents on the dataspace on Zenoh (see the module docstring). ``endpoints``: the
    routers to connect to (none: a private router in this process); ``mode``: the
    adapter's mode; ``zenoh_mode``: the session's (``client`` or ``peer``)."""

    _senders_are_local = False  # other processes write to the routers: check sizes
    _sync_after_add = True  # add() returns once the routers have its subscriptions
    # Message mode: an agent's sends go to the proxy in one turn of its facet per burst,
    # each body as the bytes Zenoh carries (codec.preencode_json, straight from the
    # validated message), as to a server's relay. The proxy only puts a message (its own
    # observers get it back from Zenoh, decoded), so nothing here needs the Preserves
    # form: measured, a message's Python CPU on the sending side fell by about a quarter
    # (notes/2026-12-04-zenoh-rounds.md). Receiving, the proxy reads a message's body
    # straight into the JSON an agent's inbox wants (``json_depth``, _open_dataspace).
    _wire_bodies = True

    _runtime_name = "zenoh-dataspace-space"

    def __init__(self, endpoints: Sequence[str] = (), mode: str = "assertion", *,
                 namespace: str = DEFAULT_NAMESPACE, zenoh_mode: str = "client",
                 lease_ms: int | None = None) -> None:
        if isinstance(endpoints, str):
            endpoints = [endpoints]
        self._session_options = dict(endpoints=list(endpoints), namespace=namespace,
                                     mode=zenoh_mode, lease_ms=lease_ms)
        super().__init__(mode)

    def _open_dataspace(self) -> ZenohDataspaceHandle:
        options = self._session_options
        return self._background.call(
            lambda rt: open_handle(rt, options["endpoints"], namespace=options["namespace"],
                                   mode=options["mode"], lease_ms=options["lease_ms"],
                                   json_depth=values.MESSAGE_DEPTH))

    @property
    def endpoints(self) -> list[str]:
        """The private router's endpoints (where other processes can join), if any."""
        return self._client.endpoints

    @property
    def connected(self) -> bool:
        """True while a Zenoh router is reachable."""
        return self._client.connected

    def wait_connected(self, timeout: float = 10.0) -> bool:
        """Wait up to ``timeout`` seconds for a reachable router; True if there is one."""
        self._check_open()

        async def wait(_runtime: Runtime) -> bool:
            with trio.move_on_after(timeout):
                await self._client.wait_connected()
                return True
            return False
        return self._background.call_async(wait)

    def fact_count(self) -> int:
        """Distinct assertions on the routers in this space's namespace, once everything
        done here before the call has reached them (Observe assertions not counted: they
        stay local)."""
        self._check_open()

        async def count(_runtime: Runtime) -> int:
            with trio.fail_after(10):
                await self._client.sync()
                return len(await self._client.query(P.CAPTURE)) - 1  # less our own Observe
        return self._background.call_async(count)

    def destroy(self) -> None:
        """Remove every agent, undeclare everything, close the session (and the private
        router), stop the runtime. Idempotent."""
        if self._destroyed:
            return
        try:
            for agent in self._local_agents():
                try:
                    self.remove(agent.id)
                except ValueError:
                    pass
            self._background.call(lambda rt: self._client.close())
        finally:
            super().destroy()
