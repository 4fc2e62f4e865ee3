"""fuse-dynamic-quant-matmul: the MatMul that onnxruntime's dynamic quantiser
(`quantize_dynamic`) writes becomes one com.microsoft DynamicQuantizeMatMul, as onnxruntime's
own graph optimiser fuses it.

    (xq, xs, xzp) = DynamicQuantizeLinear(x)
    acc = MatMulInteger(xq, B, xzp, b_zp)          B constant [K, N], int8/uint8
    y   = Mul(Cast<float>(acc), Mul(xs, b_scale))  b_scale constant, one or N values
==> y = DynamicQuantizeMatMul(x, B, b_scale, b_zp)

Same numbers: DynamicQuantizeMatMul quantises x over its whole range as
DynamicQuantizeLinear does (edgec's int8 codes and zero point differ from the uint8 ones by
128, so q - zp is the same except where lo / scale is exactly a half integer), sums the
exact integer products and multiplies float(acc) by the float32 product xs * b_scale[n].
Without the fusion MatMulInteger's run-time zero point has no kernel (a one-line error).
"""

from __future__ import annotations

import numpy as np

from edgec.ir import DType, Graph, Node, Value
from edgec.passes._rewrite import apply_rules
from edgec.passes.registry import register_pass


def _producer(v: Value | None, op: str, g: Graph, single: bool = True) -> Node | None:
    """The `op` node writing `v` (read once, not a graph output when `single`), or None."""
    if v is None or v.producer is None or v.producer.op != op:
        return None
    if single and (len(v.uses) != 1 or v in g.outputs):
        return None
    return v.producer


def _scale_operands(mul: Node, g: Graph, dql: Node) -> Value | None:
    """b_scale when `mul` is Mul(xs, b_scale) with xs the DynamicQuantizeLinear's scale."""
    if mul.op != "Mul" or len(mul.inputs) != 2 or len(mul.output.uses) != 1:
        return None
    a, b = mul.inputs
    xs = dql.outputs[1]
    b_scale = b if a is xs else a if b is xs else None
    if b_scale is None or not b_scale.is_const or b_scale.dtype != DType.FLOAT32:
        return None
    return b_scale


def fuse(g: Graph, node: Node) -> bool:
    """Mul(Cast(MatMulInteger(DynamicQuantizeLinear(x)...)), Mul(xs, b_scale)) -> one node."""
    if node.op != "Mul" or len(node.inputs) != 2 or node.output.dtype != DType.FLOAT32:
        return False
    for acc_f, scale in (node.inputs, node.inputs[::-1]):
        cast = _producer(acc_f, "Cast", g)
        mmi = cast and _producer(cast.input(0), "MatMulInteger", g)
        if mmi is None or len(mmi.inputs) < 3:
            continue
        xq, b, xzp = mmi.inputs[:3]
        b_zp = mmi.input(3)
        dql = _producer(xq, "DynamicQuantizeLinear", g, single=False)
        if dql is None or xzp is not dql.outputs[2] or not b.is_const or b.type.rank != 2 \
                or (b_zp is not None and not b_zp.is_const) or scale.producer is None:
            continue
        b_scale = _scale_operands(scale.producer, g, dql)
        n = b.shape[1]
        if b_scale is None or b_scale.type.numel not in (1, n) or \
                (b_zp is not None and b_zp.type.numel not in (1, n)):
            continue
        if b_zp is None:
            b_zp = g.const(np.zeros((), b.dtype.np), b.name + "_zero_point")
        fused = g.add_node("DynamicQuantizeMatMul", [dql.input(0), b, b_scale, b_zp],
                           name=mmi.name, before=node)
        g.replace_all_uses(node.output, fused.output)
        return True
    return False


@register_pass("fuse-dynamic-quant-matmul")
def fuse_dynamic_quant_matmul(g: Graph) -> bool:
    """Fuse onnxruntime's dynamic-quantisation MatMul chains into DynamicQuantizeMatMul."""
    return apply_rules(g, [fuse])
