"""The imports between geocorr's subpackages form no cycle.

Every module under ``src/geocorr`` is parsed with :mod:`ast` (nothing is
imported), and every ``import``/``from ... import`` in it, function-local and
``TYPE_CHECKING`` ones included, becomes an arrow from the module's subpackage
(``geocorr.X``; a top-level module such as ``demo.py`` is its own node) to the
subpackage it names. The graph must be acyclic, so the pipeline reads in one
direction (docs/architecture.md).

Run as a script to print the graph as a mermaid diagram (the picture in
docs/architecture.md is its output)::

    python tests/test_import_graph.py
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "src" / "geocorr"

Graph = dict[str, dict[str, list[str]]]
"""``node -> {imported node -> [importing module, ...]}``."""


def _module_name(path: Path, root: Path) -> str:
    parts = ("geocorr",) + path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _node(module: str, root: Path) -> str | None:
    """The graph node of a dotted ``geocorr...`` name: its subpackage or top-level module."""
    parts = module.split(".")
    if parts[0] != "geocorr":
        return None
    if len(parts) == 1:
        return "geocorr"
    if (root / parts[1]).is_dir() or (root / f"{parts[1]}.py").is_file():
        return parts[1]
    return "geocorr"  # an attribute of the root package, e.g. ``from geocorr import __version__``


def _imported(tree: ast.AST, module: str, is_package: bool) -> list[str]:
    """Dotted names of everything ``tree`` imports (relative imports resolved)."""
    out: list[str] = []
    for n in ast.walk(tree):
        if isinstance(n, ast.Import):
            out += [a.name for a in n.names]
        elif isinstance(n, ast.ImportFrom):
            if n.level:
                base = module.split(".")
                base = base[: len(base) - n.level + (1 if is_package else 0)]
                stem = ".".join(base + ([n.module] if n.module else []))
            else:
                stem = n.module or ""
            # ``from geocorr import data`` names the subpackage, not the root
            out += [f"{stem}.{a.name}" for a in n.names] if stem == "geocorr" else [stem]
    return out


def import_graph(root: Path = PKG) -> Graph:
    """The arrows between geocorr's subpackages (self-arrows dropped)."""
    graph: Graph = {}
    for path in sorted(root.rglob("*.py")):
        module = _module_name(path, root)
        src = _node(module, root)
        graph.setdefault(src, {})
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for name in _imported(tree, module, path.name == "__init__.py"):
            dst = _node(name, root)
            if dst is not None and dst != src:
                graph[src].setdefault(dst, []).append(module)
                graph.setdefault(dst, {})
    return graph


def cycles(graph: Graph) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def a_cycle(graph: Graph, members: list[str]) -> list[str]:
    """One shortest closed path ``[a, b, ..., a]`` through a cycle's first member."""
    start = members[0]
    paths = {start: [start]}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph[v]):
            if w == start:
                return paths[v] + [start]
            if w in members and w not in paths:
                paths[w] = paths[v] + [w]
                queue.append(w)
    raise ValueError(f"{members} is not a cycle")


def layers(graph: Graph) -> list[list[str]]:
    """Nodes grouped by depth: layer 0 imports nothing in geocorr, layer k imports layer < k."""
    depth: dict[str, int] = {}

    def d(v: str) -> int:
        if v not in depth:
            depth[v] = 1 + max((d(w) for w in graph[v]), default=-1)
        return depth[v]

    for v in graph:
        d(v)
    return [sorted(v for v in graph if depth[v] == k) for k in range(max(depth.values()) + 1)]


def reachable(graph: Graph, v: str) -> set[str]:
    """Every node ``v`` imports directly or through others."""
    seen: set[str] = set()
    todo = list(graph[v])
    while todo:
        w = todo.pop()
        if w not in seen:
            seen.add(w)
            todo += graph[w]
    return seen


def reduction(graph: Graph) -> dict[str, list[str]]:
    """The arrows of an acyclic graph that no longer path implies (transitive reduction)."""
    return {v: sorted(w for w in graph[v]
                      if not any(w in reachable(graph, u) for u in graph[v] if u != w))
            for v in graph}


