"""The import graph of ``src/openledger``: no cycles, and no import against the layer order.

The order lives in one place, README.md's "### Layers" block (under "## Layout"): one row
per layer, top to bottom. A *unit* is a package under ``openledger/`` (``chain/``) or a
top-level module (``node.py``; ``__init__.py`` is the package itself). A module may import
its own unit and the units on rows below its own row; units on one row do not import each
other. Every import counts, at module level and inside functions (a lazy import still runs),
except those under ``if TYPE_CHECKING:``, which never run.

Fails (a) on any cycle between modules, (b) on an import that goes up or sideways, (c) on a
unit that has no row in the README.
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "openledger"
README = ROOT / "README.md"
PACKAGE = "openledger"

Graph = Mapping[str, Mapping[str, int]]  # module -> {imported module: line}


# ------------------------------------------------------------------------------ the order


def read_layers(readme: str) -> list[list[str]]:
    """The rows of the README's "### Layers" block, top to bottom, as unit names."""
    section = readme.split("\n### Layers\n", 1)
    assert len(section) == 2, "README.md has no '### Layers' section (under '## Layout')"
    block = re.search(r"```text\n(.*?)```", section[1], re.S)
    assert block, "README.md's '### Layers' section has no ```text block"
    rows = []
    for line in block.group(1).splitlines():
        units = []
        for token in line.split():
            unit = _unit(token)
            if unit is None:
                break  # the row's description
            units.append(unit)
        if units:
            rows.append(units)
    return rows


def _unit(token: str) -> str | None:
    """``chain/`` -> chain, ``node.py`` -> node, ``__init__.py`` -> the package; else None."""
    if token == "__init__.py":
        return PACKAGE
    if token.endswith("/"):
        return token[:-1]
    if token.endswith(".py"):
        return token[:-3]
    return None


def rank_of(layers: list[list[str]]) -> dict[str, int]:
    """Unit -> its row counted from the bottom (0: imports nothing of ours)."""
    ranks: dict[str, int] = {}
    for i, row in enumerate(reversed(layers)):
        for unit in row:
            assert unit not in ranks, f"{unit} has two rows in README.md's layers"
            ranks[unit] = i
    return ranks


# ------------------------------------------------------------------------------ the graph


def modules(src: Path = SRC) -> dict[str, tuple[Path, bool]]:
    """Every module under ``src``: dotted name -> (file, is a package's __init__)."""
    found = {}
    for path in sorted(src.rglob("*.py")):
        parts = [PACKAGE, *path.relative_to(src).with_suffix("").parts]
        is_pkg = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_pkg else parts)] = (path, is_pkg)
    return found


def _type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.AST) -> Iterable[ast.Import | ast.ImportFrom]:
    """Every import statement that can run: anywhere, but not under ``if TYPE_CHECKING:``."""
    todo = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.If) and _type_checking(node.test):
            todo.extend(node.orelse)
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        todo.extend(ast.iter_child_nodes(node))


def imports_of(source: str, name: str, is_pkg: bool, known: Iterable[str]) -> dict[str, int]:
    """The modules of ours that module ``name`` imports -> the first line that does.

    ``from a.b import c`` imports ``a.b.c`` when that is a module, else ``a.b`` (a name
    defined there); ``import a.b.c`` imports ``a.b.c``."""
    known = set(known)
    package = name if is_pkg else name.rpartition(".")[0]

    def nearest(dotted: str) -> str | None:
        while dotted and dotted not in known:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    found: dict[str, int] = {}
    for node in _import_nodes(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets = [nearest(a.name) for a in node.names]
        else:
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, *([node.module] if node.module else [])])
            targets = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in known else nearest(base)
                for a in node.names
            ]
        for target in targets:
            if target and target != name and target.split(".")[0] == PACKAGE:
                found[target] = min(found.get(target, node.lineno), node.lineno)
    return found


@functools.cache
def _graph(src: Path) -> dict[str, dict[str, int]]:
    mods = modules(src)
    return {
        name: imports_of(path.read_text(), name, is_pkg, mods)
        for name, (path, is_pkg) in mods.items()
    }


def import_graph(src: Path = SRC) -> dict[str, dict[str, int]]:
    """Module -> {module of ours it imports: the first line that does} (a fresh copy)."""
    return {name: dict(edges) for name, edges in _graph(src).items()}


def unit_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else PACKAGE


# ------------------------------------------------------------------------------ the checks


def cycles(graph: Graph) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, {}))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, {})))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
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


def problems(graph: Graph, layers: list[list[str]]) -> list[str]:
    """Everything wrong with ``graph`` under ``layers``, one line each (empty: all good)."""
    ranks = rank_of(layers)
    out = []
    for component in cycles(graph):
        edges = [
            f"{a} -> {b} (line {graph[a][b]})"
            for a in component
            for b in sorted(graph[a])
            if b in component
        ]
        out.append("import cycle: " + "; ".join(edges))
    for unit in sorted({unit_of(m) for m in graph} - set(ranks)):
        out.append(f"{unit} has no row in README.md's '### Layers' block")
    for a in sorted(graph):
        for b, line in sorted(graph[a].items()):
            ua, ub = unit_of(a), unit_of(b)
            if ua == ub or ua not in ranks or ub not in ranks:
                continue
            if ranks[ub] == ranks[ua]:
                out.append(
                    f"{a} imports {b} (line {line}): {ua} and {ub} share a row, so "
                    "neither may import the other"
                )
            elif ranks[ub] > ranks[ua]:
                out.append(f"{a} imports {b} (line {line}): {ub} is above {ua}")
    return out


