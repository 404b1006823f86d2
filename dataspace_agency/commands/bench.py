"""``dataspace-agency bench [routing|classic|all] [--quick]``: the micro-benchmarks.

routing: the dataspace routing benchmark (cost in the index vs a naive scan, and
end-to-end delivery). classic: classic agents on a ``DataspaceSpace``, both adapter modes
(``request()`` round trips, one-way messages, adding agents, failure detection). all: both,
routing first.
"""

from __future__ import annotations

import argparse

NAME = "bench"
HELP = "the dataspace routing benchmark and the classic agents benchmark"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("which", nargs="?", choices=("routing", "classic", "all"),
                        default="all", help="which benchmark to run (default: all)")
    # The options both benchmarks' run_from_args read.
    parser.add_argument("--quick", action="store_true",
                        help="smaller sizes and fewer iterations (each benchmark under a"
                             " minute)")
    parser.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    """Run the chosen benchmark(s), each printing its own report."""
    from ..compare.bench import classic, routing
    benchmarks = {"routing": routing, "classic": classic}
    names = list(benchmarks) if args.which == "all" else [args.which]
    status = 0
    for i, name in enumerate(names):
        if i:
            print(flush=True)
        status = benchmarks[name].run_from_args(args) or status
    return status
