"""Template parameters shared by the integer kernels (qconv*, qgemm, qmatmul templates).

Integer convolutions and matrix products lower to one accumulator form (see
edgec/ops/quant_common.py for the arithmetic): the C kernels precompute, per output channel,
bias_eff[m] = bias[m] - x_zp * sum(w'[m]), so that the inner loop is a plain int32 dot
product of raw x and w'; `check_int32_bound` proves at compile time that no partial sum
leaves int32. Weights are packed for the chosen kernel's loop order in the narrowest C type
that holds them. An epilogue then turns acc into the output: "fixed" (TFLite fixed-point
multiplier and shift), "float" (ONNX QLinearConv/QLinearMatMul) or "int32" (ConvInteger,
MatMulInteger); `flatten_epilogue` merges its values into the template's parameters.
"""

from __future__ import annotations

import numpy as np

from edgec.errors import ShapeError, UnsupportedError
from edgec.ir import DType, Node, TensorType
from edgec.ops.base import in_type
from edgec.ops.onnx_quant import matmul_shapes
from edgec.ops.quant_common import INT32_LIMIT, conv_geometry, int_range, is_depthwise
from edgec.codegen.c.carray import c_scalar
from edgec.codegen.c.kernel import ConstArray


def conv_kernel_kind(node: Node, w_shape: tuple[int, ...]) -> str:
    """Which C kernel runs an integer conv: "pointwise" (a GEMM over pixels), "depthwise" or
    "general"; UnsupportedError for channels-first data or 3-D convolution."""
    geo = conv_geometry(node, w_shape)
    if geo["layout"] != "NHWC":
        raise UnsupportedError(f"{node.op} node '{node.name}': C kernels need channels-last data")
    if geo["nsp"] > 2:
        raise UnsupportedError(f"{node.op} node '{node.name}': 3-D convolution has no C kernel")
    if all(v == 1 for v in geo["kernel"] + geo["strides"]) and geo["group"] == 1 \
            and not any(geo["pads"]):
        return "pointwise"
    return "depthwise" if is_depthwise(w_shape, geo["group"]) else "general"


CONV_TEMPLATES = {"pointwise": "ops/qgemm.c.j2", "depthwise": "ops/qconv_depthwise.c.j2",
                  "general": "ops/qconv.c.j2"}


def _narrowest_ctype_dtype(data: np.ndarray) -> np.dtype:
    lo, hi = (int(data.min()), int(data.max())) if data.size else (0, 0)
    for dt in (np.int8, np.uint8, np.int16):
        info = np.iinfo(dt)
        if info.min <= lo and hi <= info.max:
            return np.dtype(dt)
    return np.dtype(np.int32)


def check_int32_bound(node: Node, bias_eff: np.ndarray, w_rows: np.ndarray, x_dtype: DType
                      ) -> None:
    """UnsupportedError when an int32 partial sum of the C kernel could overflow.

    w_rows is [M, K] (every weight feeding output channel m); x ranges over its whole type.
    """
    lo, hi = int_range(x_dtype)
    x_abs = max(abs(lo), abs(hi))
    bound = np.abs(bias_eff.astype(np.int64)) + x_abs * np.abs(w_rows.astype(np.int64)).sum(1)
    if bound.size and int(bound.max()) > INT32_LIMIT:
        raise UnsupportedError(
            f"{node.op} node '{node.name}': the int32 accumulator could overflow "
            f"(bound {int(bound.max())} for {w_rows.shape[1]} taps)")


