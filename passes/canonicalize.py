"""canonicalize: constant folding, dead code, no-op removal, view simplification.

Rules (each small, applied to a fixpoint):
- fold a node whose inputs are all constant (the op's reference computes the value);
- drop Identity/Dropout, no-op Cast, Reshape to the same shape (unless they write a graph
  output straight from an input or a constant, which the C code must copy);
- merge chains of views (Reshape/Flatten/Squeeze/Unsqueeze) into one Reshape;
- a Transpose that only moves size-1 dimensions is a Reshape.
"""

from __future__ import annotations

import numpy as np

from edgec.ir import Graph, Node
from edgec.ops import get_op
from edgec.passes._rewrite import apply_rules
from edgec.passes.registry import register_pass

VIEW_OPS = {"Reshape", "Flatten", "Squeeze", "Unsqueeze"}
MAX_FOLD_BYTES = 64 << 20


def fold_constant(g: Graph, node: Node) -> bool:
    """Evaluate a node whose inputs are all constants."""
    present = [v for v in node.inputs if v is not None]
    if not present or not all(v.is_const for v in present):
        return False
    if any(v in g.outputs for v in node.outputs):
        return False
    if sum(v.type.nbytes for v in node.outputs) > MAX_FOLD_BYTES:
        return False
    results = get_op(node.op).reference(node, *[None if v is None else v.data for v in node.inputs])
    for v, r in zip(node.outputs, results):
        c = g.const(np.asarray(r).astype(v.dtype.np).reshape(v.shape), v.name + "_folded")
        g.replace_all_uses(v, c)
    return True


def _keeps_boundary_copy(g: Graph, node: Node) -> bool:
    x = node.input(0)
    return node.output in g.outputs and (x.is_const or x in g.inputs or x in g.outputs)


def drop_noop(g: Graph, node: Node) -> bool:
    """Identity, Dropout, Cast to the same type, Reshape to the same shape."""
    if node.op not in ("Identity", "Dropout", "Cast") and node.op not in VIEW_OPS:
        return False
    x = node.input(0)
    if x is None or len(node.outputs) != 1 or node.output.type != x.type:
        return False
    if _keeps_boundary_copy(g, node):
        return False
    g.replace_all_uses(node.output, x)
    return True


def merge_views(g: Graph, node: Node) -> bool:
    """view(view(x)) -> Reshape(x); a view of a view needs only the last shape."""
    if node.op not in VIEW_OPS:
        return False
    x = node.input(0)
    if x.producer is None or x.producer.op not in VIEW_OPS:
        return False
    src = x.producer.input(0)
    new = g.add_node("Reshape", [src], attrs={"shape": list(node.output.shape)},
                     name=node.name, before=node)
    g.replace_all_uses(node.output, new.output)
    return True


def transpose_of_unit_dims(g: Graph, node: Node) -> bool:
    """A Transpose whose non-1 dimensions keep their order moves no data: a Reshape."""
    if node.op != "Transpose":
        return False
    x = node.input(0)
    perm = get_op("Transpose").perm(node)
    moved = [p for p in perm if x.shape[p] != 1]
    if moved != sorted(moved):
        return False
    new = g.add_node("Reshape", [x], attrs={"shape": list(node.output.shape)},
                     name=node.name, before=node)
    g.replace_all_uses(node.output, new.output)
    return True


RULES = [fold_constant, drop_noop, merge_views, transpose_of_unit_dims]


@register_pass("canonicalize")
def canonicalize(g: Graph) -> bool:
    """Fold constants and remove no-ops until nothing changes."""
    changed = apply_rules(g, RULES)
    return bool(g.remove_dead()) or changed
