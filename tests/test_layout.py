"""The layout rules of DESIGN.md that a machine can check: no import cycle in `src/trackid` (lazy imports inside
functions count too: they are cycles in the design even when they do not fail at import time), and no module over
~600 lines unless its docstring says why it must be one file."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

SRC = Path(__file__).resolve().parent.parent / "src"
MAX_LINES = 600
ONE_FILE = "must be one file"


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted((SRC / "trackid").rglob("*.py")):
        name = ".".join(path.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
        out[name] = path
    return out


def _imports(path: Path, known: set[str]) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found & known


def test_no_import_cycles() -> None:
    modules = _modules()
    names = sorted(modules)
    at = {name: i for i, name in enumerate(names)}
    edges = [(at[a], at[b]) for a in names for b in _imports(modules[a], set(names)) if b != a]
    rows, cols = zip(*edges, strict=True) if edges else ((), ())
    graph = coo_matrix(([1] * len(edges), (rows, cols)), shape=(len(names), len(names)))
    _, label = connected_components(graph, directed=True, connection="strong")
    cycles = [[n for n in names if label[at[n]] == group] for group in set(label.tolist())]
    assert [c for c in cycles if len(c) > 1] == []


@pytest.mark.parametrize("name", sorted(_modules()))
def test_modules_stay_small(name: str) -> None:
    path = _modules()[name]
    lines = len(path.read_text().splitlines())
    docstring = ast.get_docstring(ast.parse(path.read_text())) or ""
    assert lines <= MAX_LINES or ONE_FILE in docstring, f"{path.relative_to(SRC)} has {lines} lines"
