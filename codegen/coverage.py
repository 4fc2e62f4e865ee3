"""Per op, what each back-end does with it, read from the back-ends' own registries.

`op_coverage(name)` answers for `edgec ops`:

- "c": the ISA families with C kernels for the op (codegen/c/kernel.py's candidate table:
  "all" when a portable kernel serves every C target, then the x86 / arm64 / cortex-m
  families with candidates of their own);
- "int8": the op(s) an int8 build runs instead (the op's int8 facet, edgec/ops/int8_facet.py:
  Conv -> QConv; ops keeping their input's scale run as themselves; [] stays float) and,
  per such op, its C kernel families;
- "tflite": the builtin operators the TFLite writer emits for the op (codegen/tflite/lower.py
  TABLE, the builtin names read from the lowering function and the per-op tables it indexes);
- "coreml": whether the CoreML back-end's lowering table (codegen/coreml/registry.py) maps it.

Nothing here is a hand-written list: a kernel, lowering or facet added to a back-end shows up.
"""

from __future__ import annotations

import ast
import inspect
import re
import sys
import textwrap
from functools import cache

import edgec.codegen.c.kernels  # noqa: F401 (registers the C kernel candidates)
from edgec.codegen.c.kernel import _CANDIDATES, ISA_FAMILIES, PREFERRED, has_kernels
from edgec.codegen.coreml import ops_logic, ops_nn, ops_tensor  # noqa: F401 (lowerings)
from edgec.codegen.coreml.registry import LOWERINGS as COREML_LOWERINGS
from edgec.codegen.tflite.lower import TABLE as TFLITE_TABLE
from edgec.codegen.tflite.schema import load_schema

from edgec.errors import EdgecError
from edgec.ops import all_ops
from edgec.ops.int8_facet import SameScale

FAMILIES = tuple(dict.fromkeys(ISA_FAMILIES.values()))  # x86, arm64, cortex-m
_BUILTIN = re.compile(r"^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$")


def c_families(op: str) -> list[str]:
    """The C kernel coverage of `op`: "all" (a portable kernel, every C target) followed by
    the ISA families with candidates of their own; [] when no C kernel exists."""
    out = ["all"] if has_kernels(op) or (op, PREFERRED) in _CANDIDATES else []
    return out + [f for f in FAMILIES if (op, f) in _CANDIDATES]


def _tree(obj) -> ast.AST | None:
    try:
        return ast.parse(textwrap.dedent(inspect.getsource(obj)))
    except (OSError, TypeError, SyntaxError):
        return None


def _op_test(test: ast.AST) -> str | None:
    """The op name of an `if node.op == "X":` test, else None."""
    if (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)
            and isinstance(test.left, ast.Attribute) and test.left.attr == "op"
            and isinstance(test.comparators[0], ast.Constant)):
        return test.comparators[0].value
    return None


def _constants(node: ast.AST, op: str) -> list[str]:
    """String constants under `node`, skipping the branches of `if node.op == <other op>`."""
    if isinstance(node, ast.If):
        other = _op_test(node.test)
        if other is not None and other != op:
            return [s for n in node.orelse for s in _constants(n, op)]
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    return [s for child in ast.iter_child_nodes(node) for s in _constants(child, op)]


@cache
def _builtins() -> frozenset[str] | None:
    """BuiltinOperator's member names (None without the ai-edge-litert schema)."""
    try:
        tfl = load_schema()
    except EdgecError:
        return None
    return frozenset(n for n in vars(tfl.BuiltinOperator) if not n.startswith("_"))


def _is_builtin(text: str) -> bool:
    names = _builtins()
    return text in names if names is not None else bool(_BUILTIN.match(text))


def _helpers(fn, tree: ast.AST) -> list:
    """The module-level functions `fn` calls by name (its module's globals)."""
    module = vars(sys.modules[fn.__module__])
    called = [n.func.id for n in ast.walk(tree)
              if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)]
    return [module[c] for c in dict.fromkeys(called) if inspect.isfunction(module.get(c))]


def _fn_builtins(fn, op: str) -> list[str]:
    tree = _tree(fn)
    if tree is None:
        return []
    body = tree.body[0].body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the docstring
    return [s for stmt in body for s in _constants(stmt, op) if _is_builtin(s)]


