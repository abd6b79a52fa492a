"""The package's import contract, read from the source with ``ast``.

Layers, lowest first: ``errors`` and ``wire``; ``crypto`` and ``engine``;
``byzantine`` and ``eventlog``; ``sim`` and ``runtime``; ``cli``. A module
imports only from its own layer or below, and ``sim`` and ``runtime`` never
import each other (a production node does not carry the simulator). Inside
``engine/`` no module imports itself back through others at run time.

Imports under ``if TYPE_CHECKING:`` are annotations only: they are excluded
from the cycle check (the engine's helpers name ``Engine`` in their
signatures) but still obey the layers.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "ringward"

# Top-level part of the package -> layer (lower never imports higher).
LAYERS = {
    "errors": 0,
    "wire": 0,
    "crypto": 1,
    "engine": 1,
    "byzantine": 2,
    "eventlog": 2,
    "sim": 3,
    "runtime": 3,
    "sync": 3,
    "cli": 4,
    "__main__": 4,
}
# Same-layer parts that must not import each other.
APART = {frozenset({"sim", "runtime"}), frozenset({"sim", "sync"})}


class Import(NamedTuple):
    importer: str
    imported: str
    typing_only: bool
    line: int


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(path: Path) -> Iterator[Import]:
    module = _module_name(path)
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))

    def walk(node: ast.AST, typing_only: bool) -> Iterator[Import]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for stmt in child.body:
                    yield from walk_stmt(stmt, True)
                for stmt in child.orelse:
                    yield from walk_stmt(stmt, typing_only)
            else:
                yield from walk_stmt(child, typing_only)

    def walk_stmt(node: ast.AST, typing_only: bool) -> Iterator[Import]:
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, alias.name, typing_only, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, is_package, node)
            for alias in node.names:
                # ``from ringward.engine import token`` imports a submodule.
                sub = f"{target}.{alias.name}"
                name = sub if (SRC / sub.replace(".", "/")).exists() or _is_module(sub) else target
                yield Import(module, name, typing_only, node.lineno)
        else:
            yield from walk(node, typing_only)

    yield from walk(tree, False)


def _is_module(name: str) -> bool:
    base = SRC / name.replace(".", "/")
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _all_imports() -> list[Import]:
    out: list[Import] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        out += [i for i in _imports(path) if i.imported.startswith("ringward")]
    return out


def _part(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_layers_are_respected() -> None:
    bad: set[str] = set()
    for imp in _all_imports():
        src, dst = _part(imp.importer), _part(imp.imported)
        if src is None or dst is None or src == dst:
            continue
        assert src in LAYERS, f"{imp.importer}: add its part to LAYERS"
        assert dst in LAYERS, f"{imp.imported}: add its part to LAYERS"
        if LAYERS[dst] > LAYERS[src] or frozenset({src, dst}) in APART:
            bad.add(f"{imp.importer}:{imp.line} imports {imp.imported}")
    assert not bad, "layering violations:\n" + "\n".join(sorted(bad))


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def _runtime_edges(prefix: str) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for imp in _all_imports():
        if imp.typing_only or not imp.importer.startswith(prefix):
            continue
        if imp.imported.startswith(prefix) and imp.imported != imp.importer:
            # Importing a package runs its __init__, not its siblings.
            edges.setdefault(imp.importer, set()).add(imp.imported)
    return edges


def test_no_import_cycles_in_engine() -> None:
    edges = _runtime_edges("ringward.engine.")
    assert _cycles(edges) == []


def test_no_import_cycles_between_parts() -> None:
    edges: dict[str, set[str]] = {}
    for imp in _all_imports():
        src, dst = _part(imp.importer), _part(imp.imported)
        if not imp.typing_only and src and dst and src != dst:
            edges.setdefault(src, set()).add(dst)
    assert _cycles(edges) == []


def test_the_checker_sees_cycles() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


# Small modules with one job each: the engine's coordinator stays small
# and no module grows past what a reader holds in mind.
ENGINE_PY_LINES_MAX = 400
MODULE_LINES_MAX = 600


def test_modules_stay_small() -> None:
    sizes = {
        str(p.relative_to(PACKAGE)): len(p.read_text(encoding="utf-8").splitlines())
        for p in PACKAGE.rglob("*.py")
    }
    assert sizes["engine/engine.py"] < ENGINE_PY_LINES_MAX
    big = {name: n for name, n in sizes.items() if n > MODULE_LINES_MAX}
    assert not big, big
