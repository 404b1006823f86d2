"""Dataspace semantics through the real entity and runtime: bags, captures, replay,
messages, sync, observing observers, pattern features, and bad input."""

from __future__ import annotations

import logging

import pytest
from preserves import Embedded
from syndicate import patterns as P
from syndicate import turn
from syndicate.actor import Entity

from dataspace_agency.dataspace import InvalidPattern
from dataspace_agency.native import Event

from helpers import next_events, pending, rec


async def test_replay_then_live_changes(ds):
    ds.publish(rec("Present", "alice"))
    async with ds.observe(P.rec("Present", P.CAPTURE)) as events:
        assert await next_events(events, 1) == [Event("added", ("alice",))]
        bob = ds.publish(rec("Present", "bob"))
        assert await next_events(events, 1) == [Event("added", ("bob",))]
        ds.retract(bob)
        assert await next_events(events, 1) == [Event("removed", ("bob",))]


async def test_bag_counts_copies_of_one_assertion(ds):
    async with ds.observe(P.rec("Present", P.CAPTURE)) as events:
        first = ds.publish(rec("Present", "alice"))
        second = ds.publish(rec("Present", "alice"))
        await ds.sync()
        assert pending(events) == [Event("added", ("alice",))]
        ds.retract(first)
        await ds.sync()
        assert pending(events) == []  # one copy is still asserted
        ds.retract(second)
        assert await next_events(events, 1) == [Event("removed", ("alice",))]


async def test_capture_tuples_are_counted_per_observer(ds):
    # Two assertions project to the same captures: the observer sees "alice" once, and
    # loses it only when both are gone.
    async with ds.observe(P.rec("Present", P.CAPTURE, P._)) as events:
        laptop = ds.publish(rec("Present", "alice", "laptop"))
        phone = ds.publish(rec("Present", "alice", "phone"))
        await ds.sync()
        assert pending(events) == [Event("added", ("alice",))]
        ds.retract(laptop)
        await ds.sync()
        assert pending(events) == []
        ds.retract(phone)
        assert await next_events(events, 1) == [Event("removed", ("alice",))]


async def test_messages_are_routed_never_stored(ds):
    ds.message(rec("Say", "early"))
    async with ds.observe(P.rec("Say", P.CAPTURE)) as events:
        await ds.sync()
        assert pending(events) == []  # the early message was not kept for replay
        ds.message(rec("Say", "hello"))
        assert await next_events(events, 1) == [Event("message", ("hello",))]
    await ds.sync()
    assert ds.entity.assertion_count == 0


async def test_sync_means_everything_before_it_was_processed(ds):
    for i in range(50):
        ds.publish(rec("Item", i))
    await ds.sync()
    assert ds.entity.assertion_count == 50


async def test_observers_are_assertions_too(ds):
    # Interest is visible: one party can see what others are looking for.
    watching = P.rec("Observe", P.CAPTURE, P._)
    looking = P.rec("Present", P.lit("alice"))
    async with ds.observe(watching) as interest:
        # The watcher's own Observe matches its pattern too.
        assert await next_events(interest, 1) == [Event("added", (watching.__preserve__(),))]
        async with ds.observe(looking):
            assert await next_events(interest, 1) == [
                Event("added", (looking.__preserve__(),))]
        assert await next_events(interest, 1) == [
            Event("removed", (looking.__preserve__(),))]


async def test_patterns_dicts_sequences_extra_fields_nested_binds(ds):
    pattern = P.rec("Job",
                    P.bind(P.dict(("id", P.CAPTURE), ("state", P.lit("open")))),
                    P.arr(P.lit(1), P.CAPTURE))
    async with ds.observe(pattern) as events:
        ds.publish(rec("Job", {"id": 7, "state": "open", "extra": True}, [1, "x", "more"],
                       "extra field"))
        ds.publish(rec("Job", {"id": 8, "state": "done"}, [1, "y"]))      # literal differs
        ds.publish(rec("Job", {"id": 9, "state": "open"}, [1]))           # index 1 missing
        ds.publish(rec("Job", {"state": "open"}, [1, "z"]))               # key "id" missing
        [event] = await next_events(events, 1)
        await ds.sync()
        assert pending(events) == []
    whole, job_id, second = event.captures
    assert job_id == 7 and second == "x"
    assert whole == {"id": 7, "state": "open", "extra": True}
    assert hash(whole)  # captured dicts arrive frozen, usable as keys


