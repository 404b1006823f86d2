"""Hypothesis strategies for the JSON wire: classic values with everything JSON finds awkward.

Shared by ``tests/classic/test_wire_json.py`` (the codec on its own) and
``tests/spaces/test_wire_backends.py`` (the same values through every backend). On top of
``fuzz_strategies.json_values`` (NaN, infinities, ints up to 2**200): strings and keys
with surrogate code points (lone, and high+low pairs that must stay two code points),
ints up to Python's int/str limit, nesting close to ``values.MAX_DEPTH``, non-ASCII keys.
"""

from __future__ import annotations

import sys

from hypothesis import strategies as st

from dataspace_agency.classic.values import MAX_DEPTH

# Any code point: st.characters() leaves out the surrogates (category Cs); add them back,
# and a high+low pair (a JSON reader joins the escaped pair into one character).
_chars = st.one_of(st.characters(), st.characters(categories=["Cs"]))
_pairs = st.tuples(st.characters(min_codepoint=0xD800, max_codepoint=0xDBFF),
                   st.characters(min_codepoint=0xDC00, max_codepoint=0xDFFF)).map("".join)
texts = st.one_of(st.text(_chars, max_size=8),
                  st.builds(lambda a, p, b: a + p + b, st.text(_chars, max_size=3), _pairs,
                            st.text(_chars, max_size=3)))
# For a backend that cannot carry surrogates yet (see test_wire_backends.py).
texts_without_surrogates = st.text(st.characters(), max_size=8)

_LIMIT = sys.get_int_max_str_digits() or 4300
_EDGE = 10**_LIMIT - 1  # the largest int with a JSON text (exactly the limit in digits)
ints = st.one_of(st.integers(), st.integers(-(2**200), 2**200),
                 st.integers(-_EDGE, _EDGE), st.sampled_from([_EDGE, -_EDGE]))


def _nest(depth: int, inner: object, as_dicts: bool) -> object:
    for level in range(depth):
        inner = {f"k{level}": inner} if as_dicts else [inner]
    return inner


class Values:
    """The strategies, over a given strategy for strings (and dict keys)."""

    def __init__(self, texts: st.SearchStrategy) -> None:
        atoms = st.one_of(st.none(), st.booleans(), ints, st.floats(), texts)
        self.json_values = st.recursive(
            atoms,
            lambda children: st.one_of(st.lists(children, max_size=4),
                                       st.dictionaries(texts, children, max_size=4)),
            max_leaves=16)
        # Deep: the args dict is one level, so a value in it may have MAX_DEPTH - 1 more.
        # Up to MAX_DEPTH - 3 (the last two levels break some backends: see
        # test_wire_backends.DEPTH_BROKEN), and past the limit (every layer must refuse).
        deep = st.one_of(
            st.builds(_nest, st.integers(MAX_DEPTH - 12, MAX_DEPTH - 3), atoms, st.booleans()),
            st.builds(_nest, st.integers(MAX_DEPTH, MAX_DEPTH + 3), atoms, st.booleans()))
        self.arg_values = st.one_of(self.json_values, deep)
        # Any argument names but "self": an action is a method, and Python binds its
        # receiver by that name, so {"self": ...} is refused by the call (TypeError,
        # answered as an [error]) on every backend alike, not carried.
        self.args = st.dictionaries(texts.filter(lambda k: k != "self"), self.arg_values,
                                    max_size=5)
        # meta extras: any keys but the two the schema gives a meaning to.
        self.meta_extras = st.dictionaries(
            texts.filter(lambda k: k not in ("id", "parent_id")), self.json_values,
            max_size=3)


every = Values(texts)
without_surrogates = Values(texts_without_surrogates)


def fingerprint(value: object) -> str:
    """A lossless, ASCII, flat text of a JSON-like value: equal for values ``json_equal``
    calls equal (NaN is NaN, dict order aside), different otherwise (-0.0 is not 0.0,
    True is not 1, a surrogate pair is not the character it would encode). Flat, so an
    agent can answer with it for a value already as deep as a message may hold."""
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return f"i{value:x}"  # hex: no digit limit, unlike decimal
    if isinstance(value, float):
        return "fnan" if value != value else f"f{value.hex()}"
    if isinstance(value, str):
        return f"s{ascii(value)}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(fingerprint(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(sorted(f"{fingerprint(k)}:{fingerprint(v)}"
                                     for k, v in value.items())) + "}"
    raise TypeError(f"not JSON-like: {type(value).__name__}")
