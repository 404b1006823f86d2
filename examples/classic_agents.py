"""Classic (agency-style) agents on the dataspace: actions, request/send, help, discovery,
a reactive agent, and what the two adapter modes do when agents come and go.

Run: .venv/bin/python examples/classic_agents.py [--mode assertion|message]
"""

import argparse
import json
import queue
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

from preserves import Record, Symbol
from syndicate import patterns as P

from dataspace_agency import (ACCESS_REQUESTED, ActionError, Agent, DataspaceSpace, action,
                              during)
from dataspace_agency.commands.failures import run_command


def msg(to: str, name: str, **args) -> dict:
    return {"to": to, "action": {"name": name, "args": args}}


class Calculator(Agent):
    @action
    def add(self, a: int, b: int) -> int:
        """Add two numbers.

        Args:
            a: The first number.
            b: The second number.

        Returns:
            Their sum.
        """
        return a + b  # plain functions run on worker threads: they may block, request()

    @action
    async def average(self, a: float, b: float) -> float:
        # async actions run on the runtime: never block; await self.arequest instead.
        # Asking this same agent is fine: the slot is given back while waiting.
        return await self.arequest(msg(self.id, "add", a=a, b=b)) / 2

    @action(access_policy=ACCESS_REQUESTED)
    def reset(self) -> str:
        return "reset done"

    def request_permission(self, message: dict) -> bool:
        return message["from"] == "admin"  # decides ACCESS_REQUESTED actions


class Client(Agent):
    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.answered, self.value = threading.Event(), None

    def handle_action_value(self, value) -> None:  # answers to send() arrive here
        self.value = value
        self.answered.set()


class Sensor(Agent):
    @action
    def report(self, room: str, degrees: int) -> None:  # a fact, held until retracted
        self.fact = self.publish(Record(Symbol("temperature"), [room, degrees]))

    @action
    def withdraw(self) -> None:
        self.retract(self.fact)


class Display(Agent):
    """Reacts to facts: runs when a match appears; the function it returns, when it goes."""

    def __init__(self, id: str, seen: queue.Queue) -> None:
        super().__init__(id)
        self.seen = seen

    @during(P.rec("temperature", P.CAPTURE, P.CAPTURE))
    def temperature(self, room, degrees):
        self.seen.put(f"display: {room} is {degrees} degrees")
        return lambda: self.seen.put(f"display: {room} reading gone")


class Slow(Agent):
    def __init__(self, id: str, started: threading.Event, release: threading.Event) -> None:
        super().__init__(id)
        self.started, self.release = started, release

    @action
    def work(self) -> str:
        self.started.set()
        return self.release.wait()


def main(mode: str) -> None:
    print(f"mode: {mode}")
    space = DataspaceSpace(mode=mode)
    space.add(Calculator, "calc")  # runs in the background
    me = space.add_foreground(Client, "me")  # the live agent, used from this thread
    admin = space.add_foreground(Agent, "admin")

    print("add:", me.request(msg("calc", "add", a=2, b=3)))
    print("average:", me.request(msg("calc", "average", a=1, b=4)))
    for who, message in [(me, msg("calc", "add", a=1, b="x")), (me, msg("calc", "reset")),
                         (admin, msg("calc", "reset"))]:
        try:
            print(f"{who.id} asks {message['action']['name']}:", who.request(message))
        except ActionError as error:  # the action answered with an error
            print(f"{who.id} asks {message['action']['name']}: ActionError: {error}")

    me.send(msg("calc", "add", a=10, b=20))  # no waiting here: the answer comes back later
    me.answered.wait(5)
    print("send answered in handle_action_value:", me.value)

    print("help:", json.dumps(me.request(msg("calc", "help", action_name="add"))))
    for agent_id, actions in sorted(space.agents().items()):  # discovery: a query
        print(f"present: {agent_id} offers {sorted(actions)}")

    seen = queue.Queue()  # reactions run on the runtime; print them from here, in order
    space.add(Display, "display", seen)
    space.add(Sensor, "sensor")
    me.request(msg("sensor", "report", room="kitchen", degrees=21))
    print(seen.get(timeout=5))
    me.request(msg("sensor", "withdraw"))  # self.retract
    print(seen.get(timeout=5))
    me.request(msg("sensor", "report", room="hall", degrees=18))
    print(seen.get(timeout=5))
    space.remove("sensor")  # its facts go with it
    print(seen.get(timeout=5))

    with ThreadPoolExecutor() as pool:
        # A request to an agent that is not there yet.
        if mode == "assertion":
            before = space.fact_count()
            answer = pool.submit(me.request, msg("late", "add", a=1, b=1), timeout=10)
            while space.fact_count() == before:  # each call waits for the dataspace
                pass
            space.add(Calculator, "late")  # joins after the request fact is visible
            print("late joiner answered:", answer.result())
        else:
            try:
                me.request(msg("late", "add", a=1, b=1), timeout=0.5)
            except TimeoutError as error:  # a message nobody hears is gone
                print("late joiner: TimeoutError:", error)

        # A responder that leaves in the middle of an action.
        started, release = threading.Event(), threading.Event()
        space.add(Slow, "slow", started, release)
        patience = 10 if mode == "assertion" else 1
        answer = pool.submit(me.request, msg("slow", "work"), timeout=patience)
        started.wait(5)
        space.remove("slow")  # while "work" runs
        try:
            answer.result()
        except ActionError as error:  # assertion mode: its presence went, at once
            print("responder left: ActionError:", error)
        except TimeoutError as error:  # message mode: only the timeout tells (its text
            # says what the dataspace knows now: the agent is not there)
            print("responder left: TimeoutError:", error)
        release.set()

    space.destroy()  # removes every agent; nothing they asserted remains
    print("facts left:", space.fact_count())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["assertion", "message"], default="assertion")
    args = parser.parse_args()
    # Ctrl-C, or `| head` closing the pipe: one line or none, not a traceback.
    sys.exit(run_command("classic_agents", lambda: main(args.mode)))
