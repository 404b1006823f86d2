"""A Zenoh router restart, stated in docs/zenoh.md and checked here: while the router is
gone, observers see other sessions' facts retracted and messages are lost; the sessions
reconnect by themselves and every fact comes back; nothing a live session asserted is
lost. Also: a space whose router goes answers requests again once it is back."""

from __future__ import annotations

import pytest
import trio
from syndicate import patterns as P

from dataspace_agency import ActionError, Agent, action
from dataspace_agency.native import Event
from dataspace_agency.spaces.zenoh_space import ZenohDataspaceSpace
from dataspace_agency.zenoh import Router, connect, free_endpoint

from helpers import next_events, pending, rec
from zenoh_fixtures import fresh_namespace


async def test_a_router_restart_retracts_then_restores_other_sessions_facts():
    endpoint = free_endpoint()
    router = Router([endpoint])
    try:
        async with connect([endpoint], namespace=fresh_namespace()) as ds, \
                connect([endpoint], namespace=ds.namespace) as other:
            mine = ds.publish(rec("Present", "me"))
            other.publish(rec("Present", "other"))
            async with ds.observe(P.rec("Present", P.CAPTURE)) as events, \
                    ds.observe(P.rec("Say", P.CAPTURE)) as said:
                await other.sync()
                await ds.sync()
                assert sorted(e.captures for e in pending(events)) == [("me",), ("other",)]
                router.close()
                # The other session's fact goes; this session's own stays.
                assert await next_events(events, 1, timeout=10) == [
                    Event("removed", ("other",))]
                # No router for the other session either (Zenoh tells no event for it:
                # polled, as wait_connected does), then a message it sends is lost. The
                # sync, which returns at once without a router, is queued after the
                # message: it has been handed to Zenoh before the router comes back.
                with trio.fail_after(10):
                    while other.connected:
                        await trio.sleep(0.02)
                other.message(rec("Say", "into the void"))  # no router: lost
                await other.sync()
                router = Router([endpoint])
                with trio.fail_after(20):
                    await ds.wait_connected()
                    await other.wait_connected()
                assert await next_events(events, 1, timeout=20) == [
                    Event("added", ("other",))]
                await other.sync()
                await ds.sync()
                assert pending(said) == []
                assert pending(events) == []
                ds.retract(mine)
                assert await next_events(events, 1) == [Event("removed", ("me",))]
    finally:
        router.close()


class Slow(Agent):
    @action
    def echo(self, text: str) -> str:
        return text


def test_a_space_works_again_after_its_router_restarts():
    endpoint = free_endpoint()
    router = Router([endpoint])
    namespace = fresh_namespace()
    try:
        with ZenohDataspaceSpace([endpoint], namespace=namespace) as here, \
                ZenohDataspaceSpace([endpoint], namespace=namespace) as there:
            here.add(Slow, "echo")
            me = there.add_foreground(Agent, "me")
            ask = {"to": "echo", "action": {"name": "echo", "args": {"text": "hi"}}}
            assert me.request(ask, timeout=10) == "hi"
            router.close()
            # No router: the responder is gone for the requester; the request fails.
            with pytest.raises((ActionError, TimeoutError)):
                me.request(ask, timeout=1)
            router = Router([endpoint])
            assert here.wait_connected(20) and there.wait_connected(20)
            assert here.fact_count() >= 1
            assert me.request(ask, timeout=20) == "hi"  # its presence came back
    finally:
        router.close()
