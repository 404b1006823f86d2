"""A chat room: presence as facts, messages as Syndicate messages, in several terminals or one.

Each participant has its own connection to the dataspace and, while connected, asserts
`<Present name>`. Everyone observes `<Present $who>`: a join or leave is seen by all, and a
late joiner is told at once who is already there (the dataspace replays current facts).
Nobody announces leaving: when the connection closes (Ctrl-D, Ctrl-C, a crash, `kill -9`)
the server retracts the fact. Lines said are `<Say who text>` messages: routed to whoever
listens now, never stored.

Several terminals, against `dataspace-agency serve` (it prints the address and capability):

    .venv/bin/python examples/chat.py alice --connect 127.0.0.1:8001 --cap '<ref {...}>'

then type lines (`/who` lists who is here; Ctrl-D leaves). When stdin is not a terminal,
its lines are a script: each is said in turn, and the end of input leaves the room.
Stock syndicate-py programs speak the same vocabulary: see examples/syndicate_interop/.

One process: `.venv/bin/python examples/chat.py --demo` (a scripted conversation; the server runs
in this process and every participant still has a connection of its own).

Watch the room with the inspector (docs/inspect.md), in one more terminal, with the same
address and capability:

    dataspace-agency inspect --connect '<tcp "127.0.0.1" 8001>' --cap '<ref {...}>'

then open http://127.0.0.1:8080/ and type `<Present $who>` in the pattern box: people
appear as they join and vanish as they leave (or are killed).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
from typing import AsyncIterator, Callable

import trio
from preserves import Record, Symbol
from syndicate import dataspace, turn
from syndicate import patterns as P

from dataspace_agency.commands.failures import run_command
from dataspace_agency.native import DataspaceHandle
from dataspace_agency.protocol import ConnectionFailed, connect, open_server
from dataspace_agency.runtime import open_runtime

PRESENT, SAY = Symbol("Present"), Symbol("Say")
PRESENCE = P.rec("Present", P.CAPTURE)
SAID = P.rec("Say", P.CAPTURE, P.CAPTURE)
INSPECT_HELP = ("Watch the room live: dataspace-agency inspect --connect ADDRESS --cap CAP,"
                " then open http://127.0.0.1:8080/ and watch the pattern <Present $who>"
                " (docs/inspect.md).")

# connect(name) -> an async context manager yielding that participant's own connection:
# a DataspaceHandle (publish, message, observe, sync). Everything it asserted is retracted
# when the block ends, as when a network connection drops.
Connect = Callable[[str], contextlib.AbstractAsyncContextManager[DataspaceHandle]]


def drain(channel: trio.MemoryReceiveChannel) -> list:
    """The events already waiting in ``channel``, without blocking."""
    events = []
    while True:
        try:
            events.append(channel.receive_nowait())
        except trio.WouldBlock:
            return events


@contextlib.asynccontextmanager
async def enter_room(name: str, ds: DataspaceHandle) -> AsyncIterator[tuple]:
    """Observe presence and messages, then be present. Yields ``(others, presence,
    said)``: who was here before us (replayed at once), and the two event channels."""
    async with ds.observe(PRESENCE) as presence, ds.observe(SAID) as said:
        ds.publish(Record(PRESENT, [name]))  # held while connected
        await ds.sync()  # the dataspace has replayed every current <Present _> to us
        others = sorted(event.captures[0] for event in drain(presence)
                        if event.kind == "added" and event.captures[0] != name)
        yield others, presence, said


def presence_line(name: str, event) -> str | None:
    """``bob joined`` / ``bob left`` for someone else's presence changing."""
    (who,) = event.captures
    if who == name:
        return None
    return f"{who} {'joined' if event.kind == 'added' else 'left'}"


# --- several terminals: one participant per process -------------------------------------------

async def read_line() -> str:
    """One line of stdin ('' at the end), without blocking the other tasks."""
    return await trio.to_thread.run_sync(sys.stdin.readline, abandon_on_cancel=True)


