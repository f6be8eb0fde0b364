"""kg_reasoning stays a leaf: no import circles between its modules (imports inside
functions count, ``if TYPE_CHECKING:`` blocks do not), nothing imported from vision/,
speech/, copilot/ or benchmarks/, and no source file over 400 lines."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[2] / "kg_reasoning"
OTHERS = ("vision", "speech", "copilot", "benchmarks")


def _modules() -> dict[str, Path]:
    mods = {}
    for p in PKG.rglob("*.py"):
        parts = p.relative_to(PKG.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        mods[name] = p
    return mods


def _imports(path: Path) -> list[str]:
    """Every imported module (and ``module.name``) outside ``if TYPE_CHECKING:`` blocks."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for n in ast.walk(node))
    out: list[str] = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
    return out


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    return {m: {x for x in _imports(p) if x in mods and x != m} for m, p in mods.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle (as a path that returns to its start), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                return stack[stack.index(n):] + [n]
            if n not in state and (found := visit(n)):
                return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (found := visit(m)):
            return found
    return None


def test_the_cycle_finder_finds_a_circle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_circles_in_kg_reasoning():
    graph = _graph()
    assert "kg_reasoning.reasoner" in graph and graph["kg_reasoning.reasoner"]
    assert _cycle(graph) is None


def test_kg_reasoning_imports_no_other_package():
    bad = [(m, x) for m, p in _modules().items() for x in _imports(p)
           if x.split(".")[0] in OTHERS]
    assert bad == []


def test_no_source_file_over_400_lines():
    long = {p.name: n for p in PKG.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 400}
    assert long == {}
