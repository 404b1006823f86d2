"""The agent code of the application workloads (``tasks``, ``churn``, ``cancel``), kept
apart from the harness that injects faults and measures (``compare/workloads/``).

One module per workload and *style*:

* ``*_classic``: written once against the ``Space`` API (``Agent``, ``@action``,
  ``send``/``request``), the same code on every backend, as a competent queue programmer
  would write it: acknowledgements (every request is answered), timeouts, retries, a
  registry or heartbeats, goodbyes on a graceful leave. What it gets from a backend's
  semantics it gets without asking (a dataspace in assertion mode fails a request to a
  departed agent at once, and tells a responder its requester withdrew).
* ``*_facts``: the dataspace's own idiom, facts and observers (``Agent.publish``,
  ``@during``, ``space.connect(...).watch``): where the dataspace allows a simpler
  program. Dataspace backends only.

The modules hold only agent code (plus the small loop a coordinator runs), so that
:func:`code_lines` of each is a fair "lines of code per style" figure; they live in a
package of their own so that process backends can import the agent classes by name.
"""

from __future__ import annotations

import ast
import importlib
import io
import tokenize

STYLES = ("classic", "facts")


def style_module(workload: str, style: str) -> object:
    """The agent module of ``workload`` in ``style`` (``ValueError`` for an unknown one)."""
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; known: {', '.join(STYLES)}")
    return importlib.import_module(f".{workload}_{style}", __package__)


def style_lines(workload: str, style: str) -> int:
    """Lines of code of ``workload``'s agent code in ``style``, with the helpers that
    style's modules share (``classic_common``, where a classic module uses it)."""
    module = style_module(workload, style)
    lines = code_lines(module)
    if hasattr(module, "say_goodbye"):
        lines += code_lines(importlib.import_module(".classic_common", __package__))
    return lines


def code_lines(module: object) -> int:
    """Lines of code in ``module``'s source: not blank, not only a comment, not part of a
    docstring (module, class or function). Imports count: they are code one writes."""
    source = open(module.__file__, encoding="utf-8").read()  # type: ignore[attr-defined]
    docstrings: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant) \
                and isinstance(body[0].value.value, str):
            docstrings.update(range(body[0].lineno, body[0].end_lineno + 1))
    code: set[int] = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT,
                          tokenize.DEDENT, tokenize.ENDMARKER):
            continue
        code.update(range(token.start[0], token.end[0] + 1))
    return len(code - docstrings)
