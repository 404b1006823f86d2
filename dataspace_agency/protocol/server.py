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
import ipaddress
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
from ..runtime.registry import OPEN_SERVERS
from .codec import DEFAULT_MAX_PACKET, SERVER_MAX_DEPTH, show
from .relay import DEFAULT_HIGH_WATER, DEFAULT_STALL_TIMEOUT, FlowControl, Relay
from .transport import run_stream
from .caveats import AttenuationStats, Attenuator
from .sturdy import KeyRing, Rejected

log = logging.getLogger("dataspace_agency.protocol.server")

_RESOLVE = Symbol("resolve")
_ACCEPTED = Symbol("accepted")
_REJECTED = Symbol("rejected")


class Gatekeeper(Entity):
    """Answers ``<resolve sturdyref #:observer>`` with ``<accepted #:ds>`` or
    ``<rejected why>``, for as long as the resolve stands. One per connection, so that
    what it logs names the peer.

    A ref with caveats is answered with an :class:`~.caveats.Attenuator` in front of the
    dataspace instead of the dataspace itself: everything the holder asserts or sends
    is rewritten or dropped by the caveats (counted in ``stats``). The attenuator is made
    in this turn, so it lives in the connection's relay actor and goes with it."""

    def __init__(self, keys: KeyRing, ds: Ref, peer: str,
                 stats: AttenuationStats | None = None) -> None:
        self.keys = keys
        self.ds = ds
        self.peer = peer
        self.stats = stats if stats is not None else AttenuationStats()
        self._answers: dict[int, int] = {}

    def on_publish(self, value: Any, handle: int) -> None:
        if not (isinstance(value, Record) and value.key == _RESOLVE and len(value.fields) == 2
                and isinstance(value.fields[1], Embedded)
                and isinstance(value.fields[1].embeddedValue, Ref)):
            log.warning("%s: gatekeeper ignores %s (want <resolve step #:observer>)",
                        self.peer, show(value))
            return
        step, observer = value.fields[0], value.fields[1].embeddedValue
        try:
            oid, attenuation = self.keys.resolve(step)
        except Rejected as exc:
            log.warning("%s: rejected a sturdyref: %s", self.peer, exc)
            answer = Record(_REJECTED, [str(exc)])
        else:
            target = self.ds
            if attenuation:
                target = turn.ref(Attenuator(self.ds, attenuation, self.peer, self.stats))
                log.info("%s: resolved a sturdyref to %r with %d caveat(s)", self.peer, oid,
                         len(attenuation.caveats))
            else:
                log.info("%s: resolved a sturdyref to %r", self.peer, oid)
            answer = Record(_ACCEPTED, [Embedded(target)])
        self._answers[handle] = turn.publish(observer, answer)

    def on_retract(self, handle: int) -> None:
        answer = self._answers.pop(handle, None)
        if answer is not None:
            turn.retract(answer)


def _warn_unless_loopback(addresses: list[str]) -> None:
    """Loopback is the default; anything else was asked for, but say so loudly: anyone
    who can reach the address may try capabilities, and traffic is not encrypted."""
    for address in addresses:
        if not ipaddress.ip_address(address.split("%")[0]).is_loopback:
            log.warning("listening on %s, which is not a loopback address: reachable from"
                        " other machines, unencrypted; see docs/security.md", address)


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
    attenuation: AttenuationStats = field(default_factory=AttenuationStats)  # caveats' work
    # Output limits shared by every connection (docs/limits.md), and the live relays.
    flow: FlowControl = field(default_factory=FlowControl)
    relays: dict[int, Relay] = field(default_factory=dict)  # id -> relay

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
                          export0=lambda relay: Gatekeeper(self.keys, self.ds, peer,
                                                           self.attenuation),
                          flow=self.flow)
            self.relays[number] = relay
            # frozen: what is read goes to the dataspace's index; keep_bytes: and is
            # forwarded to other connections (see PacketReader).
            reason = await run_stream(relay, stream, max_packet=self.max_packet, peer=peer,
                                      max_depth=SERVER_MAX_DEPTH, frozen=True,
                                      keep_bytes=True)
            log.info("connection %d from %s closed: %s", number, peer, reason)
        except Exception:  # a bug must not take the server down with it
            log.exception("connection %d from %s failed", number, peer)
            with trio.CancelScope(shield=True):
                await stream.aclose()
        finally:
            del self.connections[number]
            self.relays.pop(number, None)


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
                      max_packet: int = DEFAULT_MAX_PACKET,
                      high_water: int = DEFAULT_HIGH_WATER, low_water: int | None = None,
                      stall_timeout: float | None = DEFAULT_STALL_TIMEOUT,
                      ) -> AsyncIterator[Server]:
    """Serve a fresh dataspace for the block. ``tcp=(host, port)`` (port 0: any free
    port; loopback by default) and/or ``unix=path``; ``keys`` default to a random key.

    Backpressure (docs/limits.md): a connection with more than ``high_water`` bytes
    waiting to be written is congested; the server then reads from no other connection
    until it drains below ``low_water`` (default ``high_water // 4``), and cuts it off
    with an ``Error`` packet if it stays congested ``stall_timeout`` seconds (None:
    never)."""
    if tcp is None and unix is None:
        raise ValueError("give a TCP address, a unix socket path, or both")
    if max_packet < 64:
        raise ValueError(f"max_packet must be at least 64 bytes, got {max_packet}")
    flow = FlowControl(high_water, low_water, stall_timeout)  # checks the values
    async with contextlib.AsyncExitStack() as stack:
        if runtime is None:
            runtime = await stack.enter_async_context(open_runtime())
        ds, entity = spawn_dataspace(runtime, name="server-dataspace")
        server = Server(runtime, ds, entity, keys or KeyRing.random(), max_packet, flow=flow)
        # Listen before the nursery opens, so that a bad address is a plain OSError.
        listeners: list[trio.SocketListener] = []
        try:
            if tcp is not None:
                host, port = tcp
                listeners.extend(await trio.open_tcp_listeners(port, host=host))
                server.tcp_address = (host, listeners[0].socket.getsockname()[1])
                _warn_unless_loopback([l.socket.getsockname()[0] for l in listeners])
            if unix is not None:
                listeners.append(await _unix_listener(unix))
                server.unix_path = unix
        except BaseException:
            for listener in listeners:
                await listener.aclose()
            runtime.stop_actor(ds.facet.actor)
            raise
        OPEN_SERVERS.add(server)  # until the block ends: what a leak check looks at
        try:
            async with trio.open_nursery() as nursery:
                for listener in listeners:
                    nursery.start_soon(_accept_loop, server, listener, nursery)
                try:
                    yield server
                finally:
                    nursery.cancel_scope.cancel()
        finally:
            OPEN_SERVERS.discard(server)
            if server.unix_path is not None:
                with contextlib.suppress(OSError):
                    os.unlink(server.unix_path)
        if not runtime.system.closed:
            runtime.stop_actor(ds.facet.actor)


async def serve(*, tcp: tuple[str, int] | None = ("127.0.0.1", 0), unix: str | None = None,
                keys: KeyRing | None = None, max_packet: int = DEFAULT_MAX_PACKET,
                task_status: Any = trio.TASK_STATUS_IGNORED, **limits: Any) -> None:
    """Run a server until cancelled; ``task_status.started(server)`` once listening.
    ``limits``: ``high_water``, ``low_water``, ``stall_timeout`` (see open_server)."""
    async with open_server(tcp=tcp, unix=unix, keys=keys, max_packet=max_packet,
                           **limits) as server:
        task_status.started(server)
        await trio.sleep_forever()
