"""Help entries for classic actions, generated from signature and docstring.

:func:`generate_help` turns an ``@action`` method into the JSON-like help
dict that classic agents advertise::

    {"description": "Say something to someone.",
     "args": {"content": {"type": "string", "description": "What to say."}},
     "returns": {"type": "string", "description": "The echo."}}

Types are JSON type names. They come from annotations when those map to a
JSON type, else from the Google-style docstring's ``name (type):`` and
``Returns: type: ...`` entries. Keys with nothing to say are omitted.
"""

from __future__ import annotations

import inspect
import re
import types
import typing
from typing import Any, Callable

__all__ = ["generate_help"]

_NAMED_TYPES = {
    "str": "string", "string": "string",
    "int": "number", "integer": "number", "float": "number", "number": "number",
    "bool": "boolean", "boolean": "boolean",
    "list": "array", "tuple": "array", "array": "array",
    "dict": "object", "object": "object",
}
_CLASS_TYPES = {str: "string", int: "number", float: "number", bool: "boolean",
                list: "array", tuple: "array", dict: "object"}

# Known Google-style section headers. A fixed list, so that a description line
# that merely ends in a colon ("Does the following:") is not taken for one.
_SECTIONS = {
    "args", "arguments", "parameters", "params", "keyword args", "keyword arguments",
    "returns", "return", "yields", "yield", "raises", "note", "notes", "example",
    "examples", "attributes", "todo", "see also", "warning", "warnings", "warns",
    "references",
}
_ARG_SECTIONS = {"args", "arguments", "parameters", "params", "keyword args", "keyword arguments"}
_RETURN_SECTIONS = {"returns", "return"}
_ARG_LINE = re.compile(r"^\**(\w+)\s*(?:\((.*?)\))?\s*:\s*(.*)$")


def _unify(names: list[str | None]) -> str | None:
    # Union[int, float] is still a number; Union[int, str] has no single type.
    return names[0] if names and all(n == names[0] for n in names) else None


def _split_top_level(text: str, sep: str) -> list[str]:
    """Split on `sep` outside brackets: 'Dict[str, int], optional' -> 2 parts."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += ch == "["
        depth -= ch == "]"
        if ch == sep and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    return parts + [text[start:].strip()]


def _type_from_string(text: str) -> str | None:
    """JSON type for a type written as text: 'str', 'Optional[int]', 'list[str] | None'..."""
    # Quotes appear when a quoted annotation meets `from __future__ import annotations`.
    text = text.strip().strip("'\"")
    # Google style allows "(str, optional)"; only the type part matters here.
    parts = _split_top_level(text, ",")
    if len(parts) > 1 and parts[-1].lower() == "optional":
        text = ", ".join(parts[:-1])
    arms = _split_top_level(text, "|")
    base, _, inner = text.partition("[")
    base = base.strip().rsplit(".", 1)[-1]  # typing.Optional -> Optional
    if len(arms) == 1 and base in ("Optional", "Union") and inner.endswith("]"):
        # Optional[X] / Union[X, Y] are unions just like X | Y.
        arms = _split_top_level(inner[:-1], ",")
    elif len(arms) == 1:
        return _NAMED_TYPES.get(base.lower())
    return _unify([_type_from_string(a) for a in arms if a != "None"])


def _type_from_annotation(annotation: Any) -> str | None:
    """JSON type for a (resolved or string) annotation, or None if unknown."""
    if annotation is inspect.Parameter.empty or annotation is None:
        return None
    if isinstance(annotation, str):  # unresolvable forward reference
        return _type_from_string(annotation)
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        arms = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _unify([_type_from_annotation(a) for a in arms])
    if origin is not None:  # List[int], dict[str, int], ...
        annotation = origin
    return _CLASS_TYPES.get(annotation) if isinstance(annotation, type) else None


def _annotations(method: Callable) -> dict[str, Any]:
    try:
        # Resolves `from __future__ import annotations` strings.
        return typing.get_type_hints(method)
    except Exception:
        # A forward reference that cannot be resolved: fall back to the raw
        # annotations; strings among them are mapped by name.
        return dict(getattr(method, "__annotations__", {}))


# (type text or None, description text) as written in the docstring.
_DocEntry = tuple[str | None, str]


def _parse_docstring(doc: str) -> tuple[str, dict[str, _DocEntry], _DocEntry | None]:
    """Split a Google docstring into (description, {arg: entry}, returns entry)."""
    lines = doc.splitlines()
    sections: dict[str, list[str]] = {}
    described: list[str] = []  # every line before the first section, as agency does
    current: str | None = None
    for line in lines:
        stripped = line.strip()
        header = stripped[:-1].lower() if stripped.endswith(":") else None
        if header in _SECTIONS and not line[:1].isspace():
            current = header
            sections.setdefault(current, [])
        elif current is not None:
            sections[current].append(line)
        elif stripped:
            described.append(stripped)
    description = " ".join(described)

    args: dict[str, _DocEntry] = {}
    for name in _ARG_SECTIONS & sections.keys():
        for entry in _entries(sections[name]):
            match = _ARG_LINE.match(entry)
            if match:
                arg, type_text, text = match.groups()
                args[arg] = (type_text, text.strip())

    returns = None
    for name in _RETURN_SECTIONS & sections.keys():
        text = " ".join(_entries(sections[name]))
        type_text, sep, rest = text.partition(":")
        if sep and _looks_like_type(type_text):
            returns = (type_text.strip(), rest.strip())
        else:
            returns = (None, text.strip())
    return description, args, returns


def _entries(lines: list[str]) -> list[str]:
    """Group a section's lines into entries: an entry line plus its deeper-indented continuations."""
    indents = [len(l) - len(l.lstrip()) for l in lines if l.strip()]
    if not indents:
        return []
    base = min(indents)
    entries: list[str] = []
    for line in lines:
        if not line.strip():
            continue
        if len(line) - len(line.lstrip()) <= base or not entries:
            entries.append(line.strip())
        else:
            entries[-1] += " " + line.strip()
    return entries


