"""Zenoh sessions for the dataspace: clients of routers, and routers themselves.

Every session is configured the same way: multicast scouting off (nothing leaves the
endpoints it is given), endpoints checked before Zenoh sees them so a typo is an error
naming the endpoint. A client session with no router reachable fails at once with
:class:`ZenohUnreachable` naming the endpoints; once open, a client reconnects to its
routers by itself (Zenoh re-declares its tokens and subscribers on the new link).

:class:`Router` is a router in this process (the wheel carries the engine): the private
router of a ``ZenohDataspaceSpace`` without endpoints, and what
``dataspace-agency router`` runs.
"""

from __future__ import annotations

import json
import re
import socket
from typing import Iterable, Sequence

import zenoh

__all__ = ["Router", "ZenohUnreachable", "check_endpoint", "free_endpoint", "open_session"]

_ENDPOINT = re.compile(r"(tcp|udp|quic|tls|unixsock-stream|ws)/\S+")
MODES = ("client", "peer", "router")


# Never call ``Session.is_closed()`` here: zenoh-python runs it holding the GIL, and it
# waits for a lock of the session's that Zenoh's own threads hold while they wait for the
# GIL to run a callback of ours (a deadlock that no Python thread can see or break: a test
# run hung in ``is_closed()`` during a close while callbacks were arriving). ``close()``
# and ``routers_zid()`` let go of the GIL while they wait, and ``close()`` of a closed
# session does nothing.


class ZenohUnreachable(ConnectionError):
    """No router could be reached at the given endpoints (named in the message)."""


def check_endpoint(endpoint: str) -> str:
    """``endpoint`` if it looks like a Zenoh locator (``tcp/HOST:PORT``), else ValueError."""
    if not isinstance(endpoint, str) or not _ENDPOINT.fullmatch(endpoint):
        raise ValueError(f"not a Zenoh endpoint: {endpoint!r} (want e.g. tcp/127.0.0.1:7447)")
    return endpoint


def free_endpoint(host: str = "127.0.0.1") -> str:
    """A TCP endpoint on a port that is free now (for private routers and tests)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return f"tcp/{host}:{probe.getsockname()[1]}"


def make_config(mode: str, connect: Iterable[str] = (), listen: Iterable[str] = (),
                lease_ms: int | None = None) -> zenoh.Config:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    connect = [check_endpoint(e) for e in connect]
    listen = [check_endpoint(e) for e in listen]
    config = zenoh.Config()
    config.insert_json5("mode", json.dumps(mode))
    config.insert_json5("scouting/multicast/enabled", "false")
    config.insert_json5("connect/endpoints", json.dumps(connect))
    config.insert_json5("listen/endpoints", json.dumps(listen))
    if lease_ms is not None:
        # How long a silent peer (a machine gone without closing its connections) keeps
        # its tokens; a killed process's connection closes, which is noticed at once.
        config.insert_json5("transport/link/tx/lease", str(lease_ms))
    return config


def open_session(endpoints: Sequence[str], mode: str = "client",
                 lease_ms: int | None = None) -> zenoh.Session:
    """A session connected to ``endpoints`` (routers, for a client)."""
    if not endpoints:
        raise ValueError("no endpoints to connect to")
    config = make_config(mode, connect=endpoints, lease_ms=lease_ms)
    try:
        return zenoh.open(config)
    except zenoh.ZError as exc:
        raise ZenohUnreachable(f"cannot reach a Zenoh router at {', '.join(endpoints)}: "
                               f"{exc}") from None


class Router:
    """A Zenoh router in this process, listening on ``listen`` and meshing with the
    routers at ``connect``. ``close()`` (or the ``with`` block) stops it."""

    def __init__(self, listen: Sequence[str] = (), connect: Sequence[str] = (),
                 lease_ms: int | None = None) -> None:
        self.listen = list(listen) or [free_endpoint()]
        config = make_config("router", connect=connect, listen=self.listen, lease_ms=lease_ms)
        try:
            self.session = zenoh.open(config)
        except zenoh.ZError as exc:
            raise ZenohUnreachable(f"cannot start a Zenoh router on {', '.join(self.listen)}"
                                   f": {exc}") from None

    @property
    def endpoints(self) -> list[str]:
        return list(self.listen)

    def close(self) -> None:
        self.session.close()  # a closed session's close() does nothing

    def __enter__(self) -> "Router":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
