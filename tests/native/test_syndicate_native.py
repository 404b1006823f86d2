"""Unmodified syndicate-py code (``dataspace.during``, ``on_message``, ``turn.publish``)
against our dataspace and runtime."""

from __future__ import annotations

import math

import trio
from syndicate import dataspace, turn
from syndicate import patterns as P
from syndicate.actor import Entity

from dataspace_agency.native import Event

from helpers import next_events, rec


async def test_during_and_on_message_see_assertions_retractions_and_messages(ds):
    seen_send, seen = trio.open_memory_channel(math.inf)

    def observer(ds_ref):
        @dataspace.during(ds_ref, P.rec("Present", P.CAPTURE))
        def present(who):
            seen_send.send_nowait(("joined", who))
            turn.on_stop(lambda: seen_send.send_nowait(("left", who)))

        @dataspace.on_message(ds_ref, P.rec("Say", P.CAPTURE, P.CAPTURE))
        def say(who, text):
            seen_send.send_nowait(("said", who, text))

    ds.spawn(observer, name="observer")

    # A native publisher that crashes on demand: its assertions must be retracted.
    crash_refs = []

    class Crasher(Entity):
        def on_message(self, _value):
            raise RuntimeError("deliberate crash")

    def publisher(ds_ref):
        turn.publish(ds_ref, rec("Present", "native"))
        crash_refs.append(turn.ref(Crasher()))

    publisher_actor = ds.spawn(publisher, name="publisher")
    handle = ds.publish(rec("Present", "handle"))

    assert sorted(await next_events(seen, 2)) == [("joined", "handle"), ("joined", "native")]
    ds.message(rec("Say", "handle", "hello"))
    assert await next_events(seen, 1) == [("said", "handle", "hello")]
    ds.retract(handle)
    assert await next_events(seen, 1) == [("left", "handle")]

    ds.runtime.run_turn(ds.facet, lambda: turn.send(crash_refs[0], "crash now"))
    assert await next_events(seen, 1) == [("left", "native")]
    assert isinstance(publisher_actor.exit_reason, RuntimeError)


async def test_native_actor_answers_what_the_handle_asks(ds):
    # A native service observes requests and asserts answers while each request stands.
    def doubler(ds_ref):
        @dataspace.during(ds_ref, P.rec("Double", P.CAPTURE))
        def request(n):
            turn.publish(ds_ref, rec("Doubled", n, n * 2))

    ds.spawn(doubler, name="doubler")
    async with ds.observe(P.rec("Doubled", P.lit(21), P.CAPTURE)) as answers:
        question = ds.publish(rec("Double", 21))
        assert await next_events(answers, 1) == [Event("added", (42,))]
        ds.retract(question)  # withdrawing the request withdraws the answer
        assert await next_events(answers, 1) == [Event("removed", (42,))]
