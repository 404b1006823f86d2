"""Fuzzing the wire: the decoder (``protocol/codec.py``) and the server behind it.

Decoder properties (no server): on any bytes, a :class:`PacketReader` yields values or
raises :class:`ProtocolError`, nothing else, and the same whichever pieces the bytes
arrive in; what our decoder accepts, preserves decodes to the same value; packet parsing
of any value is a packet or a ProtocolError; nesting and declared sizes are bounded.

Server properties (a real server process, see ``fuzz_server.py``): for every input on a
fresh connection the server answers bad input with an ``Error`` packet (at least whenever
the codec, as an oracle, says it is bad), closes the connection, never hangs and never
dies; a good client connected all along keeps working (a round trip after each batch);
nothing a closed connection asserted is left in the dataspace.

Bounded for CI by the ``fuzz`` hypothesis profile below; ``benchmarks/fuzz_campaign.py``
runs the same generators for as long as one likes.
"""

from __future__ import annotations

import sys
import tracemalloc

import preserves
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from preserves import Record, Symbol

from dataspace_agency.protocol.codec import (DEFAULT_MAX_DEPTH, ErrorPacket, PacketReader,
                                             ProtocolError, decode, encode, parse_packet)

from fuzz_server import FuzzServer, MAX_PACKET
from fuzz_strategies import (comparable, huge_sizes, in_turn, mutated, nested,
                             preserves_values, read_in_pieces, same_ending, wire_inputs,
                             wrong_shapes)

pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")

FUZZ = settings(max_examples=150, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])


def _read_all(data: bytes, cuts: list[int], max_packet: int = MAX_PACKET) -> tuple[list, str]:
    return read_in_pieces(data, cuts, max_packet)


# --- the decoder --------------------------------------------------------------------------

@FUZZ
@given(wire_inputs, st.data())
def test_reader_yields_values_or_a_protocol_error_wherever_the_bytes_are_cut(data, draw):
    whole = _read_all(data, [])
    cuts = draw.draw(st.lists(st.integers(0, len(data)), max_size=5))
    pieces = _read_all(data, cuts)
    assert same_ending(pieces[1], whole[1]), (pieces[1], whole[1])
    assert pieces[0] == whole[0]


@FUZZ
@given(st.one_of(mutated(), st.binary(max_size=40), wrong_shapes))
def test_what_the_decoder_accepts_preserves_reads_the_same(data):
    if b"\x86" in data:
        return  # embedded values: ours become wire refs, preserves' do not compare
    try:
        ours = decode(data)
    except ProtocolError:
        return
    assert comparable(preserves.decode(data)) == comparable(ours)


@FUZZ
@given(st.one_of(preserves_values, st.lists(preserves_values, max_size=3).map(tuple)))
def test_parse_packet_of_any_value_is_a_packet_or_a_protocol_error(value):
    try:
        packet = parse_packet(value)
    except ProtocolError as exc:
        assert str(exc)
        return
    assert packet is None or isinstance(packet, (list, ErrorPacket))


@pytest.mark.parametrize("kind", ["sequence", "set", "dictionary", "record", "embedded",
                                  "annotation"])
