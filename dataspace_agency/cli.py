"""The ``dataspace-agency`` command.

Subcommands:

* ``bench [--quick]``: the dataspace routing benchmark (``dataspace_agency.bench.routing``).

``dataspace-agency --version`` prints the version; with no subcommand, the help.
"""

from __future__ import annotations

import argparse
import sys

from . import __version__
from .bench import routing


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dataspace-agency",
        description="Agents on a Syndicate-style dataspace, compared with message queues.")
    parser.add_argument("--version", action="version",
                        version=f"dataspace-agency {__version__}")
    commands = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND")

    bench = commands.add_parser("bench", help="the dataspace routing benchmark",
                                description="The dataspace routing benchmark: routing cost"
                                " in the index vs a naive scan, and end-to-end delivery.")
    routing.add_arguments(bench)
    bench.set_defaults(handler=routing.run_from_args)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
