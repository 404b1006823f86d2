"""The dataspace on Zenoh: the in-process dataspace's semantic tests run unchanged on it
(imported from tests/dataspace/test_dataspace.py, with this module's ``ds`` fixture), then
what is specific to Zenoh: bags across sessions, sync, large values, what cannot cross, a
crashed session's facts, key expressions."""

from __future__ import annotations

import logging
import zlib

import pytest
import trio
from syndicate import patterns as P

from dataspace_agency.native import Event
from dataspace_agency.zenoh import (MAX_VALUE_BYTES, NotTransferable, ValueTooLarge,
                                    ZenohUnreachable, connect, free_endpoint)
from dataspace_agency.zenoh.keys import (INLINE_LIMIT, assertion_key, bucket, encode_value,
                                         parse_assertion_key, pattern_key)

from helpers import next_events, pending, rec
from zenoh_fixtures import ds, fresh_namespace, router  # noqa: F401 - fixtures

# The in-process dataspace's tests that do not read its entity: the same semantics here.
# (tests/dataspace/ is reached through tests/, which is on the path as conftest.py's folder.)
from dataspace.test_dataspace import (  # noqa: F401 - collected again, with this module's ds
    test_bag_counts_copies_of_one_assertion, test_booleans_ints_and_doubles_are_distinct,
    test_capture_tuples_are_counted_per_observer, test_non_preserves_values_are_refused_with_a_clear_error,
    test_patterns_dicts_sequences_extra_fields_nested_binds, test_replay_then_live_changes)


async def test_messages_are_routed_never_stored(ds):
    ds.message(rec("Say", "early"))
    async with ds.observe(P.rec("Say", P.CAPTURE)) as events:
        await ds.sync()
        assert pending(events) == []
        ds.message(rec("Say", "hello"))
        assert await next_events(events, 1) == [Event("message", ("hello",))]
    assert await ds.query(P.rec("Say", P.CAPTURE)) == []  # nothing was kept


async def test_sync_means_everything_before_it_reached_the_router(ds, router):
    for i in range(50):
        ds.publish(rec("Item", i))
    await ds.sync()
    # Another session sees all 50 at once: the router had them when sync returned.
    async with connect(router.endpoints, namespace=ds.namespace) as other:
        found = await other.query(P.rec("Item", P.CAPTURE))
    assert sorted(c for (c,) in found) == list(range(50))


async def test_a_bag_spans_sessions(ds, router):
    async with connect(router.endpoints, namespace=ds.namespace) as other:
        async with ds.observe(P.rec("Present", P.CAPTURE)) as events:
            mine = ds.publish(rec("Present", "alice"))
            theirs = other.publish(rec("Present", "alice"))
            await other.sync()  # the router has it, and so (below) has this session
            await ds.sync()  # everything the router had for this session has arrived
            assert pending(events) == [Event("added", ("alice",))]
            ds.retract(mine)
            await ds.sync()
            await other.sync()
            assert pending(events) == []  # the other session still asserts it
            other.retract(theirs)
            assert await next_events(events, 1) == [Event("removed", ("alice",))]


async def test_messages_reach_other_sessions_once(ds, router):
    async with connect(router.endpoints, namespace=ds.namespace) as other:
        # Two observers with overlapping key expressions: each is told once.
        async with ds.observe(P.rec("Say", P.CAPTURE, P.CAPTURE)) as wide, \
                ds.observe(P.rec("Say", P.lit("bob"), P.CAPTURE)) as narrow:
            await ds.sync()
            other.message(rec("Say", "bob", "hi"))
            other.message(rec("Say", "ann", "yo"))
            assert await next_events(wide, 2) == [Event("message", ("bob", "hi")),
                                                  Event("message", ("ann", "yo"))]
            assert await next_events(narrow, 1) == [Event("message", ("hi",))]
            await other.sync()
            await ds.sync()
            assert pending(wide) == [] and pending(narrow) == []


async def test_a_closed_session_takes_its_facts_with_it(ds, router):
    async with ds.observe(P.rec("Present", P.CAPTURE)) as events:
        async with connect(router.endpoints, namespace=ds.namespace) as other:
            other.publish(rec("Present", "bob"))
            assert await next_events(events, 1) == [Event("added", ("bob",))]
        assert await next_events(events, 1) == [Event("removed", ("bob",))]


async def test_observers_share_an_interest_per_key_expression(ds):
    async with ds.observe(P.rec("Present", P.CAPTURE)), ds.observe(P.rec("Present", P._)):
        await ds.sync()
        assert ds.proxy.interest_count == 1
    await ds.sync()
    assert ds.proxy.interest_count == 0
    assert ds.proxy.idle_interest_count == 1  # kept for reuse, still up to date:
    ds.publish(rec("Present", "late"))
    async with ds.observe(P.rec("Present", P.CAPTURE)) as events:
        assert await next_events(events, 1) == [Event("added", ("late",))]
        assert ds.proxy.idle_interest_count == 0


async def test_large_values_are_served_by_their_owner(ds, router):
    big = "x" * (INLINE_LIMIT * 3)
    async with connect(router.endpoints, namespace=ds.namespace) as other:
        async with other.observe(P.rec("Doc", P.CAPTURE, P.CAPTURE)) as events:
            handle = ds.publish(rec("Doc", "big", big))
            ds.publish(rec("Doc", "small", "y"))
            got = await next_events(events, 2)
            assert sorted(got, key=lambda e: e.captures[0]) == [
                Event("added", ("big", big)), Event("added", ("small", "y"))]
            ds.retract(handle)
            assert await next_events(events, 1) == [Event("removed", ("big", big))]
        # sync waits for large values being fetched: a query sees them
        ds.publish(rec("Doc", "again", big))
        await ds.sync()
        assert (("again", big) in await other.query(P.rec("Doc", P.CAPTURE, P.CAPTURE)))


