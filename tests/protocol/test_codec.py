"""The wire codec against its oracle, the preserves library (same binary syntax), and the
packet reader's limits and error reporting."""

from __future__ import annotations

import preserves
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from preserves import Embedded, ImmutableDict, Record, Symbol

from dataspace_agency.classic import values as classic_values
from dataspace_agency.protocol.codec import (Assert, ErrorPacket, Message, PacketReader,
                                             Preencoded, ProtocolError, Retract, Sync, WireRef,
                                             decode, encode, encode_error, encode_turn,
                                             parse_packet, preencode_json)

# Hypothesis builds a repr of each example, pretty-printed: a nested Record of a few dozen
# leaves, each level indented further, passes its 30 kB warning line ("Generating overly
# large repr") although the value itself is small. Nothing to act on here: the size of
# the values is what these tests want (as in test_fuzz_wire.py).
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")

atoms = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.binary(max_size=20),
    st.text(max_size=10).map(Symbol),
)


def _compounds(children):
    return st.one_of(
        st.lists(children, max_size=4).map(tuple),
        st.frozensets(children, max_size=4),
        st.dictionaries(children, children, max_size=4).map(ImmutableDict),
        st.tuples(children, st.lists(children, max_size=3)).map(
            lambda lf: Record(lf[0], lf[1])),
    )


values = st.recursive(atoms, _compounds, max_leaves=25)
wire_refs = st.one_of(
    st.integers(0, 2**40).map(lambda oid: WireRef(True, oid)),
    st.integers(0, 2**40).map(lambda oid: WireRef(False, oid)),
)


def _ordered_compounds(children):
    # No sets or dict keys here: preserves' own equality cannot order embedded wire refs
    # inside them (a limitation of the oracle, not of the codec).
    return st.one_of(
        st.lists(children, max_size=4).map(tuple),
        st.tuples(st.text(max_size=5).map(Symbol), st.lists(children, max_size=3)).map(
            lambda lf: Record(lf[0], lf[1])),
    )


values_with_refs = st.recursive(st.one_of(atoms, wire_refs.map(Embedded)), _ordered_compounds,
                                max_leaves=25)


@given(values)
def test_encoding_is_byte_for_byte_what_preserves_writes(value):
    assert encode(value) == preserves.encode(value)


@given(values)
def test_decode_agrees_with_preserves_and_round_trips(value):
    data = preserves.encode(value)
    assert decode(data) == preserves.decode(data) == value


@given(values)
@example(ImmutableDict({"action": ImmutableDict({"name": "take"}), "to": "echo"}))
def test_frozen_decoding_gives_the_same_value_with_every_dictionary_kept_by_the_index(value):
    # frozen=True (the Zenoh mirror's decoding) marks each dictionary deeply frozen, so
    # the index's key of it keeps the object and gives it back as it is.
    from dataspace_agency.dataspace.keys import from_key, to_key
    data = encode(value)
    plain, marked = decode(data), decode(data, frozen=True)
    assert marked == plain == value
    if isinstance(marked, ImmutableDict):
        assert from_key(to_key(marked)) is marked
        assert from_key(to_key(plain)) is not plain


@given(st.lists(values, min_size=1, max_size=4))
def test_a_frozen_packet_reader_gives_the_same_events_with_dictionaries_kept_by_the_index(items):
    # A server's reader (frozen=True): the same values, each dictionary marked so that
    # the index keeps it as it is (a capture) instead of walking it.
    from dataspace_agency.dataspace.keys import from_key, to_key
    data = encode_turn([(n, Message(item)) for n, item in enumerate(items)])
    readers = PacketReader(), PacketReader(frozen=True)
    for reader in readers:
        reader.feed(data)
    [plain], [marked] = (list(reader) for reader in readers)
    assert marked == plain
    for (_, event) in parse_packet(marked):
        if isinstance(event.body, ImmutableDict):
            assert from_key(to_key(event.body)) is event.body


# Dictionaries' short strings are read and written by a path of their own (inline); the
# strategies above make only short ones, so long keys and values (a two-byte length) and
# every other kind of value beside them are tried here too.
dict_texts = st.one_of(st.text(max_size=40), st.text(min_size=120, max_size=200))


