"""The inspector: a live web page of a running system's agents, actions, requests and facts.

Against a dataspace server (``dataspace-agency inspect --connect ADDRESS --cap CAP``)::

    trio.run(run_inspector, '<tcp "127.0.0.1" 8001>', cap, "127.0.0.1", 8080)

For a space in this process::

    with DataspaceSpace() as space, space.inspect(http="127.0.0.1:8080") as inspector:
        print(inspector.url)                     # http://127.0.0.1:8080/

The page shows who is present and what they offer (with help), the requests pending in
assertion mode (age, requester, responder), a message rate per agent, and a pattern box
whose matching facts come and go live; it says when the dataspace is out of reach and
when it is back. The same data is JSON under ``/api/`` (see :mod:`.web`).

It only observes: the capability it connects with decides what it can see. The parts:
:mod:`.patterns` (the pattern box's text), :mod:`.view` (the state), :mod:`.feed`
(observers and connection), :mod:`.web` (HTTP). See docs/inspect.md.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

import trio
from syndicate.actor import Ref

from ..native import DataspaceHandle
from ..protocol.client import RemoteDataspaceHandle
from ..runtime import BackgroundRuntime, Runtime, RuntimeClosed, open_runtime
from .feed import Source, follow, follow_remote, watch_connection
from .patterns import BadPattern, parse_template
from .view import View

try:
    from .web import make_app, oserror_unwrapped, serve
except ImportError as exc:  # starlette / hypercorn: the `inspect` extra
    raise ImportError(f"the inspector needs the `inspect` extra ({exc}): pip install"
                      " 'dataspace-agency[inspect]'") from exc

__all__ = ["BadPattern", "Inspector", "View", "make_app", "oserror_unwrapped",
           "parse_http", "parse_template", "run_inspector"]

log = logging.getLogger(__name__)

DEFAULT_HTTP = "127.0.0.1:8080"


def parse_http(address: "str | tuple[str, int]") -> tuple[str, int]:
    """``(host, port)`` from ``"HOST:PORT"``, ``"PORT"`` (loopback) or a tuple; raises
    ``ValueError`` naming the problem. Warns (once, in the log) when the host is not a
    loopback address: the page shows whatever the capability can see, to anyone."""
    if isinstance(address, tuple):
        host, port = address
    else:
        host, sep, port_text = str(address).rpartition(":")
        if not sep:
            host, port_text = "127.0.0.1", str(address)
        try:
            port = int(port_text)
        except ValueError:
            raise ValueError(f"want HOST:PORT or PORT for the web page, got {address!r}") from None
    host = (host or "127.0.0.1").strip("[]")
    if not (isinstance(port, int) and 0 <= port <= 65535):
        raise ValueError(f"port out of range: {port!r}")
    if not _is_loopback(host):
        log.warning("the inspector listens on %s, not a loopback address: anyone who can"
                    " reach it sees what its capability sees", host)
    return host, port


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def run_inspector(address: Any, cap: Any, host: str = "127.0.0.1", port: int = 8080,
                        *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED
                        ) -> None:
    """Inspect the dataspace ``cap`` resolves to at ``address`` (a server), serving the
    page on ``host:port`` until cancelled; starts (``nursery.start``) with its URL once
    listening, whether or not the server is reachable yet."""
    source = Source(View())
    with oserror_unwrapped():
        async with open_runtime() as runtime, trio.open_nursery() as nursery:
            nursery.start_soon(follow_remote, runtime, address, cap, source)
            url = await nursery.start(serve, source, host, port)
            task_status.started(url)


class Inspector:
    """An inspector serving a space of this process (made by ``space.inspect()``): its
    page is at :attr:`url`; :meth:`close` stops it (so does destroying the space)."""

    def __init__(self, background: BackgroundRuntime, url: str, scope: trio.CancelScope,
                 done: trio.Event) -> None:
        self._background = background
        self.url = url
        self._scope, self._done = scope, done
        self._closed = False

    @classmethod
    def for_space(cls, background: BackgroundRuntime, ds: Ref, client: DataspaceHandle,
                  http: "str | tuple[str, int]" = DEFAULT_HTTP) -> "Inspector":
        """Serve an inspector on the runtime of a space whose dataspace is ``ds`` (the
        space's ``client`` handle tells whether that dataspace is on a server)."""
        host, port = parse_http(http)
        remote = client if isinstance(client, RemoteDataspaceHandle) else None
        scope, done = trio.CancelScope(), trio.Event()

        async def start(runtime: Runtime) -> str:
            source = Source(View())
            # Its own handle (an actor of its own): its observers go when it stops.
            source.handle = DataspaceHandle(runtime, ds, None,
                                            runtime.spawn_host("inspector"))
            source.remote = remote
            return await runtime.system.nursery.start(_inspect_space, source, host, port,
                                                      scope, done)
        url = background.call_async(start)
        return cls(background, url, scope, done)

    def close(self) -> None:
        """Stop serving and observing. Idempotent; a no-op once the space is gone."""
        if self._closed:
            return
        self._closed = True

        async def stop(_runtime: Runtime) -> None:
            self._scope.cancel()
            await self._done.wait()
        try:
            self._background.call_async(stop)
        except RuntimeClosed:
            pass

    def __enter__(self) -> "Inspector":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Inspector {self.url}{' closed' if self._closed else ''}>"


async def _inspect_space(source: Source, host: str, port: int, scope: trio.CancelScope,
                         done: trio.Event, *,
                         task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
    handle = source.handle
    assert handle is not None
    started = False
    try:
        with scope, oserror_unwrapped():
            async with trio.open_nursery() as nursery:
                await nursery.start(follow, handle, source.view)
                if source.remote is not None:
                    nursery.start_soon(watch_connection, source.remote, source.view,
                                       source.remote.connection.address)
                else:
                    source.view.set_status(True, "watching this process's dataspace",
                                           target="this process")
                url = await nursery.start(serve, source, host, port)
                task_status.started(url)
                started = True
    except Exception:
        # This task runs in the space's runtime nursery: a failure once serving must end
        # the inspector only, never the space. A failure to start (a port in use) goes
        # to the caller of space.inspect(), through nursery.start.
        if not started:
            raise
        log.exception("the inspector stopped")
    finally:
        handle.close()
        done.set()
