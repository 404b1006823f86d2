"""Fuzzing the classic side: the JSON <-> Preserves mapping (``classic/values.py``) and the
message validator (``classic/message.py``).

Properties: for JSON-like values (NaN, infinities and huge ints included) the round trip
JSON -> Preserves -> JSON is the identity (also through the wire codec), and the fast and
careful walks agree; a value with one non-JSON part (bytes, sets, objects, non-string keys,
ints too long to print) is refused with :class:`NotJSON` naming that part's path; deep
nesting and cycles are a NotJSON, never a RecursionError; a message with any one field made
wrong is a :class:`MessageError` naming that field, never another exception.
"""

from __future__ import annotations

import copy

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataspace_agency.classic import values
from dataspace_agency.classic.message import MessageError, make_reply, validate_message
from dataspace_agency.classic.values import MAX_DEPTH, NotJSON
from dataspace_agency.protocol.codec import decode, encode

from fuzz_strategies import (FIELDS, json_equal, json_values, json_with_one_bad_part,
                             preserves_values, valid_message)

# Hypothesis pretty-prints each example: a nested Preserves value of a few dozen leaves
# passes its 30 kB "Generating overly large repr" warning line (as in
# tests/protocol/test_codec.py). The values' size is what these tests want.
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")

FUZZ = settings(max_examples=200, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])


def _careful_to_preserves(value):
    return values._run(values._walk_json, value, values._PRESERVES, "value")


def _careful_from_preserves(value):
    return values._run(values._walk_preserves, value, "", "value")


@FUZZ
@given(json_values)
def test_json_to_preserves_to_json_is_the_identity(value):
    p = values.to_preserves(value)
    assert json_equal(values.from_preserves(p), value)
    assert json_equal(values.from_preserves(decode(encode(p))), value)  # across the wire
    assert json_equal(values.json_copy(value), value)
    values.check_json(value)


@FUZZ
@given(json_values)
def test_the_fast_and_careful_walks_agree(value):
    fast = values.to_preserves(value)
    careful = _careful_to_preserves(value)
    assert encode(fast) == encode(careful)
    assert json_equal(values.from_preserves(fast), _careful_from_preserves(careful))


@FUZZ
@given(json_with_one_bad_part())
def test_a_non_json_part_is_refused_naming_its_path(case):
    value, path, _bad = case
    for convert in (values.to_preserves, values.check_json, values.json_copy):
        with pytest.raises(NotJSON) as raised:
            convert(value)
        assert str(raised.value).startswith(f"{path}: "), (str(raised.value), path)


@FUZZ
@given(preserves_values)
def test_any_preserves_value_maps_back_to_json_or_is_refused(value):
    try:
        result = values.from_preserves(value)
    except NotJSON as exc:
        assert str(exc).startswith("value")
        with pytest.raises(NotJSON):
            _careful_from_preserves(value)
        return
    assert json_equal(_careful_from_preserves(value), result)
    assert encode(values.to_preserves(result)) == encode(value)


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 5_000, 100_000])
def test_deep_nesting_is_not_json_never_a_recursion_error(depth):
    value: object = 1
    for _ in range(depth):
        value = [value] if depth % 2 else {"k": value}
    for convert in (values.to_preserves, values.check_json, values.json_copy):
        with pytest.raises(NotJSON, match=f"nested more than {MAX_DEPTH}"):
            convert(value)
    preserved = 1
    for _ in range(depth):
        preserved = (preserved,)
    with pytest.raises(NotJSON, match="nested more than"):
        values.from_preserves(preserved)


def test_the_depth_limit_is_exact():
    value: object = 1
    for _ in range(MAX_DEPTH):
        value = [value]
    assert json_equal(values.from_preserves(values.to_preserves(value)), value)
    with pytest.raises(NotJSON):
        values.to_preserves([value])


def test_regression_cycles_and_deep_args_are_message_errors():
    # Was: RecursionError out of check_json/json_copy/validate_message.
    cycle: list = []
    cycle.append(cycle)
    deep: object = []
    for _ in range(100_000):
        deep = [deep]
    for bad in (cycle, deep):
        message = valid_message()
        message["action"]["args"]["x"] = bad
        with pytest.raises(MessageError, match=r"action\.args\.x\[0\].*nested more than"):
            validate_message(message)
        with pytest.raises(NotJSON, match="nested more than"):
            values.check_json(bad)
    with pytest.raises(MessageError, match="message.meta must be a dict"):
        validate_message({**valid_message(), "meta": deep})


def test_regression_ints_too_long_to_print_in_error_messages():
    # Was: ValueError (no repr beyond 4,300 digits) instead of NotJSON / MessageError.
    with pytest.raises(NotJSON, match="dict keys must be strings, got <int too large"):
        values.to_preserves({10**5000: 1})
    with pytest.raises(MessageError, match="meta.id must be a non-empty string"):
        validate_message({**valid_message(), "meta": {"id": 10**5000}})
    assert values.to_preserves(10**5000) == 10**5000  # as a value it is fine


@FUZZ
@given(st.sampled_from(sorted(FIELDS)), st.data())
def test_a_message_with_one_wrong_field_is_a_message_error_naming_it(field, data):
    where, wrong, named = FIELDS[field]
    message = valid_message()
    target = message
    for step in where[:-1]:
        target = target[step]
    target[where[-1]] = data.draw(wrong)
    with pytest.raises(MessageError) as raised:
        validate_message(message)
    assert named in str(raised.value)
    assert len(str(raised.value)) < 500  # a huge value is not copied into the message


@FUZZ
@given(st.dictionaries(st.sampled_from(["meta", "from", "to", "action", "extra", 1]),
                       json_values, max_size=5),
       st.booleans())
def test_any_dict_is_a_valid_message_or_a_message_error(message, require_id):
    before = copy.deepcopy(message)
    try:
        result = validate_message(message, require_id=require_id)
    except MessageError as exc:
        assert str(exc)
        return
    finally:
        assert json_equal(message, before)  # never mutated
    assert validate_message(result, require_id=require_id) == result
    assert json_equal(values.from_preserves(values.to_preserves(result)), result)


@FUZZ
@given(json_values)
def test_a_reply_carries_any_json_value_intact(value):
    reply = make_reply(valid_message(), "bob", value=value)
    assert json_equal(reply["action"]["args"]["value"], value)
    assert reply["meta"]["parent_id"] == "m1" and reply["to"] == "alice"
