"""fold-scale-shift: Mul / Add by a per-channel constant after a layer folds into it.

Mul(y, c) with y = Conv/ConvTranspose/Gemm output (single use, no activation, no residual)
and c constant per output channel (or scalar): weights and bias of channel m scale by c[m].
Add(y, c) likewise: the bias of channel m grows by c[m]. Repeated to a fixpoint, so the
Mul + Add that a standalone BatchNormalization becomes can also vanish into a layer.
"""

from __future__ import annotations

import numpy as np

from edgec.ir import Graph, Node
from edgec.passes._fusion import channel_axis, fusable_producer, per_channel, scale_output_channels
from edgec.passes._rewrite import apply_rules
from edgec.passes.registry import register_pass


def _operands(node: Node):
    a, b = node.inputs
    if b.is_const and not a.is_const:
        return a, b
    if a.is_const and not b.is_const:
        return b, a
    return None


def _bias_of(g: Graph, prod: Node, m: int) -> np.ndarray | None:
    if prod.op == "Gemm":
        c = prod.input(2)
        if c is None:
            return np.zeros(m)
        if not c.is_const:
            return None
        full = np.broadcast_to(c.data.astype(np.float64) * prod.attrs["beta"],
                               prod.output.shape)
        return full[0] if np.all(full == full[:1]) else None
    b = prod.input(2)
    return np.zeros(m) if b is None else b.data.astype(np.float64)


def fold(g: Graph, node: Node) -> bool:
    """One Mul/Add by a per-channel constant into the producing layer."""
    if node.op not in ("Mul", "Add") or len(node.inputs) != 2:
        return False
    ops = _operands(node)
    if ops is None:
        return False
    y, c = ops
    prod = fusable_producer(g, y, ops=("Conv", "ConvTranspose", "Gemm"))
    if prod is None or node.output.type != y.type:
        return False
    if len(prod.inputs) > 3 and prod.input(3) is not None:
        return False
    w = prod.input(1)
    if w is None or not w.is_const:
        return False
    values = per_channel(c.data, y.shape, channel_axis(prod))
    if values is None:
        return False
    m = values.size
    bias = _bias_of(g, prod, m)
    if bias is None:
        return False
    vals = values.astype(np.float64)
    if node.op == "Mul":
        if prod.op == "Gemm":
            wd = w.data.astype(np.float64)
            wd = wd * (vals[:, None] if prod.attrs["transB"] else vals[None, :])
            new_w = wd.astype(np.float32)
        else:
            new_w = scale_output_channels(prod, w.data, values)
        new_b = bias * vals
    else:
        new_w = w.data
        new_b = bias + vals
    inputs = [prod.input(0), g.const(new_w, w.name + "_f"),
              g.const(new_b.astype(np.float32), prod.name + "_bias")]
    attrs = dict(prod.attrs)
    if prod.op == "Gemm":
        attrs["beta"] = 1.0
    new = g.add_node(prod.op, inputs, attrs=attrs, name=prod.name, before=prod)
    g.replace_all_uses(node.output, new.output)
    return True


@register_pass("fold-scale-shift")
def fold_scale_shift(g: Graph) -> bool:
    """Fold per-channel constant Mul/Add into producing layers."""
    return apply_rules(g, [fold])