@given(st.dictionaries(dict_texts, st.one_of(dict_texts, values), max_size=6).map(ImmutableDict))
def test_dictionaries_with_strings_of_every_length_agree_with_preserves(value):
    data = preserves.encode(value)
    assert encode(value) == data
    assert decode(data) == preserves.decode(data) == value
    assert type(decode(data)) is ImmutableDict
    assert hash(decode(data)) == hash(value)  # a decoded dictionary is usable as a key


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
              st.floats(), dict_texts),
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(dict_texts, children, max_size=4)),
    max_leaves=25)


@given(json_values)
def test_a_preencoded_json_value_is_byte_for_byte_its_classic_preserves_form(value):
    expected = encode(classic_values.to_preserves(value))
    assert preencode_json(value).data == expected
    # ... and written as it is wherever it stands in what is encoded.
    assert encode(Record(Symbol("message"), ["to", preencode_json(value)])) == encode(
        Record(Symbol("message"), ["to", classic_values.to_preserves(value)]))


@pytest.mark.parametrize("value", [{1: "x"}, {"a": b"bytes"}, [Symbol("s")], {"a": {2.5}}])
def test_preencode_json_refuses_what_is_not_plain_json(value):
    with pytest.raises(TypeError):
        preencode_json(value)


def test_a_preencoded_value_is_written_verbatim():
    assert encode((1, Preencoded(b"\xb1\x02hi"), 2)) == encode((1, "hi", 2))


@given(values_with_refs)
def test_values_with_wire_refs_round_trip(value):
    assert decode(encode(value)) == value


@given(st.lists(values, min_size=1, max_size=5), st.data())
def test_packet_reader_reassembles_values_split_anywhere(items, data):
    stream = b"".join(encode(item) for item in items)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    reader = PacketReader()
    got = []
    start = 0
    for cut in [*cuts, len(stream)]:
        reader.feed(stream[start:cut])
        start = cut
        got.extend(reader)
    assert got == items


def test_a_turn_arriving_in_many_reads_is_read_once_and_not_held_whole():
    # Events are decoded as they complete and their bytes let go: the reader holds the
    # unfinished event and the last piece, not the packet so far (which it used to
    # decode again from its start at every read: quadratic in the packet's length).
    events = [(7, Message(Record(Symbol("take"), [i, "x" * (i % 50)]))) for i in range(2000)]
    data = encode_turn(events)
    reader = PacketReader()
    got, held = [], 0
    for start in range(0, len(data), 100):
        reader.feed(data[start:start + 100])
        got.extend(reader)
        held = max(held, len(reader._buf) - reader._start)
    assert len(got) == 1 and parse_packet(got[0]) == events
    assert held < 200  # bytes: an event (at most ~70) and a piece (100)


def test_a_turn_over_the_limit_is_refused_before_it_is_complete():
    data = encode_turn([(1, Message(i)) for i in range(100)])
    reader = PacketReader(max_packet=300)
    for start in range(0, 350, 50):
        reader.feed(data[start:start + 50])
        if start < 300:
            assert list(reader) == []
    with pytest.raises(ProtocolError, match="exceeds the limit of 300 bytes .*incomplete"):
        list(reader)
    reader = PacketReader(max_packet=300)  # an event whose length prefix promises too much
    reader.feed(encode_turn([(1, Message(i)) for i in range(10)])[:-1] + b"\xb2\x80\x10")
    with pytest.raises(ProtocolError, match="exceeds the limit of 300 bytes .*promises"):
        list(reader)


@settings(max_examples=300)
@given(st.binary(max_size=64))
def test_garbage_is_a_protocol_error_or_incomplete_never_anything_else(data):
    reader = PacketReader(max_packet=32)
    reader.feed(data)
    try:
        for _ in reader:
            pass
    except ProtocolError:
        pass


def test_packet_over_the_limit_is_refused_even_before_it_is_complete():
    big = encode("x" * 200)
    reader = PacketReader(max_packet=100)
    reader.feed(big[:150])  # incomplete, but already too long
    with pytest.raises(ProtocolError, match="exceeds the limit of 100 bytes"):
        list(reader)
    reader = PacketReader(max_packet=100)
    reader.feed(big)
    with pytest.raises(ProtocolError, match="exceeds the limit"):
        list(reader)


