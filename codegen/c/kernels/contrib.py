"""C kernels of the com.microsoft contrib ops (edgec/ops/contrib_quant.py, contrib_matmul.py)
and of DynamicQuantGemm (edgec/ops/dynamic_quant.py); portable only.

The contrib quantised ops are rewritten at import into edgec's int8 ops where they can be;
what remains is their uint8 form: QLinearAdd/QLinearMul on `ops/qbinary`, QLinearSigmoid/
QLinearLeakyRelu as a 256-entry uint8 table (`ops/contrib_lut_u8`), QLinearGlobalAveragePool
(`ops/contrib_gap_u8`) and QLinearConcat (`ops/qconcat`). Dynamic quantisation of
activations: DynamicQuantizeMatMul, MatMulIntegerToFloat, DynamicQuantGemm. MatMulInteger16
(`ops/contrib_matmul_integer16`): int16 products summed modulo 2^32.
"""

from __future__ import annotations

import numpy as np

from edgec.errors import UnsupportedError
from edgec.ir import Node
from edgec.ops import get_op
from edgec.ops.base import OpDef, in_type
from edgec.ops.dynamic_quant import INT32_MAX
from edgec.ops.onnx_quant import matmul_shapes
from edgec.codegen.c.carray import c_scalar
from edgec.codegen.c.kernel import PORTABLE, Candidate, ConstArray, Kernel, register_candidates
from edgec.codegen.c.kernels.quantized import Q_RUNTIME, binary_params


def _qlinear_binary(node: Node, target, scratch) -> Kernel:
    params = binary_params(node, get_op(node.op).target_op)
    return Kernel("ops/qbinary.c.j2", params, Q_RUNTIME)


def _lut_u8(node: Node, target, scratch) -> Kernel:
    table = get_op(node.op)._table(node)  # validated: 256 uint8 entries
    params = {"table": ConstArray(table, "lut"), "count": node.output.type.numel}
    return Kernel("ops/contrib_lut_u8.c.j2", params)


def _gap_u8(node: Node, target, scratch) -> Kernel:
    a = node.attrs
    n, c, count = get_op(node.op)._geometry(in_type(node, 0).shape, a["layout"])
    params = {"N": n, "C": c, "HW": count, "nhwc": a["layout"] == "NHWC",
              "x_zp": a["x_zero_point"], "mult": a["multiplier"][0], "shift": a["shift"][0],
              "y_zp": a["y_zero_point"]}
    return Kernel("ops/contrib_gap_u8.c.j2", params, ("edgec_qmath.h",))


def _qconcat(node: Node, target, scratch) -> Kernel:
    axis = get_op(node.op)._axis(node)
    shapes = [v.shape for v in node.inputs]
    inner = [int(np.prod(s[axis:])) for s in shapes]
    offsets = [int(sum(inner[:i])) for i in range(len(inner))]
    a = node.attrs
    dt = in_type(node, 0).dtype
    params = {"outer": int(np.prod(shapes[0][:axis])), "inner": inner, "offset": offsets,
              "out_inner": int(sum(inner)), "x_zp": a["x_zero_point"],
              "mult": a["multiplier"], "shift": a["shift"], "y_zp": a["y_zero_point"],
              "qlo": int(np.iinfo(dt.np).min), "qhi": int(np.iinfo(dt.np).max),
              "ctype": dt.ctype}
    return Kernel("ops/qconcat.c.j2", params, ("edgec_qmath.h",))


def _dq_matmul(node: Node, target, scratch) -> Kernel:
    x = in_type(node, 0)
    k, n = in_type(node, 1).shape
    _, scale, zp = get_op(node.op)._params(node)
    params = {"COUNT": x.numel, "ROWS": x.numel // k if k else 0, "K": k, "N": n,
              "b_scale": ConstArray(np.ascontiguousarray(scale, np.float32), "b_scale"),
              "b_zp": ConstArray(np.ascontiguousarray(zp, np.int32), "b_zp"),
              "has_bias": node.input(4) is not None,
              "bias_index": sum(v is not None for v in node.inputs[:4])}
    return Kernel("ops/contrib_dq_matmul.c.j2", params)


