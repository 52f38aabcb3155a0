"""The architecture holds: one-way dependencies between packages and no import cycle between modules."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("dataset", "conversion", "training", "inference", "demo", "jobs")
# package → the project packages it may import
ALLOWED = {
    "dataset": set(),
    "conversion": {"dataset"},
    "training": {"dataset"},
    "inference": {"dataset"},
    "demo": {"dataset", "conversion", "training", "inference"},
    "jobs": {"dataset", "conversion", "training", "inference", "demo"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_imports(path: Path) -> set[str]:
    """Every project module `path` imports (at any depth: function-level imports count too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found.update(name for name in names if name.split(".")[0] in PACKAGES)
    return found


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for package in PACKAGES for p in (ROOT / package).rglob("*.py")}
    edges = {}
    for name, path in modules.items():
        # `from a.b import c` names module a.b.c if it exists, else a.b
        edges[name] = {target for target in project_imports(path) if target in modules and target != name}
    return edges


def test_packages_depend_one_way():
    wrong = sorted(
        f"{source} imports {target}"
        for source, targets in graph().items()
        for target in targets
        if target.split(".")[0] != source.split(".")[0] and target.split(".")[0] not in ALLOWED[source.split(".")[0]]
    )
    assert wrong == []


def test_no_import_cycle_between_modules():
    edges = graph()
    cycles, state = [], {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        for target in sorted(edges[node]):
            if state.get(target) == "open":
                cycles.append(stack[stack.index(target) :] + [target])
            elif target not in state:
                visit(target, stack + [target])
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    # a package's __init__ importing its own submodules is not a cycle of modules
    real = [c for c in cycles if not all(c[0].startswith(m) or m.startswith(c[0]) for m in c)]
    assert real == []


def test_the_graph_sees_imports():
    """Guards the two tests above: the graph holds the edges we know are there."""
    edges = graph()
    assert "dataset.manifest" in edges["conversion.images.convert"]
    assert "training.kind" in edges["training.images"]
