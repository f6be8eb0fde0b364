"""The house rules, read from the source: no import circles, leaves stay leaves, the product
never depends on its benchmarks, and no source file grows past 500 lines.

Imports are read with ``ast`` (module level and inside functions alike; blocks under
``if TYPE_CHECKING:`` are skipped because they never run).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("copilot", "vision", "speech", "kg_reasoning", "benchmarks")
LEAVES = ("vision", "speech", "kg_reasoning")
PRODUCT = ("copilot", *LEAVES)
#: (importer, imported package prefix) pairs allowed to cross a rule, with the reason.
ALLOWED = {
    ("copilot.cli_bench", "benchmarks"):
        "`copilot bench` runs the benchmark engine; imported lazily inside the command",
}
MAX_LINES = 500


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST, module: str, is_pkg: bool) -> set[str]:
    """Dotted names imported anywhere in ``tree`` (relative imports resolved)."""
    out: set[str] = set()
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base if is_pkg else base[:-1]
                base = base[:len(base) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            out.add(prefix)
            out.update(f"{prefix}.{a.name}" for a in node.names)
        stack.extend(ast.iter_child_nodes(node))
    return out


def import_graph(root: Path, packages: tuple[str, ...] = PACKAGES) -> dict[str, set[str]]:
    """Module -> modules of the tree it imports (names resolved to the deepest module)."""
    files = {_module_name(root, p): p for pkg in packages if (root / pkg).is_dir()
             for p in (root / pkg).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for mod, path in files.items():
        deps = set()
        for name in _imports(ast.parse(path.read_text()), mod, path.name == "__init__.py"):
            while name and name not in files:
                name = name.rpartition(".")[0]
            if name and name != mod and name.split(".")[0] in packages:
                deps.add(name)
        graph[mod] = deps
    return graph


def _parents(mod: str) -> set[str]:
    """Package __init__ modules a module's import runs implicitly (never a circle)."""
    parts = mod.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected sets of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start] - _parents(start))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on.add(start)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph.get(w, set()) - _parents(w)))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    x = stack.pop()
                    on.discard(x)
                    comp.append(x)
                    if x == v:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
    return found


def lane_violations(graph: dict[str, set[str]]) -> list[str]:
    """Leaf -> other leaf / copilot / benchmarks, and product -> benchmarks (minus ALLOWED)."""
    bad = []
    for mod, deps in sorted(graph.items()):
        top = mod.split(".")[0]
        for dep in sorted(deps):
            dtop = dep.split(".")[0]
            if (mod, dtop) in ALLOWED or dtop == top:
                continue
            if top in LEAVES:
                bad.append(f"leaf {mod} imports {dep}")
            elif top in PRODUCT and dtop == "benchmarks":
                bad.append(f"product {mod} imports {dep}")
    return bad


def long_files(root: Path, limit: int = MAX_LINES) -> list[str]:
    """Source files (packages and tests) over ``limit`` lines."""
    out = []
    for pkg in (*PACKAGES, "tests"):
        for p in sorted((root / pkg).rglob("*.py")):
            n = len(p.read_text().splitlines())
            if n > limit:
                out.append(f"{p.relative_to(root)}: {n} lines")
    return out


def test_no_import_circles() -> None:
    assert circles(import_graph(ROOT)) == []


def test_packages_stay_in_their_lane() -> None:
    assert lane_violations(import_graph(ROOT)) == []


def test_allowed_crossing_is_lazy() -> None:
    """The one allowed product -> benchmarks import sits inside a function, not at import."""
    for mod, _ in ALLOWED:
        tree = ast.parse((ROOT / (mod.replace(".", "/") + ".py")).read_text())
        top_level = _imports(ast.Module(body=[n for n in tree.body
                                              if not isinstance(n, (ast.FunctionDef,
                                                                    ast.AsyncFunctionDef))],
                                        type_ignores=[]), mod, False)
        assert not [n for n in top_level if n.startswith("benchmarks")], mod


def test_no_source_file_over_500_lines() -> None:
    assert long_files(ROOT) == []


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)


def test_checks_catch_a_circle_a_leaf_crossing_and_a_long_file(tmp_path: Path) -> None:
    _write(tmp_path, {
        "vision/__init__.py": "",
        "vision/a.py": "from vision import b\n",
        "vision/b.py": "def f():\n    from vision.a import x\n    import speech.c\n",
        "speech/__init__.py": "",
        "speech/c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                       "    import vision.a\n",
        "copilot/__init__.py": "",
        "copilot/d.py": "from . import e\nimport benchmarks.bench_x\n",
        "copilot/e.py": "from .d import y\n",
        "benchmarks/__init__.py": "",
        "benchmarks/bench_x.py": "import copilot.e\n",
        "tests/test_long.py": "x = 1\n" * 501,
    })
    g = import_graph(tmp_path)
    assert g["speech.c"] == set()  # TYPE_CHECKING only
    found = circles(g)
    assert ["vision.a", "vision.b"] in found
    assert ["benchmarks.bench_x", "copilot.d", "copilot.e"] in found  # d -> bench_x -> e -> d
    bad = lane_violations(g)
    assert "leaf vision.b imports speech.c" in bad
    assert "product copilot.d imports benchmarks.bench_x" in bad
    assert long_files(tmp_path) == ["tests/test_long.py: 501 lines"]


@pytest.mark.parametrize("pkg", PACKAGES)
def test_every_package_is_read(pkg: str) -> None:
    assert any(m.split(".")[0] == pkg for m in import_graph(ROOT))
