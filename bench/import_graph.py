"""Core's internal import graph, checked against core's layers.

Prints every import from one core module of another, grouped by the importing module, and fails
(exit 1) when an import runs upward or sideways through the layers below, or when modules import
each other in a loop. Read with ``ast`` only: nothing in core is imported, so it runs anywhere.

    python bench/import_graph.py            # the edges, then the verdict
    python bench/import_graph.py --quiet    # the verdict only
    python -m pytest tests/core/test_import_graph.py

Every import counts, wherever it is written: at module level, inside a function (the lazy imports
that keep a cold start short; marked ``lazy``) and under ``if TYPE_CHECKING:`` (marked ``typing``):
a lazy import is still a dependency, it only runs later. ``from core.a.b import c`` also runs
``core/a/__init__.py``, so for loops an import of a module counts as an import of its packages.
Names built at run time (``importlib.import_module(backend.module)``) are not seen.

Like every bench script it writes ``bench/results/import_graph.json`` for ``run_all.py``.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT / "core"
RESULTS = ROOT / "bench" / "results"

# Lowest first. A module may import its own layer and any layer of a lower rank; layers of the
# same rank (batch, http) do not import each other. A module belongs to the longest prefix that
# names it (the module itself or a package above it); a module in no layer fails the check.
LAYERS: tuple[tuple[int, str, tuple[str, ...]], ...] = (
    # core.schema: the columns a model takes, read by the model's loaders and by request parsing
    (0, "base", ("core.errors", "core.installed", "core.stack_headroom", "core.logs", "core.demo", "core.schema",
               "core.file_formats",  # the model file table: stdlib and core.installed only
               "core.json_text")),  # JSON lines as the json module writes them: stdlib and core.installed
    (1, "storage", ("core.storage",)),
    (2, "settings", ("core.settings",)),
    (3, "model", ("core.model",)),
    (4, "request", ("core.request",)),
    (5, "prediction", ("core.prediction",)),
    (6, "batch", ("core.batch",)),
    (6, "http", ("core.http",)),
    (7, "runtime", ("core.runtime",)),
)


class Edge(NamedTuple):
    source: str
    target: str
    kind: str  # "top", "lazy" (inside a function) or "typing" (under if TYPE_CHECKING)
    line: int


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def core_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(CORE.rglob("*.py"))}


def layer_of(module: str) -> tuple[int, str]:
    if module == "core":  # the package's __init__ (a version string); not a prefix of every module
        return LAYERS[0][0], LAYERS[0][1]
    best = None
    for rank, name, prefixes in LAYERS:
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), rank, name)
    if best is None:
        raise SystemExit(f"{module} is in no layer: add it to LAYERS in {Path(__file__).name}")
    return best[1], best[2]


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _resolve(node: ast.ImportFrom | ast.Import, source: str, is_package: bool, modules: dict) -> list[str]:
    """The core modules an import statement loads (the named module, or each imported submodule)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name.split(".")[0] == "core"]
    base = node.module or ""
    if node.level:  # relative: from the importing module's package
        package = source.split(".") if is_package else source.split(".")[:-1]
        package = package[: len(package) - (node.level - 1)]
        base = ".".join(package + ([base] if base else []))
    if base.split(".")[0] != "core":
        return []
    # `from core.batch import triggered` loads core.batch.triggered; `from core.batch import X` core.batch
    return [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]


