"""A native syndicate-py actor and classic agents cooperating in one dataspace.

* Classic `Sensor` agents publish `<temperature room degrees>` facts from an action.
* A native syndicate-py actor (plain `syndicate.dataspace.during`, started with
  `space.spawn_native`) is the thermostat: while a room is colder than 19 degrees it
  asserts `<heating room>`; the fact goes by itself when the reading goes or changes.
* A classic `Boiler` agent reacts to `<heating room>` facts with `@during` and answers
  `status` requests from them.
* The native actor also sees the classic agents' presence facts, `<agent id>`.

Nobody sends anyone a message about heating: it all follows from facts.

Run: .venv/bin/python examples/native_and_classic.py [--mode assertion|message]
"""

from __future__ import annotations

import argparse
import queue
import sys
import threading

from _backends import msg
from preserves import Record, Symbol
from syndicate import dataspace, turn
from syndicate import patterns as P

from dataspace_agency import Agent, DataspaceSpace, action, during
from dataspace_agency.commands.failures import run_command

COLD = 19  # degrees: below this a room is heated


class Sensor(Agent):
    """A classic agent holding one reading as a fact."""

    reading = None

    @action
    def report(self, room: str, degrees: int) -> None:
        """Replace this sensor's reading."""
        if self.reading is not None:
            self.retract(self.reading)
        self.reading = self.publish(Record(Symbol("temperature"), [room, degrees]))


class Boiler(Agent):
    """A classic agent that reacts to facts: the rooms it heats are those with a
    <heating room> fact. Reactions run on the runtime, so they only update a set."""

    def __init__(self, id: str, log: queue.Queue) -> None:
        super().__init__(id)
        self.log, self.rooms, self.lock = log, set(), threading.Lock()

    @during(P.rec("heating", P.CAPTURE))
    def heating(self, room):
        with self.lock:
            self.rooms.add(room)
        self.log.put(f"boiler: heating {room}")

        def stop() -> None:  # runs when the <heating room> fact goes
            with self.lock:
                self.rooms.discard(room)
            self.log.put(f"boiler: stopped heating {room}")
        return stop

    @action
    def status(self) -> list:
        """The rooms being heated."""
        with self.lock:
            return sorted(self.rooms)


def thermostat(log: queue.Queue):
    """Native syndicate-py code, unchanged: no classic API anywhere in it."""
    def boot(ds_ref) -> None:
        turn.prevent_inert_check()

        @dataspace.during(ds_ref, P.rec("temperature", P.CAPTURE, P.CAPTURE))
        def reading(room, degrees):
            if degrees < COLD:
                # Published inside the `during` facet: retracted when the reading goes.
                turn.publish(ds_ref, Record(Symbol("heating"), [room]))
                log.put(f"thermostat: {room} is {degrees}, heat it")

        @dataspace.during(ds_ref, P.rec("agent", P.CAPTURE))
        def present(agent_id):
            log.put(f"thermostat: sees classic agent {agent_id}")
    return boot


def show(log: queue.Queue, count: int, *, sort: bool = False) -> None:
    """Print the next ``count`` lines, in the order they happened (or sorted, where the
    order is not guaranteed: separate agents arriving)."""
    lines = [log.get(timeout=10) for _ in range(count)]
    for line in sorted(lines) if sort else lines:
        print(line)


def main(mode: str) -> None:
    print(f"mode: {mode}")
    log: queue.Queue = queue.Queue()
    with DataspaceSpace(mode=mode) as space:
        space.spawn_native(thermostat(log), name="thermostat")
        space.add(Boiler, "boiler", log)
        space.add(Sensor, "kitchen-sensor")
        space.add(Sensor, "hall-sensor")
        me = space.add_foreground(Agent, "me")
        show(log, 4, sort=True)  # the thermostat sees four classic agents arrive

        me.request(msg("kitchen-sensor", "report", room="kitchen", degrees=17))
        # The thermostat reacts first; the boiler can only react to the fact it then asserts.
        show(log, 2)
        me.request(msg("hall-sensor", "report", room="hall", degrees=21))
        me.request(msg("hall-sensor", "report", room="hall", degrees=16))  # gets colder
        show(log, 2)
        print("status:", me.request(msg("boiler", "status")))

        me.request(msg("kitchen-sensor", "report", room="kitchen", degrees=22))  # warm now
        show(log, 1)  # the <heating kitchen> fact went with the old reading
        space.remove("hall-sensor")  # its reading goes with it, and so does the heating
        show(log, 1)
        print("status:", me.request(msg("boiler", "status")))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["assertion", "message"], default="assertion",
                        help="the adapter's mode (facts work the same in both)")
    args = parser.parse_args()
    # Ctrl-C, or `| head` closing the pipe: one line or none, not a traceback.
    sys.exit(run_command("native_and_classic", lambda: main(args.mode)))
