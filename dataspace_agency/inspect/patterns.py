"""Patterns typed by a person: a Preserves value in text syntax with holes.

The inspector's pattern box (and ``/api/facts?pattern=...``) takes a *template*: the
fact you are looking for, written in Preserves text, with

* ``$name`` (a symbol starting with ``$``) to capture what stands there, under that name;
* ``_`` to accept anything there (the position must exist);
* anything else must be equal: ``<agent "calc">``, ``<action $who "add" _>``.

Records (``<label f ...>``), sequences (``[a b]``) and dictionaries (``{k: v}``) match
values with *at least* the listed fields / entries, as Syndicate's patterns do. The whole
matching fact is always captured as well (first), so a template without holes shows the
facts themselves. A literal symbol starting with ``$`` is written ``$$name``.

Templates are turned into ``syndicate.patterns`` patterns (no pattern code of our own):
``parse_template`` raises :class:`BadPattern` with a message a person can act on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import preserves
from preserves import Record, Symbol
from syndicate import patterns as P

from ..dataspace.keys import order_key, to_key
from ..dataspace.patterns import InvalidPattern, compile_pattern

__all__ = ["BadPattern", "Template", "parse_template"]

MAX_TEXT = 4096  # a pattern box, not a file upload


class BadPattern(ValueError):
    """A template that cannot be used, with the reason."""


@dataclass(frozen=True)
class Template:
    text: str
    pattern: Any  # a syndicate.patterns pattern: <bind whole-template>
    names: tuple[str, ...]  # capture names after the whole fact, in capture order


def parse_template(text: str) -> Template:
    """The pattern for ``text`` (see the module docstring)."""
    if not isinstance(text, str) or not text.strip():
        raise BadPattern("empty pattern: type a fact with holes, e.g. <agent $id>")
    if len(text) > MAX_TEXT:
        raise BadPattern(f"pattern too long ({len(text)} characters; at most {MAX_TEXT})")
    try:
        value = preserves.parse(text)
    except Exception as exc:  # noqa: BLE001 - the parser raises several kinds
        raise BadPattern(f"not Preserves text ({exc}): is a bracket or a quote left open?"
                         f" Strings are in double quotes, e.g. <agent \"calc\">") from None
    names: list[str] = []
    try:
        body = _pattern(value, names)
        pattern = P.bind(body)
        compile_pattern(pattern)  # the dataspace's own check, so it cannot refuse it later
    except (InvalidPattern, TypeError, ValueError, RecursionError) as exc:
        raise BadPattern(f"cannot match on {text.strip()!r}: {exc}") from None
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:  # a name stands for one column; patterns cannot require equal values
        raise BadPattern(f"each hole needs a name of its own: ${repeated[0]} is used twice")
    return Template(text.strip(), pattern, tuple(names))


def _pattern(value: Any, names: list[str]) -> Any:
    if isinstance(value, Symbol):
        if value.name == "_":
            return P._
        if value.name.startswith("$$"):
            return P.lit(Symbol(value.name[1:]))
        if value.name.startswith("$"):
            if len(value.name) == 1:
                raise BadPattern("a hole needs a name: $name (or _ for an unnamed one)")
            names.append(value.name[1:])
            return P.bind(P._)
        return P.lit(value)
    if isinstance(value, Record):
        if isinstance(value.key, Symbol) and value.key.name.startswith("$"):
            raise BadPattern(f"a record label cannot be a hole: {preserves.stringify(value)}")
        return P._rec(value.key, *(_pattern(field, names) for field in value.fields))
    if isinstance(value, (list, tuple)):
        return P.arr(*(_pattern(item, names) for item in value))
    if isinstance(value, dict):
        # Walk the entries in the order the dataspace reports their captures (by
        # Preserves order of the keys), so that ``names`` lines up with the captures.
        entries = sorted(value.items(), key=lambda entry: order_key(to_key(entry[0])))
        return P.dict(*((key, _pattern(item, names)) for key, item in entries))
    if isinstance(value, (set, frozenset)):
        raise BadPattern("sets cannot be matched (Syndicate patterns have no set group)")
    return P.lit(value)