def conv_kernel_params(node: Node, x_zp: int, w_eff: np.ndarray, bias) -> dict:
    """C parameters of the channels-last integer conv kernels (qconv*.c.j2).

    w_eff is the zero-point-corrected weight [M, C/g, k...] (int64); bias is int64 [M] or None.
    Chooses the kernel (pointwise: a GEMM over pixels; depthwise; general), packs weights
    for its loop order and precomputes bias_eff (see the module docstring).
    """
    kind = conv_kernel_kind(node, w_eff.shape)
    geo = conv_geometry(node, w_eff.shape)
    x = in_type(node, 0)
    one = [1] if geo["nsp"] == 1 else []
    k = one + geo["kernel"]
    s = one + geo["strides"]
    d = one + geo["dilations"]
    nsp = geo["nsp"]
    pb = ([0] if nsp == 1 else []) + geo["pads"][:nsp]
    in_sp = one + list(x.shape[1:-1])
    out_sp = one + list(node.outputs[0].shape[1:-1])
    m, group = w_eff.shape[0], geo["group"]
    c = x.shape[-1]
    w4 = w_eff.reshape(m, c // group, k[0], k[1])
    w_rows = w4.reshape(m, -1)
    bias64 = np.zeros(m, np.int64) if bias is None else np.asarray(bias, np.int64).reshape(m)
    bias_eff = bias64 - int(x_zp) * w_rows.sum(1)
    check_int32_bound(node, bias_eff, w_rows, x.dtype)
    if kind == "pointwise":
        packed = w_rows  # [M][C]
    elif kind == "depthwise":
        packed = np.transpose(w4[:, 0], (1, 2, 0))  # [kh][kw][C]
    else:
        packed = np.transpose(w4.reshape(group, m // group, c // group, k[0], k[1]),
                              (0, 1, 3, 4, 2))  # [g][mg][kh][kw][cg]
    wdt = _narrowest_ctype_dtype(packed)
    p = {
        "kind": kind,
        "N": x.shape[0], "H": in_sp[0], "W": in_sp[1], "C": c,
        "OH": out_sp[0], "OW": out_sp[1], "M": m,
        "KH": k[0], "KW": k[1], "SH": s[0], "SW": s[1], "DH": d[0], "DW": d[1],
        "PT": pb[0], "PL": pb[1], "G": group, "CG": c // group, "MG": m // group,
        "weights": ConstArray(np.ascontiguousarray(packed.astype(wdt)), "w_packed"),
        "w_ctype": DType.from_numpy(wdt).ctype,
        "bias_eff": ConstArray(bias_eff.astype(np.int32), "bias_eff"),
        "x_ctype": x.dtype.ctype,
        "CB": min(c, 64),
    }
    if x_zp != 0 and kind != "pointwise":
        p["pad_row"] = ConstArray(np.full(c, x_zp, dtype=x.dtype.np), "x_zero_row")
    if kind == "pointwise":  # the GEMM view: one row per pixel
        p.update({"ROWS": x.numel // c, "K": c, "NOUT": m})
    return p


def gemm_kernel_params(node: Node, x: TensorType, x_zp: int, w_eff_nk: np.ndarray, bias
                       ) -> dict:
    """C parameters of the integer fully-connected kernel (qgemm.c.j2): y[r, n] over rows r.

    w_eff_nk is the zero-point-corrected weight [N, K]; x is [..., K] with the leading
    dimensions flattened into rows.
    """
    n, k = w_eff_nk.shape
    rows = x.numel // k if k else 0
    bias64 = np.zeros(n, np.int64) if bias is None else np.asarray(bias, np.int64).reshape(n)
    bias_eff = bias64 - int(x_zp) * w_eff_nk.astype(np.int64).sum(1)
    check_int32_bound(node, bias_eff, w_eff_nk, x.dtype)
    wdt = _narrowest_ctype_dtype(w_eff_nk)
    return {
        "ROWS": rows, "K": k, "NOUT": n,
        "weights": ConstArray(np.ascontiguousarray(w_eff_nk.astype(wdt)), "w_nk"),
        "w_ctype": DType.from_numpy(wdt).ctype,
        "bias_eff": ConstArray(bias_eff.astype(np.int32), "bias_eff"),
        "x_ctype": x.dtype.ctype,
    }


def fixed_epilogue(multiplier, shift, y_zp: int, lo: int, hi: int, out_ctype: str) -> dict:
    """Template parameters of the fixed-point epilogue (literal when per-tensor)."""
    mult = [int(v) for v in np.asarray(multiplier).reshape(-1)]
    sh = [int(v) for v in np.asarray(shift).reshape(-1)]
    if len(mult) != len(sh):
        raise ShapeError("multiplier and shift lists differ in length")
    if len(set(zip(mult, sh))) == 1:  # one value for every channel: a literal
        mult, sh = mult[:1], sh[:1]
    rq = {"kind": "fixed", "y_zp": int(y_zp), "lo": int(lo), "hi": int(hi),
          "out_ctype": out_ctype, "per_channel": len(mult) > 1}
    if len(mult) > 1:
        rq["mult"] = ConstArray(np.asarray(mult, np.int32), "rq_mult")
        if len(set(sh)) == 1:  # one shift for the layer: a literal
            rq["shift_lit"] = sh[0]
        else:
            rq["shift"] = ConstArray(np.asarray(sh, np.int8), "rq_shift")
    else:
        rq["mult_lit"] = mult[0] if mult[0] != -(2**31) else "INT32_MIN"
        rq["shift_lit"] = sh[0]
    return rq


def float_epilogue(multiplier_f32: np.ndarray, y_zp, lo: int, hi: int, out_ctype: str) -> dict:
    """Template parameters of ONNX's float requantisation epilogue."""
    mult = np.asarray(multiplier_f32, np.float32).reshape(-1)
    if mult.size > 1 and np.all(mult.view(np.uint32) == mult[:1].view(np.uint32)):
        mult = mult[:1]
    rq = {"kind": "float", "lo": int(lo), "hi": int(hi), "out_ctype": out_ctype,
          "per_channel": mult.size > 1, "has_zp": y_zp is not None,
          "y_zp": int(np.asarray(y_zp).reshape(-1)[0]) if y_zp is not None else 0}
    if mult.size > 1:
        rq["mult"] = ConstArray(mult, "rq_scale")
    else:
        rq["mult_lit"] = c_scalar(float(mult[0]), "float")
    return rq


INT32_EPILOGUE = {"kind": "int32", "per_channel": False, "out_ctype": "int32_t"}


def flatten_epilogue(p: dict, rq: dict) -> dict:
    """Merge epilogue parameters into a template's `p` (ConstArrays must be top-level)."""
    out = dict(p)
    for key, val in rq.items():
        out[f"rq_{key}"] = val
    return out


def matmul_runtime_params(node: Node, a_t: TensorType, b_t: TensorType, a_zp: int,
                          b_zp: list[int], b_input: int = 1) -> dict:
    """C parameters of the two-operand integer matmul kernel (qmatmul.c.j2)."""
    batch, m, k, n, abatch, bbatch = matmul_shapes(node, a_t, b_t)
    rank = len(batch)
    abatch = (1,) * (rank - len(abatch)) + tuple(abatch)
    bbatch = (1,) * (rank - len(bbatch)) + tuple(bbatch)

    def offsets(bshape, mat_size):
        out = []
        for idx in np.ndindex(*batch) if batch else [()]:
            flat = 0
            for d, i in enumerate(idx):
                flat = flat * bshape[d] + (i if bshape[d] != 1 else 0)
            out.append(flat * mat_size)
        return out

    alo, ahi = int_range(a_t.dtype)
    blo, bhi = int_range(b_t.dtype)
    bz = np.asarray(b_zp, np.int64).reshape(-1)
    a_abs = max(abs(alo - a_zp), abs(ahi - a_zp))
    b_abs = int(np.max(np.maximum(np.abs(blo - bz), np.abs(bhi - bz))))
    if k * a_abs * b_abs > INT32_LIMIT:
        raise UnsupportedError(f"{node.op} node '{node.name}': the int32 accumulator could "
                               f"overflow ({k} products)")
    a_offs = offsets(abatch, m * k)
    p = {"M": m, "K": k, "NOUT": n, "B": len(a_offs),
         "a_offsets": ConstArray(np.asarray(a_offs, np.int32), "a_off"),
         "b_offsets": ConstArray(np.asarray(offsets(bbatch, k * n), np.int32), "b_off"),
         "a_zp": int(a_zp), "b_zp_per_column": bz.size > 1, "b_input": b_input}
    if bz.size > 1:
        p["b_zp"] = ConstArray(bz.astype(np.int32), "b_zero_point")
    else:
        p["b_zp_lit"] = int(bz[0])
    return p


def per_tensor_quantize_literals(node: Node, p: dict) -> dict | None:
    """The SIMD QuantizeLinear kernels' values for a per-tensor float32 -> int8/uint8 node
    with the portable parameters `p` (literals of the scale and of the clamp bounds minus the
    zero point, and the zero point), or None when the node is not of that kind."""
    if node.output.dtype not in (DType.INT8, DType.UINT8) \
            or node.input(0).dtype != DType.FLOAT32 or p["scale"].data.size != 1 \
            or (p["has_zp"] and p["zero_point"].data.size != 1):
        return None
    zp = int(p["zero_point"].data.reshape(-1)[0]) if p["has_zp"] else 0
    return {"scale_lit": c_scalar(float(p["scale"].data.reshape(-1)[0]), "float"),
            "lo_lit": c_scalar(float(p["qmin"] - zp), "float"),
            "hi_lit": c_scalar(float(p["qmax"] - zp), "float"),
            "zp": zp, "qmin": p["qmin"], "qmax": p["qmax"]}
