"""fold-batchnorm: BatchNormalization disappears into the layer before it.

BN(y) = scale * (y - mean) / sqrt(var + eps) + B = s * y + t with s = scale / sqrt(var + eps),
t = B - mean * s. After a Conv / ConvTranspose / Gemm / MatMul whose output only BN reads,
output channel m's weights are multiplied by s[m] and its bias becomes b[m] * s[m] + t[m]
(a MatMul becomes a Gemm to carry the bias when its input is 2-D, else it gets a following
Add). A BN with no such producer becomes Mul + Add by per-channel constants (elementwise
kernels that later passes may fold further).
"""

from __future__ import annotations

import numpy as np

from edgec.ir import Graph, Node
from edgec.passes._fusion import fusable_producer, scale_output_channels
from edgec.passes._rewrite import apply_rules
from edgec.passes.registry import register_pass


def _bn_affine(g: Graph, bn: Node):
    ins = bn.inputs
    if len(ins) < 5 or not all(v is not None and v.is_const for v in ins[1:5]):
        return None
    scale, bias, mean, var = (v.data.astype(np.float64) for v in ins[1:5])
    eps = float(bn.attrs.get("epsilon", 1e-5))
    s = scale / np.sqrt(var + eps)
    t = bias - mean * s
    return s, t


def _channel_axis_of_bn(bn: Node) -> int:
    rank = len(bn.input(0).shape)
    return 1 if bn.attrs.get("layout", "NCHW") == "NCHW" or rank < 3 else rank - 1


def fold_into_producer(g: Graph, bn: Node) -> bool:
    """BN after a single-use Conv/ConvTranspose/Gemm/MatMul with constant weights."""
    if bn.op != "BatchNormalization" or len(bn.outputs) != 1:
        return False
    affine = _bn_affine(g, bn)
    prod = fusable_producer(g, bn.input(0))
    if affine is None or prod is None or len(prod.inputs) > 3 and prod.input(3) is not None:
        return False
    s, t = affine
    w = prod.input(1)
    if w is None or not w.is_const:
        return False
    if prod.op in ("Conv", "ConvTranspose"):
        if prod.attrs.get("layout", "NCHW") != bn.attrs.get("layout", "NCHW"):
            return False
        new_w = scale_output_channels(prod, w.data, s.astype(np.float32))
        m = s.size
        b_old = prod.input(2).data.astype(np.float64) if prod.input(2) is not None \
            else np.zeros(m)
        inputs = [prod.input(0), g.const(new_w, w.name + "_bn"),
                  g.const((b_old * s + t).astype(np.float32), bn.name + "_bias")]
        new = g.add_node(prod.op, inputs, attrs=dict(prod.attrs), name=prod.name, before=prod)
        g.replace_all_uses(bn.output, new.output)
        return True
    if prod.op == "Gemm":
        a = prod.attrs
        c = prod.input(2)
        if c is not None and not c.is_const:
            return False
        bw = w.data.astype(np.float64)
        bw = bw * (s[:, None] if a["transB"] else s[None, :])
        n = s.size
        c_old = np.broadcast_to(c.data.astype(np.float64) * a["beta"], (prod.output.shape[0], n)) \
            if c is not None else np.zeros((1, n))
        c_new = c_old * s + t
        if np.all(c_new == c_new[:1]):
            c_new = c_new[0]
        attrs = dict(a, beta=1.0)
        new = g.add_node("Gemm", [prod.input(0), g.const(bw.astype(np.float32), w.name + "_bn"),
                                  g.const(c_new.astype(np.float32), bn.name + "_bias")],
                         attrs=attrs, name=prod.name, before=prod)
        g.replace_all_uses(bn.output, new.output)
        return True
    if prod.op == "MatMul" and len(w.shape) == 2 and len(prod.input(0).shape) == 2:
        bw = (w.data.astype(np.float64) * s[None, :]).astype(np.float32)
        new = g.add_node("Gemm", [prod.input(0), g.const(bw, w.name + "_bn"),
                                  g.const(t.astype(np.float32), bn.name + "_bias")],
                         name=prod.name, before=prod)
        g.replace_all_uses(bn.output, new.output)
        return True
    return False


def standalone_to_scale_shift(g: Graph, bn: Node) -> bool:
    """BN with no foldable producer -> Mul and Add by per-channel constants."""
    if bn.op != "BatchNormalization" or len(bn.outputs) != 1:
        return False
    affine = _bn_affine(g, bn)
    if affine is None:
        return False
    s, t = affine
    x = bn.input(0)
    rank = len(x.shape)
    axis = _channel_axis_of_bn(bn)
    shape = [1] * (rank - 1)
    if axis >= 1:
        shape[axis - 1] = s.size
    mul = g.add_node("Mul", [x, g.const(s.astype(np.float32).reshape(shape), bn.name + "_scale")],
                     name=bn.name + "_mul", before=bn)
    add = g.add_node("Add", [mul.output, g.const(t.astype(np.float32).reshape(shape),
                                                 bn.name + "_shift")],
                     name=bn.name + "_add", before=bn)
    g.replace_all_uses(bn.output, add.output)
    return True


@register_pass("fold-batchnorm")
def fold_batchnorm(g: Graph) -> bool:
    """Fold every inference-mode BatchNormalization away."""
    changed = apply_rules(g, [fold_into_producer])
    return apply_rules(g, [standalone_to_scale_shift]) or changed
