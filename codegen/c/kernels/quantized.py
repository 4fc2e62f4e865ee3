"""C kernels of edgec's internal int8 ops (edgec/ops/quantized.py, quantized_prelu.py).

The portable parameters come first (weights as int8 rows, bias with the input zero point
folded in, the fixed-point epilogue); ISA candidates inspect them and repack the weights for
their kernel. They are computed once per node (in the selection's scratch) and shared.

Candidates, in order:
  QConv  x86: `ops/x86/qconv_{gemm,dw}` (isa/x86_q8.qconv_kind); arm64:
         `ops/arm64/{qgemm,qconv_dw,qconv_dw3_dot}` (isa/arm64_q8.qconv_template);
         portable: `ops/qgemm` (pointwise), `ops/qconv_depthwise`, `ops/qconv` (quant_common.CONV_TEMPLATES).
  QGemm  x86: `ops/x86/qgemm`; arm64: `ops/arm64/qgemm`; portable: `ops/qgemm`.
  QAdd   x86: `ops/x86/qadd`, arm64: `ops/arm64/qadd` (both inputs of the output's shape);
         portable: `ops/qbinary`.
  QMul `ops/qbinary`, QMatMul `ops/qmatmul`, QLookup `ops/qlookup` (a 256-entry table),
  QRequantize `ops/qrequantize`, QPRelu `ops/qprelu`: portable only.
"""

from __future__ import annotations

import numpy as np

from edgec.ir import Node
from edgec.ops import get_op
from edgec.ops.base import OpDef, in_type
from edgec.ops.common import broadcast_plan, row_major_strides
from edgec.ops.quantized import _requant_fixed_attrs
from edgec.codegen.c.int_params import (CONV_TEMPLATES, conv_kernel_kind, conv_kernel_params,
                                        fixed_epilogue, flatten_epilogue, gemm_kernel_params,
                                        matmul_runtime_params)
from edgec.codegen.c.isa import arm64_q8, x86_q8
from edgec.codegen.c.kernel import PORTABLE, Candidate, ConstArray, Kernel, register_candidates

Q_RUNTIME = ("edgec_qmath.h", "edgec_qkernels.h")


def _with_requant(node: Node, p: dict) -> dict:
    a = node.attrs
    mult, shift = _requant_fixed_attrs(node)
    rq = fixed_epilogue(mult, shift, a["y_zero_point"], a["act_min"], a["act_max"], "int8_t")
    return flatten_epilogue(p, rq)


def portable_qconv_params(node: Node) -> dict:
    """Parameters of the portable QConv templates (quant_common.conv_kernel_params)."""
    w = OpDef.const_input(node, 1, "w").astype(np.int64)
    b = OpDef.const_input(node, 2, "bias")
    return _with_requant(node, conv_kernel_params(node, node.attrs["x_zero_point"], w, b))


def portable_qgemm_params(node: Node) -> dict:
    """Parameters of ops/qgemm for a QGemm (quant_common.gemm_kernel_params)."""
    w = OpDef.const_input(node, 1, "w").astype(np.int64)
    b = OpDef.const_input(node, 2, "bias")
    p = gemm_kernel_params(node, in_type(node, 0), node.attrs["x_zero_point"], w, b)
    return _with_requant(node, p)


def portable_int8_params(node: Node, scratch) -> dict:
    """The portable QConv/QGemm template parameters of `node`, packed once per node."""
    make = portable_qconv_params if node.op == "QConv" else portable_qgemm_params
    return scratch.once("portable", lambda: make(node))


# --------------------------------------------------------------------------- QConv
def _x86_qconv_kind(node: Node, target, scratch) -> str | None:
    return scratch.once("x86", lambda: x86_q8.qconv_kind(
        node, target, portable_int8_params(node, scratch)))


def _x86_qconv(node: Node, target, scratch) -> Kernel:
    kind = _x86_qconv_kind(node, target, scratch)
    params = x86_q8.qconv_params(node, portable_int8_params(node, scratch), kind,
                                 x86_q8.is_vnni(target))
    return Kernel(f"ops/x86/qconv_{kind}.c.j2", params, x86_q8.RUNTIME)


def _neon_qconv(node: Node, target, scratch) -> Kernel:
    p = portable_int8_params(node, scratch)
    template = arm64_q8.qconv_template(node, target, p)
    return Kernel(template, arm64_q8.qconv_params(node, target, p), arm64_q8.Q8_RUNTIME)


def _portable_qconv(node: Node, target, scratch) -> Kernel:
    template = CONV_TEMPLATES[conv_kernel_kind(node, in_type(node, 1).shape)]
    return Kernel(template, portable_int8_params(node, scratch), Q_RUNTIME)


# --------------------------------------------------------------------------- QGemm
def _x86_qgemm(node: Node, target, scratch) -> Kernel:
    params = x86_q8.qgemm_params(node, portable_int8_params(node, scratch), x86_q8.is_vnni(target))
    return Kernel("ops/x86/qgemm.c.j2", params, x86_q8.RUNTIME)


def _neon_qgemm(node: Node, target, scratch) -> Kernel:
    p = portable_int8_params(node, scratch)
    template = arm64_q8.qgemm_template(node, target, p)
    return Kernel(template, arm64_q8.qgemm_params(node, target, p), arm64_q8.Q8_RUNTIME)


