"""The garbage-collection policy (dataspace_agency/runtime/collector.py): what set-up made
is frozen, garbage made afterwards is still collected, frozen garbage comes back on a thaw
or a release, repeated calls are harmless, and the policy stands aside when told to.

No timings here: whether it keeps costs flat is measured by benchmarks/scale_flat.py.
"""

from __future__ import annotations

import gc
import weakref

import pytest
import trio
from preserves import Record, Symbol
from syndicate import patterns as P

from dataspace_agency import open_dataspace
from dataspace_agency.runtime import collector


class Node:
    """A weak-referenceable object that can sit in a reference cycle."""

    def __init__(self) -> None:
        self.other: Node | None = None


def _cycle() -> "weakref.ref[Node]":
    """A two-node cycle nobody else refers to (garbage for the cyclic collector only),
    and a weak reference telling whether it has been freed."""
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)


def _frozen(obj: object) -> bool:
    """Whether ``obj`` is in the permanent generation (gc.get_objects() leaves it out)."""
    return gc.is_tracked(obj) and all(o is not obj for o in gc.get_objects())


@pytest.fixture
def policy(monkeypatch):
    """The policy, from a clean state, acting at every call (no interval, no wait for
    collections); left clean afterwards."""
    collector.release()
    monkeypatch.setattr(collector, "MIN_INTERVAL", 0.0)
    monkeypatch.setattr(collector, "SETUP_COLLECTIONS", 0)
    collector.release()  # re-reads SETUP_COLLECTIONS
    yield collector
    collector.set_enabled(True)
    collector.release()


def test_what_setup_made_is_frozen_and_later_garbage_is_still_collected(policy):
    long_lived = [Node() for _ in range(100)]
    assert policy.after_setup()
    assert _frozen(long_lived) and _frozen(long_lived[0])

    later = _cycle()
    gc.collect()
    assert later() is None  # made after the freeze: collected as ever


def test_objects_that_die_by_reference_count_are_freed_even_when_frozen(policy):
    node = Node()
    ref = weakref.ref(node)
    assert policy.after_setup()
    assert _frozen(node)
    del node
    assert ref() is None  # no collection needed


def test_a_frozen_cycle_waits_for_the_release(policy):
    frozen_cycle = _cycle()
    node = frozen_cycle()
    assert policy.after_setup()
    del node
    gc.collect()
    assert frozen_cycle() is not None  # the documented cost: frozen garbage stays...
    policy.release()
    gc.collect()
    assert frozen_cycle() is None  # ...until unfrozen


def test_a_thaw_comes_when_the_frozen_objects_double(policy, monkeypatch):
    # With a minimum of 1, the first action freezes (0 frozen so far) and the second
    # finds the frozen count doubled since the last thaw (none: 0), so it thaws.
    monkeypatch.setattr(collector, "THAW_MIN_OBJECTS", 1)
    frozen_cycle = _cycle()
    node = frozen_cycle()
    assert policy.after_setup()
    assert _frozen(node)
    del node
    thaws = policy.statistics().thaws
    survivor = Node()
    assert policy.after_setup()
    assert policy.statistics().thaws == thaws + 1
    assert frozen_cycle() is None  # the thaw's collection found it
    assert _frozen(survivor)  # and what survived is frozen again


def test_calling_it_again_and_again_is_harmless(policy, monkeypatch):
    before = policy.statistics()
    for _ in range(50):
        policy.after_setup()
    after = policy.statistics()
    assert after.freezes + after.thaws - before.freezes - before.thaws <= 50
    later = _cycle()
    gc.collect()
    assert later() is None
    # With the ordinary interval, calls in quick succession do not act again.
    monkeypatch.setattr(collector, "MIN_INTERVAL", 3600.0)
    policy.after_setup()
    assert [policy.after_setup() for _ in range(100)] == [False] * 100


def test_it_stands_aside_when_turned_off_or_when_the_collector_is_disabled(policy):
    node = Node()
    policy.set_enabled(False)
    assert not policy.after_setup()
    assert not _frozen(node)
    policy.set_enabled(True)
    gc.disable()
    try:
        assert not policy.after_setup()
        assert not _frozen(node)
    finally:
        gc.enable()


def test_small_setups_pay_nothing_until_enough_collections(monkeypatch):
    collector.release()
    monkeypatch.setattr(collector, "MIN_INTERVAL", 0.0)
    monkeypatch.setattr(collector, "SETUP_COLLECTIONS", 3)
    collector.release()
    try:
        assert not collector.after_setup()
        for _ in range(3):
            gc.collect(0)
        assert collector.after_setup()
    finally:
        collector.release()


def test_observers_added_to_a_dataspace_are_frozen_and_released_at_the_end(policy):
    # The dataspace calls the policy for each new observer; closing the last runtime
    # releases everything.
    async def main() -> tuple[bool, int]:
        async with open_dataspace() as ds:
            async with ds.observe(P.rec("Msg", P.lit("a"), P.CAPTURE)) as events:
                await ds.sync()
                # Made when the dataspace registered the observer: frozen by its call.
                (registration,) = ds.entity._observers.values()
                index_frozen = _frozen(registration)
                ds.message(Record(Symbol("Msg"), ["a", 1]))
                with trio.fail_after(5):
                    event = await events.receive()
                assert event.captures == (1,)
                return index_frozen, policy.statistics().releases

    releases_before = policy.statistics().releases
    index_frozen, releases_inside = trio.run(main)
    assert index_frozen
    assert releases_inside == releases_before
    assert policy.statistics().releases == releases_before + 1
    assert policy.statistics().frozen_estimate == 0