async def test_what_cannot_cross_is_refused_naming_it(ds):
    with pytest.raises(ValueTooLarge, match="over the Zenoh dataspace's limit"):
        ds.publish(rec("Doc", b"x" * (MAX_VALUE_BYTES + 1)))
    with pytest.raises(ValueTooLarge):
        ds.message(rec("Doc", b"x" * (MAX_VALUE_BYTES + 1)))
    from preserves import Embedded
    with pytest.raises(NotTransferable, match="embedded references"):
        ds.publish(rec("Owned", Embedded(object())))
    ds.publish(rec("Present", "still fine"))
    assert await ds.query(P.rec("Present", P.CAPTURE)) == [("still fine",)]


async def test_a_malformed_token_from_a_peer_is_ignored_with_a_warning(ds, caplog):
    caplog.set_level(logging.WARNING)
    async with ds.observe(P.rec("Present", P.CAPTURE)) as events:
        # A peer that is not a dataspace declares a token in our key space, while we
        # listen (a new observer's replay asks dataspace sessions, not raw Zenoh ones).
        await ds.sync()
        bad = ds.session.liveliness().declare_token(
            f"{ds.namespace}/a/*/ryPresent/=vnot-preserves/ux.1")
        ds.publish(rec("Present", "good"))
        assert await next_events(events, 1) == [Event("added", ("good",))]
        bad.undeclare()
        await ds.sync()
    assert "malformed value" in caplog.text


async def test_an_unreachable_endpoint_is_an_error_naming_it():
    endpoint = free_endpoint()  # nothing listens there
    with pytest.raises(ZenohUnreachable, match=endpoint.replace(".", r"\.")):
        async with connect([endpoint]):
            pass
    with pytest.raises(ValueError, match="not a Zenoh endpoint"):
        async with connect(["127.0.0.1:7447"]):
            pass


def test_keys_route_by_label_and_literal_fields():
    assert pattern_key(P.rec("Present", P.CAPTURE)) == "ryPresent/**"
    assert pattern_key(P.rec("reply", P.lit("bob"), P._, P.lit(3), P.CAPTURE)) == \
        f"ryreply/{bucket('sbob')}/sbob/*/*/{bucket('i3')}/i3/**"
    assert pattern_key(P.CAPTURE) == "**"
    assert pattern_key(P.rec("V", P.lit(True))) != pattern_key(P.rec("V", P.lit(1)))
    assert pattern_key(P.rec("V", P.lit(1.0))) != pattern_key(P.rec("V", P.lit(1)))
    value = rec("say", "a b/c*?#$", 7)
    key, data = encode_value(value)
    token, large = assertion_key("dsa", key, data, "uabc.1")
    field = "sa%20b%2Fc%2A%3F%23%24"
    assert not large and token.startswith(
        f"dsa/a/*/rysay/{bucket(field)}/{field}/{bucket('i7')}/i7/")
    assert bucket(field) == f"{zlib.crc32(field.encode()) & 0xFF:02x}"
    assert parse_assertion_key(token).value == value


def test_a_compound_field_is_one_chunk_and_routing_is_as_by_the_whole_key():
    # encode_value reads only the root and top-level atoms (a nested body is not
    # converted): the chunks must be those of the whole value's key form.
    import zenoh
    from dataspace_agency.dataspace.keys import to_key
    from dataspace_agency.zenoh.keys import assertions, shape_chunks
    value = rec("request", "echo", "m1", {"action": {"name": "take"}, "n": (1, 2.5, True)})
    key, data = encode_value(value)
    assert shape_chunks(key) == shape_chunks(to_key(value))
    token, _large = assertion_key("dsa", key, data, "uabc.1")
    assert f"/{bucket('sm1')}/sm1/{bucket('_')}/_/" in token
    observed = pattern_key(P.rec("request", P.lit("echo"), P.lit("m1"), P.CAPTURE))
    assert zenoh.KeyExpr(f"{assertions('dsa')}/{observed}").intersects(zenoh.KeyExpr(token))
    other = pattern_key(P.rec("request", P.lit("echo"), P.lit("m2"), P.CAPTURE))
    assert not zenoh.KeyExpr(f"{assertions('dsa')}/{other}").intersects(zenoh.KeyExpr(token))
    assert parse_assertion_key(token).value == value
    with pytest.raises(NotTransferable, match="cannot carry"):
        encode_value(rec("request", "echo", {"deep": object()}))


def test_a_preencoded_field_gives_the_key_and_bytes_of_its_value():
    # Message mode hands the proxy a classic message's body as its bytes
    # (codec.preencode_json): the key and payload must be those of the Preserves form,
    # compound or atom, so that observers' key expressions and decoding see no difference.
    from dataspace_agency.classic.values import to_preserves
    from dataspace_agency.protocol.codec import encode, preencode_json
    from dataspace_agency.zenoh.keys import message_key
    body = {"to": "echo", "action": {"name": "take", "args": {"i": 3}}, "meta": {"x": None}}
    for field in (body, "plain", 7):
        pre = rec("message", "echo", preencode_json(field))
        plain = rec("message", "echo", to_preserves(field))
        (pre_key, pre_data), (key, data) = encode_value(pre), encode_value(plain)
        assert message_key("dsa", pre_key) == message_key("dsa", key)
        assert pre_data == data == encode(plain)
