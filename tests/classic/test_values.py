"""The JSON <-> Preserves mapping in dataspace_agency.classic.values."""

from __future__ import annotations

import math

import preserves
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dataspace_agency.classic.values import NotJSON, check_json, from_preserves, to_preserves

NULL = preserves.Symbol("null")


def same(a, b) -> bool:
    """Equality that also demands identical types, so 1 != 1.0, True != 1, -0.0 != 0.0."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        # Key order is not part of the mapping (canonical encoding sorts keys).
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, float):
        if math.isnan(a):
            return math.isnan(b)
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    return a == b


scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**200), max_value=2**200)
    | st.floats(allow_nan=False)
    | st.text()
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(), children, max_size=5),
    max_leaves=25,
)


def test_same_is_strict():
    assert not same(1, 1.0)
    assert not same(True, 1)
    assert not same(0.0, -0.0)
    assert not same([1], (1,))
    assert same({"a": [1, None]}, {"a": [1, None]})


@given(json_values)
def test_round_trip_in_memory(v):
    assert same(from_preserves(to_preserves(v)), v)


@given(json_values)
def test_round_trip_through_binary_codec(v):
    p = to_preserves(v)
    assert same(from_preserves(preserves.decode(preserves.encode(p))), v)


@given(json_values)
def test_check_json_accepts_and_built_value_is_hashable(v):
    check_json(v)
    hash(to_preserves(v))


def test_scalar_table():
    assert to_preserves(None) == NULL
    assert to_preserves(True) is True
    assert type(to_preserves(1)) is int
    assert type(to_preserves(1.0)) is float
    assert to_preserves(10**40) == 10**40
    assert to_preserves("x") == "x"
    assert from_preserves(NULL) is None


def test_containers_built_as_tuple_and_immutable_dict():
    p = to_preserves({"a": [1, [2]]})
    assert isinstance(p, preserves.ImmutableDict)
    assert p["a"] == (1, (2,))
    back = from_preserves(p)
    assert type(back) is dict and type(back["a"]) is list and type(back["a"][1]) is list


def test_tuple_becomes_list():
    assert same(from_preserves(to_preserves((1, (2, "x")))), [1, [2, "x"]])


def test_from_preserves_accepts_lists():
    assert same(from_preserves([1, [NULL]]), [1, [None]])


@pytest.mark.parametrize("x", [float("nan"), float("inf"), float("-inf")])
def test_nan_and_infinities_are_doubles(x):
    p = to_preserves(x)
    assert type(p) is float
    back = from_preserves(preserves.decode(preserves.encode(p)))
    assert type(back) is float and same(back, x)


def test_int_subclasses_become_plain_ints():
    import enum

    class Colour(enum.IntEnum):
        RED = 1

    assert type(to_preserves(Colour.RED)) is int


@pytest.mark.parametrize(
    "value, path, message",
    [
        (b"ab", "meta.x", "meta.x: not a JSON value: b'ab' (bytes)"),
        ({1, 2}, "value", "value: not a JSON value: {1, 2} (set)"),
        (object, "value", "value: not a JSON value: <class 'object'> (type)"),
        ({"items": [0, 1, {1: "a"}]}, "args", "args.items[2]: dict keys must be strings, got 1 (int)"),
        ([[0, [b"x"]]], "v", "v[0][1][0]: not a JSON value: b'x' (bytes)"),
        ({"a b": {"c": b""}}, "meta", "meta['a b'].c: not a JSON value: b'' (bytes)"),
        (preserves.Symbol("null"), "value", "value: not a JSON value: #null (Symbol)"),
    ],
)
def test_to_preserves_rejects(value, path, message):
    for fn in (to_preserves, check_json):
        with pytest.raises(NotJSON) as info:
            fn(value, path)
        assert str(info.value) == message


def test_not_json_is_a_type_error():
    assert issubclass(NotJSON, TypeError)


@pytest.mark.parametrize(
    "value, message",
    [
        (preserves.Symbol("foo"), "value: symbol #foo has no JSON form (only #null does)"),
        (b"ab", "value: not a JSON value: b'ab' (bytes)"),
        (frozenset([1]), "value: not a JSON value: frozenset({1}) (frozenset)"),
        (
            preserves.ImmutableDict({"a": (1, preserves.Record(preserves.Symbol("r"), [1]))}),
            "value.a[1]: not a JSON value: #r(1) (Record)",
        ),
        (preserves.ImmutableDict({preserves.Symbol("k"): 1}), "value: dict keys must be strings, got #k (Symbol)"),
        (preserves.Embedded(object()), None),
        (None, "value: not a JSON value: None (NoneType)"),
    ],
)
def test_from_preserves_rejects(value, message):
    with pytest.raises(NotJSON) as info:
        from_preserves(value)
    if message is None:
        assert str(info.value).startswith("value: not a JSON value: ")
    else:
        assert str(info.value) == message


def test_long_values_are_abbreviated_in_errors():
    with pytest.raises(NotJSON) as info:
        to_preserves({"blob": b"x" * 10_000}, "args")
    assert len(str(info.value)) < 120


@given(json_values)
def test_round_trip_through_canonical_encoding(v):
    p = to_preserves(v)
    assert same(from_preserves(preserves.decode(preserves.encode(p, canonicalize=True))), v)


# --- bodies built in this process keep their identity through the index -----------------


def _unmarked(value):
    """The same Preserves value rebuilt without the deeply-frozen mark (as a peer's
    decoder would build it)."""
    if isinstance(value, preserves.ImmutableDict):
        return preserves.ImmutableDict({k: _unmarked(v) for k, v in value.items()})
    if isinstance(value, tuple):
        return tuple(_unmarked(v) for v in value)
    return value


@given(st.dictionaries(st.text(max_size=5), json_values, max_size=4))
def test_a_built_body_has_the_key_of_the_same_value_decoded(value):
    """Oracle: the key of the same value without the mark. The kept key is equal, hashes
    the same, navigates the same, and gives the very object back."""
    from dataspace_agency.dataspace.keys import class_of, from_key, order_key, step, to_key

    built = to_preserves(value)
    plain = _unmarked(built)
    kept, oracle = to_key(built), to_key(plain)
    assert kept == oracle and hash(kept) == hash(oracle)
    assert class_of(kept) == class_of(oracle) == "d"
    assert order_key(kept) == order_key(oracle)
    for name in value:
        assert step(kept, name) == step(oracle, name)
    assert from_key(kept) is built
    assert from_key(oracle) == plain
