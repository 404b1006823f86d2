"""``dataspace-agency repl`` driven in a real terminal (a pseudo-terminal from the standard
library's ``pty``): start it, complete a name with Tab, send a request, watch a fact
appear in the live view, leave cleanly.

Every wait is for specific output, with a timeout; nothing sleeps.
"""

from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time

import pytest

WAIT = 20.0  # seconds for output that should come promptly (the shell starts a runtime)
ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\r")


class Terminal:
    """A child process on a pseudo-terminal, with expect-style reading."""

    def __init__(self, argv: list[str]) -> None:
        self.master, slave = os.openpty()
        # A wide window, so that rich does not wrap the table rows we look for.
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
        env = {**os.environ, "TERM": "xterm", "COLUMNS": "160", "LINES": "40",
               "PYTHONUNBUFFERED": "1"}
        env.pop("NO_COLOR", None)
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave,
                                     env=env, start_new_session=True, close_fds=True)
        os.close(slave)
        self.seen = ""  # everything read so far, ANSI codes removed

    def send(self, text: str) -> None:
        os.write(self.master, text.encode())

    def expect(self, pattern: str, timeout: float = WAIT) -> re.Match:
        """Wait for ``pattern`` (a regex) in the output read since the last match."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while True:
            found = regex.search(self.seen)
            if found:
                self.seen = self.seen[found.end():]
                return found
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"no {pattern!r} within {timeout} s; the terminal shows:\n"
                            f"{self.seen[-3000:]}")
            ready, _, _ = select.select([self.master], [], [], remaining)
            if ready:
                try:
                    chunk = os.read(self.master, 65536)
                except OSError:  # the child closed the terminal
                    chunk = b""
                if not chunk:
                    pytest.fail(f"the shell ended before {pattern!r}; it showed:\n"
                                f"{self.seen[-3000:]}")
                self.seen += ANSI.sub("", chunk.decode(errors="replace"))

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()  # only our own child, by its handle
            self.proc.wait(WAIT)
        os.close(self.master)


@pytest.fixture
def terminal():
    made: list[Terminal] = []

    def start(*args: str) -> Terminal:
        made.append(Terminal([sys.executable, "-m", "dataspace_agency.cli", "repl", *args]))
        return made[-1]
    yield start
    for term in made:
        term.close()


def test_repl_request_completion_live_view_and_clean_exit(terminal):
    term = terminal()
    term.expect(r"interactive shell: DataspaceSpace \(assertion\)")
    term.expect(r">>> ")
    term.send('space.add(Agent, "bob")\r')
    term.expect(r">>> ")

    term.send("me.reque\t")  # Tab completes the handle's method
    term.expect(r"me\.request\(")
    term.send('"bob", "help")\r')
    term.expect(r"\{\}\s*\n")  # bob's help: no actions of its own
    term.expect(r">>> ")

    # The view starts; once it shows, a thread in the shell adds carol; the row for her
    # appears while the view is live, then Enter closes the view.
    term.send("import threading; ready = threading.Event(); "
              "threading.Thread(target=lambda: (ready.wait(10), "
              'space.add(Agent, "carol"))).start(); '
              'view(P.rec("agent", P.CAPTURE), ready=ready)\r')
    term.expect(r"2 now")  # bob and me, before carol
    term.expect(r"appeared: 'carol'")
    term.send("\r")
    term.expect(r"view closed: 3 fact\(s\) match")
    term.expect(r">>> ")

    term.send("exit()\r")
    term.expect(r"bye")
    assert term.proc.wait(WAIT) == 0


def test_repl_on_a_queue_space_refuses_a_fact_view_and_keeps_going(terminal):
    term = terminal("--space", "queue")
    term.expect(r"interactive shell: QueueSpace \(queues\)")
    term.expect(r">>> ")
    term.send('view(P.rec("agent", P.CAPTURE))\r')
    term.expect(r"TypeError: a live view of facts needs a dataspace space")
    term.expect(r">>> ")
    term.send('space.add(Agent, "bob"); me.request("bob", "help", timeout=5)\r')
    term.expect(r"\{\}")
    term.expect(r">>> ")
    term.send("\x04")  # Ctrl-D
    term.expect(r"bye")
    assert term.proc.wait(WAIT) == 0


def test_repl_connects_to_a_dataspace_server(terminal):
    """--connect/--cap: the shell's handle reaches an agent that lives in another space
    (this test's) on the same server."""
    from preserves import stringify

    from dataspace_agency import Agent
    from dataspace_agency.spaces.remote_space import RemoteDataspaceSpace

    with RemoteDataspaceSpace() as host:  # a private server in a child process
        host.add(Agent, "resident")
        term = terminal("--connect", stringify(host.address), "--cap", stringify(host.cap))
        term.expect(r"interactive shell: RemoteDataspaceSpace \(assertion\)")
        term.expect(r">>> ")
        term.send('me.request("resident", "help", timeout=5)\r')
        term.expect(r"\{\}")
        term.expect(r">>> ")
        term.send('sorted(me.facts(P.rec("agent", P.CAPTURE)))\r')
        term.expect(r"\[\('me',\), \('resident',\)\]")
        term.send("exit()\r")
        term.expect(r"bye")
        assert term.proc.wait(WAIT) == 0


def test_a_fact_view_titles_its_table_with_the_pattern_in_preserves_text():
    from rich.console import Console
    from syndicate import patterns as P

    from dataspace_agency import DataspaceSpace
    from dataspace_agency.repl import FactView

    with DataspaceSpace() as space, space.connect("me") as me:
        console = Console(record=True, width=80, color_system=None)
        console.print(FactView(me, P.rec("agent", P.CAPTURE), console=console)._render())
    lines = console.export_text().splitlines()
    assert "facts matching <group <rec agent> {0: <bind <_>>}>" in lines[0]
    assert "Pattern.group" not in "\n".join(lines)
