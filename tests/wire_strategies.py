"""Hypothesis strategies for the JSON wire: classic values with everything JSON finds awkward.

Shared by ``tests/test_wire_json.py`` (the codec on its own) and
``tests/test_wire_backends.py`` (the same values through every backend). On top of
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

_LIMIT = sys.get_int_max_str_digits() or 4300
_EDGE = 10**_LIMIT - 1  # the largest int with a JSON text (exactly the limit in digits)
ints = st.one_of(st.integers(), st.integers(-(2**200), 2**200),
                 st.integers(-_EDGE, _EDGE), st.sampled_from([_EDGE, -_EDGE]))
atoms = st.one_of(st.none(), st.booleans(), ints, st.floats(), texts)


def _nest(depth: int, inner: object, as_dicts: bool) -> object:
    for level in range(depth):
        inner = {f"k{level}": inner} if as_dicts else [inner]
    return inner


json_values = st.recursive(
    atoms,
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(texts, children, max_size=4)),
    max_leaves=16)
# Deep: the args dict is one level, so a value inside it may have MAX_DEPTH - 1 more.
deep_values = st.builds(_nest, st.integers(MAX_DEPTH - 8, MAX_DEPTH - 1), json_values,
                        st.booleans())
arg_values = st.one_of(json_values, deep_values)
args = st.dictionaries(texts, arg_values, max_size=5)
# meta extras: any keys but the two the schema gives a meaning to.
meta_extras = st.dictionaries(texts.filter(lambda k: k not in ("id", "parent_id")),
                              json_values, max_size=3)
