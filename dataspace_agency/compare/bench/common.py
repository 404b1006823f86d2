"""What every benchmark module shares: its command line and how it prints.

A benchmark module provides ``run(quick, *, tiny=False, progress=None) -> dict`` (every
figure, printing nothing) and ``report(figures, console)``; this module turns those into
``run_from_args`` (for the ``dataspace-agency bench`` CLI) and a standalone ``main``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable

from rich.console import Console

Run = Callable[..., dict]
Report = Callable[[dict, Console], None]


def mark(ok: bool) -> str:
    """A goal's verdict, as rich markup."""
    return "[green]✓[/]" if ok else "[red]✗[/]"


def add_arguments(parser: argparse.ArgumentParser, quick_help: str) -> None:
    """The options every benchmark takes."""
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)  # tests only


def run_and_report(run: Run, report: Report, what: str, args: argparse.Namespace) -> int:
    """Run with parsed options, showing progress on stderr; print the report; exit status."""
    # Piped output (tests, logs) gets a fixed width so the tables do not wrap.
    console = Console() if sys.stdout.isatty() else Console(width=120)
    if not sys.stderr.isatty():  # no live status there: say once that it has begun
        print(f"benchmarking {what} ...", file=sys.stderr, flush=True)
    with Console(stderr=True).status(f"benchmarking {what}") as status:
        figures = run(args.quick, tiny=args.tiny,
                      progress=lambda message: status.update(message))
    report(figures, console)
    return 0


def standalone_main(prog: str, doc: str, run: Run, report: Report, what: str,
                    quick_help: str, argv: list[str] | None = None) -> int:
    """``main`` for running a benchmark module as a script."""
    parser = argparse.ArgumentParser(prog=prog, description=doc.split("\n\n")[0])
    add_arguments(parser, quick_help)
    return run_and_report(run, report, what, parser.parse_args(argv))
