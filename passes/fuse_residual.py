"""fuse-residual: Add(layer(x), skip) becomes the layer's residual input.

When one operand of an Add is the single-use output of a Conv (or Gemm/MatMul) that has no
activation and no residual yet, and the other operand has exactly the output's type (no
broadcasting), the layer adds the skip tensor in its epilogue before any activation that is
fused later (so Conv -> Add -> Relu becomes one kernel). When both operands qualify, the one
computed later absorbs the Add, so the earlier one can be freed sooner.
"""

from __future__ import annotations

from edgec.ir import Graph, Node
from edgec.passes._fusion import fusable_producer
from edgec.passes._rewrite import apply_rules
from edgec.passes.registry import register_pass

RESIDUAL_INDEX = {"Conv": 3, "Gemm": 3, "MatMul": 2}


def fuse_add(g: Graph, node: Node) -> bool:
    """Add(producer_out, skip) -> producer(..., residual=skip)."""
    if node.op != "Add" or len(node.inputs) != 2:
        return False
    a, b = node.inputs
    if a.is_const or b.is_const or a.type != b.type or node.output.type != a.type:
        return False
    candidates = []
    for y, skip in ((a, b), (b, a)):
        prod = fusable_producer(g, y, ops=tuple(RESIDUAL_INDEX))
        if prod is None:
            continue
        index = RESIDUAL_INDEX[prod.op]
        if prod.input(index) is not None:
            continue
        if prod.op == "Gemm" and prod.input(2) is not None and not prod.input(2).is_const:
            continue
        candidates.append((prod, skip, index))
    if not candidates:
        return False
    if len(candidates) == 2 and g.order_index(candidates[0][0]) >= g.order_index(candidates[1][0]):
        candidates.reverse()
    prod, skip, index = candidates[-1]
    inputs = list(prod.inputs) + [None] * (index + 1 - len(prod.inputs))
    inputs[index] = skip
    new = g.add_node(prod.op, inputs, attrs=dict(prod.attrs), name=prod.name, before=node)
    g.replace_all_uses(node.output, new.output)
    return True


@register_pass("fuse-residual")
def fuse_residual(g: Graph) -> bool:
    """Fold skip-connection Adds into the producing layer's epilogue."""
    return apply_rules(g, [fuse_add])
