"""Classic agents in separate processes meeting in a dataspace server; one is killed mid-request.

`MultiprocessDataspaceSpace` starts a server (`dataspace-agency serve`, a child process on a
unix socket) and runs each added agent in a child process of its own, connected to that
server; `me`, a foreground agent, stays in this process. Nothing is routed through this
process: requests, answers and presence are facts and messages in the server's dataspace.

1. `me` asks `calc`, in another process, to add: answered across processes.
2. `me` asks `worker` to work. The worker, in its own process, asserts `<working "worker">`
   when it starts (a fact that `me` observes with `@during`, so the example knows it is
   mid-action without sleeping), and `me` kills the worker's process with SIGKILL.
3. The server sees the connection drop and retracts everything the worker's process
   asserted, its presence `<agent "worker">` included. In assertion mode the request
   fails at once (it is a fact watched together with the responder's presence); in
   message mode nothing tells `me`, and the request times out, as on a queue.

Run: .venv/bin/python examples/remote_agents.py [--mode assertion|message] [--timeout SECONDS]
     [--connect ADDRESS --cap CAP]   (an existing `dataspace-agency serve` instead)
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from _backends import msg
from preserves import Record, Symbol
from syndicate import patterns as P

from dataspace_agency import ActionError, Agent, MultiprocessDataspaceSpace, action, during
from dataspace_agency.commands.failures import run_command
from dataspace_agency.protocol import ConnectionFailed

WORKING = Symbol("working")


class Calc(Agent):
    @action
    def add(self, a: float, b: float) -> float:
        """Add two numbers.

        Args:
            a: The first number.
            b: The second number.
        """
        return a + b

    @action
    def pid(self) -> int:
        """The process this agent runs in."""
        return os.getpid()


class Worker(Agent):
    @action
    def work(self) -> str:
        """Start a long job: says so with a fact, then waits (it is killed first)."""
        self.publish(Record(WORKING, [self.id]))  # retracted when the agent (or process) goes
        threading.Event().wait(60)  # bounded: never outlives the example by much
        return "finished"


class Me(Agent):
    """The foreground agent: it asks, and watches for `<working _>` facts."""

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.working = threading.Event()

    @during(P.rec("working", P.CAPTURE))
    def someone_works(self, who):
        self.working.set()


def main(mode: str, timeout: float, address: str | None, cap: str | None) -> None:
    print(f"mode: {mode}")
    with MultiprocessDataspaceSpace(address, cap, mode=mode) as space, \
            ThreadPoolExecutor(1) as pool:
        space.add(Calc, "calc")
        space.add(Worker, "worker")
        me = space.add_foreground(Me, "me")
        print(f"calc and worker run in processes of their own:"
              f" {len({os.getpid(), space.pid_of('calc'), space.pid_of('worker')}) == 3}")
        print(f"me asks calc add(2, 3): {me.request(msg('calc', 'add', a=2, b=3))}")
        print(f"calc answered from its own process: "
              f"{me.request(msg('calc', 'pid')) == space.pid_of('calc')}")

        answer = pool.submit(me.request, msg("worker", "work"), timeout=timeout)
        if not me.working.wait(30):
            raise RuntimeError("the worker never started working")
        print('me sees <working "worker">: it is mid-action')
        os.kill(space.pid_of("worker"), signal.SIGKILL)
        killed = time.monotonic()
        print("worker's process killed (SIGKILL)")
        try:
            outcome = f"answered {answer.result()!r}"
        except ActionError as error:
            outcome = f"ActionError: {error}"
        except TimeoutError as error:
            outcome = f"TimeoutError: {error}"
        print(f"after {time.monotonic() - killed:.2f} s: {outcome}")
        print(f"calc still answers: {me.request(msg('calc', 'add', a=1, b=1))}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["assertion", "message"], default="assertion",
                        help="the adapter's mode (default: assertion)")
    parser.add_argument("--timeout", type=float, default=3.0,
                        help="me's patience for the worker, in seconds (default: 3)")
    parser.add_argument("--connect", metavar="ADDRESS",
                        help="an existing server's address (default: start a private one)")
    parser.add_argument("--cap", help="that server's capability (with --connect)")
    args = parser.parse_args()
    if args.timeout <= 0:
        parser.error("--timeout must be positive")
    if bool(args.connect) != bool(args.cap):
        parser.error("--connect and --cap go together")
    # The address and capability as text, as `dataspace-agency serve` prints them
    # (127.0.0.1:PORT works too); the space checks them and hands them on to its children.
    # Unreachable, refused, a bad address or capability, Ctrl-C: one line, no traceback.
    sys.exit(run_command("remote_agents", lambda: main(args.mode, args.timeout, args.connect,
                                                       args.cap),
                         expected={ConnectionFailed: 1, ValueError: 1}))
