"""keys.immutable_dict and keys.frozen_dict build ImmutableDicts without preserves'
constructor: they must be indistinguishable from the constructor's (equality, hash,
immutability, encoding)."""

import preserves
from hypothesis import given, strategies as st
from preserves import ImmutableDict

from dataspace_agency.dataspace.keys import frozen, frozen_dict, immutable_dict, to_key

atoms = st.one_of(st.text(), st.integers(), st.floats(allow_nan=False), st.booleans())


@given(st.dictionaries(st.text(), atoms, max_size=8))
def test_frozen_dict_is_the_constructors_dict(items):
    made, expected = frozen_dict(dict(items)), ImmutableDict(items)
    assert type(made) is ImmutableDict
    assert made == expected and hash(made) == hash(expected)
    assert preserves.stringify(made) == preserves.stringify(expected)
    assert to_key(made) == to_key(expected)
    assert frozen(made) is made  # marked deeply frozen: routing does not re-walk it
    plain = immutable_dict(dict(items))
    assert type(plain) is ImmutableDict and plain == expected and hash(plain) == hash(expected)


def test_made_dicts_refuse_changes_like_the_constructors():
    for made in (frozen_dict({"a": 1}), immutable_dict({"a": 1})):
        for change in (lambda: made.__setitem__("b", 2), lambda: made.update({"b": 2}),
                       lambda: made.pop("a"), made.clear):
            try:
                change()
            except TypeError as exc:
                assert "Immutable" in str(exc)
            else:
                raise AssertionError("an ImmutableDict changed")
        assert made == {"a": 1}