def edges_of(source: str, path: Path, modules: dict) -> list[Edge]:
    tree = ast.parse(path.read_text(), str(path))
    found: list[Edge] = []

    def visit(node: ast.AST, kind: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                for target in dict.fromkeys(_resolve(child, source, path.name == "__init__.py", modules)):
                    if target != source:
                        found.append(Edge(source, target, kind, child.lineno))
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                for statement in child.body:
                    visit(ast.Module(body=[statement], type_ignores=[]), "typing")
                for statement in child.orelse:
                    visit(ast.Module(body=[statement], type_ignores=[]), kind)
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                visit(child, "typing" if kind == "typing" else "lazy")
            else:
                visit(child, kind)

    visit(tree, "top")
    return found


def import_graph() -> list[Edge]:
    """Every edge once per (importer, imported, kind): the first line it is written on."""
    modules = core_modules()
    edges = [edge for name, path in modules.items() for edge in edges_of(name, path, modules)]
    return list({(e.source, e.target, e.kind): e for e in reversed(edges)}.values())[::-1]


def wrong_way(edge: Edge) -> str | None:
    """Why ``edge`` breaks the layering, or None."""
    (source_rank, source_layer), (target_rank, target_layer) = layer_of(edge.source), layer_of(edge.target)
    if target_rank > source_rank:
        return f"upward: {source_layer} -> {target_layer}"
    if target_rank == source_rank and target_layer != source_layer:
        return f"sideways: {source_layer} -> {target_layer}"
    return None


def _packages(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def cycles(edges: list[Edge]) -> list[list[str]]:
    """Loops of modules, each once (Tarjan's strongly connected components of size > 1).

    Importing ``core.a.b`` runs ``core/a/__init__.py`` first, so an edge to a module is also an
    edge to each of its packages, except those the importer is inside (already being imported)."""
    graph: dict[str, set[str]] = {}
    for edge in edges:
        inside = set(_packages(edge.source)) | {edge.source}
        for target in _packages(edge.target)[1:] + [edge.target]:  # not "core" itself: it imports nothing
            if target not in inside:
                graph.setdefault(edge.source, set()).add(target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    loops: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                loops.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return loops


def report(edges: list[Edge], quiet: bool) -> tuple[list[str], list[tuple[Edge, str]], list[list[str]]]:
    wrong = [(edge, why) for edge in edges if (why := wrong_way(edge))]
    loops = cycles(edges)
    lines: list[str] = []
    if not quiet:
        lines.append("layers, lowest first: " + " < ".join(
            "/".join(name for r, name, _ in LAYERS if r == rank) for rank in sorted({r for r, _, _ in LAYERS})))
        lines.append("")
        current = None
        for edge in sorted(edges, key=lambda e: (e.source, e.target)):
            if edge.source != current:
                current = edge.source
                lines.append(f"{current}  [{layer_of(current)[1]}]")
            flag = wrong_way(edge)
            kind = "" if edge.kind == "top" else f" ({edge.kind}, line {edge.line})"
            lines.append(f"    -> {edge.target}{kind}{'   <-- ' + flag.upper() if flag else ''}")
        lines.append("")
    for edge, why in wrong:
        lines.append(f"WRONG WAY  {edge.source} -> {edge.target} ({edge.kind}, line {edge.line}): {why}")
    for loop in loops:
        lines.append(f"LOOP       {' <-> '.join(loop)}")
    lines.append(
        f"{len(edges)} edges ({sum(e.kind == 'lazy' for e in edges)} lazy, {sum(e.kind == 'typing' for e in edges)} "
        f"typing-only), {len(wrong)} against the layers, {len(loops)} loops"
    )
    return lines, wrong, loops


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quiet", action="store_true", help="print only what breaks the layering, and the count")
    parser.add_argument("--no-results", action="store_true", help="do not write bench/results/import_graph.json")
    args = parser.parse_args()
    edges = import_graph()
    lines, wrong, loops = report(edges, args.quiet)
    print("\n".join(lines))
    met = not wrong and not loops
    if args.no_results:
        return 0 if met else 1
    result = f"{len(wrong)} wrong-way edges, {len(loops)} loops of {len(edges)} edges"
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "import_graph.json").write_text(json.dumps({
        "summary": [{"benchmark": "import_graph", "case": "core's imports against its layers",
                     "result": result, "goal": "0 wrong-way, 0 loops", "met": met}],
        "markdown": "### import_graph\n\n```\n" + "\n".join(lines) + "\n```",
        "edges": [edge._asdict() for edge in edges],
    }, indent=2) + "\n")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
