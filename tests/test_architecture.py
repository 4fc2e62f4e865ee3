"""The import graph keeps the layers of docs/architecture.md: no import cycles between edgec
modules, and no import from a lower layer to a higher one.

Every `import` and `from ... import` in every module of the source tree counts, at module top
or inside a function (a lazy import is still a dependency), except those under
`if TYPE_CHECKING:`. Relative imports are resolved as the installed package sees them
(passes/ is edgec.passes, codegen/ is edgec.codegen).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from functools import cache
from pathlib import Path

import networkx as nx

REPO = Path(__file__).resolve().parents[1]
SOURCE_ROOTS = {"edgec": REPO / "edgec", "edgec.passes": REPO / "passes",
                "edgec.codegen": REPO / "codegen"}

# The layers, lowest first (docs/architecture.md). A module belongs to the layer of the
# longest prefix that names it ("edgec" names the package's __init__ only); a module may
# import from its own layer and the ones below.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("foundation", ("edgec", "edgec.errors", "edgec.console", "edgec.markdown", "edgec.detmath",
                    "edgec.qmath", "edgec.gcpause", "edgec.targets")),
    ("ir", ("edgec.ir", "edgec.limits", "edgec.datafiles")),
    ("ops", ("edgec.ops", "edgec.interp")),
    ("frontend/passes", ("edgec.frontend", "edgec.passes", "edgec.quant", "edgec.prune")),
    ("codegen", ("edgec.codegen", "edgec.cortexm.boards", "edgec.cortexm.cmake")),
    ("compiler", ("edgec.compiler", "edgec.output_dir")),
    ("workbench/cli", ("edgec.workbench", "edgec.golden", "edgec.api", "edgec.cli",
                       "edgec.cli_options",
                       "edgec.fuzz", "edgec.pytest_plugin", "edgec.prune.cli",
                       "edgec.cortexm")),
]

# Known edges that the other two parts of issue 13 remove (engineer A: the IR's op registry
# import and the ops' C helpers; engineer C: the quantize <-> _quantize_dynamic circle). The
# lead empties these lists after merging the three branches; nothing may be added to them.
KNOWN_LAYER_VIOLATIONS: set[tuple[str, str]] = set()
KNOWN_CYCLE_EDGES: set[tuple[str, str]] = set()


def _modules() -> dict[str, tuple[Path, bool]]:
    """Every module of the source tree: dotted name -> (file, is a package __init__)."""
    found = {}
    for package, root in SOURCE_ROOTS.items():
        for path in root.rglob("*.py"):
            parts = list(path.relative_to(root).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            if is_package:
                parts = parts[:-1]
            found[".".join([package, *parts])] = (path, is_package)
    return found


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """ids of the import nodes under `if TYPE_CHECKING:` (annotations only, no dependency)."""
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return skipped


def _imported(module: str, is_package: bool, node: ast.AST, modules) -> list[str]:
    """The edgec modules one import statement names (a package when no module matches)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        if node.level:
            base = module.split(".") if is_package else module.split(".")[:-1]
            base = base[:len(base) - (node.level - 1)]
            prefix = ".".join(base + ([node.module] if node.module else []))
        else:
            prefix = node.module or ""
        names = [f"{prefix}.{a.name}" if f"{prefix}.{a.name}" in modules else prefix
                 for a in node.names]
    out = []
    for name in names:
        if name != "edgec" and not name.startswith("edgec."):
            continue
        while name not in modules and "." in name:
            name = name.rsplit(".", 1)[0]
        out.append(name)
    return out


@cache
def import_graph() -> dict[str, set[str]]:
    """importer -> the edgec modules it imports (itself excluded); parsed once per session."""
    modules = _modules()
    edges: dict[str, set[str]] = defaultdict(set)
    for module, (path, is_package) in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        skipped = _type_checking_nodes(tree)
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in skipped:
                edges[module].update(t for t in _imported(module, is_package, node, modules)
                                     if t != module)
        edges.setdefault(module, set())
    return edges


def layer_of(module: str) -> int | None:
    """Index in LAYERS of the longest prefix naming `module` (None: not placed)."""
    best = None
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            inside = module == prefix or (prefix != "edgec" and module.startswith(prefix + "."))
            if inside and (best is None or len(prefix) > best[1]):
                best = (index, len(prefix))
    return best[0] if best else None


def test_every_module_has_a_layer():
    unplaced = sorted(m for m in import_graph() if layer_of(m) is None)
    assert not unplaced, f"add these modules to LAYERS (and docs/architecture.md): {unplaced}"


def test_no_import_from_a_lower_layer_to_a_higher_one():
    upward = []
    for importer, targets in sorted(import_graph().items()):
        for target in sorted(targets):
            low, high = layer_of(importer), layer_of(target)
            if low is not None and high is not None and high > low and \
                    (importer, target) not in KNOWN_LAYER_VIOLATIONS:
                upward.append(f"{importer} ({LAYERS[low][0]}) imports {target} "
                              f"({LAYERS[high][0]})")
    assert not upward, "\n".join(upward)


def test_no_import_cycles():
    graph = nx.DiGraph()
    for importer, targets in import_graph().items():
        graph.add_node(importer)
        graph.add_edges_from((importer, t) for t in targets
                             if (importer, t) not in KNOWN_CYCLE_EDGES)
    cycles = [sorted(c) for c in nx.strongly_connected_components(graph) if len(c) > 1]
    assert not cycles, f"import cycles: {cycles}"


def test_known_edges_still_exist():
    """An allow-listed edge that is gone must leave the list (the lists only shrink)."""
    edges = {(a, b) for a, targets in import_graph().items() for b in targets}
    stale = sorted((KNOWN_LAYER_VIOLATIONS | KNOWN_CYCLE_EDGES) - edges)
    assert not stale, f"remove from the allow-lists in tests/test_architecture.py: {stale}"
