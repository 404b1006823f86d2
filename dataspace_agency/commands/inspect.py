"""``dataspace-agency inspect``: a live web page of a running system.

Connects to a dataspace server (``dataspace-agency serve``) and serves, on loopback by
default, a page of the agents present with their actions and help, the requests pending
(assertion mode) with their age, requester and responder, a message rate per agent, and a
pattern box showing matching facts live; JSON under ``/api/`` (``agents``, ``requests``,
``facts?pattern=...``, ``status``). Prints, one per line::

    inspector http://127.0.0.1:8080/
    ready

It only observes; the capability decides what it can see. An unreachable server or a lost
connection is shown on the page (and in the JSON) while it keeps trying. For a space in a
Python process, use ``space.inspect(http="127.0.0.1:8080")`` instead. See docs/inspect.md.
"""

from __future__ import annotations

import argparse
import sys

NAME = "inspect"
HELP = "serve a live web page of a dataspace's agents, requests and facts"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--connect", required=True, metavar="ADDRESS",
                        help='the server: <tcp "HOST" PORT>, <unix "PATH">, HOST:PORT or'
                             " a unix socket path")
    parser.add_argument("--cap", required=True, metavar="CAP",
                        help="the capability (sturdyref text) that `serve` printed")
    parser.add_argument("--http", default="127.0.0.1:8080", metavar="HOST:PORT",
                        help="where to serve the page (default 127.0.0.1:8080; port 0"
                             " picks a free port)")
    parser.add_argument("--log-level", default="WARNING",
                        choices=("DEBUG", "INFO", "WARNING", "ERROR"))


def _address(text: str) -> object:
    """``HOST:PORT`` as a TCP address; anything else as the client reads it."""
    host, sep, port = text.rpartition(":")
    if (sep and host and port.isdigit() and not text.lstrip().startswith("<")
            and "/" not in host):
        return (host, int(port))
    return text


def run(args: argparse.Namespace) -> int:
    import logging

    try:
        import trio

        from ..inspect import oserror_unwrapped, parse_http, run_inspector
    except ImportError as exc:
        print(f"dataspace-agency inspect: {exc}", file=sys.stderr)
        return 2
    from ..protocol.client import parse_address
    from ..protocol.sturdy import parse_cap

    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    address = _address(args.connect)
    try:
        parse_address(address)
        parse_cap(args.cap)
        host, port = parse_http(args.http)
    except (TypeError, ValueError) as exc:
        print(f"dataspace-agency inspect: {exc}", file=sys.stderr)
        return 2

    async def main() -> None:
        with oserror_unwrapped():
            async with trio.open_nursery() as nursery:
                url = await nursery.start(run_inspector, address, args.cap, host, port)
                print(f"inspector {url}")
                print("ready", flush=True)

    try:
        trio.run(main)
    except KeyboardInterrupt:
        pass
    except OSError as exc:  # the web port is taken, say
        print(f"dataspace-agency inspect: {exc}", file=sys.stderr)
        return 1
    return 0