@pytest.mark.parametrize("data, problem", [
    (b"\x84", "end marker"),
    (b"\xff", "invalid tag 0xff"),
    (b"\xb4\x84", "record without a label"),
    (b"\xb7\xb0\x00\x84", "key but no value"),
    (b"\xb7\xb1\x01k\x84", "key but no value"),
    (b"\xb7\xb1\x01k\xb1\x01v\xb1\x01k\xb0\x00\x84", "duplicate key"),
    (b"\xb7\xb1\x01k\xb1\x02\xff\xfe\x84", "not UTF-8"),
    (b"\xb7\xb1\x02\xff\xfe\xb0\x00\x84", "not UTF-8"),
    (b"\xb6\xb0\x00\xb0\x00\x84", "duplicate"),
    (b"\xb1\x02\xff\xfe", "not UTF-8"),
    (b"\x87\x04abcd", "float of 4 bytes"),
    (b"\x86\xb1\x01x", "malformed wire ref"),
])
def test_malformed_input_names_the_problem(data, problem):
    with pytest.raises(ProtocolError, match=problem):
        decode(data)


def test_turn_packets_round_trip():
    events = [(0, Assert(Record(Symbol("Present"), ["a", Embedded(WireRef(True, 3))]), 7)),
              (5, Retract(7)), (5, Message("hi")), (0, Sync(WireRef(True, 9)))]
    assert parse_packet(decode(encode_turn(events))) == events
    assert parse_packet(decode(encode_error("bad", 1))) == ErrorPacket("bad", 1)
    assert parse_packet(False) is None  # nop
    assert parse_packet(Record(Symbol("ext"), [1])) is None  # extension: ignored


def test_the_0_19_3_clients_doubly_embedded_sync_peer_is_accepted():
    # syndicate-py 0.19.3 writes a sync's peer as #:#:[0 n].
    data = preserves.encode(((0, Record(Symbol("S"), [Embedded(Embedded((0, 4)))])),))
    assert parse_packet(decode(data)) == [(0, Sync(WireRef(True, 4)))]


@pytest.mark.parametrize("packet, problem", [
    (("x",), "malformed turn event"),
    (((0, Record(Symbol("A"), ["v"])),), "malformed event"),
    (((0, Record(Symbol("R"), ["h"])),), "malformed event"),
    (((0, 5),), "event is not a record"),
    (17, "not a packet"),
])
def test_malformed_packets_name_the_problem(packet, problem):
    with pytest.raises(ProtocolError, match=problem):
        parse_packet(packet)


# --- a server's reader keeps the bytes of the dictionaries it forwards ---------------------

from dataspace_agency.protocol.decoding import WIRE_BYTES  # noqa: E402

def _loose(value, draw) -> bytes:
    """``value`` encoded as a peer may write it, not always as our encoder does: ints and
    lengths in more bytes than they need, annotations, sets in another order."""
    t = type(value)
    prefix = b""
    if draw(st.integers(0, 9)) == 0:
        prefix = b"\x85" + encode("note")  # an annotation (the decoder drops it)
    if t is bool:
        return prefix + (b"\x81" if value else b"\x80")
    if t is int and draw(st.booleans()):
        length = ((~value if value < 0 else value).bit_length() + 8) // 8 + 1
        return prefix + b"\xb0" + bytes([length]) + value.to_bytes(length, "big", signed=True)
    if t in (str, bytes, Symbol) and draw(st.booleans()):
        raw = encode(value)
        n, rest = raw[1], raw[2:]  # short values only (strategies make them short)
        if n < 128:
            return prefix + raw[:1] + bytes([n | 128, 0]) + rest  # a two-byte length
    if t is tuple:
        return prefix + b"\xb5" + b"".join(_loose(x, draw) for x in value) + b"\x84"
    if t is Record:
        return prefix + b"\xb4" + _loose(value.key, draw) + b"".join(
            _loose(x, draw) for x in value.fields) + b"\x84"
    if t is ImmutableDict:
        return prefix + b"\xb7" + b"".join(_loose(k, draw) + _loose(v, draw)
                                           for k, v in value.items()) + b"\x84"
    if t is frozenset:
        items = list(value)
        items = draw(st.permutations(items)) if items else items
        return prefix + b"\xb6" + b"".join(_loose(x, draw) for x in items) + b"\x84"
    return prefix + encode(value)


small_ints = st.one_of(st.integers(-300, 300), st.integers(-(2**70), 2**70))
dict_fields = st.recursive(atoms | small_ints | st.just(float("nan")), _compounds,
                           max_leaves=12)
record_dicts = st.dictionaries(st.text(max_size=6), st.one_of(small_ints, dict_fields),
                               min_size=1, max_size=4).map(ImmutableDict)
