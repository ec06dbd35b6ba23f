"""The package layout follows the pipeline: each stage imports only the stages below it.

docs/architecture.md describes the folders; ``STAGES`` below is the same order, lowest first.
Every import counts, also the ones inside functions (a lazy import is still a dependency); only
``if TYPE_CHECKING:`` blocks are left out (they never run). A new folder must be added here and
to docs/architecture.md, or this test fails.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "gpu_lol"

# lowest first; a module may import its own stage and any stage before it
STAGES = ["base", "sizing", "config", "llm", "analyzer", "launch", "machine", "commands", "cli"]
# folders (and top-level modules) -> stage
FOLDERS = {
    "secrets": "base", "data": "base", "schema": "base",
    "sizing": "sizing", "config": "config", "llm": "llm", "analyzer": "analyzer",
    "launch": "launch", "machine": "machine", "commands": "commands",
    "cli": "cli", "__main__": "cli",
}


def module_name(path: Path, root: Path = PACKAGE) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def stage_of(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "base"  # gpu_lol/__init__.py
    head = parts[1]
    if head in FOLDERS:
        return FOLDERS[head]
    if len(parts) == 2 and (PACKAGE / f"{head}.py").is_file():
        return "base"  # a shared top-level module (errors, console, paths, spec, ...)
    raise AssertionError(f"gpu_lol/{head}/ is in no stage: add it to STAGES/FOLDERS in "
                         f"{Path(__file__).name} and to docs/architecture.md")


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_of(path: Path, modules: set[str], root: Path = PACKAGE) -> set[str]:
    """The gpu_lol modules ``path`` imports (``from gpu_lol.x import y`` counts gpu_lol.x.y
    when y is a module, else gpu_lol.x)."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "gpu_lol")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            if source.split(".")[0] == "gpu_lol":
                for alias in node.names:
                    full = f"{source}.{alias.name}"
                    found.add(full if full in modules else source)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    found.discard(name)
    return found


def graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    modules = set(files)
    return {name: {m for m in imports_of(path, modules) if m in modules or m == "gpu_lol"}
            for name, path in files.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            strong(v)
    return out


def lower_importing_higher(edges: dict[str, set[str]]) -> list[str]:
    bad = []
    for source, targets in sorted(edges.items()):
        for target in sorted(targets):
            s, t = stage_of(source), stage_of(target)
            if STAGES.index(t) > STAGES.index(s):
                bad.append(f"{source} ({s}) imports {target} ({t})")
    return bad


def test_every_module_is_in_a_stage():
    for name in graph():
        assert stage_of(name) in STAGES


def test_no_stage_imports_a_higher_one():
    assert lower_importing_higher(graph()) == []


def test_no_import_circles():
    assert cycles(graph()) == []


def test_the_checks_catch_what_they_are_for():
    """The checks above on made-up graphs: a circle and an upward import are found."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert lower_importing_higher({"gpu_lol.sizing.vram": {"gpu_lol.launch.skypilot"}}) == [
        "gpu_lol.sizing.vram (sizing) imports gpu_lol.launch.skypilot (launch)"]
    assert lower_importing_higher({"gpu_lol.launch.skypilot": {"gpu_lol.sizing.vram"}}) == []
    with pytest.raises(AssertionError, match="in no stage"):
        stage_of("gpu_lol.newstage.thing")


def test_imports_are_read_as_python_runs_them(tmp_path):
    """Lazy imports count, TYPE_CHECKING ones do not, ``from pkg import module`` names the module."""
    package = tmp_path / "gpu_lol"
    (package / "launch").mkdir(parents=True)
    (package / "sizing").mkdir()
    for rel in ("__init__.py", "launch/__init__.py", "launch/state.py", "sizing/__init__.py",
                "sizing/vram.py", "sizing/catalog.py"):
        (package / rel).write_text("")
    (package / "sizing" / "vram.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "from gpu_lol.sizing import catalog\n"
        "if TYPE_CHECKING:\n    from gpu_lol.launch import state\n"
        "def f():\n    from gpu_lol.launch.state import Target\n")
    modules = {"gpu_lol", "gpu_lol.launch", "gpu_lol.launch.state", "gpu_lol.sizing",
               "gpu_lol.sizing.vram", "gpu_lol.sizing.catalog"}
    found = imports_of(package / "sizing" / "vram.py", modules, root=package)
    assert found == {"gpu_lol.sizing.catalog", "gpu_lol.launch.state"}
