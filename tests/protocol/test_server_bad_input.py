"""Bad input closes only the offending connection, with an ``Error`` packet, logged with the
peer's address; the server and a well-behaved client on another connection go on.

The server runs in this test's trio run; bad clients are raw sockets; the good client is
our protocol client on its own connection.
"""

from __future__ import annotations

import logging
import random

import pytest
import trio
from preserves import Record, Symbol
from syndicate import patterns as P

from dataspace_agency.protocol.client import connect
from dataspace_agency.protocol.codec import (Assert, ErrorPacket, Message, PacketReader,
                                             Retract, encode, encode_turn, parse_packet)
from dataspace_agency.protocol.server import open_server
from dataspace_agency.protocol.sturdy import KeyRing

MAX_PACKET = 4096


async def _send_and_read_to_eof(address: tuple[str, int], data: bytes) -> list:
    """Send ``data`` on a fresh connection, then end our side; every packet the server
    sends back until it closes."""
    stream = await trio.open_tcp_stream(*address)
    reader = PacketReader()
    got = []
    with trio.fail_after(10):
        async with stream:
            try:
                await stream.send_all(data)
                await stream.send_eof()
            except (trio.BrokenResourceError, OSError):
                pass  # the server closed first; what it sent is still readable
            while True:
                try:
                    chunk = await stream.receive_some(65536)
                except (trio.BrokenResourceError, OSError):
                    break
                if not chunk:
                    break
                reader.feed(chunk)
                got.extend(parse_packet(value) for value in reader)
    return got


async def _good_client_works(ds, n: int) -> None:
    """A full round trip for the good client: assert, see it, retract, see it go."""
    async with ds.observe(P.rec("Good", P.CAPTURE)) as events:
        handle = ds.publish(Record(Symbol("Good"), [n]))
        with trio.fail_after(10):
            assert (await events.receive()).captures == (n,)
            ds.retract(handle)
            assert (await events.receive()).kind == "removed"


@pytest.fixture
async def server():
    async with open_server(tcp=("127.0.0.1", 0), keys=KeyRing.random(),
                           max_packet=MAX_PACKET) as running:
        yield running


@pytest.mark.parametrize("data, problem", [
    (b"\xff", "invalid tag 0xff"),
    (encode(((0, Record(Symbol("X"), [])),)), "malformed event"),
    (encode_turn([(99, Message(1))]), "unknown OID 99"),
    (encode_turn([(0, Retract(5))]), "retract of unknown handle 5"),
    (encode_turn([(0, Assert(1, 5)), (0, Assert(2, 5))]), "already asserted"),
    (encode("x" * (2 * MAX_PACKET)), f"exceeds the limit of {MAX_PACKET} bytes"),
])
async def test_bad_input_gets_an_error_packet_and_only_that_connection_closes(
        server, caplog, data, problem):
    caplog.set_level(logging.WARNING, logger="dataspace_agency")
    async with connect(server.tcp_address, server.capability) as good:
        await _good_client_works(good, 1)
        got = await _send_and_read_to_eof(server.tcp_address, data)
        assert len(got) == 1 and isinstance(got[0], ErrorPacket), got
        assert problem in got[0].message
        logged = [r.getMessage() for r in caplog.records if problem in r.getMessage()]
        assert logged and "127.0.0.1:" in logged[0]  # names the peer's address
        await _good_client_works(good, 2)
        assert len(server.connections) == 1  # only the good client is left


def _mutations(rng: random.Random, valid: list[bytes]):
    """1,000 packets: random bytes, and valid packets with bytes flipped, cut, inserted,
    duplicated or spliced together."""
    for i in range(1000):
        kind = i % 5
        base = bytearray(rng.choice(valid))
        if kind == 0:
            yield bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40)))
            continue
        if kind == 1:
            for _ in range(rng.randrange(1, 4)):
                base[rng.randrange(len(base))] = rng.randrange(256)
        elif kind == 2:
            del base[rng.randrange(len(base)):]
        elif kind == 3:
            base.insert(rng.randrange(len(base) + 1), rng.randrange(256))
        else:
            other = rng.choice(valid)
            base = base[:rng.randrange(len(base) + 1)] + other[rng.randrange(len(other)):]
        yield bytes(base)


async def test_server_survives_1000_random_and_mutated_packets(server):
    rng = random.Random(5)
    ref = Record(Symbol("ref"), [{Symbol("oid"): "syndicate", Symbol("sig"): b"0" * 16}])
    valid = [
        encode_turn([(0, Assert(Record(Symbol("resolve"), [ref, _embedded(0)]), 1))]),
        encode_turn([(0, Assert(Record(Symbol("Present"), ["x"]), 3)), (0, Retract(3))]),
        encode_turn([(0, Message(Record(Symbol("Say"), ["a", 1.5, b"b"])))]),
        encode(False),
        encode(Record(Symbol("error"), ["bye", 0])),
    ]
    async with connect(server.tcp_address, server.capability) as good:
        async with good.observe(P.rec("Good", P.CAPTURE)):
            answered_with_error = 0
            for n, packet in enumerate(_mutations(rng, valid)):
                got = await _send_and_read_to_eof(server.tcp_address, packet)
                answered_with_error += any(isinstance(p, ErrorPacket) for p in got)
                if n % 100 == 99:
                    await _good_client_works(good, n)
            await _good_client_works(good, -1)
            print(f"{answered_with_error} of 1000 packets were answered with an Error")
            assert 300 < answered_with_error < 1000  # the mix exercises both paths
            assert server.connection_count == 1001
            # Nothing the fuzzing connections asserted is left behind: the dataspace holds
            # only the good client's observation.
            await good.sync()
            assert server.dataspace.assertion_count == 1
            assert list(server.connections.values()) and len(server.connections) == 1


def _embedded(oid: int):
    from preserves import Embedded

    from dataspace_agency.protocol.codec import WireRef
    return Embedded(WireRef(True, oid))
