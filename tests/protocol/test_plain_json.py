"""Messages read straight into JSON (``PacketReader(plain=...)``, the classic inbox of a
client; ``decode_keeping_json``, a Zenoh proxy's, at the end): the oracle is the usual decoding followed by ``values.from_preserves``. Whatever
that converts, the plain reading gives (the same JSON value); whatever it refuses, or the
decoder refuses, the reader gives or raises exactly what it did without ``plain``."""

from __future__ import annotations

import math

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from preserves import ImmutableDict, Record, Symbol

from dataspace_agency.classic import values as classic_values
from dataspace_agency.classic.message import MessageError, validate_message
from dataspace_agency.classic.wire_json import json_size
from dataspace_agency.protocol.codec import (Message, PacketReader, PlainJSON, ProtocolError,
                                             decode, encode, encode_turn, parse_packet)
from dataspace_agency.protocol.plain_json import KeptJSON, decode_keeping_json

from test_codec import dict_texts, json_values, values

pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")

PLAIN_OID = 7
DEPTH = classic_values.MESSAGE_DEPTH


def _plain(oid: int) -> int:
    return DEPTH if oid == PLAIN_OID else 0


def _read(data: bytes, cuts: list[int] = (), plain=_plain, max_depth: int = 200) -> list:
    reader = PacketReader(max_depth=max_depth, plain=plain)
    got, start = [], 0
    for cut in [*sorted(cuts), len(data)]:
        reader.feed(data[start:cut])
        start = cut
        got.extend(reader)
    return got


def _same(a, b) -> bool:
    """Equal, NaN equal to NaN, lists and tuples told apart."""
    if type(a) is not type(b):
        return False
    if type(a) is float:
        return a == b or (math.isnan(a) and math.isnan(b))
    if type(a) is list:
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if type(a) is dict:
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


def _as_usual(oid: int, event, usual_event) -> bool:
    """The same event (compared as bytes: NaN is not equal to itself)."""
    return type(event) is type(usual_event) and (
        encode_turn([(oid, event)]) == encode_turn([(oid, usual_event)]))


def _check(data: bytes, got: list) -> None:
    """``got``: the events read from ``data`` (a Turn) with ``plain``, compared with what
    the usual reading and from_preserves make of it."""
    usual = parse_packet(_read(data, plain=None)[0])
    events = parse_packet(got[0])
    assert len(events) == len(usual)
    for (oid, event), (usual_oid, usual_event) in zip(events, usual):
        assert oid == usual_oid
        captures = usual_event.body if type(usual_event) is Message else None
        if oid != PLAIN_OID or type(captures) is not tuple:
            assert _as_usual(oid, event, usual_event)
            continue
        try:
            expected = [classic_values.from_preserves(c, depth=DEPTH) for c in captures]
        except classic_values.NotJSON:
            assert _as_usual(oid, event, usual_event)  # decoded the usual way
            continue
        assert type(event.body) is tuple
        assert all(type(c) is PlainJSON for c in event.body)
        assert len(event.body) == len(expected)
        assert all(_same(c.value, e) for c, e in zip(event.body, expected))


message_bodies = st.lists(st.one_of(values, json_values.map(classic_values.to_preserves)),
                          max_size=3).map(tuple)


@given(message_bodies, st.data())
@example((ImmutableDict({"to": "a", "n": Symbol("null"), "f": 1.5, "l": (1, True)}),), None)
@example((ImmutableDict({"to": Symbol("other")}),), None)
@example((ImmutableDict({1: "x"}),), None)
def test_a_message_to_a_plain_oid_is_read_into_json_or_else_as_before(captures, data):
    events = [(3, Message(captures)), (PLAIN_OID, Message(captures)),
              (PLAIN_OID, Message(Record(Symbol("x"), [1]))), (PLAIN_OID, Message(captures))]
    packet = encode_turn(events)
    cuts = data.draw(st.lists(st.integers(0, len(packet)), max_size=5)) if data else []
    _check(packet, _read(packet, cuts))


@given(st.dictionaries(dict_texts, st.one_of(dict_texts, json_values), max_size=6))
def test_long_and_short_strings_in_a_plain_message(message):
    captures = (classic_values.to_preserves(message),)
    packet = encode_turn([(PLAIN_OID, Message(captures))])
    _check(packet, _read(packet))


