"""``dataspace-agency serve``: a dataspace server speaking the Syndicate wire protocol.

Listens on 127.0.0.1 (loopback) by default; ``--tcp HOST:PORT`` and/or ``--unix PATH``.
Prints the capability clients need (a sturdyref) and the addresses, one per line:

    capability <ref {oid: "syndicate" sig: #[...]}>
    address <tcp "127.0.0.1" 8001>

Keys: ``--key HEX`` (``--key ""`` is the well-known, insecure development key), or
``--key-file F`` (lines ``HEXKEY [OID]``); with neither, a random key for this run.
``--mint-agent ID`` (repeatable) also prints ``agent-capability ID <ref ...>``: a cap that
may speak only as agent ID (``classic.caps``). A non-loopback ``--tcp`` address is
served, with a warning. See docs/server.md and docs/security.md.
"""

from __future__ import annotations

import argparse
import sys

NAME = "serve"
HELP = "run a dataspace server (Syndicate protocol) on TCP and/or a unix socket"
# An address in use or a live socket at --unix (OSError), a bad limit (ValueError, named
# by open_server): one line each (commands/failures.py), even from inside trio's groups.
EXPECTED = {OSError: 1, ValueError: 2}
INTERRUPTED = "stopped (Ctrl-C)"


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
    parser.add_argument("--tcp", type=_tcp, metavar="HOST:PORT",
                        help="listen on TCP (default 127.0.0.1:8001 unless --unix is given;"
                             " port 0 picks a free port)")
    parser.add_argument("--unix", metavar="PATH", help="listen on a unix socket")
    keys = parser.add_mutually_exclusive_group()
    keys.add_argument("--key", type=_hex, metavar="HEX",
                      help='the secret key (hex) for oid "syndicate"; "" is the dev key')
    keys.add_argument("--key-file", metavar="FILE", help="keys, one 'HEXKEY [OID]' per line")
    parser.add_argument("--mint-agent", action="append", default=[], metavar="ID",
                        help="also print a capability restricted to speaking as agent ID"
                             " (repeatable)")
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


def run(args: argparse.Namespace) -> int:
    import errno
    import logging

    import trio

    from ..classic.caps import restrict_to_agents
    from ..classic.message import validate_agent_id
    from ..protocol.codec import DEFAULT_MAX_PACKET
    from ..protocol.server import open_server
    from ..protocol.sturdy import KeyRing
    from .failures import CommandFailed, only

    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.key_file:
            keys = KeyRing.from_file(args.key_file)
        elif args.key is not None:
            keys = KeyRing.single(args.key)
        else:
            keys = KeyRing.random()
    except (OSError, ValueError) as exc:
        print(f"dataspace-agency serve: {exc}", file=sys.stderr)
        return 2
    try:
        agent_ids = [validate_agent_id(agent_id) for agent_id in args.mint_agent]
    except ValueError as exc:
        print(f"dataspace-agency serve: --mint-agent: {exc}", file=sys.stderr)
        return 2
    tcp = args.tcp if args.tcp is not None else (None if args.unix else ("127.0.0.1", 8001))

    limits: dict = {}  # flow control (docs/limits.md); open_server checks the values
    if args.high_water is not None:
        limits["high_water"] = args.high_water
    if args.low_water is not None:
        limits["low_water"] = args.low_water
    if args.stall_timeout is not None:
        limits["stall_timeout"] = args.stall_timeout or None

    async def main() -> None:
        async with open_server(tcp=tcp, unix=args.unix, keys=keys,
                               max_packet=args.max_packet or DEFAULT_MAX_PACKET,
                               **limits) as server:
            from preserves import stringify
            for cap in server.keys.caps():
                print(f"capability {stringify(cap)}")
            for agent_id in agent_ids:
                cap = restrict_to_agents(server.capability, [agent_id])
                print(f"agent-capability {agent_id} {stringify(cap)}")
            if server.tcp_address is not None:
                print(f"address {server.tcp_address_text}")
            if server.unix_path is not None:
                print(f"address {server.unix_address_text}")
            print("ready", flush=True)
            if args.exit_on_stdin_eof:
                await trio.to_thread.run_sync(sys.stdin.buffer.read, abandon_on_cancel=True)
            else:
                await trio.sleep_forever()

    try:
        trio.run(main)  # Ctrl-C, an address in use, a bad limit: see EXPECTED
    except BaseException as exc:
        error = only(exc, OSError)
        if (error is not None and error.errno == errno.EADDRINUSE and tcp is not None
                and not (args.unix and args.unix in str(error))):
            # trio's own text names no address: say which one, as --tcp was written.
            raise CommandFailed(f"cannot listen on TCP {tcp[0]}:{tcp[1]}: address already"
                                " in use (another server? pick another port, or 0 for a"
                                " free one)") from exc
        raise
    return 0
