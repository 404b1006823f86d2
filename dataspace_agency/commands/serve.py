"""``dataspace-agency serve``: a dataspace server speaking the Syndicate wire protocol.

Listens on 127.0.0.1 (loopback) by default; ``--tcp HOST:PORT`` and/or ``--unix PATH``.
Prints the capability clients need (a sturdyref) and the addresses, one per line:

    capability <ref {oid: "syndicate" sig: #[...]}>
    address <tcp "127.0.0.1" 8001>

Keys: ``--key HEX`` (``--key ""`` is the well-known, insecure development key), or
``--key-file F`` (lines ``HEXKEY [OID]``); with neither, a random key for this run.
``--mint-agent ID`` (repeatable) also prints ``agent-capability ID <ref ...>``: a cap that
may speak only as agent ID (``spaces.dataspace.caps``). A non-loopback ``--tcp`` address is
served, with a warning. See docs/server.md and docs/security.md.
"""

from __future__ import annotations

import argparse
import sys

from ..protocol import server_main as server_options

NAME = "serve"
HELP = "run a dataspace server (Syndicate protocol) on TCP and/or a unix socket"
# An address in use or a live socket at --unix (OSError), a bad limit (ValueError, named
# by open_server): one line each (commands/failures.py), even from inside trio's groups.
EXPECTED = {OSError: 1, ValueError: 2}
INTERRUPTED = "stopped (Ctrl-C)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    server_options.add_arguments(parser)  # protocol/server_main.py: where, keys, limits
    parser.add_argument("--mint-agent", action="append", default=[], metavar="ID",
                        help="also print a capability restricted to speaking as agent ID"
                             " (repeatable)")


def run(args: argparse.Namespace) -> int:
    import errno

    import trio
    from preserves import stringify

    from ..spaces.dataspace.caps import restrict_to_agents
    from ..classic.message import validate_agent_id
    from .failures import CommandFailed, only

    server_options.configure_logging(args.log_level)
    try:
        keys = server_options.keys_from(args)
    except (OSError, ValueError) as exc:
        print(f"dataspace-agency serve: {exc}", file=sys.stderr)
        return 2
    try:
        agent_ids = [validate_agent_id(agent_id) for agent_id in args.mint_agent]
    except ValueError as exc:
        print(f"dataspace-agency serve: --mint-agent: {exc}", file=sys.stderr)
        return 2
    tcp = server_options.tcp_of(args)

    def announce(server: object) -> None:
        for agent_id in agent_ids:
            cap = restrict_to_agents(server.capability, [agent_id])
            print(f"agent-capability {agent_id} {stringify(cap)}")

    try:
        trio.run(server_options.serve, args, keys, announce)  # failures: see EXPECTED
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