def _int_matmul_f(node: Node, target, scratch) -> Kernel:
    x = in_type(node, 0)
    k, n = in_type(node, 1).shape
    _, mult, a_zp, b_zp = get_op(node.op)._params(node)
    params = {"ROWS": x.numel // k if k else 0, "K": k, "N": n, "a_zp": a_zp,
              "mult": ConstArray(np.ascontiguousarray(mult, np.float32), "mult"),
              "b_zp": ConstArray(np.ascontiguousarray(b_zp, np.int32), "b_zp"),
              "has_bias": node.input(6) is not None,
              "bias_index": sum(v is not None for v in node.inputs[:6])}
    return Kernel("ops/contrib_int_matmul_f.c.j2", params)


def _batch_offsets(batch: tuple, operand_batch: tuple, matrix_size: int) -> list[int]:
    """Element offset of each broadcast batch's matrix in one operand (numpy matmul)."""
    bshape = (1,) * (len(batch) - len(operand_batch)) + tuple(operand_batch)
    out = []
    for idx in np.ndindex(*batch) if batch else [()]:
        flat = 0
        for d, i in enumerate(idx):
            flat = flat * bshape[d] + (i if bshape[d] != 1 else 0)
        out.append(flat * matrix_size)
    return out


def _matmul_integer16(node: Node, target, scratch) -> Kernel:
    batch, m, k, n, abatch, bbatch = matmul_shapes(node, in_type(node, 0), in_type(node, 1))
    a_offs = _batch_offsets(batch, abatch, m * k)
    params = {"M": m, "K": k, "N": n, "B": len(a_offs),
              "a_offsets": ConstArray(np.asarray(a_offs, np.int32), "a_off"),
              "b_offsets": ConstArray(np.asarray(_batch_offsets(batch, bbatch, k * n),
                                                 np.int32), "b_off")}
    return Kernel("ops/contrib_matmul_integer16.c.j2", params)


def _dynamic_quant_gemm(node: Node, target, scratch) -> Kernel:
    x, w = in_type(node, 0), node.input(1)
    k, n = x.shape[-1], w.shape[0]
    wd = OpDef.const_input(node, 1, "w").astype(np.int64)
    if k * 255 * int(np.abs(wd).max(initial=0)) > INT32_MAX:
        raise UnsupportedError(f"DynamicQuantGemm node '{node.name}': K={k} could overflow "
                               "the int32 accumulator")
    a = node.attrs
    params = {
        "COUNT": x.numel, "ROWS": x.numel // k if k else 0, "K": k, "N": n,
        "w_scale": ConstArray(np.asarray(a["w_scale"], np.float32), "w_scale"),
        "has_bias": node.input(2) is not None, "activation": a["activation"],
        "lo": c_scalar(a["act_alpha"], "float"), "hi": c_scalar(a["act_beta"], "float"),
    }
    return Kernel("ops/dynamic_quant_gemm.c.j2", params)


register_candidates(("QLinearAdd", "QLinearMul"), PORTABLE, [
    Candidate("qlinear-binary-u8", _qlinear_binary)])
register_candidates(("QLinearSigmoid", "QLinearLeakyRelu"), PORTABLE, [
    Candidate("lut-u8", _lut_u8)])
register_candidates("QLinearGlobalAveragePool", PORTABLE, [Candidate("gap-u8", _gap_u8)])
register_candidates("QLinearConcat", PORTABLE, [Candidate("qconcat", _qconcat)])
register_candidates("DynamicQuantizeMatMul", PORTABLE, [Candidate("dq-matmul", _dq_matmul)])
register_candidates("MatMulIntegerToFloat", PORTABLE, [
    Candidate("int-matmul-f", _int_matmul_f)])
register_candidates("MatMulInteger16", PORTABLE, [
    Candidate("matmul-integer16", _matmul_integer16)])
register_candidates("DynamicQuantGemm", PORTABLE, [
    Candidate("dynamic-quant-gemm", _dynamic_quant_gemm)])
