"""A client's relay tells an entity marked ``routed_inline`` (the classic adapter's inbox)
inside its own turn, as a dataspace of this process does; a failure there is the
entity's alone: logged, the message dropped, the connection and later messages fine."""

from __future__ import annotations

import logging
from typing import Any

import trio
from preserves import Embedded, Record, Symbol
from syndicate import turn
from syndicate.actor import Entity

from dataspace_agency.protocol.client import connect
from dataspace_agency.protocol.server import open_server
from dataspace_agency.protocol.sturdy import KeyRing
from dataspace_agency.spaces.dataspace.vocabulary import CAPTURE, rec

PING = Symbol("ping")


class _Inline(Entity):
    """Records each message and the actor of the turn it was told in; fails on 0."""

    routed_inline = True

    def __init__(self) -> None:
        self.told: list[tuple[Any, Any]] = []
        self.arrived = trio.Event()

    def on_message(self, captures: Any) -> None:
        (n,) = captures
        self.told.append((n, turn.active._facet.actor))
        if n == 0:
            raise RuntimeError("this handler fails on 0")
        self.arrived.set()


async def test_an_inline_entity_is_told_in_the_relays_turn_and_its_failure_is_its_own(
        caplog):
    caplog.set_level(logging.ERROR, logger="dataspace_agency")
    async with open_server(tcp=("127.0.0.1", 0), keys=KeyRing.random()) as server:
        async with connect(server.tcp_address, server.capability) as ds:
            entity = _Inline()

            def observe() -> None:
                turn.publish(ds.ref, Record(Symbol("Observe"), [
                    rec(PING, CAPTURE), Embedded(turn.ref(entity))]))
            ds.runtime.run_turn(ds.facet, observe)
            with trio.fail_after(10):
                await ds.sync()
                ds.message(Record(PING, [0]))  # the handler fails
                ds.message(Record(PING, [1]))
                await entity.arrived.wait()
            relay_actor = ds.connection.relay.facet.actor
            assert [(n, actor is relay_actor) for n, actor in entity.told] == [
                (0, True), (1, True)]
            assert ds.connected
            assert any("message handler failed" in r.getMessage() for r in caplog.records)
