"""layout-nhwc: run spatial ops channels-last, keeping the model's own layout at its edges.

Algorithm:
1. Every spatial op (registry flag `spatial`: Conv, pools, normalisations, Resize...) with
   channels-first data is switched to channels-last: a Transpose to NHWC is inserted on its
   data input, and a Transpose back to NCHW on its output.
2. Transposes are then sunk towards the outputs and cancelled, by rules applied to a fixpoint:
   - T(p2) after T(p1) is one Transpose (or nothing, when the composition is the identity);
   - an elementwise op whose non-constant operands are all the same Transpose T(p) (each read
     only there) is computed before the transpose instead; constant operands are permuted at
     compile time;
   - Concat of Transposes T(p) is a Concat on axis p[axis] followed by T(p);
   - any other op whose `sink_transpose` facet (edgec/ops/base.py) gives attributes for the
     permuted layout (Pad, Slice, Softmax, reductions...) is computed before the transpose;
   - a reduction with keepdims=0 (facet `keep_reduced_dims`) becomes keepdims=1 + Reshape,
     so that the previous rule applies to it.
   What remains are Transposes at the graph's inputs and outputs, or before ops that need a
   particular layout (e.g. Flatten of a feature map); those that move only size-1 dimensions
   become Reshapes in canonicalize.
"""

from __future__ import annotations

import numpy as np

from edgec.ir import Graph, Node
from edgec.ir.graph import SOURCE, push_source_through_transposes
from edgec.ops import get_op
from edgec.ops.elementwise import ElementwiseOp
from edgec.passes._rewrite import apply_rules
from edgec.passes.registry import register_pass


def _to_last(rank: int) -> list[int]:
    return [0, *range(2, rank), 1]


def _to_first(rank: int) -> list[int]:
    return [0, rank - 1, *range(1, rank - 1)]


def _inverse(perm: list[int]) -> list[int]:
    inv = [0] * len(perm)
    for i, p in enumerate(perm):
        inv[p] = i
    return inv


def switch_to_channels_last(g: Graph) -> bool:
    """Step 1: wrap every channels-first spatial op in a pair of Transposes."""
    changed = False
    for node in list(g.nodes):
        opdef = get_op(node.op)
        if not opdef.spatial or node.attrs.get("layout") != "NCHW":
            continue
        x = node.input(0)
        rank = len(x.shape)
        if rank < 3:
            continue
        for index in opdef.layout_inputs:
            v = node.input(index)
            if v is None:
                continue
            t_in = g.add_node("Transpose", [v], attrs={"perm": _to_last(rank)},
                              name=f"{node.name}_to_nhwc", before=node)
            node.set_input(index, t_in.output)
        node.attrs["layout"] = "NHWC"
        old_outs = list(node.outputs)
        for y in old_outs:
            y.type = opdef.infer(node)[node.outputs.index(y)]
        for y in old_outs:  # right after the node (O(1): no search for its position)
            t_out = g.add_node("Transpose", [y], attrs={"perm": _to_first(len(y.shape))},
                               name=f"{node.name}_to_nchw", after=node)
            for user, idx in list(y.uses):
                if user is not t_out:
                    user.set_input(idx, t_out.output)
            g.outputs = [t_out.output if v is y else v for v in g.outputs]
            if SOURCE in y.meta:  # provenance: t_out now holds the NCHW tensor, y its NHWC form
                t_out.output.meta[SOURCE] = y.meta.pop(SOURCE)
                push_source_through_transposes(t_out.output)
        changed = True
    return changed


def _perm(node: Node) -> list[int]:
    return get_op("Transpose").perm(node)


def compose_transposes(g: Graph, node: Node) -> bool:
    """T(p2)(T(p1)(x)) -> T(p1[p2])(x), or x when that is the identity."""
    if node.op != "Transpose":
        return False
    x = node.input(0)
    inner = x.producer
    if inner is None or inner.op != "Transpose":
        return False
    p1, p2 = _perm(inner), _perm(node)
    combined = [p1[i] for i in p2]
    src = inner.input(0)
    if combined == list(range(len(combined))):
        if node.output in g.outputs and (src in g.inputs or src.is_const):
            return False
        g.replace_all_uses(node.output, src)
        return True
    new = g.add_node("Transpose", [src], attrs={"perm": combined}, name=node.name, before=node)
    g.replace_all_uses(node.output, new.output)
    return True