async def test_booleans_ints_and_doubles_are_distinct(ds):
    async with ds.observe(P.rec("V", P.lit(1))) as ones:
        ds.publish(rec("V", True))
        ds.publish(rec("V", 1.0))
        await ds.sync()
        assert pending(ones) == []
        ds.publish(rec("V", 1))
        assert await next_events(ones, 1) == [Event("added", ())]


async def test_embedded_ref_literals(ds):
    refs = []

    def boot(_ds_ref):
        turn.prevent_inert_check()
        refs.append(turn.ref(Entity()))
        refs.append(turn.ref(Entity()))

    ds.spawn(boot)
    mine, other = refs
    async with ds.observe(P.rec("Owned", P.lit(Embedded(mine)), P.CAPTURE)) as events:
        ds.publish(rec("Owned", Embedded(other), "not mine"))
        ds.publish(rec("Owned", Embedded(mine), "mine"))
        assert await next_events(events, 1) == [Event("added", ("mine",))]


async def test_closing_an_observation_retracts_its_observe(ds):
    async with ds.observe(P.rec("Present", P.CAPTURE)):
        await ds.sync()
        assert ds.entity.observer_count == 1
    await ds.sync()
    assert ds.entity.observer_count == 0
    assert ds.entity.assertion_count == 0


async def test_malformed_observe_is_an_ordinary_assertion(ds, caplog):
    refs = []
    ds.spawn(lambda _ref: (turn.prevent_inert_check(), refs.append(turn.ref(Entity()))))
    caplog.set_level(logging.WARNING)
    async with ds.observe(P.rec("Observe", P.CAPTURE, P._)) as watched:
        ds.publish(rec("Observe", "not a pattern", Embedded(refs[0])))
        ds.publish(rec("Observe", P.rec("Present", P.CAPTURE), "not a ref"))
        seen = [e.captures[0] for e in await next_events(watched, 3)]
        assert seen[1:] == ["not a pattern", P.rec("Present", P.CAPTURE).__preserve__()]
    assert "invalid pattern" in caplog.text
    assert "not a ref" in caplog.text
    await ds.sync()
    assert ds.entity.observer_count == 0
    # The dataspace carries on.
    async with ds.observe(P.rec("Present", P.CAPTURE)) as events:
        ds.publish(rec("Present", "still working"))
        assert await next_events(events, 1) == [Event("added", ("still working",))]


async def test_non_preserves_values_are_refused_with_a_clear_error(ds):
    with pytest.raises(TypeError, match="not a Preserves value"):
        ds.publish(rec("Present", object()))
    with pytest.raises(TypeError, match="not a Preserves value"):
        ds.message(object())
    with pytest.raises(InvalidPattern):
        async with ds.observe(rec("not", "a pattern")):
            pass


async def test_non_preserves_value_from_native_code_does_not_crash_the_dataspace(ds, caplog):
    caplog.set_level(logging.WARNING)
    ds.spawn(lambda ds_ref: (turn.prevent_inert_check(), turn.publish(ds_ref, object())))
    await ds.sync()
    assert "not a Preserves value" in caplog.text
    assert ds.ref.facet.actor.alive
    ds.publish(rec("Present", "fine"))
    await ds.sync()
    assert ds.entity.assertion_count == 1


async def test_closing_the_handle_retracts_everything_it_published():
    from dataspace_agency import open_dataspace
    from dataspace_agency.runtime import open_runtime

    async with open_runtime() as runtime:
        async with open_dataspace(runtime) as ds:
            async with open_dataspace(runtime):  # a second one on the same runtime
                pass
            entity = ds.entity
            for i in range(10):
                ds.publish(rec("Item", i))
            await ds.sync()
            assert entity.assertion_count == 10
            ds.close()
            await runtime.settle()
            assert entity.assertion_count == 0
        assert runtime.statistics().live_actors == 0
