"""The dataspace server: one dataspace, reached over TCP and/or a unix socket through a
gatekeeper, speaking the Syndicate wire protocol (unmodified syndicate-py clients work).

::

    async with open_server(tcp=("127.0.0.1", 0), keys=KeyRing.random()) as server:
        print(server.tcp_address_text, server.capability_text)
        ...

Each connection gets a :class:`~.relay.Relay` whose oid 0 is a gatekeeper. A client
asserts ``<resolve <ref {oid: ... sig: ...}> #:observer>`` there; the gatekeeper checks
the sturdyref against the server's keys and asserts ``<accepted #:dataspace>`` to the
observer (what syndicate-py 0.19.3 expects; newer servers say ``<ok ...>``), or
``<rejected "why">``. Everything a connection asserted is retracted when it closes,
however it closes (end of stream, reset, protocol error, the peer being killed).

Bad input (see ``relay.py``) gets an ``Error`` packet and closes only that connection;
it is logged (logger ``dataspace_agency.protocol``) with the peer's address.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket
import stat
from dataclasses import dataclass, field
from typing import Any, AsyncIterator

import trio
from preserves import Embedded, Record, Symbol, stringify
from syndicate import turn
from syndicate.actor import Entity, Ref

from ..dataspace.entity import Dataspace
from ..native import spawn_dataspace
from ..runtime import Runtime, open_runtime
from .codec import DEFAULT_MAX_PACKET
from .relay import Relay
from .transport import run_stream
from .sturdy import KeyRing, Rejected

log = logging.getLogger("dataspace_agency.protocol.server")

_RESOLVE = Symbol("resolve")
_ACCEPTED = Symbol("accepted")
_REJECTED = Symbol("rejected")


class Gatekeeper(Entity):
    """Answers ``<resolve sturdyref #:observer>`` with ``<accepted #:ds>`` or
    ``<rejected why>``, for as long as the resolve stands. One per connection, so that
    what it logs names the peer."""

    def __init__(self, keys: KeyRing, ds: Ref, peer: str) -> None:
        self.keys = keys
        self.ds = ds
        self.peer = peer
        self._answers: dict[int, int] = {}

    def on_publish(self, value: Any, handle: int) -> None:
        if not (isinstance(value, Record) and value.key == _RESOLVE and len(value.fields) == 2
                and isinstance(value.fields[1], Embedded)
                and isinstance(value.fields[1].embeddedValue, Ref)):
            log.warning("%s: gatekeeper ignores %r (want <resolve step #:observer>)",
                        self.peer, value)
            return
        step, observer = value.fields[0], value.fields[1].embeddedValue
        try:
            oid = self.keys.validate(step)
        except Rejected as exc:
            log.warning("%s: rejected a sturdyref: %s", self.peer, exc)
            answer = Record(_REJECTED, [str(exc)])
        else:
            log.info("%s: resolved a sturdyref to %r", self.peer, oid)
            answer = Record(_ACCEPTED, [Embedded(self.ds)])
        self._answers[handle] = turn.publish(observer, answer)

    def on_retract(self, handle: int) -> None:
        answer = self._answers.pop(handle, None)
        if answer is not None:
            turn.retract(answer)


@dataclass
class Server:
    """A running server (made by :func:`open_server`)."""

    runtime: Runtime
    ds: Ref
    dataspace: Dataspace  # the entity, for statistics (read it on the runtime's thread)
    keys: KeyRing
    max_packet: int
    tcp_address: tuple[str, int] | None = None
    unix_path: str | None = None
    connections: dict[int, str] = field(default_factory=dict)  # id -> peer
    connection_count: int = 0  # ever accepted

    @property
    def capability(self) -> Record:
        """A sturdyref for the first key."""
        return self.keys.caps()[0]

    @property
    def capability_text(self) -> str:
        return stringify(self.capability)

    @property
    def tcp_address_text(self) -> str:
        assert self.tcp_address is not None
        return f'<tcp "{self.tcp_address[0]}" {self.tcp_address[1]}>'

    @property
    def unix_address_text(self) -> str:
        assert self.unix_path is not None
        return stringify(Record(Symbol("unix"), [self.unix_path]))

    async def _handle(self, stream: trio.abc.Stream, peer: str) -> None:
        self.connection_count += 1
        number = self.connection_count
        self.connections[number] = peer
        log.info("connection %d from %s", number, peer)
        try:
            relay = Relay(self.runtime, f"connection {number}",
                          export0=lambda relay: Gatekeeper(self.keys, self.ds, peer))
            reason = await run_stream(relay, stream, max_packet=self.max_packet, peer=peer)
            log.info("connection %d from %s closed: %s", number, peer, reason)
        except Exception:  # a bug must not take the server down with it
            log.exception("connection %d from %s failed", number, peer)
            with trio.CancelScope(shield=True):
                await stream.aclose()
        finally:
            del self.connections[number]


def _peer_of(stream: trio.SocketStream) -> str:
    try:
        name = stream.socket.getpeername()
    except OSError:
        return "unknown peer"
    if isinstance(name, tuple):
        return f"{name[0]}:{name[1]}"
    return f"unix:{name or stream.socket.getsockname()}"


async def _unix_listener(path: str) -> trio.SocketListener:
    """Listen on ``path``; a stale socket file (nobody listening) is replaced, a live
    one is an error."""
    if os.path.exists(path):
        if not stat.S_ISSOCK(os.stat(path).st_mode):
            raise FileExistsError(f"{path} exists and is not a socket")
        probe = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            await probe.connect(path)
        except OSError:
            os.unlink(path)  # stale
        else:
            raise OSError(errno.EADDRINUSE, f"a server is already listening on {path}")
        finally:
            probe.close()
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        await sock.bind(path)
        sock.listen(128)
    except BaseException:
        sock.close()
        raise
    return trio.SocketListener(sock)


async def _accept_loop(server: Server, listener: trio.SocketListener,
                       nursery: trio.Nursery) -> None:
    async with listener:
        while True:
            try:
                stream = await listener.accept()
            except OSError as exc:  # e.g. EMFILE: log and keep serving
                log.error("accept failed: %s", exc)
                await trio.sleep(0.1)
                continue
            nursery.start_soon(server._handle, stream, _peer_of(stream))


@contextlib.asynccontextmanager
async def open_server(runtime: Runtime | None = None, *,
                      tcp: tuple[str, int] | None = ("127.0.0.1", 0),
                      unix: str | None = None, keys: KeyRing | None = None,
                      max_packet: int = DEFAULT_MAX_PACKET) -> AsyncIterator[Server]:
    """Serve a fresh dataspace for the block. ``tcp=(host, port)`` (port 0: any free
    port; loopback by default) and/or ``unix=path``; ``keys`` default to a random key."""
    if tcp is None and unix is None:
        raise ValueError("give a TCP address, a unix socket path, or both")
    if max_packet < 64:
        raise ValueError(f"max_packet must be at least 64 bytes, got {max_packet}")
    async with contextlib.AsyncExitStack() as stack:
        if runtime is None:
            runtime = await stack.enter_async_context(open_runtime())
        ds, entity = spawn_dataspace(runtime, name="server-dataspace")
        server = Server(runtime, ds, entity, keys or KeyRing.random(), max_packet)
        # Listen before the nursery opens, so that a bad address is a plain OSError.
        listeners: list[trio.SocketListener] = []
        try:
            if tcp is not None:
                host, port = tcp
                listeners.extend(await trio.open_tcp_listeners(port, host=host))
                server.tcp_address = (host, listeners[0].socket.getsockname()[1])
            if unix is not None:
                listeners.append(await _unix_listener(unix))
                server.unix_path = unix
        except BaseException:
            for listener in listeners:
                await listener.aclose()
            runtime.stop_actor(ds.facet.actor)
            raise
        try:
            async with trio.open_nursery() as nursery:
                for listener in listeners:
                    nursery.start_soon(_accept_loop, server, listener, nursery)
                try:
                    yield server
                finally:
                    nursery.cancel_scope.cancel()
        finally:
            if server.unix_path is not None:
                with contextlib.suppress(OSError):
                    os.unlink(server.unix_path)
        if not runtime.system.closed:
            runtime.stop_actor(ds.facet.actor)


async def serve(*, tcp: tuple[str, int] | None = ("127.0.0.1", 0), unix: str | None = None,
                keys: KeyRing | None = None, max_packet: int = DEFAULT_MAX_PACKET,
                task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    """Run a server until cancelled; ``task_status.started(server)`` once listening."""
    async with open_server(tcp=tcp, unix=unix, keys=keys, max_packet=max_packet) as server:
        task_status.started(server)
        await trio.sleep_forever()
