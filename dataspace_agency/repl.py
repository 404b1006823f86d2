"""The interactive shell behind ``dataspace-agency repl``: a Python console with a space
and a client handle ready, tab completion, and a live view of facts.

::

    >>> space.add(Agent, "bob")
    >>> me.request("bob", "help")
    {}
    >>> view(P.rec("agent", P.CAPTURE))     # facts appearing and disappearing, live,
    ...                                      # until Enter or Ctrl-C

Names ready in the console: ``space``, ``me`` (``space.connect(...)``), ``view``, ``P``
(``syndicate.patterns``), ``Record``/``Symbol`` (Preserves), ``Agent``, ``action``,
``EvalAgent``/``EvalMixin`` and the access-policy constants. The console is the standard
library's ``code.InteractiveConsole`` with ``rlcompleter`` (no dependency beyond Python);
the live view uses rich, already a dependency.
"""

from __future__ import annotations

import code
import select
import sys
import threading
import time
from typing import Any, TextIO

import preserves
from preserves import Record, Symbol
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text
from syndicate import patterns as P

from . import ACCESS_DENIED, ACCESS_PERMITTED, ACCESS_REQUESTED, ActionError, Agent, action
from .classic.eval_action import EvalAgent, EvalMixin
from .spaces.base import Space
from .spaces.handle import ClientHandle

__all__ = ["FactView", "namespace_for", "run_console"]

BANNER = """dataspace-agency interactive shell: {space} ({kind}), handle me = {me!r}
  me.request("agent", "action", arg=...)   me.send(...)   me.receive(timeout)   me.inbox
  space.add(AgentClass, "id")   space.agents()   view(P.rec("agent", P.CAPTURE))
Tab completes; exit() or Ctrl-D leaves (the space is shut down)."""


def _show(value: Any) -> str:
    return ", ".join(repr(v) for v in value) if isinstance(value, tuple) else repr(value)


class FactView:
    """A live table of the facts matching a pattern, with the latest changes under it
    (dataspace spaces). :meth:`run` shows it until Enter, Ctrl-C or ``timeout``."""

    def __init__(self, handle: ClientHandle, pattern: Any, *, history: int = 8,
                 console: Console | None = None) -> None:
        if not hasattr(handle, "watch"):
            raise TypeError(f"a live view of facts needs a dataspace space; this handle is"
                            f" in {type(handle.space).__name__}, which holds no facts")
        self._handle, self._pattern = handle, pattern
        self._history = history
        self._console = console or Console()
        self.current: dict[tuple, int] = {}
        self.changes: list[str] = []
        self.ready = threading.Event()  # set once the current facts are on screen

    def _apply(self, event: Any, live: bool) -> None:
        count = self.current.get(event.captures, 0) + (1 if event.kind == "added" else -1)
        if count > 0:
            self.current[event.captures] = count
        else:
            self.current.pop(event.captures, None)
        if live:
            verb = "appeared" if event.kind == "added" else "disappeared"
            self.changes = (self.changes + [f"{verb}: {_show(event.captures)}"])[
                -self._history:]

    def _render(self) -> Table:
        # The pattern in Preserves text (<group <rec agent> {0: <bind <_>>}>), not its
        # Python repr, as a Text (no rich markup), and the table at least as wide as it,
        # so that it is not wrapped into the width of the first column.
        title = Text(f"facts matching {preserves.stringify(self._pattern)}")
        table = Table(title=title, expand=False, caption="Enter or Ctrl-C to stop",
                      min_width=min(len(title) + 4, self._console.width))
        table.add_column(f"{len(self.current)} now")
        for captures in sorted(self.current, key=repr):
            table.add_row(_show(captures))
        for change in self.changes:
            table.add_row(f"[dim]{change}[/dim]")
        return table

    def run(self, timeout: float | None = None, stdin: TextIO | None = None) -> None:
        """Show the view until Enter (a line on ``stdin``), Ctrl-C, or ``timeout``."""
        stdin = stdin if stdin is not None else sys.stdin
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._handle.watch(self._pattern) as watch:
            watch.sync()
            for event in watch.pending():
                self._apply(event, live=False)
            try:
                with Live(self._render(), console=self._console, auto_refresh=False,
                          transient=False) as live:
                    self.ready.set()
                    while deadline is None or time.monotonic() < deadline:
                        if _line_waiting(stdin):
                            stdin.readline()
                            break
                        try:
                            event = watch.get(timeout=0.1)
                        except TimeoutError:
                            continue
                        except StopIteration:
                            break
                        self._apply(event, live=True)
                        for more in watch.pending():
                            self._apply(more, live=True)
                        live.update(self._render(), refresh=True)
            except KeyboardInterrupt:
                pass  # Ctrl-C ends the view, not the shell
        self._console.print(f"[dim]view closed: {len(self.current)} fact(s) match[/dim]")


def _line_waiting(stdin: TextIO) -> bool:
    try:
        return bool(select.select([stdin], [], [], 0)[0])
    except (ValueError, OSError, TypeError):
        return False  # not a real file (e.g. redirected in tests): only Ctrl-C/timeout


def namespace_for(space: Space, me: ClientHandle) -> dict[str, Any]:
    """What the console starts with."""
    def view(pattern: Any, timeout: float | None = None,
             ready: threading.Event | None = None) -> None:
        """Live view of the facts matching ``pattern`` until Enter, Ctrl-C or
        ``timeout`` seconds; ``ready`` (a threading.Event) is set once it shows."""
        facts_view = FactView(me, pattern)
        if ready is not None:
            facts_view.ready = ready
        facts_view.run(timeout)

    return {"space": space, "me": me, "view": view, "P": P, "Record": Record,
            "Symbol": Symbol, "Agent": Agent, "action": action, "ActionError": ActionError,
            "EvalAgent": EvalAgent, "EvalMixin": EvalMixin,
            "ACCESS_PERMITTED": ACCESS_PERMITTED, "ACCESS_DENIED": ACCESS_DENIED,
            "ACCESS_REQUESTED": ACCESS_REQUESTED, "__name__": "__console__"}


def _enable_completion(namespace: dict[str, Any]) -> None:
    try:
        import readline
        import rlcompleter
    except ImportError:  # no readline (some platforms): the console works without it
        return
    readline.set_completer(rlcompleter.Completer(namespace).complete)
    # libedit (macOS) and GNU readline spell the binding differently.
    if "libedit" in (readline.__doc__ or ""):
        readline.parse_and_bind("bind ^I rl_complete")
    else:
        readline.parse_and_bind("tab: complete")


def run_console(space: Space, handle_id: str = "me", banner: str | None = None) -> int:
    """Run the console on this terminal until exit() or Ctrl-D; then close the handle.
    The caller owns (and destroys) ``space``."""
    me = space.connect(handle_id)
    namespace = namespace_for(space, me)
    _enable_completion(namespace)
    console = code.InteractiveConsole(namespace)
    kind = getattr(space, "mode", None) or "queues"
    try:
        console.interact(banner=banner if banner is not None else BANNER.format(
            space=type(space).__name__, kind=kind, me=me), exitmsg="")
    except SystemExit:
        pass  # exit() inside the console: leave cleanly all the same
    finally:
        me.close()
    print("bye")
    return 0