def tflite_builtins(op: str) -> list[str]:
    """The TFLite builtin operators the writer emits for `op` ([] when it has no lowering):
    the entry of a per-op table (op -> builtin) in the lowering's module, else the builtin
    names the lowering function names (outside branches for other ops), else its helpers'."""
    fn = TFLITE_TABLE.get(op)
    if fn is None:
        return []
    module = sys.modules[fn.__module__]
    tables = [t[op] for t in vars(module).values()
              if isinstance(t, dict) and isinstance(t.get(op), str) and _is_builtin(t[op])]
    if tables:
        return list(dict.fromkeys(tables))
    found = _fn_builtins(fn, op)
    if not found and (tree := _tree(fn)) is not None:
        found = [s for h in _helpers(fn, tree) for s in _fn_builtins(h, op)]
    return list(dict.fromkeys(found))


def coreml_maps(op: str) -> bool:
    """True when the CoreML back-end's lowering table maps `op`."""
    return op in COREML_LOWERINGS


@cache
def _op_names() -> frozenset[str]:
    return frozenset(all_ops())


def _emitted(node: ast.AST, op: str, names) -> list[str]:
    """Op names passed as call arguments under `node` (emit, add_node, a helper building the
    layer), skipping branches for other ops; comparisons do not count."""
    if isinstance(node, ast.If):
        other = _op_test(node.test)
        if other is not None and other != op:
            return [s for n in node.orelse for s in _emitted(n, op, names)]
    found = []
    if isinstance(node, ast.Call):
        found = [a.value for a in node.args if isinstance(a, ast.Constant)
                 and isinstance(a.value, str) and a.value in names and a.value != op]
    return found + [s for child in ast.iter_child_nodes(node)
                    for s in _emitted(child, op, names)]


def _facet_emits(facet, op: str) -> list[str]:
    """The ops the facet emits: its attributes naming ops (BinaryInt8's int8_op, the
    recurrent facets' q_op), then the op names its class passes to calls (its `quantize`
    first), else those of the module functions it calls."""
    names = _op_names()
    found = [v for a in dir(facet) if not a.startswith("_")
             and isinstance(v := getattr(facet, a, None), str) and v in names and v != op]
    tree = _tree(type(facet))
    if tree is None:
        return found
    methods = [n for n in tree.body[0].body if isinstance(n, ast.FunctionDef)]
    methods.sort(key=lambda m: m.name != "quantize")
    found += [s for m in methods for s in _emitted(m, op, names)]
    if not found:
        found = [s for h in _helpers(type(facet), tree) if (t := _tree(h)) is not None
                 for s in _emitted(t, op, names)]
    return list(dict.fromkeys(found))


def int8_ops(op: str) -> list[str]:
    """The op(s) an int8 build runs for `op`: [] when it stays float; the op itself when it
    runs on int8 data with its input's scale (then whatever else its facet may emit);
    else the int8 op(s) its facet emits."""
    facet = all_ops()[op].quant
    if facet.role == "float":
        return []
    emitted = [] if type(facet) is SameScale else _facet_emits(facet, op)
    if facet.role in ("same", "clamp", "concat") or not emitted:
        return list(dict.fromkeys([op] + emitted))
    return emitted


def op_coverage(op: str) -> dict:
    """Per back-end coverage of `op` (see the module docstring); JSON-ready."""
    return {"c": c_families(op),
            "int8_ops": [{"op": q, "c": c_families(q)} for q in int8_ops(op)],
            "tflite": tflite_builtins(op),
            "coreml": coreml_maps(op)}


def _families_text(families: list[str]) -> str:
    if not families:
        return "-"
    isas = " ".join(f for f in families if f != "all")
    if families[0] != "all":
        return isas
    return "all | " + isas if isas else "all"


def coverage_cells(cov: dict) -> list[str]:
    """`op_coverage`'s answer as the short cells of `edgec ops`' table: C kernels
    ("all | x86 arm64"), the int8 op and its C kernels ("QConv: all | x86 ..."), TFLite
    builtins, CoreML ("yes"); "-" for none."""
    q = cov["int8_ops"][0] if cov["int8_ops"] else None
    int8 = f"{q['op']}: {_families_text(q['c'])}" if q else "-"
    return [_families_text(cov["c"]), int8, " ".join(cov["tflite"]) or "-",
            "yes" if cov["coreml"] else "-"]
