"""Run a dataspace server from options: the ``serve`` options, and the process entry
``python -m dataspace_agency.protocol.server_main`` that :class:`~.process.ServerProcess`
starts (so the protocol layer does not depend on the command line above it).

The command ``dataspace-agency serve`` (``commands/serve.py``) is these options plus its
own (``--mint-agent``) and one-line failures. The server prints the capability clients
need (a sturdyref) and the addresses, one per line, then ``ready``:

    capability <ref {oid: "syndicate" sig: #[...]}>
    address <tcp "127.0.0.1" 8001>
    ready
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any, Callable

from .codec import DEFAULT_MAX_PACKET
from .sturdy import KeyRing

__all__ = ["add_arguments", "keys_from", "main", "serve", "tcp_of"]


def _tcp(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "127.0.0.1", text
    try:
        number = int(port)
    except ValueError:
        raise argparse.ArgumentTypeError(f"want HOST:PORT or PORT, got {text!r}") from None
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"port out of range: {number}")
    return host or "127.0.0.1", number


def _hex(text: str) -> bytes:
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--key wants hexadecimal, got {text!r}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The server's options: where it listens, its keys, its limits."""
    parser.add_argument("--tcp", type=_tcp, metavar="HOST:PORT",
                        help="listen on TCP (default 127.0.0.1:8001 unless --unix is given;"
                             " port 0 picks a free port)")
    parser.add_argument("--unix", metavar="PATH", help="listen on a unix socket")
    keys = parser.add_mutually_exclusive_group()
    keys.add_argument("--key", type=_hex, metavar="HEX",
                      help='the secret key (hex) for oid "syndicate"; "" is the dev key')
    keys.add_argument("--key-file", metavar="FILE", help="keys, one 'HEXKEY [OID]' per line")
    parser.add_argument("--max-packet", type=int, default=None, metavar="BYTES",
                        help="largest packet accepted (default 16 MiB)")
    parser.add_argument("--high-water", type=int, default=None, metavar="BYTES",
                        help="output waiting for one peer above which the server stops"
                             " reading from the others (default 8 MiB; docs/limits.md)")
    parser.add_argument("--low-water", type=int, default=None, metavar="BYTES",
                        help="reading resumes below this (default high-water / 4)")
    parser.add_argument("--stall-timeout", type=float, default=None, metavar="SECONDS",
                        help="cut off a peer congested this long (default 30; 0: never)")
    parser.add_argument("--exit-on-stdin-eof", action="store_true",
                        help="stop when standard input closes (for a parent process)")
    parser.add_argument("--log-level", default="INFO",
                        choices=("DEBUG", "INFO", "WARNING", "ERROR"))


def keys_from(args: argparse.Namespace) -> KeyRing:
    """The key ring the options ask for (a random key without ``--key``/``--key-file``);
    OSError or ValueError for an unreadable or bad key file."""
    if args.key_file:
        return KeyRing.from_file(args.key_file)
    if args.key is not None:
        return KeyRing.single(args.key)
    return KeyRing.random()


def tcp_of(args: argparse.Namespace) -> tuple[str, int] | None:
    """Where to listen on TCP: ``--tcp``, else 127.0.0.1:8001 unless ``--unix`` is given."""
    return args.tcp if args.tcp is not None else (None if args.unix else ("127.0.0.1", 8001))


async def serve(args: argparse.Namespace, keys: KeyRing,
                announce: Callable[[Any], None] | None = None) -> None:
    """Serve until standard input closes (``--exit-on-stdin-eof``) or forever; prints the
    start-up lines (``announce(server)`` may print more before ``ready``)."""
    import trio
    from preserves import stringify

    from .server import open_server

    limits: dict = {}  # flow control (docs/limits.md); open_server checks the values
    if args.high_water is not None:
        limits["high_water"] = args.high_water
    if args.low_water is not None:
        limits["low_water"] = args.low_water
    if args.stall_timeout is not None:
        limits["stall_timeout"] = args.stall_timeout or None
    async with open_server(tcp=tcp_of(args), unix=args.unix, keys=keys,
                           max_packet=args.max_packet or DEFAULT_MAX_PACKET,
                           **limits) as server:
        for cap in server.keys.caps():
            print(f"capability {stringify(cap)}")
        if announce is not None:
            announce(server)
        if server.tcp_address is not None:
            print(f"address {server.tcp_address_text}")
        if server.unix_path is not None:
            print(f"address {server.unix_address_text}")
        print("ready", flush=True)
        if args.exit_on_stdin_eof:
            await trio.to_thread.run_sync(sys.stdin.buffer.read, abandon_on_cancel=True)
        else:
            await trio.sleep_forever()


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def main(argv: list[str] | None = None) -> int:
    """The process entry: parse the options, serve."""
    import trio

    parser = argparse.ArgumentParser(prog="python -m dataspace_agency.protocol.server_main",
                                     description="a dataspace server (Syndicate protocol)")
    add_arguments(parser)
    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    keys = keys_from(args)
    trio.run(serve, args, keys)
    return 0


if __name__ == "__main__":
    sys.exit(main())