def _nested(levels: int):
    """A Preserves value of ``levels`` nested sequences and dictionaries."""
    value: object = "leaf"
    for n in range(levels):
        value = ImmutableDict({"k": value}) if n % 2 else (value,)
    return value


@pytest.mark.parametrize("levels", [DEPTH - 1, DEPTH, DEPTH + 1, DEPTH + 2])
def test_the_json_depth_limit_is_from_preserves_own(levels):
    captures = (_nested(levels),)
    packet = encode_turn([(PLAIN_OID, Message(captures))])
    [(_, event)] = parse_packet(_read(packet)[0])
    plain = levels <= DEPTH
    assert (type(event.body[0]) is PlainJSON) is plain
    if plain:
        assert event.body[0].value == classic_values.from_preserves(captures[0], depth=DEPTH)
    else:
        assert event.body == captures  # as before; from_preserves then refuses it
        with pytest.raises(classic_values.NotJSON):
            classic_values.from_preserves(captures[0], depth=DEPTH)


def test_the_wire_depth_limit_still_applies():
    captures = (_nested(20),)
    packet = encode_turn([(PLAIN_OID, Message(captures))])
    for max_depth in range(1, 26):
        try:
            usual = _read(packet, plain=None, max_depth=max_depth)
        except ProtocolError as exc:
            with pytest.raises(ProtocolError, match=str(exc)):
                _read(packet, max_depth=max_depth)
            continue
        [(_, event)] = parse_packet(_read(packet, max_depth=max_depth)[0])
        assert type(event.body[0]) is PlainJSON
        assert usual  # both read it


@pytest.mark.parametrize("body, problem", [
    (b"\xb5\xb7\xb1\x01k\xb1\x01v\xb1\x01k\xb0\x00\x84\x84", "duplicate key"),
    (b"\xb5\xb7\xb1\x01k\xb1\x02\xff\xfe\x84\x84", "not UTF-8"),
    (b"\xb5\xb7\xb1\x01k\x84\x84", "key but no value"),
    (b"\xb5\x87\x04abcd\x84", "float of 4 bytes"),
    (b"\xb5\xff\x84", "invalid tag"),
])
def test_malformed_plain_messages_are_the_same_protocol_errors(body, problem):
    packet = b"\xb5\xb5\xb0\x01\x07\xb4\xb3\x01M" + body + b"\x84\x84\x84"
    for plain in (None, _plain):
        with pytest.raises(ProtocolError, match=problem):
            _read(packet, plain=plain)


def test_an_int_too_long_to_promise_a_json_text_is_decoded_the_usual_way():
    for n, plain in [(2**500, True), (2**520, False), (-(2**600), False)]:
        captures = (ImmutableDict({"n": n}),)
        packet = encode_turn([(PLAIN_OID, Message(captures))])
        [(_, event)] = parse_packet(_read(packet)[0])
        assert (type(event.body[0]) is PlainJSON) is plain
        assert (event.body[0].value if plain else event.body[0]) == (
            {"n": n} if plain else captures[0])


# What json_bound promises (wire_values.PlainJSON): JSON text + 1 <= 6 x the Preserves
# bytes, whatever the value, so a message's, once validated, is within json_bound.
bound_texts = st.one_of(st.text(max_size=20), st.text(st.characters(max_codepoint=0x1f)),
                        st.text("\"\\x", max_size=10))
bound_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**511), 2**511 - 1),
              st.integers(-200, 200), st.floats(), bound_texts),
    lambda children: st.one_of(st.lists(children, max_size=6),
                               st.dictionaries(bound_texts, children, max_size=4)),
    max_leaves=30)


@given(bound_values)
@example([False] * 10)
@example({"": False})
@example("\x00" * 5)
@example(-1.2345678901234567e-300)
@example(2**511 - 1)
def test_compact_json_is_shorter_than_six_times_the_preserves_form(value):
    assert json_size(value) + 1 <= 6 * len(encode(classic_values.to_preserves(value)))


@given(st.dictionaries(bound_texts, bound_values, max_size=3), st.booleans())
def test_a_plain_message_once_validated_is_within_its_json_bound(args, with_args):
    action = {"name": "take", "args": args} if with_args else {"name": "take"}
    message = {"meta": {"id": "m1"}, "from": "a", "to": "b", "action": action}
    captures = (classic_values.to_preserves(message),)
    packet = encode_turn([(PLAIN_OID, Message(captures))])
    [(_, event)] = parse_packet(_read(packet)[0])
    try:
        validated = validate_message(event.body[0].value, copy=False)
    except MessageError:
        return
    assert json_size(validated) <= event.body[0].json_bound


