"""The pattern compiler reads raw Preserves patterns (as they arrive in Observe records)
exactly as it reads syndicate-py's parsed ones, and rejects malformed ones by name."""

from __future__ import annotations

import pytest
from preserves import Embedded, Record, Symbol, preserve
from syndicate import patterns as P

from dataspace_agency.dataspace.patterns import InvalidPattern, compile_pattern


class _Thing:
    pass


PATTERNS = [
    P._,
    P.CAPTURE,
    P.lit(1.5),
    P.lit(True),
    P.lit(Embedded(_Thing())),
    P.rec("Present", P.CAPTURE),
    P.rec("Job", P.bind(P.dict(("id", P.CAPTURE), ("state", P.lit("open")))),
          P.arr(P.lit(1), P.CAPTURE), P._),
    P.dict((-1.0, P.CAPTURE), (Symbol("s"), P.lit(b"x")), ("k", P.bind(P.bind(P._)))),
    P.rec("Observe", P.rec("Present", P.CAPTURE), P._),
]


@pytest.mark.parametrize("pattern", PATTERNS, ids=repr)
def test_raw_and_parsed_patterns_compile_alike(pattern):
    assert compile_pattern(preserve(pattern)) == compile_pattern(pattern)


def _r(label, *fields):
    return Record(Symbol(label), list(fields))


@pytest.mark.parametrize("raw, problem", [
    ("a string", "not a dataspace pattern"),
    (_r("lit", _r("x")), "a literal must be an atom"),
    (_r("lit", [1]), "a literal must be an atom"),
    (_r("bind"), "not a dataspace pattern"),
    (_r("group", _r("rec", Symbol("x")), {"a": _r("_")}), "entry index must be"),
    (_r("group", _r("arr"), {-1: _r("_")}), "entry index must be"),
    (_r("group", _r("set"), {}), "not a group type"),
    (_r("group", _r("rec", Symbol("x")), [1]), "not a dataspace pattern"),
    (_r("group", _r("arr"), {0: "nested junk"}), "not a dataspace pattern"),
])
def test_malformed_raw_patterns_are_rejected_by_name(raw, problem):
    with pytest.raises(InvalidPattern, match=problem):
        compile_pattern(raw)
