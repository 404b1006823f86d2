"""One connection to a server: open the stream, resolve the capability at the server's
gatekeeper (``<accepted #:ds>`` from ours and older syndicate-servers, ``<ok #:ds>`` from
newer ones), and hold the relay with the resolved dataspace.
"""

from __future__ import annotations

from typing import Any

import trio
from preserves import Embedded, Record, Symbol
from syndicate import turn
from syndicate.actor import Entity, Ref

from ..runtime import Runtime
from .addresses import parse_address
from .codec import DEFAULT_MAX_PACKET
from .relay import Relay
from .sturdy import parse_cap
from .transport import run_stream

__all__ = ["COALESCE", "Connection", "ConnectionFailed", "open_connection_raw"]

_RESOLVE, _ACCEPTED, _OK, _REJECTED = (Symbol("resolve"), Symbol("accepted"), Symbol("ok"),
                                       Symbol("rejected"))


class ConnectionFailed(ConnectionError):
    """Could not connect, or the server refused the capability; the text says which."""


class _Resolution(Entity):
    """Receives the gatekeeper's answer."""

    def __init__(self) -> None:
        self.answered = trio.Event()
        self.ds: Ref | None = None
        self.error: str | None = None

    def on_publish(self, value: Any, handle: int) -> None:
        if self.answered.is_set():
            return
        if (isinstance(value, Record) and value.key in (_ACCEPTED, _OK)
                and len(value.fields) >= 1 and isinstance(value.fields[0], Embedded)
                and isinstance(value.fields[0].embeddedValue, Ref)):
            self.ds = value.fields[0].embeddedValue
        elif isinstance(value, Record) and value.key == _REJECTED:
            self.error = f"the server rejected the capability: {value.fields[0] if value.fields else value!r}"
        else:
            self.error = f"unexpected answer from the gatekeeper: {value!r:.200}"
        self.answered.set()


class Connection:
    """One connection to a server: the relay, its stream, and the resolved dataspace."""

    def __init__(self, relay: Relay, ds: Ref, address: str) -> None:
        self.relay = relay
        self.ds = ds
        self.address = address

    @property
    def closed(self) -> bool:
        return self.relay.closed

    @property
    def close_reason(self) -> str:
        return self.relay.close_reason

    async def wait_closed(self) -> None:
        await self.relay.done.wait()

    def close(self) -> None:
        """Close the connection (runtime thread); the server retracts what it held."""
        self.relay.close("closed by the client")


async def _open_stream(kind: str, where: Any) -> trio.SocketStream:
    if kind == "tcp":
        return await trio.open_tcp_stream(*where)
    return await trio.open_unix_socket(where)


# A client's relay gathers what it sends until this process has nothing else to run, for
# at most this long (Relay's ``coalesce``): a burst costs one packet, one write and one
# turn at the server instead of one per event (docs/server.md, "Where the time goes").
COALESCE = 0.001  # seconds


async def open_connection_raw(runtime: Runtime, address: Any, cap: Any, *,
                              timeout: float = 10.0,
                              max_packet: int = DEFAULT_MAX_PACKET) -> Connection:
    """Connect and resolve ``cap``; the connection's tasks run in the runtime's nursery
    (call from the runtime's trio thread)."""
    kind, where = parse_address(address)
    step = parse_cap(cap)
    label = f"{kind}:{where}"
    try:
        with trio.fail_after(timeout):
            stream = await _open_stream(kind, where)
    except (OSError, trio.TooSlowError) as exc:
        raise ConnectionFailed(f"cannot connect to {label}: {exc or 'timed out'}") from None
    relay = Relay(runtime, f"client {label}", import0=True, coalesce=COALESCE,
                  plain_bodies=True)
    runtime.system.nursery.start_soon(
        lambda: run_stream(relay, stream, max_packet=max_packet, peer=label))
    resolution = _Resolution()

    def resolve() -> None:
        turn.publish(relay.peer0, Record(_RESOLVE, [step, Embedded(turn.ref(resolution))]))
    try:
        runtime.run_turn(relay.facet, resolve)
        with trio.move_on_after(timeout) as waited:
            async with trio.open_nursery() as nursery:
                async def closed() -> None:
                    await relay.done.wait()
                    nursery.cancel_scope.cancel()
                nursery.start_soon(closed)
                await resolution.answered.wait()
                nursery.cancel_scope.cancel()
    except BaseException:  # cancelled (say, a reconnecting handle being closed)
        if not runtime.system.closed:
            relay.close("cancelled while connecting")
        raise
    if resolution.ds is None:
        why = (resolution.error or (f"connection closed: {relay.close_reason}" if relay.closed
                                    else f"no answer within {timeout} s"))
        relay.close(why)
        raise ConnectionFailed(f"{label}: {why}")
    del waited
    return Connection(relay, resolution.ds, label)
