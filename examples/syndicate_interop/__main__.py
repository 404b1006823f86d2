"""Stock syndicate-py programs talking through our server; one is killed, the other sees it go.

A driver for the programs in this folder, so that it runs by itself:
`dataspace-agency example syndicate_interop` or `python examples/syndicate_interop`.
It starts `dataspace-agency serve` (a child process, on a unix socket in a temp directory),
then two copies of `peer.py`, a chat participant written with nothing but syndicate-py
0.19.3 (its own asyncio runtime and relay client), as `alice` and `bob`. They see each
other arrive (`<Present name>` facts), greet each other and talk (`<Say who text>`
messages); then bob's process is killed with SIGKILL. Nobody tells alice: the server sees
the connection drop, retracts bob's facts, and alice's `during` ends: `bob left`.

Every step waits for the lines it expects (with a deadline), then prints what each peer
printed during it, sorted (within a step the two greetings cross, in either order).
To run the same by hand in several terminals, see README.md here.
"""

from __future__ import annotations

import os
import pathlib
import selectors
import signal
import subprocess
import sys
import time

from preserves import stringify

from dataspace_agency.commands.failures import run_command
from dataspace_agency.protocol.process import ServerProcess

HERE = pathlib.Path(__file__).resolve().parent
WAIT = 30.0  # seconds any one expected line may take (generous: a loaded 2-core machine)


class Peer:
    """A stock peer in a child process; its output read line by line with deadlines."""

    def __init__(self, name: str, address: str, cap: str) -> None:
        self.name = name
        self.process = subprocess.Popen(
            [sys.executable, str(HERE / "peer.py"), name, address, cap],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=False)
        self.buffer = b""
        self.lines: list[str] = []
        self.shown = 0

    def wait_for(self, *wanted: str) -> None:
        """Read until every line in ``wanted`` has been printed; fail after WAIT."""
        deadline = time.monotonic() + WAIT
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            while not set(wanted) <= set(self.lines):
                if b"\n" in self.buffer:
                    line, self.buffer = self.buffer.split(b"\n", 1)
                    self.lines.append(line.decode())
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{self.name} never printed {sorted(set(wanted) - set(self.lines))};"
                                       f" it printed {self.lines}")
                if selector.select(remaining):
                    chunk = os.read(self.process.stdout.fileno(), 4096)
                    if not chunk:
                        raise RuntimeError(f"{self.name} exited (code {self.process.wait()});"
                                           f" it printed {self.lines}")
                    self.buffer += chunk

    def say(self, text: str) -> None:
        self.process.stdin.write(text.encode() + b"\n")
        self.process.stdin.flush()

    def show(self) -> None:
        """Print what this peer printed since the last call, sorted."""
        for line in sorted(self.lines[self.shown:]):
            print(f"  {self.name} saw: {line}")
        self.shown = len(self.lines)

    def end(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            try:
                stream.close()
            except OSError:  # a pipe to a killed process
                pass


def main() -> None:
    with ServerProcess.start() as server:
        address, cap = stringify(server.address), stringify(server.capability)
        print("server: dataspace-agency serve, on a unix socket")
        peers: list[Peer] = []
        try:
            print("alice starts (stock syndicate-py)")
            alice = Peer("alice", address, cap)
            peers.append(alice)
            alice.wait_for("alice joined")  # her own presence, back from the server
            alice.show()

            print("bob starts (stock syndicate-py)")
            bob = Peer("bob", address, cap)
            peers.append(bob)
            bob.wait_for("alice joined", "bob joined", "alice: hello bob", "bob: hello alice")
            alice.wait_for("bob joined", "alice: hello bob", "bob: hello alice")
            alice.show()
            bob.show()

            print('alice types "nice to meet you"')
            alice.say("nice to meet you")
            for peer in (alice, bob):
                peer.wait_for("alice: nice to meet you")
            alice.show()
            bob.show()

            print("bob's process is killed (SIGKILL): it says nothing")
            bob.process.send_signal(signal.SIGKILL)
            bob.process.wait(WAIT)
            alice.wait_for("bob left")  # the server retracted the dead connection's facts
            alice.show()
            print(f"bob exited with {bob.process.returncode}; alice still running:"
                  f" {alice.process.poll() is None}")
        finally:
            for peer in peers:
                peer.end()


if __name__ == "__main__":
    # Ctrl-C, or `| head` closing the pipe: one line or none, not a traceback.
    sys.exit(run_command("syndicate_interop", lambda: main()))
