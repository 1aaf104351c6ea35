"""The package's layers import one way: every import of a module of mccompile counted,
function-local and ``TYPE_CHECKING`` ones too (CONTRIBUTING.md shows the map)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "mccompile"

# bottom to top: a module may import from its own layer or from those before it
LAYERS: tuple[tuple[str, ...], ...] = (
    ("diagnostics", "assets", "ir"),
    ("tasks",),
    ("frontend",),
    ("plan",),
    ("codegen",),
    ("importers",),
    ("commands",),
    ("cli", "__main__"),
)
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, imported module) for every import of mccompile in the file, at any depth."""
    module = _module(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("mccompile")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("mccompile"):
                continue
            for alias in node.names:  # from mccompile import ir: the module mccompile.ir
                name = f"{target}.{alias.name}"
                found.append((node.lineno, name if name in MODULES else target))
    return found


SOURCES = sorted(PACKAGE.rglob("*.py"))
MODULES = {_module(p) for p in SOURCES}


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


SOURCES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_has_a_layer() -> None:
    layers = {_layer(_module(p)) for p in SOURCES} - {"__init__"}
    assert layers <= set(RANK), f"add {sorted(layers - set(RANK))} to LAYERS and CONTRIBUTING.md"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down(path: Path) -> None:
    mine = _layer(_module(path))
    wrong = []
    for line, target in _imports(path):
        theirs = _layer(target)
        if theirs == "__init__":  # the version string
            continue
        if mine != "__init__" and RANK[theirs] > RANK[mine]:
            wrong.append(f"{path.name}:{line}: {mine} imports {target} (a higher layer)")
    assert not wrong, "\n".join(wrong)


def test_no_import_circle_between_modules() -> None:
    """Within a layer too: no module reaches itself through imports."""
    graph = {_module(p): {t for _, t in _imports(p)} - {_module(p)} for p in SOURCES}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = 2
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            pytest.fail("import circle: " + " -> ".join(cycle))


# still to be split: the two importers, into one table-driven core and each peer's vocabulary
KNOWN_LONG = {"importers/axolotl.py", "importers/llama_factory.py"}


def test_no_source_file_over_500_lines() -> None:
    long = {
        str(p.relative_to(PACKAGE))
        for p in SOURCES
        if len(p.read_text(encoding="utf-8").splitlines()) > 500
    }
    assert long <= KNOWN_LONG, f"split by what they hold: {sorted(long - KNOWN_LONG)}"
    assert long == KNOWN_LONG, f"{sorted(KNOWN_LONG - long)} got short: take it off KNOWN_LONG"
