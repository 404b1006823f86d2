"""Server addresses: ``<tcp "HOST" PORT>``, ``<unix "PATH">`` and their shorthands."""

from __future__ import annotations

from typing import Any

import preserves
from preserves import Record, Symbol

__all__ = ["address_text", "parse_address"]

_TCP, _UNIX = Symbol("tcp"), Symbol("unix")


def parse_address(address: Any) -> tuple[str, Any]:
    """``("tcp", (host, port))`` or ``("unix", path)`` from any accepted address form:
    ``(host, port)``, ``<tcp "HOST" PORT>`` / ``<unix "PATH">`` (Preserves text or value),
    ``HOST:PORT`` (TCP, as ``serve --tcp`` takes it; ``[::1]:PORT`` for IPv6), or any other
    string, a unix socket path."""
    if isinstance(address, tuple) and len(address) == 2 and isinstance(address[1], int):
        return "tcp", (str(address[0]), address[1])
    if isinstance(address, str) and not address.lstrip().startswith("<"):
        # HOST:PORT is TCP, as `serve --tcp` writes it; a unix socket path that looks
        # like one can still be given as <unix "PATH">.
        host, sep, port = address.strip().rpartition(":")
        bracketed = host.startswith("[") and host.endswith("]")  # [::1]:PORT
        if (sep and host and port.isdigit() and int(port) <= 65535 and "/" not in host
                and (bracketed or ":" not in host)):
            return "tcp", (host[1:-1] if bracketed else host, int(port))
        return "unix", address
    if isinstance(address, str):
        try:
            address = preserves.parse(address)
        except Exception as exc:  # noqa: BLE001
            raise ValueError(f"not an address in Preserves text: {address!r} ({exc})") from None
    address = preserves.preserve(address)
    if isinstance(address, Record):
        fields = address.fields
        if (address.key == _TCP and len(fields) == 2 and isinstance(fields[0], str)
                and isinstance(fields[1], int)):
            return "tcp", (fields[0], fields[1])
        if address.key == _UNIX and len(fields) == 1 and isinstance(fields[0], str):
            return "unix", fields[0]
    raise ValueError(f'unsupported address {address!r}: want HOST:PORT, <tcp "HOST" PORT>'
                     f' or <unix "PATH">')


def address_text(address: Any) -> str:
    """The Preserves text of any accepted address form (``<tcp "H" P>`` / ``<unix "P">``),
    for handing an address to another process."""
    kind, where = parse_address(address)
    value = (Record(_TCP, [where[0], where[1]]) if kind == "tcp"
             else Record(_UNIX, [where]))
    return preserves.stringify(value)
