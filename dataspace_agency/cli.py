"""The ``dataspace-agency`` command.

Subcommands:

* ``bench [routing|classic|all] [--quick]``: the benchmarks: dataspace routing
  (``dataspace_agency.bench.routing``), classic agents on a ``DataspaceSpace``
  (``dataspace_agency.bench.classic``), or both (the default: routing, then classic).

``dataspace-agency --version`` prints the version; with no subcommand, the help.
"""

from __future__ import annotations

import argparse
import sys

from . import __version__
from .bench import classic, routing

BENCHMARKS = {"routing": routing, "classic": classic}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dataspace-agency",
        description="Agents on a Syndicate-style dataspace, compared with message queues.")
    parser.add_argument("--version", action="version",
                        version=f"dataspace-agency {__version__}")
    commands = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND")

    bench = commands.add_parser(
        "bench", help="the dataspace routing benchmark and the classic agents benchmark",
        description="The benchmarks. routing: the dataspace routing benchmark (routing cost"
                    " in the index vs a naive scan, and end-to-end delivery). classic:"
                    " classic agents on a DataspaceSpace, both modes (request() round"
                    " trips, one-way messages, adding agents, failure detection). all:"
                    " both, routing first.")
    bench.add_argument("which", nargs="?", choices=("routing", "classic", "all"),
                       default="all", help="which benchmark to run (default: all)")
    # The options both benchmarks' run_from_args read.
    bench.add_argument("--quick", action="store_true",
                       help="smaller sizes and fewer iterations (each benchmark under a"
                            " minute)")
    bench.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)
    bench.set_defaults(handler=run_bench)
    return parser


def run_bench(args: argparse.Namespace) -> int:
    """``bench``: run the chosen benchmark(s), each printing its own report."""
    names = list(BENCHMARKS) if args.which == "all" else [args.which]
    status = 0
    for i, name in enumerate(names):
        if i:
            print(flush=True)
        status = BENCHMARKS[name].run_from_args(args) or status
    return status


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