def test_100000_levels_of_nesting_are_a_protocol_error_not_a_crash(kind):
    data = nested(kind, 100_000)
    with pytest.raises(ProtocolError, match=f"nested more than {DEFAULT_MAX_DEPTH} levels"):
        decode(data)
    reader = PacketReader(len(data) + 1)
    reader.feed(data[:len(data) // 2])  # refused before the value is complete
    with pytest.raises(ProtocolError, match="nested more than"):
        list(reader)


def test_the_nesting_limit_is_exact():
    assert decode(nested("sequence", DEFAULT_MAX_DEPTH)) is not None
    with pytest.raises(ProtocolError, match="nested more than"):
        decode(nested("sequence", DEFAULT_MAX_DEPTH + 1))
    with pytest.raises(ProtocolError, match="nested more than 3 levels"):
        decode(nested("sequence", 4), max_depth=3)


def test_nesting_is_refused_even_on_a_deep_stack():
    # The limit is what protects the rest of the system; a caller already deep in its
    # stack still gets a ProtocolError, never a RecursionError.
    def deep(n: int):
        return deep(n - 1) if n else decode(nested("sequence", DEFAULT_MAX_DEPTH))
    frame, used = sys._getframe(), 0
    while frame is not None:
        frame, used = frame.f_back, used + 1
    with pytest.raises(ProtocolError, match="nested too deeply"):
        deep(sys.getrecursionlimit() - used - DEFAULT_MAX_DEPTH // 2)


@FUZZ
@given(huge_sizes)
def test_a_huge_declared_size_is_refused_at_once_without_allocating(data):
    reader = PacketReader(MAX_PACKET)
    tracemalloc.start()
    try:
        reader.feed(data)
        with pytest.raises(ProtocolError) as raised:
            list(reader)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "exceeds the limit" in str(raised.value) or "float of" in str(raised.value) \
        or "length prefix too long" in str(raised.value)
    assert peak < 1_000_000  # bytes: nothing sized by the claim was allocated


def test_regression_a_2_to_the_60_length_prefix_is_refused_before_its_bytes_arrive():
    # Was: the reader waited for max_packet bytes to arrive before refusing.
    reader = PacketReader(100)
    reader.feed(b"\xb2" + bytes([0x80] * 8 + [0x10]))
    with pytest.raises(ProtocolError, match="exceeds the limit of 100 bytes .*promises"):
        list(reader)


def test_regression_an_int_too_long_to_print_does_not_break_the_error_message():
    # Was: ValueError (int has no repr beyond 4,300 digits) instead of a ProtocolError.
    value = decode(encode(((0, Record(Symbol("X"), [10**5000])),)))
    with pytest.raises(ProtocolError, match="malformed event <Record too large"):
        parse_packet(value)


# --- the server -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fuzz_server():
    with FuzzServer() as server:
        yield server


def _check_batch(server: FuzzServer, inputs: list[bytes], handshake: bool) -> list:
    outcomes = [server.attack(data, handshake) for data in inputs]
    problems = [(data[:80], o.problem) for data, o in zip(inputs, outcomes) if o.problem]
    assert not problems, problems
    assert server.good_client_works() is None
    assert server.crashes() == []
    return outcomes


@settings(FUZZ, max_examples=40)
@given(st.lists(wire_inputs, min_size=5, max_size=5), st.booleans())
def test_server_answers_bad_input_with_an_error_and_stays_up(fuzz_server, batch, handshake):
    _check_batch(fuzz_server, batch, handshake)


def test_server_regressions_deep_values_huge_ints_and_sizes(fuzz_server):
    cases = [
        # Was: a 600-level assertion crashed the server's dataspace actor (RecursionError
        # in its index); now the decoder refuses it.
        in_turn(nested("sequence", 600)),
        in_turn(nested("record", 100_000)),
        # Was: closed with no Error packet (ValueError formatting the error).
        encode(((1, Record(Symbol("X"), [10**5000])),)),
        # A length prefix claiming 2**60 bytes: refused at once.
        b"\xb1" + bytes([0x80] * 8 + [0x10]),
        encode("x" * (2 * MAX_PACKET)),
        # Was: the relay actor crashed formatting "unknown OID <huge>" (no Error packet).
        encode(((10**5000, Record(Symbol("M"), [1])),)),
        encode(((1, Record(Symbol("R"), [10**5000])),)),
    ]
    outcomes = _check_batch(fuzz_server, cases, True)
    assert all(o.refused for o in outcomes), [o.error for o in outcomes]
    assert "nested more than" in outcomes[0].error
    assert "malformed event" in outcomes[2].error
    assert "promises" in outcomes[3].error
    # Was: a peer's <error> packet whose detail has no repr failed the connection with a
    # traceback; now it is closed quietly, as any peer error.
    outcome = fuzz_server.attack(encode(Record(Symbol("error"), ["bye", 10**5000])))
    assert outcome.problem is None and not outcome.refused
    assert fuzz_server.good_client_works() is None


def test_deep_values_within_the_limit_go_through_and_reach_observers(fuzz_server):
    # The server accepts values up to its limit, and an observer capturing one whole
    # (one level deeper in the packet it receives) can still read it.
    from fuzz_server import SERVER_MAX_DEPTH
    inner = nested("sequence", SERVER_MAX_DEPTH - 5)  # turn, event, <A>, <Good> around it
    good = fuzz_server.good
    from syndicate import patterns as P
    with good.observe(P.rec("Good", P.CAPTURE)) as events:
        # The server has our Observe before the attack's assertion comes and goes (the
        # attack uses a connection of its own: nothing orders the two otherwise; a loaded
        # CI run once saw neither event).
        good.sync()
        outcome = fuzz_server.attack(in_turn(b"\xb4\xb3\x04Good" + inner + b"\x84"))
        assert outcome.problem is None and not outcome.refused
        # The attack's connection is closed, its assertion retracted: added then
        # removed. Taken while still observing: the attack returns once its own
        # connection is closed, which says nothing of what the server has told us yet,
        # and leaving the observe first withdraws the interest those events answer (a
        # loaded CI run saw neither event so).
        kinds = [events.get(timeout=10).kind for _ in range(2)]
    assert kinds == ["added", "removed"]
    assert fuzz_server.leftovers() == []


def test_nothing_is_left_behind_by_fuzzing_connections(fuzz_server):
    for data in [in_turn(encode(Record(Symbol("Present"), ["x"]))), in_turn(b"\x80") + b"\xff"]:
        assert fuzz_server.attack(data).problem is None
    assert fuzz_server.leftovers() == []
    assert fuzz_server.alive
