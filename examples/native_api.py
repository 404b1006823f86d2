"""The native API in one screen: publish, observe, retract, message, and a native
syndicate-py actor running against the same dataspace.

Run: .venv/bin/python examples/native_api.py
"""

import sys

import trio
from preserves import Record, Symbol
from syndicate import dataspace, turn
from syndicate import patterns as P

from dataspace_agency import open_dataspace
from dataspace_agency.commands.failures import run_command


def present(who: str) -> Record:
    return Record(Symbol("Present"), [who])


def greeter(ds_ref):
    """Native syndicate-py code, unchanged: greet everyone while they are present."""
    @dataspace.during(ds_ref, P.rec("Present", P.CAPTURE))
    def on_present(who):
        turn.publish(ds_ref, Record(Symbol("Greeting"), [f"hello, {who}"]))


async def main() -> None:
    async with open_dataspace() as ds:
        ds.spawn(greeter, name="greeter")
        alice = ds.publish(present("alice"))  # a fact, held until retracted

        async with ds.observe(P.rec("Greeting", P.CAPTURE)) as greetings:
            print("observed:", await greetings.receive())  # replayed: alice is already here
            bob = ds.publish(present("bob"))
            print("observed:", await greetings.receive())
            ds.retract(alice)  # her greeting goes with her
            print("observed:", await greetings.receive())

        async with ds.observe(P.rec("Say", P.CAPTURE, P.CAPTURE)) as chat:
            ds.message(Record(Symbol("Say"), ["bob", "anyone here?"]))  # not stored
            print("observed:", await chat.receive())

        ds.retract(bob)
        await ds.sync()
        # What remains is the greeter's interest: its Observe of Present.
        print("facts left:", ds.entity.assertion_count)


if __name__ == "__main__":
    # Ctrl-C, or `| head` closing the pipe: one line or none, not a traceback.
    sys.exit(run_command("native_api", lambda: trio.run(main)))
