"""The one JSON encoding of classic messages (classic/wire_json.py, spaces/wire.py).

Oracles: the round trip is the identity (``json_equal``: NaN is NaN, -0.0 keeps its sign,
types count) for every value the validator accepts; ``message_size`` is the length of the
bytes sent; anything that is not such JSON is a ``ValueError`` naming the problem.
The same values through every backend: tests/spaces/test_wire_backends.py.
"""

from __future__ import annotations

import json
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dataspace_agency.classic.message import (ERROR, MessageError, message_size,
                                              validate_message)
from dataspace_agency.classic.values import NotJSON
from dataspace_agency.classic.wire_json import decode_json, encode_json, json_size
from dataspace_agency.spaces.wire import decode_message, encode_message, refusal
from fuzz_strategies import json_equal
from wire_strategies import every, texts

LIMIT = sys.get_int_max_str_digits()


def message(args: dict, extras: dict | None = None, **fields) -> dict:
    return {"meta": {"id": "m1", **(extras or {})}, "from": "alice", "to": "bob",
            "action": {"name": "say", "args": args}, **fields}


@given(every.arg_values)
def test_round_trip_is_the_identity_for_json_like_values(value):
    data = encode_json(value)
    assert json_equal(decode_json(data), value)
    assert json_size(value) == len(data)


agent_ids = texts.filter(lambda t: t and t != "*" and not t.startswith("amq."))


@given(every.args, every.meta_extras, agent_ids)
def test_every_message_the_validator_accepts_comes_back_as_sent(args, extras, sender):
    try:
        checked = validate_message(message(args, extras, **{"from": sender}))
    except MessageError:
        return  # e.g. nested deeper than the limit: refused before any transport
    data = encode_message(checked)
    assert json_equal(decode_message(data), checked)
    assert message_size(checked) == len(data)


def test_surrogates_travel_as_themselves():
    lone, pair = "a\ud800b", "\ud83d\ude00"  # a pair: two code points, not U+1F600
    data = encode_json({lone: pair})
    back = decode_json(data)
    assert back == {lone: pair} and len(next(iter(back.values()))) == 2
    assert "\U0001F600" not in json.dumps(back, ensure_ascii=False)
    # Text without surrogates is plain UTF-8 JSON that any reader takes.
    assert json.loads(encode_json({"é": "\U0001F600"}).decode("utf-8")) == {"é": "\U0001F600"}


def test_awkward_floats_and_ints():
    value = [float("nan"), float("inf"), -float("inf"), -0.0, 1e-310, 10**LIMIT - 1, True, 1]
    assert json_equal(decode_json(encode_json(value)), value)


def test_an_int_over_pythons_limit_is_refused_naming_where_it_is():
    too_long = message({"list": [1, {"n x": -(10**LIMIT)}]})
    expected = (r"^action\.args\.list\[1\]\['n x'\]: an int of more than \d+ digits has no"
                r" JSON form")
    with pytest.raises(NotJSON, match=expected):
        encode_json(too_long)
    with pytest.raises(MessageError, match=expected):
        encode_message(too_long)
    with pytest.raises(MessageError, match=expected):  # the size limit says the same
        message_size(too_long)
    with pytest.raises(MessageError, match=expected):
        validate_message(too_long, max_size=1000)
    # 10**LIMIT - 1 has exactly LIMIT digits: still fine.
    assert decode_json(encode_json(10**LIMIT - 1)) == 10**LIMIT - 1


@pytest.mark.parametrize("data, problem", [
    (b'{"a":', "Expecting value"),
    (b"\xff{}", "can't decode byte 0xff"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deep"),
    (b"1" * (LIMIT + 1), "Exceeds the limit"),
    (b'{"a":1}x', "Extra data"),
])
def test_bytes_that_are_not_such_json_are_a_value_error(data, problem):
    with pytest.raises(ValueError, match=f"^not a JSON value: .*{problem}"):
        decode_json(data)


@settings(max_examples=300)
@given(st.binary(max_size=64))
def test_decoding_any_bytes_gives_a_value_or_a_value_error(data):
    try:
        decode_message(data)
    except MessageError:  # bad JSON, or JSON that is not a message: both name it
        pass


def test_decode_message_checks_the_schema():
    with pytest.raises(MessageError, match="message.from is missing"):
        decode_message(b'{"meta":{"id":"x"},"to":"b","action":{"name":"n"}}')


def test_refusal_answers_whoever_waits():
    error = MessageError("action.args.n: too long")
    request = validate_message(message({"n": 1}))
    answer = refusal(request, error)
    assert (answer["from"], answer["to"], answer["meta"]["parent_id"]) == ("bob", "alice", "m1")
    assert answer["action"] == {"name": ERROR,
                                "args": {"error": "MessageError: action.args.n: too long"}}
    reply = {"meta": {"id": "r1", "parent_id": "m1"}, "from": "bob", "to": "alice",
             "action": {"name": "[response]", "args": {"value": 1}}}
    instead = refusal(reply, error)  # the requester gets the error instead of the value
    assert (instead["from"], instead["to"], instead["meta"]["parent_id"]) == ("bob", "alice",
                                                                              "m1")
    assert instead["action"]["name"] == ERROR and instead["meta"]["id"] != "r1"
    assert refusal({**request, "to": "*"}, error) is None
    assert refusal({**reply, "action": {"name": ERROR, "args": {"error": "x"}}}, error) is None
