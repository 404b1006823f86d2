"""``dataspace-agency repl``: an interactive Python shell with a space and a handle ready.

    dataspace-agency repl                         # an in-process dataspace (assertion mode)
    dataspace-agency repl --space queue           # or multiprocess-queue, amqp
    dataspace-agency repl --connect ADDRESS --cap CAP   # a dataspace server (serve)

In the shell: ``me.request("agent", "action", arg=...)``, ``space.add(...)``,
``view(P.rec("agent", P.CAPTURE))`` for a live view of facts; Tab completes; ``exit()``
or Ctrl-D leaves and shuts the space down. See docs/interactive.md.
"""

from __future__ import annotations

import argparse
import sys

NAME = "repl"
HELP = "an interactive shell with a space and a client handle (me) ready"

# The backends by the names examples/ and `compare --backends` use for them.
SPACES = ("dataspace", "queue", "multiprocess-queue", "amqp")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--space", choices=SPACES, default="dataspace",
                        help="which backend (default: dataspace; ignored with --connect)")
    parser.add_argument("--mode", choices=("assertion", "message"), default="assertion",
                        help="the adapter mode of a dataspace space (default: assertion)")
    parser.add_argument("--amqp-url", default=None,
                        help="the broker for --space amqp (default: AMQPSpace's default)")
    parser.add_argument("--connect", metavar="ADDRESS",
                        help='a dataspace server: 127.0.0.1:8001 (TCP), \'<tcp "127.0.0.1"'
                             ' 8001>\' or \'<unix "PATH">\' (needs --cap)')
    parser.add_argument("--cap", metavar="CAP",
                        help="the capability (sturdyref) printed by dataspace-agency serve")
    parser.add_argument("--id", default="me", help="the handle's address (default: me)")


def make_space(args: argparse.Namespace):
    """The space the options ask for (the caller destroys it)."""
    if (args.connect is None) != (args.cap is None):
        raise SystemExit("dataspace-agency repl: --connect and --cap go together")
    if args.connect is not None:
        from ..spaces.remote_space import RemoteDataspaceSpace
        return RemoteDataspaceSpace(args.connect, args.cap, mode=args.mode)
    if args.space == "dataspace":
        from ..spaces import DataspaceSpace
        return DataspaceSpace(mode=args.mode)
    if args.space == "queue":
        from ..spaces import QueueSpace
        return QueueSpace()
    if args.space == "multiprocess-queue":
        from ..spaces import MultiprocessQueueSpace
        return MultiprocessQueueSpace()
    from ..spaces import AMQPSpace
    return AMQPSpace(args.amqp_url) if args.amqp_url else AMQPSpace()


def run(args: argparse.Namespace) -> int:
    """Start the space, run the shell on this terminal, shut the space down."""
    from ..repl import run_console
    try:
        space = make_space(args)
    except (OSError, RuntimeError, ValueError, ImportError) as exc:
        print(f"dataspace-agency repl: cannot start the space: {exc}", file=sys.stderr)
        return 1
    try:
        return run_console(space, args.id)
    finally:
        space.destroy()
