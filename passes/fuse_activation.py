"""fuse-activation: an activation after a Conv/ConvTranspose/Gemm/MatMul becomes its epilogue.

Matched (the producer's output read only by the activation, no activation fused yet):
Relu, Clip (constant bounds; ReLU6 is Clip(0, 6)), LeakyRelu, PRelu (scalar or per-channel
constant slope), HardSwish, HardSigmoid, Sigmoid, Tanh, and SiLU written as x * Sigmoid(x).
The epilogue is applied after bias and residual; see edgec/ops/epilogue.py.
"""

from __future__ import annotations

import numpy as np

from edgec.ir import Graph, Node
from edgec.passes._fusion import EPILOGUE_OPS, channel_axis, fusable_producer, per_channel
from edgec.passes._rewrite import apply_rules
from edgec.passes.registry import register_pass

SIMPLE = {"Relu": "relu", "HardSwish": "hardswish", "Sigmoid": "sigmoid", "Tanh": "tanh"}


def _rebuild_with(g: Graph, prod: Node, old_out, **epilogue) -> None:
    attrs = dict(prod.attrs, **epilogue)
    new = g.add_node(prod.op, list(prod.inputs), attrs=attrs, name=prod.name, before=prod)
    g.replace_all_uses(old_out, new.output)


def fuse_simple(g: Graph, node: Node) -> bool:
    """Producer -> activation op  ==>  producer(activation=...)."""
    if node.op not in (*SIMPLE, "Clip", "LeakyRelu", "HardSigmoid", "PRelu"):
        return False
    if node.input(0) is None:
        return False
    prod = fusable_producer(g, node.input(0))
    if prod is None or node.output.type != prod.output.type:
        return False
    a = node.attrs
    if node.op in SIMPLE:
        _rebuild_with(g, prod, node.output, activation=SIMPLE[node.op])
    elif node.op == "Clip":
        lo, hi = a["min"], a["max"]
        if lo == 0.0 and hi == float("inf"):
            _rebuild_with(g, prod, node.output, activation="relu")
        elif np.isfinite(lo) and np.isfinite(hi):
            _rebuild_with(g, prod, node.output, activation="clip", act_alpha=lo, act_beta=hi)
        else:
            return False
    elif node.op == "LeakyRelu":
        _rebuild_with(g, prod, node.output, activation="leaky_relu", act_alpha=a["alpha"])
    elif node.op == "HardSigmoid":
        _rebuild_with(g, prod, node.output, activation="hardsigmoid", act_alpha=a["alpha"],
                      act_beta=a["beta"])
    else:  # PRelu
        slope = node.input(1)
        if slope is None or not slope.is_const:
            return False
        per_c = per_channel(slope.data, prod.output.shape, channel_axis(prod))
        if per_c is None:
            return False
        _rebuild_with(g, prod, node.output, activation="prelu",
                      act_slope=[float(v) for v in per_c])
    return True


def fuse_silu(g: Graph, node: Node) -> bool:
    """Mul(y, Sigmoid(y)) with y from an epilogue op  ==>  producer(activation=silu)."""
    if node.op != "Mul" or len(node.inputs) != 2:
        return False
    a, b = node.inputs
    for y, s in ((a, b), (b, a)):
        sig = s.producer
        if sig is None or sig.op != "Sigmoid" or sig.input(0) is not y:
            continue
        prod = y.producer
        if prod is None or prod.op not in EPILOGUE_OPS or y in g.outputs:
            continue
        if prod.attrs.get("activation", "none") != "none":
            continue
        if len(y.uses) != 2 or len(s.uses) != 1 or s in g.outputs:
            continue
        _rebuild_with(g, prod, node.output, activation="silu")
        return True
    return False


@register_pass("fuse-activation")
def fuse_activation(g: Graph) -> bool:
    """Fold activations into the epilogue of the layer that produces their input."""
    return apply_rules(g, [fuse_silu, fuse_simple])