async def live(name: str, ds) -> int:
    """Be ``name`` in the room until stdin ends (0) or the connection is lost (1)."""
    # One native actor observes both presence and messages and queues what it sees on one
    # channel, in the order the server sent it (two separate observe() channels read by
    # two tasks could print "bob: hi" before "bob joined").
    seen_send, seen = trio.open_memory_channel(math.inf)

    def watcher(ds_ref) -> None:  # the actor's first turn (syndicate-py's own API)
        @dataspace.during(ds_ref, PRESENCE)
        def present(who):
            seen_send.send_nowait(("added", who))
            turn.on_stop(lambda: seen_send.send_nowait(("removed", who)))

        @dataspace.on_message(ds_ref, SAID)
        def said(who, text):
            seen_send.send_nowait(("said", who, text))
        seen_send.send_nowait(("booted",))

    ds.spawn(watcher, name=f"chat-{name}")
    assert (await seen.receive()) == ("booted",)  # its <Observe>s are on their way
    ds.publish(Record(PRESENT, [name]))  # held while connected
    # Who was here before us: asked once, on the handle (the watcher's replay of the same
    # facts may come before or after; show() prints changes only, so none is repeated).
    here = {who for (who,) in await ds.query(PRESENCE)}
    print(f"present: {', '.join(sorted(here - {name})) or 'nobody else'}", flush=True)
    if sys.stdin.isatty():
        print("(type a line to say it; /who lists who is here; Ctrl-D leaves)",
              file=sys.stderr)
    lost: list[str] = []
    mine = {"sent": 0, "back": 0}  # our own lines, said and seen back from the server
    all_back = trio.Event()

    def show(kind: str, *what: str) -> None:
        if kind == "said":
            print(f"{what[0]}: {what[1]}", flush=True)
            if what[0] == name:
                mine["back"] += 1
            return
        who = what[0]
        if (kind == "added") == (who in here):
            return  # no change: already known
        (here.add if kind == "added" else here.discard)(who)
        if who != name:
            print(f"{who} {'joined' if kind == 'added' else 'left'}", flush=True)

    async def show_all() -> None:
        async for event in seen:
            show(*event)
            if mine["back"] >= mine["sent"] and stdin_done:
                all_back.set()

    async def watch_connection() -> None:
        await ds.connection.wait_closed()
        lost.append(ds.connection.close_reason)
        nursery.cancel_scope.cancel()

    stdin_done = False
    async with trio.open_nursery() as nursery:
        nursery.start_soon(show_all)
        nursery.start_soon(watch_connection)
        while (line := await read_line()):
            text = line.rstrip("\n")
            if text == "/who":
                print(f"here: {', '.join(sorted(here - {name})) or 'nobody else'}",
                      flush=True)
            elif text.strip():
                ds.message(Record(SAY, [name, text]))  # a message: nothing is stored
                mine["sent"] += 1
        # Before leaving, see our own lines come back: they have then reached everyone
        # listening (bounded: a server that stops answering does not keep us here).
        stdin_done = True
        if mine["back"] < mine["sent"]:
            with trio.move_on_after(10):
                await all_back.wait()
        nursery.cancel_scope.cancel()
    if lost:
        print(f"chat: connection lost: {lost[0]}", file=sys.stderr)
        return 1
    return 0


async def run_live(name: str, address: str, cap: str) -> int:
    async with connect(address, cap) as ds:
        return await live(name, ds)


# --- one process: the scripted demo ------------------------------------------------------------

class Participant:
    """One person in the demo, on their own connection. What they see is collected as it
    arrives and printed by :meth:`catch_up`."""

    def __init__(self, name: str, ds: DataspaceHandle) -> None:
        self.name, self.ds = name, ds

    @contextlib.asynccontextmanager
    async def in_room(self) -> AsyncIterator["Participant"]:
        async with enter_room(self.name, self.ds) as (others, self.presence, self.said):
            print(f"  [{self.name}] present: {', '.join(others) or 'nobody else'}")
            yield self

    def say(self, text: str) -> None:
        self.ds.message(Record(SAY, [self.name, text]))

    async def catch_up(self) -> None:
        """Print what this participant has seen. ``sync`` returns once the server has
        handled everything sent before it on this connection, and events for us leave the
        server before the sync's answer does; so every event caused earlier (by anyone
        whose own sync returned) has reached us by then."""
        await self.ds.sync()
        for event in drain(self.presence):
            line = presence_line(self.name, event)
            if line:
                print(f"  [{self.name}] {line}")
        for event in drain(self.said):
            who, text = event.captures
            print(f"  [{self.name}] {who}: {text}")


