"""The house's rules, read from the source: the command line is a layer nothing in the library imports, the
library's modules import each other without loops, and the three commands share one error boundary."""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from siamese_runtime import Scorer, ScorerSettings
from siamese_runtime.ray import ScorerOptions

from .conftest import REPO

PACKAGE = REPO / "siamese_runtime"


def imported_modules(path: Path, *, at_import_time: bool = False) -> set[str]:
    """The siamese_runtime modules `path` imports, relative imports resolved; `at_import_time`: only those its
    top level imports (not inside functions, nor for type checking), the ones an import loop would break."""
    module = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in tree.body if at_import_time else ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            names |= {base} | {f"{base}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
    return {name for name in names if name.startswith("siamese_runtime")}


# The commands: each may use the command-line layer (its error boundary, its shared flags); nothing else may.
COMMANDS = {PACKAGE / "__main__.py", *(REPO / name for name in (
    "train/__main__.py", "train/fetch.py", "export/__main__.py"))}


def test_nothing_but_the_commands_imports_the_command_line() -> None:
    """The library, the benchmarks, and training and export below their `__main__`s import no `cli` module."""
    sources = [*PACKAGE.rglob("*.py"), *(REPO / folder for folder in ("benchmarks", "train", "export"))]
    sources = [path for source in sources for path in ([source] if source.is_file() else source.rglob("*.py"))]
    offenders = {}
    for path in sources:
        if PACKAGE / "cli" not in path.parents and path not in COMMANDS:
            offenders[str(path.relative_to(REPO))] = sorted(
                name for name in imported_modules(path) if name.startswith("siamese_runtime.cli"))
    assert {path: names for path, names in offenders.items() if names} == {}


# The runtime's floors, bottom first (docs/architecture.md draws them): a module imports, at import time, only
# from its own floor or those below. A package (name/) is one room.
LAYERS = (
    ("errors", "cores", "__version__"),
    ("providers", "tokenizer", "io/", "validators/"),
    ("inputs", "session", "schemas", "heads", "bad_rows", "checkpoint", "prefetch"),
    ("settings", "batching", "model_checks"),
    ("model_folder",),
    ("precision",),
    ("encoder",),
    ("scorer",),
    ("job",),
    ("ray/", "bench/"),
    ("cli/", "__main__", "__init__"),
)


def room(module: str) -> str:
    """The module's room: its name below siamese_runtime, or its package's followed by '/'."""
    parts = module.split(".")
    if len(parts) == 1:
        return "__init__"
    return f"{parts[1]}/" if (PACKAGE / parts[1]).is_dir() else parts[1]


def test_each_module_imports_only_from_its_floor_or_below() -> None:
    floor = {name: level for level, names in enumerate(LAYERS) for name in names}
    upward = set()
    for path in PACKAGE.rglob("*.py"):
        module = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        for imported in imported_modules(path, at_import_time=True) - {"siamese_runtime"}:
            here, there = room(module), room(imported)
            assert here in floor and there in floor, f"{here} or {there}: add it to a floor in LAYERS"
            if floor[there] > floor[here]:
                upward.add(f"{module} -> {imported}")
    assert sorted(upward) == []


def test_no_module_of_the_library_imports_itself_through_others() -> None:
    """No import loop among the package's modules at import time (a loop works only in one import order)."""
    modules = {".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__"): path
               for path in PACKAGE.rglob("*.py")}
    graph = {name: {m for m in imported_modules(path, at_import_time=True) if m in modules and m != name}
             for name, path in modules.items()}

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), list(graph[start])
        while todo:
            if (name := todo.pop()) == goal:
                return True
            if name not in seen:
                seen.add(name)
                todo.extend(graph[name])
        return False

    assert sorted(name for name in graph if reaches(name, name)) == []


def test_train_and_export_errors_go_through_the_one_boundary(tmp_path: Path) -> None:
    """`python -m export` on a folder that is not a run: exit 1 and one line `export: error: ...` naming it."""
    result = subprocess.run([sys.executable, "-m", "export", str(tmp_path), "--out", str(tmp_path / "model")],
                            capture_output=True, text=True, cwd=REPO, timeout=300)
    lines = [line for line in result.stderr.splitlines() if not line.startswith("export: ") or "error" in line]
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[-1].startswith("export: error: ") and str(tmp_path) in lines[-1], result.stderr


def test_the_scorer_takes_exactly_the_settings_and_ray_keeps_the_old_name() -> None:
    parameters = inspect.signature(Scorer).parameters
    assert [(name, p.default) for name, p in parameters.items()] == [
        (field.name, field.default) for field in fields(ScorerSettings)]
    assert ScorerOptions is ScorerSettings
    with pytest.raises(ValueError, match="batch_size"):
        ScorerSettings(batch_size=0)  # checked when made, before any model loads
