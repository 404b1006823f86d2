"""How every command ends on an expected failure: one line on stderr and a non-zero exit
status, never a traceback.

trio (and so the server, the clients and the remote spaces) raises what went wrong inside
an ``ExceptionGroup``: a Ctrl-C arrives as ``ExceptionGroup([KeyboardInterrupt])``, a port
in use as ``ExceptionGroup([OSError])``. A plain ``except OSError`` never sees those, so
every command runs under :func:`run_command`, which looks inside groups (:func:`leaves`)
and turns

* a ``KeyboardInterrupt`` anywhere in it into ``PROG: interrupted (Ctrl-C)``, exit 130
  (the shell's status for a process ended by SIGINT), and
* a ``BrokenPipeError`` while standard output's reader has gone (``... | head``) into a
  quiet exit 141 (128 + SIGPIPE), as a Unix tool ends there, and
* an exception whose every leaf is of a type the command expects (``expected``: type ->
  exit status) into ``PROG: <the message>`` with that status.

Anything else is a bug and keeps its traceback. :class:`CommandFailed` is how a command
ends itself with one line. The examples use the same function (``examples/chat.py``).
"""

from __future__ import annotations

import os
import select
import sys
from typing import Callable, Mapping

__all__ = ["EXIT_BROKEN_PIPE", "EXIT_INTERRUPTED", "CommandFailed", "leaves", "only", "run_command"]

EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for a Ctrl-C'd process
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE


class CommandFailed(Exception):
    """End the command with this message (one line) and ``status``."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


def leaves(exc: BaseException) -> list[BaseException]:
    """The exceptions in ``exc``: itself, or every leaf of a (nested) exception group."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in leaves(inner)]
    return [exc]


def only(exc: BaseException,
         types: type[BaseException] | tuple[type[BaseException], ...]) -> BaseException | None:
    """The first leaf of ``exc`` if every leaf is one of ``types``, else None."""
    found = leaves(exc)
    return found[0] if found and all(isinstance(leaf, types) for leaf in found) else None


def stdout_reader_gone() -> bool:
    """Whether standard output is a pipe whose reader has closed it (``| head`` done)."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll(), or no real stdout
        return False


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's last flush of what is still
    buffered does not fail all over again on its way out."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _line(exc: BaseException) -> str:
    """``exc``'s message on one line (its class name if it has none)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def run_command(prog: str, body: Callable[[], int | None],
                expected: Mapping[type[BaseException], int] | None = None,
                interrupted: str = "interrupted (Ctrl-C)") -> int:
    """``body()``'s exit status; on an expected failure (see the module docstring) one line
    ``PROG: ...`` on stderr and its status instead of a traceback."""
    try:
        return body() or 0
    except SystemExit:
        raise  # argparse and sys.exit() say what they have to say themselves
    except BaseException as exc:  # noqa: BLE001 - sorted below; the rest is re-raised
        found = leaves(exc)
        if any(isinstance(leaf, KeyboardInterrupt) for leaf in found):
            print(f"{prog}: {interrupted}", file=sys.stderr, flush=True)
            return EXIT_INTERRUPTED
        if only(exc, BrokenPipeError) is not None and stdout_reader_gone():
            _quiet_stdout()  # the reader has what it wanted: nothing to report
            return EXIT_BROKEN_PIPE
        failed = only(exc, CommandFailed)
        if failed is not None:
            print(f"{prog}: {_line(failed)}", file=sys.stderr, flush=True)
            return failed.status  # type: ignore[attr-defined]
        for types, status in (expected or {}).items():
            leaf = only(exc, types)
            if leaf is not None:
                print(f"{prog}: {_line(leaf)}", file=sys.stderr, flush=True)
                return status
        raise
