"""Report import cycles inside the ``dataspace_agency`` package.

Builds the graph of imports between the package's modules from the source (with ``ast``),
counting imports inside functions too, and prints every strongly connected component of
more than one module. Imports under ``if TYPE_CHECKING:`` never run, so they are left out
unless ``--typing`` is given. Exit status 1 if there is a cycle.

Usage: ``.venv/bin/python tools/import_cycles.py [--typing] [package_dir]``
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _typing_only(tree: ast.AST) -> set[int]:
    """ids of the nodes under an ``if TYPE_CHECKING:`` block."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                skipped.update(id(n) for n in ast.walk(child))
    return skipped


def imports_of(root: Path, path: Path, modules: set[str], typing: bool = False) -> set[str]:
    """The package's modules that ``path`` imports (``from x import y`` counts ``x.y``
    when that is a module, else ``x``)."""
    name = module_name(root, path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    tree = ast.parse(path.read_text(), str(path))
    skipped = set() if typing else _typing_only(tree)
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            targets = [f"{stem}.{alias.name}" for alias in node.names] + [stem]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    # A parent package's __init__ runs before its submodule: not an edge worth a cycle.
    return {t for t in found if not name.startswith(t + ".")}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components of more than one node."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    sys.setrecursionlimit(10_000)

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def main(argv: list[str]) -> int:
    typing = "--typing" in argv
    args = [a for a in argv[1:] if a != "--typing"]
    root = Path(args[0] if args else "dataspace_agency").resolve()
    paths = sorted(root.rglob("*.py"))
    modules = {module_name(root, p) for p in paths}
    graph = {module_name(root, p): imports_of(root, p, modules, typing) for p in paths}
    found = cycles(graph)
    edges = sum(len(v) for v in graph.values())
    kind = "imports (with TYPE_CHECKING ones)" if typing else "run-time imports"
    print(f"{len(modules)} modules, {edges} {kind} between them, {len(found)} cycle(s)")
    for component in found:
        print("cycle:", " <-> ".join(component))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