def _portable_qgemm(node: Node, target, scratch) -> Kernel:
    return Kernel("ops/qgemm.c.j2", portable_int8_params(node, scratch), Q_RUNTIME)


# --------------------------------------------------------------------------- QAdd, QMul
def binary_params(node: Node, op_name: str) -> dict:
    """The broadcasting loop nest of ops/qbinary (QAdd or QMul arithmetic per `op_name`)."""
    dims, strides = broadcast_plan(node.outputs[0].shape, [in_type(node, i).shape
                                                           for i in range(2)])
    return {"dims": dims, "in_strides": strides,
            "out_strides": row_major_strides(tuple(dims)), "op": op_name}


def _qbinary(template: str, runtime: tuple[str, ...]):
    def build(node: Node, target, scratch) -> Kernel:
        return Kernel(template, binary_params(node, node.op), runtime)

    return build


# --------------------------------------------------------------------------- portable only
def _qmatmul(node: Node, target, scratch) -> Kernel:
    at = node.attrs
    p = matmul_runtime_params(node, in_type(node, 0), in_type(node, 1), at["a_zero_point"],
                              [at["b_zero_point"]])
    rq = fixed_epilogue(at["multiplier"], at["shift"], at["y_zero_point"], at["act_min"],
                        at["act_max"], "int8_t")
    return Kernel("ops/qmatmul.c.j2", flatten_epilogue(p, rq), Q_RUNTIME)


def _qlookup(node: Node, target, scratch) -> Kernel:
    table = get_op(node.op)._table(node)  # validated: 256 int8 entries
    params = {"table": ConstArray(table, "lut"), "count": node.output.type.numel}
    return Kernel("ops/qlookup.c.j2", params, Q_RUNTIME)


def _qrequantize(node: Node, target, scratch) -> Kernel:
    a = node.attrs
    p = {"count": node.output.type.numel, "x_zp": a["x_zero_point"]}
    rq = fixed_epilogue(a["multiplier"], a["shift"], a["y_zero_point"], a["act_min"],
                        a["act_max"], "int8_t")
    return Kernel("ops/qrequantize.c.j2", flatten_epilogue(p, rq), Q_RUNTIME)


def _qprelu(node: Node, target, scratch) -> Kernel:
    a = node.attrs
    n = get_op(node.op)._channels(node)
    count = in_type(node, 0).numel
    params = {"count": count, "channels": n, "rows": count // n if n else 0,
              "x_zp": a["x_zero_point"], "y_zp": a["y_zero_point"],
              "mult": a["multiplier"][0], "shift": a["shift"][0],
              "lo": a["act_min"], "hi": a["act_max"],
              "sign": ConstArray(np.asarray(a["alpha_sign"], np.int8), "prelu_sign"),
              "amult": ConstArray(np.asarray(a["alpha_multiplier"], np.int32), "prelu_mult"),
              "ashift": ConstArray(np.asarray(a["alpha_shift"], np.int8), "prelu_shift")}
    return Kernel("ops/qprelu.c.j2", params, Q_RUNTIME)


register_candidates("QConv", "x86", [Candidate(
    "x86-qconv", _x86_qconv, lambda n, t, s: _x86_qconv_kind(n, t, s) is not None)])
register_candidates("QConv", "arm64", [Candidate(
    "neon-qconv", _neon_qconv,
    lambda n, t, s: arm64_q8.qconv_template(n, t, portable_int8_params(n, s)) is not None)])
register_candidates("QConv", PORTABLE, [Candidate("qconv", _portable_qconv)])
register_candidates("QGemm", "x86", [Candidate(
    "x86-qgemm", _x86_qgemm,
    lambda n, t, s: x86_q8.qgemm_applies(n, t, portable_int8_params(n, s)))])
register_candidates("QGemm", "arm64", [Candidate(
    "neon-qgemm", _neon_qgemm,
    lambda n, t, s: arm64_q8.qgemm_template(n, t, portable_int8_params(n, s)) is not None)])
register_candidates("QGemm", PORTABLE, [Candidate("qgemm", _portable_qgemm)])
register_candidates("QAdd", "x86", [Candidate(
    "x86-qadd", _qbinary("ops/x86/qadd.c.j2", x86_q8.RUNTIME),
    lambda n, t, s: x86_q8.qadd_applies(n, t))])
register_candidates("QAdd", "arm64", [Candidate(
    "neon-qadd", lambda n, t, s: Kernel("ops/arm64/qadd.c.j2", arm64_q8.qadd_params(n, t),
                                        arm64_q8.Q8_RUNTIME),
    lambda n, t, s: arm64_q8.qadd_params(n, t) is not None)])
register_candidates("QAdd", PORTABLE, [Candidate("qadd", _qbinary("ops/qbinary.c.j2", Q_RUNTIME))])
register_candidates("QMul", PORTABLE, [Candidate("qmul", _qbinary("ops/qbinary.c.j2", Q_RUNTIME))])
register_candidates("QMatMul", PORTABLE, [Candidate("qmatmul", _qmatmul)])
register_candidates("QLookup", PORTABLE, [Candidate("qlookup", _qlookup)])
register_candidates("QRequantize", PORTABLE, [Candidate("qrequantize", _qrequantize)])
register_candidates("QPRelu", PORTABLE, [Candidate("qprelu", _qprelu)])