def mermaid(graph: Graph) -> str:
    """The transitive reduction as a mermaid ``flowchart`` (arrow = "imports")."""
    red = reduction(graph)
    lines = ["flowchart BT"]
    for src in sorted(red):
        lines += [f"    {src} --> {dst}" for dst in red[src]]
    return "\n".join(lines)


def table(graph: Graph) -> str:
    """A markdown table: each node's layer and the nodes it imports directly."""
    rows = ["| layer | node | imports directly |", "|---|---|---|"]
    for k, layer in enumerate(layers(graph)):
        rows += [f"| {k} | `{v}` | {', '.join(sorted(graph[v])) or '(nothing in geocorr)'} |"
                 for v in layer]
    return "\n".join(rows)


# --- tests -------------------------------------------------------------------------------------

def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = root / "geocorr" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root / "geocorr"


def test_graph_reads_every_kind_of_import(tmp_path):
    """Top-level, function-local, relative and ``from geocorr import X`` imports all count."""
    root = _write(tmp_path, {
        "__init__.py": "",
        "demo.py": "def f():\n    from geocorr import labels\n",
        "geometry/__init__.py": "",
        "geometry/mesh.py": "import numpy\n",
        "data/__init__.py": "",
        "data/a.py": "from ..geometry import mesh\nfrom . import b\n",
        "data/b.py": "",
        "labels/__init__.py": "from geocorr.data.a import x\n",
        "labels/run.py": "def g():\n    import geocorr.geometry.mesh\n",
    })
    g = import_graph(root)
    assert {k: sorted(v) for k, v in g.items()} == {
        "geocorr": [], "demo": ["labels"], "geometry": [], "data": ["geometry"],
        "labels": ["data", "geometry"]}
    assert g["labels"]["geometry"] == ["geocorr.labels.run"]
    assert cycles(g) == []
    assert layers(g) == [["geocorr", "geometry"], ["data"], ["labels"], ["demo"]]
    assert reduction(g)["labels"] == ["data"]  # labels -> geometry is implied by data


def test_a_cycle_is_found_with_its_members(tmp_path):
    """A function-local import that closes a loop of three subpackages is a cycle."""
    root = _write(tmp_path, {
        "a/__init__.py": "from geocorr.b import x\n",
        "b/__init__.py": "from geocorr.c.m import y\n",
        "c/__init__.py": "",
        "c/m.py": "def f():\n    from geocorr.a import z\n",
        "d/__init__.py": "from geocorr.a import z\n",
    })
    g = import_graph(root)
    assert cycles(g) == [["a", "b", "c"]]
    assert a_cycle(g, ["a", "b", "c"]) == ["a", "b", "c", "a"]


def test_no_import_cycle_between_subpackages():
    g = import_graph()
    assert {"geometry", "data", "evaluation", "labels", "cli"} <= set(g)
    found = cycles(g)
    detail = "; ".join(
        " -> ".join(f"{a} ({g[a][b][0]})" for a, b in zip(p, p[1:], strict=False)) + f" -> {p[-1]}"
        for p in (a_cycle(g, c) for c in found))
    assert not found, f"import cycle between subpackages: {detail}"


def test_architecture_doc_shows_todays_graph():
    """docs/architecture.md carries this script's output verbatim (regenerate it when it fails)."""
    doc = (PKG.parents[1] / "docs" / "architecture.md").read_text(encoding="utf-8")
    g = import_graph()
    assert mermaid(g) in doc, "docs/architecture.md: regenerate the mermaid graph with " \
        "`PYTHONPATH=src python tests/test_import_graph.py`"
    assert table(g) in doc, "docs/architecture.md: regenerate the layer table with " \
        "`PYTHONPATH=src python tests/test_import_graph.py`"


def test_geometry_imports_nothing_else_from_geocorr():
    assert import_graph()["geometry"] == {}


if __name__ == "__main__":
    if len(sys.argv) > 1:
        sys.exit(f"usage: {sys.argv[0]} (no arguments)")
    g = import_graph()
    if found := cycles(g):
        sys.exit(f"import cycles: {found}")
    print(mermaid(g))
    print()
    print(table(g))
