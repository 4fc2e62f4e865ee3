"""C kernels of ONNX QuantizeLinear and DequantizeLinear (edgec/ops/onnx_quant.py).

Portable: `ops/quantize_linear` / `ops/dequantize_linear`, an odometer over x with the scale
(and zero point) broadcast to it by strides. Per-tensor float32 -> int8/uint8
QuantizeLinear has vector kernels: x86 `ops/x86/quantize_linear`, arm64
`ops/arm64/quantize_linear` (literals of the scale and of the clamp bounds).
"""

from __future__ import annotations

import numpy as np

from edgec.ir import DType, Node
from edgec.ops import get_op
from edgec.ops.base import in_type
from edgec.ops.common import broadcast_plan, row_major_strides
from edgec.ops.quant_common import int_range
from edgec.codegen.c.isa import arm64_q8, x86_q8
from edgec.codegen.c.kernel import PORTABLE, Candidate, ConstArray, Kernel, register_candidates

QUANT_RUNTIME = ("edgec_qmath.h", "edgec_qkernels.h")


def broadcast_params(node: Node) -> dict:
    """Strides of x, scale and zero point over x's shape, and the scale/zero-point arrays."""
    s, z = get_op(node.op).params(node)
    rank = in_type(node, 0).rank
    arrays = [s] + ([] if z is None else [z])
    arrays = [a.reshape((1,) * (rank - a.ndim) + a.shape) for a in arrays]
    dims, strides = broadcast_plan(in_type(node, 0).shape,
                                   [in_type(node, 0).shape] + [a.shape for a in arrays])
    p = {"dims": dims, "x_strides": strides[0], "s_strides": strides[1],
         "z_strides": strides[2] if z is not None else None,
         "out_strides": row_major_strides(tuple(dims)), "has_zp": z is not None,
         "scale": ConstArray(np.ascontiguousarray(arrays[0], np.float32).reshape(-1),
                             "scale")}
    if z is not None:
        p["zero_point"] = ConstArray(np.ascontiguousarray(arrays[1]).reshape(-1),
                                     "zero_point")
    return p


def quantize_params(node: Node, scratch) -> dict:
    """Portable QuantizeLinear parameters: the broadcast plus the output type's range."""

    def make():
        p = broadcast_params(node)
        p["qmin"], p["qmax"] = int_range(node.output.dtype)
        return p

    return scratch.once("portable", make)


def _vector(isa_params, template: str, runtime: tuple[str, ...]) -> Candidate:
    def params(node, target, scratch):
        return scratch.once(template, lambda: isa_params(node, target,
                                                          quantize_params(node, scratch)))

    return Candidate(template, lambda n, t, s: Kernel(template, params(n, t, s), runtime),
                     lambda n, t, s: params(n, t, s) is not None)


def _dequantize(node: Node, target, scratch) -> Kernel:
    p = broadcast_params(node)
    p["wide"] = in_type(node, 0).dtype == DType.INT32
    return Kernel("ops/dequantize_linear.c.j2", p, QUANT_RUNTIME)


register_candidates("QuantizeLinear", "x86", [_vector(
    x86_q8.quantize_linear_params, "ops/x86/quantize_linear.c.j2", x86_q8.RUNTIME)])
register_candidates("QuantizeLinear", "arm64", [_vector(
    arm64_q8.quantize_linear_params, "ops/arm64/quantize_linear.c.j2", arm64_q8.Q8_RUNTIME)])
register_candidates("QuantizeLinear", PORTABLE, [Candidate(
    "quantize-linear",
    lambda n, t, s: Kernel("ops/quantize_linear.c.j2", quantize_params(n, s), QUANT_RUNTIME))])
register_candidates("DequantizeLinear", PORTABLE, [Candidate("dequantize-linear", _dequantize)])