def _looks_like_type(text: str) -> bool:
    # "str: The echo." has a type before the colon; "The echo: a str" has
    # prose. Types have no spaces except inside brackets or around "|".
    outside = re.sub(r"\[.*\]", "", text.strip()).replace(" | ", "|")
    return bool(outside) and not re.search(r"\s", outside)


def generate_help(method: Callable) -> dict:
    """Build the help dict for an action method from its signature and docstring.

    ``self`` (or ``cls``) and ``*args``/``**kwargs`` are skipped. An argument's
    ``type`` comes from its annotation if that maps to a JSON type, else from
    the docstring; ``type``/``description`` are omitted when unknown.
    ``returns`` is omitted when there is neither a return annotation (other
    than ``None``) nor a Returns section.
    """
    doc = inspect.getdoc(method) or ""
    description, doc_args, doc_returns = _parse_docstring(doc)
    hints = _annotations(method)
    params = list(inspect.signature(method).parameters.values())
    # Unbound functions (as decorators see them) still carry self.
    if params and params[0].name in ("self", "cls"):
        params = params[1:]

    args: dict[str, dict] = {}
    for param in params:
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        doc_type, doc_text = doc_args.get(param.name, (None, None))
        args[param.name] = _entry(
            _type_from_annotation(hints.get(param.name, param.annotation)), doc_type, doc_text)

    # Like agency: the description is the whole text before the first section, and
    # absent (not "") when there is none.
    result: dict[str, Any] = {"description": description} if description else {}
    result["args"] = args
    return_hint = hints.get("return", inspect.Parameter.empty)
    has_return_hint = return_hint not in (inspect.Parameter.empty, None, type(None), "None")
    if has_return_hint or doc_returns is not None:
        doc_type, doc_text = doc_returns or (None, "")
        result["returns"] = _entry(
            _type_from_annotation(return_hint) if has_return_hint else None, doc_type, doc_text)
    return result


def _entry(json_type: str | None, doc_type: str | None, doc_text: str | None) -> dict[str, str]:
    """An argument's or the return value's help: its JSON type from the annotation
    (``json_type``), else from the docstring's type; its description from the docstring.
    Either is left out when unknown."""
    if json_type is None and doc_type:
        json_type = _type_from_string(doc_type)
    entry: dict[str, str] = {}
    if json_type is not None:
        entry["type"] = json_type
    if doc_text:
        entry["description"] = doc_text
    return entry
