"""The dataspace on Zenoh against the oracle: random operation sequences (publish,
retract, message, observe, stop observing) run on a Zenoh dataspace handle and on the
naive matcher (dataspace/naive.py); after each operation and a sync, every observer has
seen the same events. Values and patterns come from the strategies of
tests/dataspace/test_index_properties.py, without embedded references (they cannot cross
Zenoh)."""

from __future__ import annotations

import contextlib
import itertools

import preserves
from hypothesis import HealthCheck, given, settings
from preserves import Embedded

from dataspace_agency.dataspace import compile_pattern
from dataspace_agency.dataspace.naive import NaiveIndex
from dataspace_agency.zenoh import connect

from helpers import pending
# tests/dataspace/, reached through tests/ (on the path as conftest.py's folder).
from dataspace.test_index_properties import RecordingSink, event_bag, scenarios
from zenoh_fixtures import fresh_namespace, router  # noqa: F401 - the router fixture


def _has_embedded(value) -> bool:
    if isinstance(value, Embedded):
        return True
    if isinstance(value, preserves.Record):
        return _has_embedded(value.key) or any(_has_embedded(f) for f in value.fields)
    if isinstance(value, (list, tuple, frozenset, set)):
        return any(_has_embedded(v) for v in value)
    if isinstance(value, dict):
        return any(_has_embedded(k) or _has_embedded(v) for k, v in value.items())
    return False


transferable = scenarios().filter(lambda s: not any(_has_embedded(v) for v in s[0]))


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much])
@given(scenario=transferable)
async def test_zenoh_dataspace_agrees_with_the_oracle(router, scenario):
    vals, pats, ops = scenario
    sink = RecordingSink()
    oracle = NaiveIndex(sink)
    names = itertools.count()
    async with connect(router.endpoints, namespace=fresh_namespace()) as ds, \
            contextlib.AsyncExitStack() as stack:
        handles: list[tuple[int, object]] = []  # (handle, value) live on Zenoh
        observers: dict[str, tuple[object, contextlib.AsyncExitStack, object]] = {}
        for op in ops:
            kind = op[0]
            if kind == "insert":
                handles.append((ds.publish(vals[op[1]]), vals[op[1]]))
                oracle.insert(vals[op[1]])
            elif kind == "remove":
                if not handles:
                    continue
                handle, value = handles.pop(op[1] % len(handles))
                ds.retract(handle)
                oracle.remove(value)
            elif kind == "send":
                ds.message(vals[op[1]])
                oracle.send(vals[op[1]])
            elif kind == "add_observer":
                if () not in dict(compile_pattern(pats[op[1]]).shape):
                    # A pattern matching any record would also match the observers' own
                    # Observe assertions, which are facts here and not in the oracle.
                    continue
                name = f"o{next(names)}"
                scope = contextlib.AsyncExitStack()
                events = await scope.enter_async_context(ds.observe(pats[op[1]]))
                observers[name] = (pats[op[1]], scope, events)
                oracle.add_observer(pats[op[1]], name)
            else:  # remove_observer
                if not observers:
                    continue
                name = list(observers)[op[1] % len(observers)]
                pattern, scope, events = observers.pop(name)
                await scope.aclose()
                oracle.remove_observer(pattern, name)
            await ds.sync()
            expected = event_bag([e for e in sink.take() if e[0] in observers])
            seen = event_bag([(name, e.kind, e.captures)
                              for name, (_p, _s, events) in observers.items()
                              for e in pending(events)
                              # Observe assertions (holding refs) are facts here too;
                              # the oracle has no such facts.
                              if not _has_embedded(e.captures)])
            assert seen == expected, f"after {op}: {seen} != {expected}"
        for _pattern, scope, _events in observers.values():
            await scope.aclose()
