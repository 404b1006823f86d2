"""The native handle to the dataspace on Zenoh: the API of ``open_dataspace()``.

::

    async with dataspace_agency.zenoh.connect(["tcp/127.0.0.1:7447"]) as ds:
        ds.publish(Record(Symbol("Present"), ["alice"]))
        async with ds.observe(P.rec("Present", P.CAPTURE)) as events: ...
        await ds.sync()

``ZenohDataspaceHandle`` is a :class:`~dataspace_agency.native.DataspaceHandle` whose
``ref`` is the local proxy of ``proxy.py``, as ``RemoteDataspaceHandle``'s is a server's
dataspace seen through a connection: publish, retract, message, sync, observe, query and
spawn (native syndicate-py actors) work unchanged. ``publish`` and ``message`` refuse at
once, naming the value, what Zenoh cannot carry (``keys.NotTransferable``,
``keys.ValueTooLarge``).

A router restart: every token of other sessions disappears for this session's observers
(``removed`` events) while no router is reachable, and messages sent meanwhile are lost;
the session reconnects by itself, Zenoh declares its tokens and subscribers again, and
observers see the facts come back (``added``). Nothing this session asserted is lost.
"""

from __future__ import annotations

import contextlib
from typing import Any, AsyncIterator, Sequence

import trio
import zenoh
from syndicate import turn

from ..native import DataspaceHandle
from ..runtime import Runtime, open_runtime
from .keys import DEFAULT_NAMESPACE, check_namespace, encode_value
from .proxy import ZenohDataspace
from .session import Router, open_session

__all__ = ["ZenohDataspaceHandle", "connect", "open_handle"]


class ZenohDataspaceHandle(DataspaceHandle):
    """A dataspace handle over a Zenoh session (see the module docstring). ``router``: a
    private router this handle started, closed with it."""

    def __init__(self, runtime: Runtime, session: zenoh.Session, namespace: str,
                 router: Router | None = None, own_session: bool = True, *,
                 json_depth: int = 0) -> None:
        self.session = session
        self.namespace = namespace
        self.router = router
        self._own_session = own_session
        proxy_facet = runtime.spawn_host("zenoh-dataspace")
        self.proxy = runtime.run_turn(
            proxy_facet, lambda: ZenohDataspace(runtime, session, namespace, proxy_facet,
                                                json_depth=json_depth))
        ref = runtime.run_turn(proxy_facet, lambda: turn.ref(self.proxy))
        super().__init__(runtime, ref, None, runtime.spawn_host("zenoh-client"))
        self._proxy_facet = proxy_facet

    @property
    def endpoints(self) -> list[str]:
        """Where other processes reach this dataspace (the private router's endpoints)."""
        return self.router.endpoints if self.router is not None else []

    @property
    def connected(self) -> bool:
        """True while a router is reachable (always, for a private router)."""
        # Not session.is_closed(): see session.py's note on it (a closed session lists no
        # routers, so this is False after close() all the same).
        return bool(list(self.session.info.routers_zid()))

    async def wait_connected(self, interval: float = 0.02) -> None:
        """Return once a router is reachable (bound it with a timeout). Zenoh reports no
        event for it, so this polls."""
        while not self.connected:
            await trio.sleep(interval)

    def publish(self, value: Any) -> int:
        encode_value(value)  # NotTransferable / ValueTooLarge here, naming the value
        return super().publish(value)

    def message(self, value: Any) -> None:
        encode_value(value)
        super().message(value)

    def close(self) -> None:
        """Retract what this handle asserted, stop its observers, close the session (and
        the private router)."""
        runtime = self.runtime
        try:
            if not runtime.system.closed:
                super().close()
                runtime.system.drain_now()  # the retractions reach the proxy now
                if self._proxy_facet.alive:
                    runtime.run_turn(self._proxy_facet, self.proxy.close)
                    runtime.stop_actor(self._proxy_facet.actor)
        finally:
            if self._own_session:
                self.session.close()  # a closed session's close() does nothing
            if self.router is not None:
                self.router.close()


def open_handle(runtime: Runtime, endpoints: Sequence[str] = (), *,
                namespace: str = DEFAULT_NAMESPACE, mode: str = "client",
                lease_ms: int | None = None, json_depth: int = 0) -> ZenohDataspaceHandle:
    """A handle on the runtime's thread. No ``endpoints``: a private router in this
    process (on a free port of 127.0.0.1, see ``handle.endpoints``) and a client of it.
    ``json_depth``: read messages' dictionaries straight into JSON for observers that
    want it (the classic inbox; see ``ZenohDataspace``)."""
    check_namespace(namespace)
    router = None if endpoints else Router(lease_ms=lease_ms)
    try:
        session = open_session(list(endpoints) or router.endpoints, mode, lease_ms=lease_ms)
    except BaseException:
        if router is not None:
            router.close()
        raise
    return ZenohDataspaceHandle(runtime, session, namespace, router, json_depth=json_depth)


@contextlib.asynccontextmanager
async def connect(endpoints: Sequence[str] = (), runtime: Runtime | None = None, *,
                  namespace: str = DEFAULT_NAMESPACE, mode: str = "client",
                  lease_ms: int | None = None) -> AsyncIterator[ZenohDataspaceHandle]:
    """A handle to the dataspace on the Zenoh routers at ``endpoints`` for the block
    (opens a runtime if none is given; no endpoints: a private router)."""
    check_namespace(namespace)
    # Opening a session blocks (connecting, up to Zenoh's timeout): off the trio thread,
    # and before the runtime opens, so that a failure is raised as itself (not inside the
    # runtime's nursery's exception group).
    router = None if endpoints else await trio.to_thread.run_sync(
        lambda: Router(lease_ms=lease_ms))
    try:
        session = await trio.to_thread.run_sync(
            lambda: open_session(list(endpoints) or router.endpoints, mode,
                                 lease_ms=lease_ms))
    except BaseException:
        if router is not None:
            router.close()
        raise
    async with contextlib.AsyncExitStack() as stack:
        if runtime is None:
            runtime = await stack.enter_async_context(open_runtime())
        handle = ZenohDataspaceHandle(runtime, session, namespace, router)
        try:
            yield handle
        finally:
            handle.close()
