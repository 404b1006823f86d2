"""A chat room: presence as facts, messages as Syndicate messages (one-process --demo).

Each participant has its own connection to the dataspace and, while connected, asserts
`<Present name>`. Everyone observes `<Present $who>`: a join or leave is seen by all, and a
late joiner is told at once who is already there (the dataspace replays current facts).
Nobody announces leaving: closing the connection retracts the fact. Lines said are
`<Say who text>` messages: routed to whoever listens now, never stored.

Run: python examples/chat.py --demo   (a scripted conversation in one process; a mode for
several terminals against `dataspace-agency serve` comes with the server)
"""

from __future__ import annotations

import argparse
import contextlib
from typing import AsyncIterator, Callable

import trio
from preserves import Record, Symbol
from syndicate import patterns as P

from dataspace_agency import DataspaceHandle, open_dataspace

PRESENT, SAY = Symbol("Present"), Symbol("Say")

# connect(name) -> an async context manager yielding that participant's own connection:
# a DataspaceHandle (publish, message, observe, sync). Everything it asserted is retracted
# when the block ends, as when a network connection drops.
Connect = Callable[[str], contextlib.AbstractAsyncContextManager[DataspaceHandle]]


class Participant:
    """One person in the room, on their own connection. What they see is collected as it
    arrives and printed by :meth:`catch_up`."""

    def __init__(self, name: str, ds: DataspaceHandle) -> None:
        self.name, self.ds = name, ds

    @contextlib.asynccontextmanager
    async def in_room(self) -> AsyncIterator["Participant"]:
        async with (self.ds.observe(P.rec("Present", P.CAPTURE)) as self.presence,
                    self.ds.observe(P.rec("Say", P.CAPTURE, P.CAPTURE)) as self.said):
            self.ds.publish(Record(PRESENT, [self.name]))  # held while connected
            await self.ds.sync()
            # Replayed at once: who was here before us (and ourselves).
            here = sorted(who for (who,) in self._drain(self.presence) if who != self.name)
            print(f"  [{self.name}] present: {', '.join(here) or 'nobody else'}")
            yield self

    def say(self, text: str) -> None:
        self.ds.message(Record(SAY, [self.name, text]))  # a message: nothing is stored

    async def catch_up(self) -> None:
        """Print what this participant has seen. ``sync`` returns once the dataspace has
        handled everything sent before it on this connection, so every event caused
        earlier (by anyone whose own sync returned) has reached us by then."""
        await self.ds.sync()
        for event in self._drain_events(self.presence):
            who = event.captures[0]
            if who != self.name:
                print(f"  [{self.name}] {who} {'joined' if event.kind == 'added' else 'left'}")
        for (who, text) in self._drain(self.said):
            print(f"  [{self.name}] {who}: {text}")

    @staticmethod
    def _drain_events(channel: trio.MemoryReceiveChannel) -> list:
        events = []
        while True:
            try:
                events.append(channel.receive_nowait())
            except trio.WouldBlock:
                return events

    def _drain(self, channel: trio.MemoryReceiveChannel) -> list[tuple]:
        return [event.captures for event in self._drain_events(channel)]


async def demo(connect: Connect) -> None:
    """The scripted conversation. ``connect`` gives each participant a connection."""
    room: dict[str, Participant] = {}
    async with contextlib.AsyncExitStack() as stack:
        exits: dict[str, contextlib.AsyncExitStack] = {}

        async def join(name: str) -> None:
            print(f"{name} joins")
            exits[name] = await stack.enter_async_context(contextlib.AsyncExitStack())
            ds = await exits[name].enter_async_context(connect(name))
            room[name] = await exits[name].enter_async_context(Participant(name, ds).in_room())
            await everyone_catches_up(but=name)

        async def leave(name: str) -> None:
            print(f"{name} leaves")
            del room[name]
            await exits.pop(name).aclose()  # closes the connection: <Present name> goes
            await everyone_catches_up()

        async def say(name: str, text: str) -> None:
            print(f'{name} says "{text}"')
            room[name].say(text)
            await room[name].ds.sync()  # the dataspace has routed it to every listener
            await everyone_catches_up()

        async def everyone_catches_up(but: str | None = None) -> None:
            for name in sorted(room):
                if name != but:
                    await room[name].catch_up()

        await join("alice")
        await join("bob")
        await say("alice", "hi bob")
        await say("bob", "hi alice")
        await join("carol")  # late: she sees alice and bob at once, not what they said
        await say("carol", "what did I miss?")
        await leave("bob")
        await say("alice", "bob left, carol")
        await leave("alice")
        await leave("carol")


def in_process(ds: DataspaceHandle) -> Connect:
    """Connections to an in-process dataspace: each participant gets a handle of its own
    (its own actor, so its facts go when it leaves). A server mode would instead open a
    network connection per participant."""
    @contextlib.asynccontextmanager
    async def connect(name: str) -> AsyncIterator[DataspaceHandle]:
        handle = DataspaceHandle(ds.runtime, ds.ref, ds.entity,
                                 ds.runtime.spawn_host(name=f"chat-{name}"))
        try:
            yield handle
        finally:
            handle.close()
    return connect


async def run_demo() -> None:
    async with open_dataspace() as ds:
        await demo(in_process(ds))
        # Asked from outside the room: presence facts are gone with their connections.
        present = await ds.query(P.rec("Present", P.CAPTURE))
        print(f"present at the end: {present or 'nobody'}")
        await ds.sync()  # let the query's own retraction land before the runtime stops


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", action="store_true",
                        help="run a scripted conversation in one process")
    args = parser.parse_args()
    if not args.demo:
        parser.error("only the one-process demo exists so far: run with --demo"
                     " (a mode for several terminals comes with `dataspace-agency serve`)")
    trio.run(run_demo)
