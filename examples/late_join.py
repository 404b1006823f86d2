"""A request sent before its responder exists: answered when it joins, or lost.

"me" asks "late" to add 1 and 1 while there is no agent "late". Then "late" joins, and we
ask it how many requests it has received.

* dataspace (assertion mode): the request is a fact that "me" holds until it is answered.
  A native observer sees it standing; when "late" joins it finds the request and answers.
* dataspace in message mode, and every queue backend: the message had no receiver, so it
  was dropped; the request times out, and the late joiner never hears of it.

Run: .venv/bin/python examples/late_join.py [--backend dataspace-assertion --backend queue ...]
"""

from __future__ import annotations

import argparse
import queue
import sys
from concurrent.futures import ThreadPoolExecutor

from _backends import BACKENDS, add_backend_arguments, chosen_backends, msg, open_space
from syndicate import dataspace, turn
from syndicate import patterns as P

from dataspace_agency import Agent, DataspaceSpace, action
from dataspace_agency.classic.values import from_preserves
from dataspace_agency.commands.failures import run_command


class Late(Agent):
    """The responder that joins late; it counts the requests it receives."""

    received = 0

    def before_action(self, message: dict) -> None:
        if message["action"]["name"] != "received_count":
            self.received += 1

    @action
    def add(self, a: int, b: int) -> int:
        return a + b

    @action
    def received_count(self) -> int:
        """How many requests reached this agent (not counting this one)."""
        return self.received


def watch_requests(seen: queue.Queue):
    """A native syndicate-py actor that reports every request fact addressed to "late"
    (the adapter's vocabulary: <request to id body>)."""
    def boot(ds_ref) -> None:
        turn.prevent_inert_check()  # it only observes: keep it alive anyway

        @dataspace.during(ds_ref, P.rec("request", P.lit("late"), P._, P.CAPTURE))
        def request(body):
            seen.put(from_preserves(body)["action"])
    return boot


def run_on(backend: str, amqp_url: str | None, timeout: float) -> None:
    say = lambda text: print(f"{backend}: {text}")  # noqa: E731
    with open_space(backend, amqp_url) as space, ThreadPoolExecutor(1) as pool:
        # Only the dataspace in assertion mode holds a request for an absent agent.
        holds = isinstance(space, DataspaceSpace) and space.mode == "assertion"
        me = space.add_foreground(Agent, "me")
        say('me asks "late" for add(1, 1); there is no agent "late" yet')
        # A held request may wait longer: it is answered as soon as "late" joins.
        patience = max(timeout, 10.0) if holds else timeout
        answer = pool.submit(me.request, msg("late", "add", a=1, b=1), timeout=patience)

        if holds:
            seen: queue.Queue = queue.Queue()
            space.spawn_native(watch_requests(seen), name="watcher")
            say(f"a native observer sees the request standing as a fact: {seen.get(timeout=10)}")
        else:
            # Nothing holds the message: wait for the request to give up, then add "late".
            try:
                answer.result()
            except TimeoutError as error:
                say(f"TimeoutError: {error}")

        space.add(Late, "late")
        say('"late" joins')
        if holds:
            say(f"answered: {answer.result()}")
        count = me.request(msg("late", "received_count"), timeout=10)
        say(f'"late" has received {count} request(s)'
            + ("" if count else ": the early one was dropped"))


def main(backends: list[str], amqp_url: str | None, timeout: float) -> None:
    for backend in backends:
        run_on(backend, amqp_url, timeout)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_backend_arguments(parser, default="dataspace-assertion,dataspace-message,queue",
                          choices=BACKENDS, many=True)
    parser.add_argument("--timeout", type=float, default=1.0,
                        help="how long the early request waits, in seconds (default: 1)")
    args = parser.parse_args()
    if args.timeout <= 0:
        parser.error("--timeout must be positive")
    # Ctrl-C, or `| head` closing the pipe: one line or none, not a traceback.
    sys.exit(run_command("late_join", lambda: main(chosen_backends(args), args.amqp_url,
                                                   args.timeout)))
