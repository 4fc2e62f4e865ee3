"""C kernels of ONNX's integer ops QLinearConv, ConvInteger, QLinearMatMul, MatMulInteger
and DynamicQuantizeLinear (edgec/ops/onnx_quant.py); portable only.

Convolutions share edgec's int8 conv kernels (`ops/qgemm` pointwise, `ops/qconv_depthwise`,
`ops/qconv`), with the weight zero point folded into the weights and ONNX's float
requantisation (QLinearConv) or the raw int32 accumulator (ConvInteger) as the epilogue;
a ConvInteger whose x zero point is computed at run time (quantize_dynamic's) runs the
kernel with zero point 0 and subtracts x_zp times each output's valid-tap weight sum
(`ops/conv_integer_runtime_zp`).
Matrix products with a constant 2-D b run on `ops/qgemm` with packed weights, others on
`ops/qmatmul`.
"""

from __future__ import annotations

import numpy as np

from edgec.ir import Node
from edgec.ops import get_op
from edgec.ops.base import in_type
from edgec.ops.onnx_quant import _scalar, _weight_zp
from edgec.ops.quant_common import int_range
from edgec.codegen.c.int_params import (CONV_TEMPLATES, INT32_EPILOGUE, conv_kernel_kind,
                                        conv_kernel_params, flatten_epilogue, float_epilogue,
                                        gemm_kernel_params, matmul_runtime_params)
from edgec.codegen.c.kernel import (PORTABLE, Candidate, ConstArray, Kernel,
                                    register_candidates)

QUANT_RUNTIME = ("edgec_qmath.h", "edgec_qkernels.h")


def integer_conv_params(node: Node) -> dict:
    """ops/qconv* parameters of a QLinearConv/ConvInteger, before the epilogue."""
    op = get_op(node.op)
    w = op.const_input(node, op.w_index, "w").astype(np.int64)
    x_zp = 0 if runtime_x_zero_point(node) else \
        _scalar(op.const_input(node, op.xzp_index, "x_zero_point"), node, "x zero point") or 0
    wz = _weight_zp(op.const_input(node, op.wzp_index, "w_zero_point"), w.shape[0], node)
    bias = op.const_input(node, 8, "B") if node.op == "QLinearConv" else None
    return conv_kernel_params(node, x_zp, w - wz.reshape(-1, *([1] * (w.ndim - 1))), bias)


def _conv_template(node: Node) -> str:
    op = get_op(node.op)
    return CONV_TEMPLATES[conv_kernel_kind(node, in_type(node, op.w_index).shape)]


def _qlinear_conv(node: Node, target, scratch) -> Kernel:
    template = _conv_template(node)
    op = get_op(node.op)
    p = integer_conv_params(node)
    consts = [op.const_input(node, i, "scale") for i in (1, 4, 6)]
    y_zp = op.const_input(node, 7, "y_zero_point")
    out = node.output.dtype
    rq = float_epilogue(op.multiplier(*consts), y_zp, *int_range(out), out.ctype)
    return Kernel(template, flatten_epilogue(p, rq), QUANT_RUNTIME)


def runtime_x_zero_point(node: Node) -> bool:
    """True for a ConvInteger whose x zero point is computed at run time."""
    v = node.input(2)
    return node.op == "ConvInteger" and v is not None and not v.is_const


def _conv_integer(node: Node, target, scratch) -> Kernel:
    template = _conv_template(node)
    params = flatten_epilogue(integer_conv_params(node), INT32_EPILOGUE)
    if not runtime_x_zero_point(node):
        return Kernel(template, params, QUANT_RUNTIME)
    # The kernel runs with zero point 0 (zero padding); then each output subtracts
    # x_zp * (the sum of w - w_zp over its taps inside the input).
    params["inner_template"] = template
    params["tap_sums"] = ConstArray(get_op("ConvInteger").valid_tap_sums(node).reshape(-1),
                                    "w_tap_sums")
    return Kernel("ops/conv_integer_runtime_zp.c.j2", params, QUANT_RUNTIME)


def integer_matmul_params(node: Node) -> dict:
    """ops/qgemm (constant 2-D b) or ops/qmatmul parameters, before the epilogue."""
    op = get_op(node.op)
    a_zp = op.const_input(node, op.azp_index, "a_zero_point")
    b_zp = op.const_input(node, op.bzp_index, "b_zero_point")
    a_zp, b_zp = op.zero_points(node, a_zp, b_zp)
    if op.uses_gemm(node):
        b = node.input(op.b_index).data.astype(np.int64)
        w_nk = (b - b_zp.reshape(1, -1)).T
        return gemm_kernel_params(node, in_type(node, 0), a_zp, w_nk, None)
    return matmul_runtime_params(node, in_type(node, 0), in_type(node, op.b_index), a_zp,
                                 list(b_zp), op.b_index)


def _matmul_template(node: Node) -> str:
    return "ops/qgemm.c.j2" if get_op(node.op).uses_gemm(node) else "ops/qmatmul.c.j2"


def _qlinear_matmul(node: Node, target, scratch) -> Kernel:
    template = _matmul_template(node)
    op = get_op(node.op)
    p = integer_matmul_params(node)
    scales = [op.const_input(node, i, "scale") for i in (1, 4, 6)]
    mult = op.multiplier(*scales).astype(np.float32)  # exact: float16 fits float32
    y_zp = op.const_input(node, 7, "y_zero_point")
    out = node.output.dtype
    params = flatten_epilogue(p, float_epilogue(mult, y_zp, *int_range(out), out.ctype))
    return Kernel(template, params, QUANT_RUNTIME)


def _matmul_integer(node: Node, target, scratch) -> Kernel:
    template = _matmul_template(node)
    params = flatten_epilogue(integer_matmul_params(node), INT32_EPILOGUE)
    return Kernel(template, params, QUANT_RUNTIME)


def _dynamic_quantize_linear(node: Node, target, scratch) -> Kernel:
    return Kernel("ops/dynamic_quantize_linear.c.j2", {"count": in_type(node, 0).numel})


register_candidates("QLinearConv", PORTABLE, [Candidate("qlinear-conv", _qlinear_conv)])
register_candidates("ConvInteger", PORTABLE, [Candidate("conv-integer", _conv_integer)])
register_candidates("QLinearMatMul", PORTABLE, [Candidate("qlinear-matmul", _qlinear_matmul)])
register_candidates("MatMulInteger", PORTABLE, [Candidate("matmul-integer", _matmul_integer)])
register_candidates("DynamicQuantizeLinear", PORTABLE, [
    Candidate("dynamic-quantize-linear", _dynamic_quantize_linear)])
