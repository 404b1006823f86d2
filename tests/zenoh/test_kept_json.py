"""Messages a classic space's Zenoh proxy reads straight into JSON (``json_depth``,
``protocol/plain_json.KeptJSON``): native observers of the same proxy still see Preserves
values, exactly as a proxy that decodes them the usual way shows them; agents of one
process that get the same broadcast each get a message of their own."""

from __future__ import annotations

import threading

import trio
from preserves import ImmutableDict, Record, Symbol
from syndicate import patterns as P

from dataspace_agency import Agent, action
from dataspace_agency.classic.values import MESSAGE_DEPTH
from dataspace_agency.native import Event
from dataspace_agency.runtime import open_runtime
from dataspace_agency.spaces.zenoh_space import ZenohDataspaceSpace
from dataspace_agency.zenoh import connect
from dataspace_agency.zenoh.client import open_handle

from helpers import next_events, pending
from zenoh_fixtures import fresh_namespace, router  # noqa: F401 - fixtures

MESSAGE = Symbol("message")

BODIES = [
    ImmutableDict({"k": 1, "n": Symbol("null"), "l": (1.5, True, "x")}),  # a JSON form
    ImmutableDict({1: "an int key"}),  # none: decoded the usual way
    ImmutableDict({"s": Symbol("other")}),  # none either
]


async def test_native_observers_of_a_json_reading_proxy_see_preserves_values(router):
    namespace = fresh_namespace()
    async with open_runtime() as runtime, \
            connect(router.endpoints, namespace=namespace) as usual, \
            connect(router.endpoints, namespace=namespace) as sender:
        reading = open_handle(runtime, router.endpoints, namespace=namespace,
                              json_depth=MESSAGE_DEPTH)
        try:
            whole = P.rec("message", P.lit("a"), P.CAPTURE)
            inside = P.rec("message", P.lit("a"), P.dict(("k", P.CAPTURE)))  # into the body
            async with reading.observe(whole) as got, reading.observe(inside) as got_k, \
                    usual.observe(whole) as expected:
                await reading.sync()
                await usual.sync()
                for body in BODIES:
                    sender.message(Record(MESSAGE, ["a", body]))
                received = await next_events(got, len(BODIES))
                assert received == await next_events(expected, len(BODIES))
                assert received == [Event("message", (body,)) for body in BODIES]
                assert all(type(event.captures[0]) is ImmutableDict for event in received)
                assert await next_events(got_k, 1) == [Event("message", (1,))]
                await sender.sync()
                await reading.sync()
                assert pending(got_k) == []
        finally:
            with trio.CancelScope(shield=True):
                reading.close()


class Collector(Agent):
    """Appends its id to the list it is broadcast, and keeps what the list then holds."""

    seen: dict[str, list] = {}
    both = threading.Event()

    @action
    def note(self, items: list) -> None:
        items.append(self.id)
        Collector.seen[self.id] = list(items)
        if len(Collector.seen) == 2:
            Collector.both.set()


class Announcer(Agent):
    @action
    def announce(self) -> None:
        self.send({"to": "*", "action": {"name": "note", "args": {"items": ["start"]}}})


def test_agents_of_one_process_each_get_their_own_broadcast(router):
    Collector.seen, Collector.both = {}, threading.Event()
    namespace = fresh_namespace()
    with ZenohDataspaceSpace(router.endpoints, mode="message", namespace=namespace) as here, \
            ZenohDataspaceSpace(router.endpoints, mode="message", namespace=namespace) as there:
        here.add(Collector, "c1")
        here.add(Collector, "c2")
        there.add(Announcer, "announcer")
        there.add_foreground(Agent, "me").request(
            {"to": "announcer", "action": {"name": "announce"}}, timeout=30)
        assert Collector.both.wait(30)
    # One broadcast reached both agents of "here" as one Zenoh sample; had they shared
    # its dictionary, the second would have seen the first's append.
    assert Collector.seen == {"c1": ["start", "c1"], "c2": ["start", "c2"]}