# --- decode_keeping_json: a record's dictionary fields as KeptJSON ------------------------
# The oracle is decode: what decode_keeping_json gives stands for the same value (each
# KeptJSON for the value it was read from, and holding from_preserves' JSON of it), and
# what decode refuses it refuses with the same error.

def _unkept(value):
    """``value`` with each KeptJSON field replaced by the value it stands for."""
    if type(value) is Record:
        return Record(value.key, [f.__preserve__() if type(f) is KeptJSON else f
                                  for f in value.fields])
    return value


def _keeping(data: bytes):
    return decode_keeping_json(data, json_depth=DEPTH, frozen=True)


records = st.builds(Record, st.one_of(st.just(Symbol("message")), values),
                    st.lists(st.one_of(values, json_values.map(classic_values.to_preserves)),
                             max_size=3))


@given(st.one_of(records, values))
@example(Record(Symbol("message"), ["a", ImmutableDict({"k": Symbol("null")})]))
@example(Record(Symbol("message"), ["a", ImmutableDict({1: "x"}), ImmutableDict({})]))
def test_decode_keeping_json_stands_for_what_decode_gives(value):
    data = encode(value)
    usual = decode(data, frozen=True)
    kept = _keeping(data)
    assert encode(_unkept(kept)) == encode(usual)  # bytes: NaN is not equal to itself
    if type(usual) is not Record:
        assert type(kept) is type(usual)
        return
    dicts = [(i, f) for i, f in enumerate(usual.fields) if type(f) is ImmutableDict]
    try:
        expected = [classic_values.from_preserves(f, depth=DEPTH) for _, f in dicts]
    except classic_values.NotJSON:
        assert not any(type(f) is KeptJSON for f in kept.fields)  # the record as usual
        return
    for (i, _), json in zip(dicts, expected):
        field = kept.fields[i]
        assert type(field) is KeptJSON and isinstance(field, PlainJSON)
        assert _same(field.value, json)
        assert field.json_bound >= 6 * len(encode(usual.fields[i]))


@given(records, st.data())
def test_decode_keeping_json_refuses_what_decode_refuses(value, data):
    encoded = encode(value)
    cut = data.draw(st.integers(0, len(encoded)))
    where = data.draw(st.integers(0, len(encoded) - 1))
    byte = data.draw(st.integers(0, 255))
    for bad in (encoded[:cut], encoded[:where] + bytes([byte]) + encoded[where + 1:],
                encoded + b"\x80"):
        try:
            usual = decode(bad, frozen=True)
        except ProtocolError as exc:
            with pytest.raises(ProtocolError) as refused:
                _keeping(bad)
            assert str(refused.value) == str(exc)
        else:
            assert encode(_unkept(_keeping(bad))) == encode(usual)


@pytest.mark.parametrize("levels", [DEPTH - 2, DEPTH - 1, DEPTH, DEPTH + 1])
def test_a_field_nested_beyond_the_json_depth_is_decoded_as_usual(levels):
    nested = _nested(levels)
    if type(nested) is not ImmutableDict:
        nested = ImmutableDict({"k": nested})  # a dictionary field, one level more
    value = Record(Symbol("message"), ["a", nested])
    kept = _keeping(encode(value))
    try:
        classic_values.from_preserves(nested, depth=DEPTH)
        json_ok = True
    except classic_values.NotJSON:
        json_ok = False
    assert (type(kept.fields[1]) is KeptJSON) is json_ok
    assert encode(_unkept(kept)) == encode(value)


def test_each_taker_of_a_kept_json_gets_its_own_copy():
    body = ImmutableDict({"args": ImmutableDict({"items": ("a",)})})
    field = _keeping(encode(Record(Symbol("message"), ["x", body]))).fields[1]
    first, second = field.take(), field.take()
    assert first == second == {"args": {"items": ["a"]}}
    first["args"]["items"].append("changed")
    assert second == {"args": {"items": ["a"]}}  # not shared
    assert field.take() == {"args": {"items": ["a"]}}
    assert field.__preserve__() == body and field.__preserve__() is field.__preserve__()