records_of_dicts = st.tuples(
    st.text(max_size=5).map(Symbol),
    st.lists(st.one_of(record_dicts, record_dicts, dict_fields), min_size=1, max_size=4),
).map(lambda lf: Record(lf[0], lf[1]))


@given(records_of_dicts, st.data())
@example(Record(Symbol("message"), ["to", ImmutableDict({"a": 1})]), None)
def test_a_kept_dictionary_is_written_back_as_our_encoder_writes_it(record, data):
    # Whatever bytes a peer sent, what a server forwards is what it wrote before it
    # kept them: the dictionaries it read in its shortest form go on as they came, the
    # others are written again.
    wire = _loose(record, data.draw) if data else encode(record)
    packet = encode_turn([(1, Message(Preencoded(wire))), (2, Message(record))])
    kept = PacketReader(frozen=True, keep_bytes=True)
    kept.feed(packet)
    [kept_value] = list(kept)
    forwarded = encode(kept_value)
    _forget_bytes(kept_value)
    assert forwarded == encode(kept_value)  # the same object, written value by value
    events = parse_packet(kept_value)
    assert len(events) == 2
    # Written by our encoder: every dictionary field (with no set or NaN) keeps its bytes.
    kept.feed(packet)
    for field in parse_packet(next(kept))[1][1].body.fields:
        if type(field) is ImmutableDict and _regular(field):
            assert getattr(field, WIRE_BYTES) == encode(field)


@pytest.mark.parametrize("field, kept", [
    (b"\xb7\xb1\x01a\xb0\x01\x05\x84", True),
    (b"\xb7\xb1\x01a\xb0\x01\x00\x84", False),  # 0 in a byte
    (b"\xb7\xb1\x01a\xb0\x02\x00\x05\x84", False),  # a sign byte not needed
    (b"\xb7\xb1\x01a\xb0\x02\xff\x85\x84", False),
    (b"\xb7\xb1\x01a\xb0\x02\x00\x85\x84", True),
    (b"\xb7\xb1\x81\x00a\xb0\x00\x84", False),  # a length in two bytes
    (b"\xb7\xb1\x01a\x85\xb1\x01n\xb0\x00\x84", False),  # an annotation
    (b"\xb7\xb1\x01a\xb6\xb0\x00\xb0\x01\x01\x84\x84", False),  # a set
    (b"\xb7\xb1\x01a\x86\xb5\xb0\x00\xb0\x01\x03\x84\x84", False),  # an embedded
    (b"\xb7\xb1\x01a\x87\x08\x7f\xf8\x00\x00\x00\x00\x00\x01\x84", False),  # NaN
    (b"\xb7\xb1\x01a\xb7\xb1\x01b\xb0\x01\x01\x84\x84", True),
    (b"\xb7\xb1\x01a\xb7\xb1\x01b\xb0\x01\x00\x84\x84", False),  # odd inside
])
def test_what_a_server_keeps_the_bytes_of(field, kept):
    reader = PacketReader(frozen=True, keep_bytes=True)
    reader.feed(encode_turn([(1, Message(Preencoded(b"\xb4\xb3\x01m" + field + b"\x84")))]))
    [(_, event)] = parse_packet(next(reader))
    body = event.body.fields[0]
    assert (getattr(body, WIRE_BYTES, None) == field) is kept
    assert hasattr(body, WIRE_BYTES) is kept


def _forget_bytes(value) -> None:
    t = type(value)
    if t is ImmutableDict:
        if hasattr(value, WIRE_BYTES):
            delattr(value, WIRE_BYTES)
        for k, v in value.items():
            _forget_bytes(k)
            _forget_bytes(v)
    elif t is tuple or t is frozenset:
        for x in value:
            _forget_bytes(x)
    elif t is Record:
        _forget_bytes(value.key)
        for x in value.fields:
            _forget_bytes(x)


def _regular(value) -> bool:
    """No set or NaN anywhere in ``value`` (which the reader does not keep the bytes of)."""
    t = type(value)
    if t is frozenset or (t is float and value != value):
        return False
    if t is tuple:
        return all(_regular(x) for x in value)
    if t is Record:
        return _regular(value.key) and all(_regular(x) for x in value.fields)
    if t is ImmutableDict:
        return all(_regular(k) and _regular(v) for k, v in value.items())
    return True