# ------------------------------------------------------------------------------ the tests


def test_the_import_graph_follows_the_readme_layers() -> None:
    layers = read_layers(README.read_text())
    found = problems(import_graph(), layers)
    assert not found, (
        "src/openledger breaks the layer order of README.md (## Layout, ### Layers):\n  "
        + "\n  ".join(found)
        + "\nmove the shared piece down to a unit both may import, or import lazily only "
        "under `if TYPE_CHECKING:` for annotations."
    )


def test_the_architecture_page_shows_the_same_order() -> None:
    """docs/architecture.md repeats the order on one line (rows joined by →); it must not
    drift from the README's."""
    page = (ROOT / "docs" / "architecture.md").read_text()
    line = page.split("From top to bottom:\n", 1)[1].split("\n\n", 1)[0]
    rows = [
        [u for u in (_unit(t.strip("`")) for t in part.split()) if u]
        for part in line.replace("\n", " ").split("→")
    ]
    assert rows == read_layers(README.read_text())


def test_every_row_names_a_real_unit() -> None:
    units = {unit_of(m) for m in modules()}
    named = {u for row in read_layers(README.read_text()) for u in row}
    assert named <= units, f"README.md's layers name units that do not exist: {named - units}"


# a made-up order for the checker's own tests (the real one is README.md's)
TOY_LAYERS = [["cli"], ["api", "web"], ["http"], ["node"], ["chain"], ["errors", PACKAGE]]


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        pytest.param(
            {
                "openledger.cli.main": {"openledger.chain.client": 3, "openledger": 1},
                "openledger.chain.client": {"openledger.errors": 2},
            },
            [],
            id="downward-imports-pass",
        ),
        pytest.param(
            {
                "openledger.chain.calls": {"openledger.chain.client": 7},
                "openledger.chain.client": {"openledger.chain.calls": 9},
            },
            [
                "import cycle: openledger.chain.calls -> openledger.chain.client (line 7); "
                "openledger.chain.client -> openledger.chain.calls (line 9)"
            ],
            id="cycle-inside-a-package",
        ),
        pytest.param(
            {"openledger.chain.client": {"openledger.node": 4}},
            ["openledger.chain.client imports openledger.node (line 4): node is above chain"],
            id="upward-import",
        ),
        pytest.param(
            {"openledger.web.auth": {"openledger.api.guard": 5}},
            [
                "openledger.web.auth imports openledger.api.guard (line 5): web and api share a "
                "row, so neither may import the other"
            ],
            id="sideways-import",
        ),
        pytest.param(
            {"openledger.shiny.thing": {"openledger.errors": 1}},
            ["shiny has no row in README.md's '### Layers' block"],
            id="unit-without-a-row",
        ),
    ],
)
def test_the_checker_finds_a_planted_violation(graph: Graph, expected: list[str]) -> None:
    assert problems(graph, TOY_LAYERS) == expected


def test_imports_are_read_as_python_runs_them() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "from openledger.chain import client\n"  # a module: the edge goes to it
        "from openledger.errors import ValidationError\n"
        "from . import calls\n"
        "from .tx import TxResult\n"
        "if TYPE_CHECKING:\n"
        "    from openledger.node import Node\n"  # never runs: no edge
        "else:\n"
        "    import openledger.config\n"
        "def later():\n"
        "    from openledger.app import create_app\n"  # lazy, but it runs: an edge
    )
    known = [
        "openledger",
        "openledger.chain",
        "openledger.chain.client",
        "openledger.errors",
        "openledger.chain.calls",
        "openledger.chain.tx",
        "openledger.node",
        "openledger.config",
        "openledger.app",
    ]
    assert imports_of(source, "openledger.chain.bindings", False, known) == {
        "openledger.chain.client": 2,
        "openledger.errors": 3,
        "openledger.chain.calls": 4,
        "openledger.chain.tx": 5,
        "openledger.config": 9,
        "openledger.app": 11,
    }


def test_the_readme_block_is_read_row_by_row() -> None:
    readme = (
        "## Layout\n\n### Layers\n\nTop imports bottom.\n\n```text\n"
        "cli/                 commands\n"
        "api/  web/           the two faces\n"
        "node.py              the node\n"
        "errors.py  __init__.py\n"
        "```\n"
    )
    assert read_layers(readme) == [["cli"], ["api", "web"], ["node"], ["errors", PACKAGE]]


@pytest.mark.parametrize(
    ("importer", "imported", "expected"),
    [
        (
            "openledger.chain.client",
            "openledger.web.pages",
            "openledger.chain.client imports openledger.web.pages (line 1): web is above chain",
        ),
        (
            "openledger.chain.tx",
            "openledger.chain.calls",
            "import cycle: openledger.chain.calls -> openledger.chain.tx (line",
        ),
    ],
)
def test_a_violation_planted_in_the_real_graph_is_found(
    importer: str, imported: str, expected: str
) -> None:
    graph = import_graph()
    graph[importer][imported] = 1
    found = problems(graph, read_layers(README.read_text()))
    assert len(found) == 1 and found[0].startswith(expected), found