async def demo(connect_as: Connect) -> None:
    """The scripted conversation. ``connect_as(name)`` gives each participant a connection."""
    room: dict[str, Participant] = {}
    async with contextlib.AsyncExitStack() as stack:
        exits: dict[str, contextlib.AsyncExitStack] = {}
        # A connection that only watches presence (it publishes nothing, so nobody sees
        # it): the demo's clock for leaving. A closed connection is retracted by the
        # server when it notices the close, so the demo waits for that, not for a sync.
        door = await stack.enter_async_context(connect_as("door"))
        comings_and_goings = await stack.enter_async_context(door.observe(PRESENCE))

        async def until_gone(name: str) -> None:
            with trio.fail_after(10):  # bounded: a server that never notices is a failure
                async for event in comings_and_goings:
                    if event.kind == "removed" and event.captures == (name,):
                        return

        async def join(name: str) -> None:
            print(f"{name} joins")
            exits[name] = await stack.enter_async_context(contextlib.AsyncExitStack())
            ds = await exits[name].enter_async_context(connect_as(name))
            room[name] = await exits[name].enter_async_context(Participant(name, ds).in_room())
            await everyone_catches_up(but=name)

        async def leave(name: str) -> None:
            print(f"{name} leaves")
            del room[name]
            await exits.pop(name).aclose()  # closes the connection: <Present name> goes
            await until_gone(name)
            await everyone_catches_up()

        async def say(name: str, text: str) -> None:
            print(f'{name} says "{text}"')
            room[name].say(text)
            await room[name].ds.sync()  # the server has routed it to every listener
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
        # Asked from outside the room: presence facts are gone with their connections.
        present = await door.query(PRESENCE)
        print(f"present at the end: {present or 'nobody'}")


async def run_demo() -> None:
    # A real server on a loopback port, in this process: each participant connects to it
    # as a terminal would, so the demo runs the same code path as several terminals.
    async with open_runtime() as runtime, open_server(runtime, tcp=("127.0.0.1", 0)) as server:
        def connect_as(name: str):
            return connect(server.tcp_address, server.capability, runtime)
        await demo(connect_as)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=INSPECT_HELP)
    parser.add_argument("name", nargs="?", help="your name in the room")
    parser.add_argument("--connect", metavar="ADDRESS",
                        help="""the server: 127.0.0.1:8001, '<tcp "127.0.0.1" 8001>' or"""
                             """ '<unix "PATH">'"""
                             " (as printed by `dataspace-agency serve`)")
    parser.add_argument("--cap", help="the capability printed by `dataspace-agency serve`")
    parser.add_argument("--demo", action="store_true",
                        help="run a scripted conversation in one process")
    args = parser.parse_args(argv)
    if args.demo:
        if args.name or args.connect or args.cap:
            parser.error("--demo runs on its own: no NAME, --connect or --cap")
        return run_command("chat", lambda: trio.run(run_demo))
    if not (args.name and args.connect and args.cap):
        parser.error("give NAME --connect ADDRESS --cap CAP (from `dataspace-agency serve`),"
                     " or --demo for a scripted conversation in one process")
    if not args.name.strip():
        parser.error("NAME must not be blank")
    # Unreachable or refused (ConnectionFailed), a bad address or capability (ValueError),
    # Ctrl-C: one line, not a traceback, even from inside trio's exception groups.
    return run_command("chat", lambda: trio.run(run_live, args.name, args.connect, args.cap),
                       expected={ConnectionFailed: 1, ValueError: 1})


if __name__ == "__main__":
    sys.exit(main())
