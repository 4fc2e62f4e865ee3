"""C kernel of QResize (edgec/ops/quantized_resize.py), portable only: the float Resize's
per-axis offset tables (kernels/resize.py) with Q10 integer weights, an int32 accumulator
per output element and one rounding shift at the end, so every target gives the same bits.
"""

from __future__ import annotations

from edgec.codegen.c.kernel import PORTABLE, ConstArray, op_lowering, register_candidates
from edgec.codegen.c.kernels.resize import resize_params
from edgec.ir import Node
from edgec.ops.int8_elementwise import WEIGHT_BITS, int8_linear_tables


def qresize_params(op, node: Node, target) -> dict:
    """resize_params with the weights as Q10 int32 tables, plus the final shift."""
    params = resize_params(op, node, target)
    shift = 0
    for axis, t in enumerate(int8_linear_tables(op, node)):
        if t is not None:
            params[f"a{axis}_w"] = ConstArray(t[1], f"a{axis}_weights_q10")
            shift += WEIGHT_BITS
    params["shift"] = shift
    # 128 * 2^shift makes the accumulator non-negative before the shift, 2^(shift-1) rounds
    params["start"] = (128 << shift) + (1 << (shift - 1))
    return params


register_candidates("QResize", PORTABLE, [op_lowering("ops/qresize.c.j2", qresize_params)])