def sink_through_elementwise(g: Graph, node: Node) -> bool:
    """op(T(x), T(y), const) -> T(op(x, y, const')) for elementwise ops."""
    if not isinstance(get_op(node.op), ElementwiseOp) or len(node.outputs) != 1:
        return False
    out_rank = len(node.output.shape)
    perm = None
    for v in node.inputs:
        if v is None or v.is_const:
            continue
        t = v.producer
        if t is None or t.op != "Transpose" or len(v.shape) != out_rank:
            return False
        if len(v.uses) != 1 or v in g.outputs:
            return False
        if perm is None:
            perm = _perm(t)
        elif _perm(t) != perm:
            return False
    if perm is None:
        return False
    inv = _inverse(perm)
    new_inputs = []
    for v in node.inputs:
        if v is None:
            new_inputs.append(None)
        elif v.is_const:
            data = v.data.reshape((1,) * (out_rank - v.data.ndim) + v.data.shape)
            new_inputs.append(g.const(np.ascontiguousarray(np.transpose(data, inv)),
                                      v.name + "_nhwc"))
        else:
            new_inputs.append(v.producer.input(0))
    inner = g.add_node(node.op, new_inputs, attrs=dict(node.attrs), name=node.name, before=node)
    t = g.add_node("Transpose", [inner.output], attrs={"perm": perm},
                   name=f"{node.name}_t", before=node)
    g.replace_all_uses(node.output, t.output)
    return True


def sink_through_concat(g: Graph, node: Node) -> bool:
    """Concat(T(x1), T(x2), ..., axis=a) -> T(Concat(x1, x2, ..., axis=p[a]))."""
    if node.op != "Concat":
        return False
    perm = None
    for v in node.inputs:
        t = v.producer if v is not None else None
        if t is None or t.op != "Transpose" or len(v.uses) != 1 or v in g.outputs:
            return False
        if perm is None:
            perm = _perm(t)
        elif _perm(t) != perm:
            return False
    rank = len(node.output.shape)
    axis = node.attrs["axis"] % rank
    inner = g.add_node("Concat", [v.producer.input(0) for v in node.inputs],
                       attrs={"axis": perm[axis]}, name=node.name, before=node)
    t = g.add_node("Transpose", [inner.output], attrs={"perm": perm},
                   name=f"{node.name}_t", before=node)
    g.replace_all_uses(node.output, t.output)
    return True


def sink_through_layout_agnostic(g: Graph, node: Node) -> bool:
    """op(T(x, p), ...) -> T(op'(x, ...), p) for ops whose `sink_transpose` facet allows it."""
    if node.op in ("Transpose", "Concat") or isinstance(get_op(node.op), ElementwiseOp):
        return False
    x = node.input(0)
    t = x.producer if x is not None else None
    if t is None or t.op != "Transpose" or len(x.uses) != 1 or x in g.outputs:
        return False
    perm = _perm(t)
    attrs = get_op(node.op).sink_transpose(node, perm)
    if attrs is None:
        return False
    if any(len(v.shape) != len(perm) for v in node.outputs):
        return False
    inner = g.add_node(node.op, [t.input(0), *node.inputs[1:]], attrs=attrs, name=node.name,
                       before=node)
    for old, new in zip(node.outputs, inner.outputs):
        tr = g.add_node("Transpose", [new], attrs={"perm": perm}, name=f"{node.name}_t",
                        before=node)
        g.replace_all_uses(old, tr.output)
    return True


def keep_dims_below_transpose(g: Graph, node: Node) -> bool:
    """R(T(x), keepdims=0) -> Reshape(R(T(x), keepdims=1)) for reductions (facet
    `keep_reduced_dims`), so that the Transpose can then sink through R and cancel."""
    x = node.input(0)
    t = x.producer if x is not None else None
    if t is None or t.op != "Transpose" or len(x.uses) != 1 or x in g.outputs:
        return False
    if len(node.outputs) != 1:
        return False
    attrs = get_op(node.op).keep_reduced_dims(node)
    if attrs is None:
        return False
    inner = g.add_node(node.op, list(node.inputs), attrs=attrs, name=node.name, before=node)
    squeeze = g.add_node("Reshape", [inner.output], attrs={"shape": list(node.output.shape)},
                         name=f"{node.name}_squeeze", before=node)
    g.replace_all_uses(node.output, squeeze.output)
    return True


RULES = [compose_transposes, sink_through_elementwise, sink_through_concat,
         sink_through_layout_agnostic, keep_dims_below_transpose]


@register_pass("layout-nhwc")
def layout_nhwc(g: Graph) -> bool:
    """Switch spatial ops to channels-last and cancel the Transposes that creates."""
    changed = switch_to_channels_last(g)
    g.toposort()
    return apply_rules(g, RULES) or changed
