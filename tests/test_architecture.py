"""The house rule of tools/ (docs/architecture.md): layers, arrows pointing down only, no import cycle.

Read from the source with ``ast`` (imports inside functions count too), so the rule holds for lazy
imports as well as for the ones at the top of a module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TOOLS = REPO / "tools"

# Each folder of tools/ and its layer: a module may import from its own folder or from a lower layer.
LAYERS = {
    "schema": 0,
    "database": 1,
    "spec": 2, "models": 2, "sqlsafe": 2,
    "drift": 3,
    "read_schema_spec": 4, "propose_table": 4, "diff_models_vs_spec": 4, "explain_indexes": 4,
    "run_scoped_query": 4, "project": 4,
}
TOOL_FOLDERS = ("read_schema_spec", "propose_table", "diff_models_vs_spec", "explain_indexes", "run_scoped_query")
MAX_LINES = 800


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


MODULES = {_module_name(p): p for p in sorted(TOOLS.rglob("*.py"))}


def _imports(name: str, is_package: bool, source: str) -> set[str]:
    """The tools.* (and server.*) modules that module ``name`` imports, anywhere in its source."""
    package = name.split(".") if is_package else name.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = (node.module or "").removeprefix("schema_architect.")
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if candidate in MODULES else base)
        elif isinstance(node, ast.Import):
            found |= {a.name.removeprefix("schema_architect.") for a in node.names}
    return {m for m in found if m in MODULES or m.startswith("server")}


GRAPH = {name: _imports(name, _is_package(path), path.read_text(encoding="utf-8")) for name, path in MODULES.items()}


def _folder(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "tools" else None


def test_every_folder_of_tools_has_a_layer() -> None:
    folders = {p.name for p in TOOLS.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert folders == set(LAYERS), "give each new folder of tools/ a layer here and in docs/architecture.md"
    loose = sorted(p.name for p in TOOLS.glob("*.py") if p.name != "__init__.py")
    assert not loose, f"modules loose in tools/ belong in a folder: {loose}"


@pytest.mark.parametrize("tool", TOOL_FOLDERS)
def test_each_tool_has_a_folder_named_as_the_tool(tool: str) -> None:
    init = TOOLS / tool / "__init__.py"
    assert init.exists()
    tree = ast.parse(init.read_text(encoding="utf-8"))
    defined = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    imported = {a.asname or a.name for n in tree.body if isinstance(n, ast.ImportFrom) for a in n.names}
    entry = {"read_schema_spec": "read_schema_spec", "propose_table": "propose_table",
             "diff_models_vs_spec": "diff_project", "explain_indexes": "explain_indexes",
             "run_scoped_query": "run_scoped_query"}[tool]
    assert entry in defined, f"tools/{tool}/__init__.py defines its entry function {entry}"
    assert any(n.endswith("Result") for n in defined | imported), f"tools/{tool}/__init__.py exposes its result model"


def test_arrows_point_down_only() -> None:
    upward = []
    for module, targets in GRAPH.items():
        here = _folder(module)
        for target in targets:
            if target.startswith("server"):
                upward.append(f"{module} -> {target} (tools/ never imports server/)")
                continue
            there = _folder(target)
            if here is None or there is None or here == there:
                continue
            if LAYERS[there] >= LAYERS[here]:
                upward.append(f"{module} (layer {LAYERS[here]}) -> {target} (layer {LAYERS[there]})")
    assert not upward, "imports that do not point down:\n" + "\n".join(sorted(upward))


def test_no_import_cycle() -> None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles: list[list[str]] = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(GRAPH.get(module, ())):
            if state.get(target) == 1:
                cycles.append(path[path.index(target):] + [target])
            elif target in GRAPH and not state.get(target):
                visit(target, path + [target])
        state[module] = 2

    for module in sorted(GRAPH):
        if not state.get(module):
            visit(module, [module])
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_no_module_is_too_long_to_read() -> None:
    long = {str(p.relative_to(REPO)): n for p in MODULES.values()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) >= MAX_LINES}
    assert not long, f"modules of {MAX_LINES} lines or more: split them by aspect: {long}"


def test_the_scan_sees_lazy_and_absolute_imports() -> None:
    """The scan itself: an import inside a function, relative or absolute, is an edge of the graph."""
    source = ("def _late():\n    from ..drift import diff_schemas\n"
              "    from schema_architect.tools.spec import lint\n    from . import findings\n")
    assert _imports("tools.schema.model", False, source) == {"tools.drift", "tools.spec.lint", "tools.schema.findings"}


def test_every_package_is_installed() -> None:
    """A folder missing from pyproject's package list works in an editable install and is absent from a
    wheel: every package under tools/ must be listed."""
    import tomllib

    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["packages"])
    packages = {"schema_architect." + _module_name(p.parent / "__init__.py") for p in TOOLS.rglob("__init__.py")}
    assert packages <= listed, f"add to [tool.setuptools] packages in pyproject.toml: {sorted(packages - listed)}"
