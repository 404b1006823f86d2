"""Help generation in dataspace_agency.classic.help."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Union

from dataspace_agency.classic.help import generate_help


class Agent:
    def say(self, content: str, times: int = 1) -> str:
        """Say something to someone.

        Longer text, part of the description as in agency.

        Args:
            content (str): What to say.
            times: How often.

        Returns:
            str: The echo.
        """

    def untyped(self, content, times=2, *rest, **extra):
        """Do it.

        Args:
            content (str): What to do.
            times (int, optional): How often,
                continued on a second line.
            *rest: Ignored.
            **extra: Ignored too.
        """

    def bare(self, a, b):
        pass

    def wins(self, x: int, y: Any):
        """Precedence.

        Args:
            x (str): Annotation says int.
            y (bool): Annotation says nothing useful.
        """

    def nothing(self) -> None:
        """Return nothing.

        Returns:
            Nothing useful.
        """

    def no_returns(self) -> None:
        """Nothing here."""


def test_full_google_docstring():
    assert generate_help(Agent().say) == {
        "description": "Say something to someone. Longer text, part of the description as"
                       " in agency.",
        "args": {
            "content": {"type": "string", "description": "What to say."},
            "times": {"type": "number", "description": "How often."},
        },
        "returns": {"type": "string", "description": "The echo."},
    }


def test_unbound_function_skips_self():
    assert generate_help(Agent.say) == generate_help(Agent().say)


def test_docstring_types_without_annotations_and_varargs_skipped():
    assert generate_help(Agent.untyped) == {
        "description": "Do it.",
        "args": {
            "content": {"type": "string", "description": "What to do."},
            "times": {"type": "number", "description": "How often, continued on a second line."},
        },
    }


def test_no_docstring():
    # As agency: no docstring, no description key.
    assert generate_help(Agent.bare) == {"args": {"a": {}, "b": {}}}


def test_annotation_wins_unless_it_has_no_json_type():
    assert generate_help(Agent.wins)["args"] == {
        "x": {"type": "number", "description": "Annotation says int."},
        "y": {"type": "boolean", "description": "Annotation says nothing useful."},
    }


def test_returns_section_without_type_and_none_annotation():
    assert generate_help(Agent.nothing)["returns"] == {"description": "Nothing useful."}
    assert "returns" not in generate_help(Agent.no_returns)


def test_return_annotation_only():
    def f() -> Dict[str, int]:
        """F."""

    assert generate_help(f)["returns"] == {"type": "object"}


def test_unknown_return_annotation_keeps_returns_entry():
    class Thing:
        pass

    def f() -> Thing:
        """F."""

    assert generate_help(f)["returns"] == {}


def test_returns_prose_with_colon_is_not_a_type():
    def f():
        """F.

        Returns:
            The result: a number.
        """

    assert generate_help(f)["returns"] == {"description": "The result: a number."}


def test_annotation_type_mapping():
    def f(
        a: str,
        b: int,
        c: float,
        d: bool,
        e: list,
        f: tuple,
        g: List[int],
        h: list[str],
        i: dict,
        j: Dict[str, int],
        k: dict[str, Any],
        l: Optional[str],
        m: int | None,
        n: Union[int, float],
        o: Union[int, str],
        p: Any,
        q: set,
        r: Optional[List[str]],
    ):
        pass

    types = {name: entry.get("type") for name, entry in generate_help(f)["args"].items()}
    assert types == {
        "a": "string", "b": "number", "c": "number", "d": "boolean",
        "e": "array", "f": "array", "g": "array", "h": "array",
        "i": "object", "j": "object", "k": "object",
        "l": "string", "m": "number", "n": "number",
        "o": None, "p": None, "q": None, "r": "array",
    }


def test_docstring_type_mapping():
    def f(a, b, c, d, e, f, g, h, i, j):
        """F.

        Args:
            a (str): A.
            b (int): B.
            c (float): C.
            d (bool): D.
            e (list): E.
            f (dict): F.
            g (Optional[str]): G.
            h (List[int]): H.
            i (Dict[str, int], optional): I.
            j (Widget): J.
        """

    types = {name: entry.get("type") for name, entry in generate_help(f)["args"].items()}
    assert types == {
        "a": "string", "b": "number", "c": "number", "d": "boolean", "e": "array",
        "f": "object", "g": "string", "h": "array", "i": "object", "j": None,
    }


def test_parameters_with_defaults_and_keyword_only():
    def f(a: str = "x", *, b: Optional[int] = None, c=3):
        """Defaults.

        Args:
            a: A.
            b: B.
        """

    assert generate_help(f) == {
        "description": "Defaults.",
        "args": {
            "a": {"type": "string", "description": "A."},
            "b": {"type": "number", "description": "B."},
            "c": {},
        },
    }


def test_multi_line_first_paragraph_and_docstring_starting_with_section():
    def f(x):
        """First line
        continues here.

        Args:
            x: X.
        """

    def g(x):
        """Args:
        x (str): X.
        """

    assert generate_help(f)["description"] == "First line continues here."
    assert generate_help(g) == {"args": {"x": {"type": "string", "description": "X."}}}


def test_other_sections_do_not_leak_into_args():
    def f(x):
        """F.

        Args:
            x (int): X.

        Raises:
            ValueError: if x is bad.

        Example:
            f(1)
        """

    assert generate_help(f)["args"] == {"x": {"type": "number", "description": "X."}}
    assert "returns" not in generate_help(f)


def test_unresolvable_string_annotations_fall_back_to_names():
    def f(x: "Missing", y: "str") -> "Optional[int]":  # noqa: F821
        pass

    # `from __future__ import annotations` makes every annotation a string;
    # get_type_hints fails on "Missing", so raw names are mapped.
    h = generate_help(f)
    assert h["args"] == {"x": {}, "y": {"type": "string"}}
    assert h["returns"] == {"type": "number"}


def test_string_annotation_forms():
    def f(a: "Union[int, float]", b: "Optional[Dict[str, int]]", c: "str | None", d: "typing.List[int]",
          e: "Union[int, str]", f: "None | bool", g: "Missing") -> None:  # noqa: F821
        pass

    types = {name: entry.get("type") for name, entry in generate_help(f)["args"].items()}
    assert types == {"a": "number", "b": "object", "c": "string", "d": "array", "e": None, "f": "boolean", "g": None}


def test_odd_docstring_types_do_not_crash():
    def f(a, b, c, d, e):
        """F.

        Args:
            a (Optional): A.
            b (): B.
            c (str,): C.
            d (Union[]): D.
            e (Dict[str, (int)]): E.
        """

    assert all("type" not in entry for entry in generate_help(f)["args"].values() if entry["description"] != "E.")
