"""The ``dataspace-agency`` command.

Each subcommand is a module of ``dataspace_agency.commands`` (see its docstring for the
contract); ``SUBCOMMANDS`` lists them in the order ``--help`` shows them.
``dataspace-agency --version`` prints the version; with no subcommand, the help.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from . import __version__
from .commands.failures import run_command

SUBCOMMANDS = (
    "bench",
    "compare",
    "repl",
    "serve",
    "inspect",
    "router",
    "example",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dataspace-agency",
        description="Agents on a Syndicate-style dataspace, compared with message queues.")
    parser.add_argument("--version", action="version",
                        version=f"dataspace-agency {__version__}")
    commands = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND")
    for module_name in SUBCOMMANDS:
        module = importlib.import_module(f".commands.{module_name}", __package__)
        sub = commands.add_parser(module.NAME, help=module.HELP,
                                  description=module.__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(sub)
        sub.set_defaults(handler=module.run, module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    # Expected failures end in one line, not a traceback (commands/failures.py); each
    # command names the exceptions it expects (EXPECTED) and what Ctrl-C means to it.
    module = args.module
    return run_command(f"dataspace-agency {args.command}", lambda: args.handler(args),
                       expected=getattr(module, "EXPECTED", None),
                       interrupted=getattr(module, "INTERRUPTED", "interrupted (Ctrl-C)"))


if __name__ == "__main__":
    sys.exit(main())
