"""A responder that dies mid-action: the dataspace fails the request at once, a queue times out.

The same request/response on each backend: "me" asks "worker" to work, and the worker dies
while working (removed in the middle of the action; on the multiprocess-queue backend its
process is killed with SIGKILL). What the requester learns, and how long after the
death, is printed for each backend, then the difference.

* dataspace (assertion mode): the worker's presence is a fact; the requester watches it
  and fails the request the moment it goes: ActionError, at once.
* a queue (or the dataspace in message mode): nothing tells the requester; it waits out
  its timeout: TimeoutError.
* multiprocess-queue: the router sees the child's pipe close and answers for the dead agent.

Run: .venv/bin/python examples/failure.py [--backend dataspace-assertion --backend queue ...]

Watch it with the inspector (docs/inspect.md): `--inspect 127.0.0.1:8080` serves a live
page of the dataspace-assertion space and waits for Enter before the worker dies. Open
the page: "me" and "worker" are present, and (assertion mode) me's request to worker is
pending, its age growing; press Enter, and the worker and the request vanish together.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from _backends import add_backend_arguments, chosen_backends, msg, open_space

from dataspace_agency import ActionError, Agent, action
from dataspace_agency.commands.failures import run_command
from dataspace_agency.spaces import MultiprocessQueueSpace


PATIENCE = 600  # seconds a person may watch the inspector before pressing Enter


class Worker(Agent):
    """Starts working and never finishes by itself: it dies first. ``started`` (an event,
    or a Manager proxy of one across processes) tells the example it is mid-action."""

    def __init__(self, id: str, started, release) -> None:
        super().__init__(id)
        self.started, self.release = started, release

    @action
    def work(self) -> str:
        self.started.set()
        self.release.wait(30)  # bounded: nothing here can outlive the example by much
        return "finished"


def run_on(backend: str, amqp_url: str | None, timeout: float, manager,
           inspect: str | None = None) -> float:
    """Ask, kill the worker mid-action, print the outcome; returns seconds after the death.
    ``inspect``: serve the inspector's page there (assertion mode) and wait for Enter
    before the death."""
    # Events the worker (possibly in another process) and this thread both see.
    started, release = ((manager.Event(), manager.Event()) if backend == "multiprocess-queue"
                        else (threading.Event(), threading.Event()))
    with open_space(backend, amqp_url) as space, ThreadPoolExecutor(1) as pool:
        # Watching (assertion mode, where the request is a fact to see): the request
        # waits for a person too, so its patience grows by as long as one may take.
        watching = inspect is not None and getattr(space, "mode", None) == "assertion"
        space.add(Worker, "worker", started, release)
        me = space.add_foreground(Agent, "me")
        answer = pool.submit(me.request, msg("worker", "work"),
                             timeout=timeout + (PATIENCE if watching else 0))
        if not started.wait(10):
            raise RuntimeError("the worker never started working")
        if watching:
            with space.inspect(http=inspect) as inspector:
                input(f"{backend}: watch {inspector.url} ; press Enter to make the worker"
                      " die ")

        died = time.monotonic()
        if isinstance(space, MultiprocessQueueSpace):
            os.kill(space.pid_of("worker"), signal.SIGKILL)  # a real, abrupt death
            how = "its process was killed"
        else:
            space.remove("worker")  # it leaves mid-action: its answer will never come
            how = "it left mid-action"
        try:
            outcome = f"answered {answer.result()!r}"
        except ActionError as error:
            outcome = f"ActionError: {error}"
        except TimeoutError as error:
            outcome = f"TimeoutError: {error}"
        after = time.monotonic() - died
        release.set()  # lets the orphaned action (in-process backends) end its thread
    print(f"{backend}: {how}; after {after:.2f} s: {outcome}")
    return after


def main(backends: list[str], amqp_url: str | None, timeout: float,
         inspect: str | None = None) -> None:
    print(f"request timeout: {timeout:g} s")
    manager = None
    if "multiprocess-queue" in backends:
        import multiprocessing
        manager = multiprocessing.Manager()  # events shared with the worker's process
    try:
        took = {backend: run_on(backend, amqp_url, timeout, manager, inspect)
                for backend in backends}
    finally:
        if manager is not None:
            manager.shutdown()
    fastest, slowest = min(took, key=took.get), max(took, key=took.get)
    if fastest != slowest:
        print(f"difference: {fastest} knew {took[slowest] - took[fastest]:.2f} s sooner"
              f" than {slowest}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_backend_arguments(parser, default="dataspace-assertion,queue", many=True)
    parser.add_argument("--timeout", type=float, default=2.0,
                        help="the requester's patience, in seconds (default: 2)")
    parser.add_argument("--inspect", metavar="HOST:PORT",
                        help="serve the inspector's live page of the dataspace-assertion"
                             " backend there (e.g. 127.0.0.1:8080) and wait for Enter"
                             " before the worker dies")
    args = parser.parse_args()
    if args.timeout <= 0:
        parser.error("--timeout must be positive")
    # Ctrl-C, or `| head` closing the pipe: one line or none, not a traceback.
    sys.exit(run_command("failure", lambda: main(chosen_backends(args), args.amqp_url,
                                                 args.timeout, args.inspect)))
