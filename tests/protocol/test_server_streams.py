"""The server's stream handling: a packet larger than the socket buffers (partial writes on
both sides) arrives intact, and pipelined messages behind it keep their order."""

from __future__ import annotations

import trio
from preserves import Record, Symbol
from syndicate import patterns as P

from dataspace_agency.protocol import connect, open_server


async def test_large_assertion_then_pipelined_messages_arrive_intact_and_in_order():
    async with open_server(tcp=("127.0.0.1", 0)) as server:
        address = server.tcp_address
        async with connect(address, server.capability) as sender, \
                connect(address, server.capability) as receiver:
            async with receiver.observe(P.rec("big", P.CAPTURE)) as events:
                await receiver.sync()
                big = "x" * (6 * 1024 * 1024) + "end"  # far beyond loopback socket buffers
                sender.publish(Record(Symbol("big"), [big]))
                for i in range(3000):
                    sender.message(Record(Symbol("big"), [str(i)]))
                with trio.fail_after(60):
                    first = await events.receive()
                    assert first.kind == "added" and first.captures[0] == big
                    for i in range(3000):
                        event = await events.receive()
                        assert (event.kind, event.captures) == ("message", (str(i),))
