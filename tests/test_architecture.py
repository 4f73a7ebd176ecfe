"""The layers of DESIGN.md, checked on the source: imports only point downwards and no two
modules import each other, directly or through others. Imports inside functions count too
(a lazy import is still a dependency)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mlops_ci"
# Above the steps: the command line, what runs a step and the commands that are not steps
# (report, serve); nothing below may import them.
TOP = {"cli", "runner", "__main__", "commands"}


def module_files() -> dict[str, Path]:
    files = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        files[".".join(parts)] = path
    return files


def imported_modules(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The mlops_ci modules ``module`` imports (``from pkg import sub`` counts as ``pkg.sub``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                if path.name != "__init__.py":
                    base.pop()
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in known else target)
    return {name for name in found if name in known and name != module}


def import_graph() -> dict[str, set[str]]:
    known = module_files()
    return {module: imported_modules(module, path, known) for module, path in known.items()}


def layer(module: str) -> int:
    """0: domain, platforms and shared modules; 1: steps; 2: the command line."""
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in TOP:
        return 2
    if len(parts) > 1 and parts[1] == "steps":
        return 1
    return 0


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{module} -> {target}"
        for module, targets in graph.items()
        for target in targets
        if layer(target) > layer(module)
    )


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    lowlink: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = lowlink[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = lowlink[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    lowlink[node] = min(lowlink[node], index[child])
                continue
            work.pop()
            if work:
                lowlink[work[-1][0]] = min(lowlink[work[-1][0]], lowlink[node])
            if lowlink[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_module_below_the_steps_imports_a_step_the_runner_or_the_cli():
    assert upward_imports(import_graph()) == []


def test_no_import_cycle():
    assert cycles(import_graph()) == []


@pytest.mark.parametrize(
    ("graph", "upward", "cyclic"),
    [
        ({"mlops_ci.deploy.x": {"mlops_ci.steps.deploy"}, "mlops_ci.steps.deploy": set()}, 1, 0),
        ({"mlops_ci.steps.x": {"mlops_ci.runner"}, "mlops_ci.runner": set()}, 1, 0),
        (
            {
                "mlops_ci.runner": {"mlops_ci.steps.x"},
                "mlops_ci.steps.x": {"mlops_ci.stats"},
                "mlops_ci.stats": set(),
            },
            0,
            0,
        ),
        ({"mlops_ci.a": {"mlops_ci.b"}, "mlops_ci.b": {"mlops_ci.c"}, "mlops_ci.c": {"mlops_ci.a"}}, 0, 1),
    ],
)
def test_the_checks_catch_an_upward_import_and_a_cycle(graph, upward, cyclic):
    assert len(upward_imports(graph)) == upward
    assert len(cycles(graph)) == cyclic


def test_the_graph_sees_lazy_and_relative_imports():
    graph = import_graph()
    assert "mlops_ci.runner" in graph["mlops_ci.cli"]  # imported inside main()
    assert any(target.startswith("mlops_ci.") for target in graph["mlops_ci.stats"])
