"""``dataspace-agency example NAME [args...]`` runs one of the examples;
``dataspace-agency example --list`` lists them, one line each.

The examples live in the repository's ``examples/`` directory (next to the package in a
source checkout or an editable install), not in the installed package. An example is a
``NAME.py`` file, or a ``NAME/`` directory with a ``__main__.py``; names starting with
``_`` are helpers, not examples. Each runs as its own Python process (the interpreter
running this command), with ``args`` passed on: ``dataspace-agency example failure
--backend queue``. Its summary is the first paragraph of its module docstring, on one line.
"""

from __future__ import annotations

import argparse
import ast
import pathlib
import subprocess
import sys

NAME = "example"
HELP = "run one of the examples (--list: what each shows)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--list", action="store_true", help="list the examples and exit")
    parser.add_argument("name", nargs="?", help="the example to run (see --list)")
    # Everything after the name belongs to the example (e.g. --backend queue, --demo).
    parser.add_argument("args", nargs=argparse.REMAINDER,
                        help="arguments for the example (its --help lists them)")


class ExamplesNotFound(LookupError):
    """There is no ``examples/`` directory next to the package."""


def examples_dir() -> pathlib.Path:
    """The repository's ``examples/``, found relative to this package."""
    package = pathlib.Path(__file__).resolve().parent.parent
    found = package.parent / "examples"
    if not found.is_dir():
        raise ExamplesNotFound(
            f"no examples directory at {found}: the examples come with a source checkout"
            f" of dataspace-agency (clone the repository and `pip install -e .` there),"
            f" not with an installed wheel")
    return found


def find_examples(directory: pathlib.Path) -> dict[str, pathlib.Path]:
    """``{name: path}`` of the examples in ``directory``, by name."""
    found = {}
    for path in sorted(directory.iterdir()):
        if path.name.startswith(("_", ".")):
            continue
        if path.suffix == ".py" and path.is_file():
            found[path.stem] = path
        elif path.is_dir() and (path / "__main__.py").is_file():
            found[path.name] = path
    return found


def summary(path: pathlib.Path) -> str:
    """The first paragraph of the example's module docstring, on one line (read with
    ``ast``, not imported: importing would run an example's imports)."""
    source = path / "__main__.py" if path.is_dir() else path
    try:
        docstring = ast.get_docstring(ast.parse(source.read_text(), str(source)))
    except (OSError, SyntaxError, ValueError) as exc:
        return f"(cannot read its docstring: {exc})"
    if not docstring:
        return "(no docstring)"
    # The first paragraph, on one line: a summary sentence may wrap in the source.
    return " ".join(docstring.strip().split("\n\n")[0].split())


def run(args: argparse.Namespace) -> int:
    """List the examples, or run one as a child process; returns its exit status."""
    try:
        examples = find_examples(examples_dir())
    except ExamplesNotFound as exc:
        print(f"dataspace-agency example: {exc}", file=sys.stderr)
        return 1
    if args.list:
        width = max(map(len, examples), default=0)
        for name, path in examples.items():
            print(f"{name:<{width}}  {summary(path)}")
        return 0
    if args.name is None:
        print("dataspace-agency example: name an example to run, or --list to see them"
              f" ({', '.join(examples)})", file=sys.stderr)
        return 2
    name = args.name.removesuffix(".py").rstrip("/")
    path = examples.get(name)
    if path is None:
        print(f"dataspace-agency example: no example named {args.name!r}; there are:"
              f" {', '.join(examples)}", file=sys.stderr)
        return 2
    child = subprocess.Popen([sys.executable, str(path), *args.args])
    try:
        return child.wait()
    except KeyboardInterrupt:
        # Ctrl-C reached the example too (same process group): let it finish its cleanup.
        return child.wait()
