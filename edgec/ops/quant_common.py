"""Machinery shared by the integer ops (quantized.py: edgec's int8 ops; onnx_quant.py: ONNX's).

Integer convolution and matrix products all lower to one accumulator form, computed exactly:

    acc[m] = bias[m] + sum_taps (x - x_zp) * w'[m]          (w' = w - w_zp[m], exact ints)

The numpy references compute it in int64 (float64 einsum on integers below 2^53 is exact).
The C kernels precompute at compile time, per output channel,

    bias_eff[m] = bias[m] - x_zp * sum(w'[m])

so that the inner loop is a plain int32 dot product of raw x and w' (the zero-point
correction costs nothing at run time). Padding contributes x_zp (real zero): padded taps read
a constant row filled with x_zp, or are skipped when x_zp is 0. This is exact in integer
arithmetic provided no partial sum leaves int32: partial sums are bounded by
|bias_eff[m]| + max|x| * sum|w'[m]|, which `check_int32_bound` verifies at compile time
(UnsupportedError otherwise; real layers are far from it: K = 3x3x1280 int8 taps need < 2^28).

An epilogue then turns acc into the output: "fixed" (TFLite fixed-point multiplier and shift,
edgec/qmath.py), "float" (ONNX QLinearConv/QLinearMatMul: float32 multiplier, float64 product,
round half to even) or "int32" (ConvInteger/MatMulInteger: acc itself).
"""

from __future__ import annotations

import numpy as np

from .. import qmath
from ..errors import ShapeError, UnsupportedError
from ..ir import DType, Node, TensorType
from .base import ConstArray, in_type
from .conv import channels, conv_nchw, conv_out_size, make_shape, spatial_shape

INT32_LIMIT = 2**31 - 1
INT_RANGES = {
    DType.INT8: (-128, 127),
    DType.UINT8: (0, 255),
    DType.INT16: (-32768, 32767),
    DType.INT32: (-(2**31), 2**31 - 1),
}


def int_range(dtype: DType) -> tuple[int, int]:
    """(min, max) of an integer element type."""
    return INT_RANGES[dtype]


def internal_op_import(node: Node) -> None:
    """import_onnx of edgec-internal ops: they are not ONNX operators."""
    raise UnsupportedError(f"{node.op} node '{node.name}': {node.op} is an edgec-internal op, "
                           "not an ONNX operator")


def require_int8(node: Node, indices=(0,)) -> None:
    """ShapeError unless the listed inputs are int8 (the contract of the internal ops)."""
    for i in indices:
        v = node.input(i)
        if v is not None and v.dtype != DType.INT8:
            raise ShapeError(f"{node.op} node '{node.name}': input {i} must be int8, "
                             f"not {v.dtype.value}")


def channel_shaped(values, rank: int, axis: int) -> np.ndarray:
    """A 1-element or per-channel vector reshaped to broadcast along `axis` of a rank-`rank` array."""
    arr = np.asarray(values, dtype=np.int64).reshape(-1)
    if arr.size == 1:
        return arr.reshape(())
    shape = [1] * rank
    shape[axis] = arr.size
    return arr.reshape(shape)


def requantize_fixed(acc, multiplier, shift, y_zp: int, lo: int, hi: int, rank: int = 0,
                     axis: int = -1) -> np.ndarray:
    """clamp(MBQM(acc, multiplier, shift) + y_zp, lo, hi); per-channel vectors along `axis`."""
    acc = np.asarray(acc, dtype=np.int64)
    rank = rank or acc.ndim
    axis = axis % rank if rank else 0
    mult = channel_shaped(multiplier, rank, axis)
    sh = channel_shaped(shift, rank, axis)
    return qmath.requantize(acc, mult, sh, int(y_zp), int(lo), int(hi))


def requantize_onnx_float(acc, multiplier_f32, y_zp, lo: int, hi: int) -> np.ndarray:
    """ONNX QLinear* requantisation: round_half_even(clip(acc * M + y_zp)), M float32.

    acc (int32) times the float32 multiplier is computed in float64 (numpy's promotion in
    onnx.reference), y_zp is added in float64, then the value is clipped and rounded. The C
    epilogue performs the same float64 operations in the same order.
    """
    r = np.asarray(acc, dtype=np.int32) * np.asarray(multiplier_f32, dtype=np.float32)
    r = r.astype(np.float64)
    if y_zp is not None:
        r = r + np.asarray(y_zp).astype(np.float64)
    return np.rint(np.clip(r, lo, hi)).astype(np.int64)


def quantize_multiplier_list(reals) -> tuple[list[int], list[int]]:
    """Fixed-point (multiplier, shift) lists for real multipliers (qmath.quantize_multiplier)."""
    q, s = qmath.quantize_multipliers(np.atleast_1d(np.asarray(reals, dtype=np.float64)))
    return [int(v) for v in q], [int(v) for v in s]


# ------------------------------------------------------------------------------ convolution
def conv_geometry(node: Node, w_shape: tuple[int, ...]) -> dict:
    """Conv geometry with defaults filled: kernel, strides, dilations, pads, group, layout."""
    a = node.attrs
    nsp = len(w_shape) - 2
    if nsp < 1:
        raise ShapeError(f"{node.op} node '{node.name}': weight {w_shape} is not a conv kernel")
    geo = {
        "kernel": list(a.get("kernel_shape") or w_shape[2:]),
        "strides": list(a.get("strides") or [1] * nsp),
        "dilations": list(a.get("dilations") or [1] * nsp),
        "pads": list(a.get("pads") or [0] * (2 * nsp)),
        "group": int(a.get("group", 1)),
        "layout": a.get("layout", "NCHW"),
        "nsp": nsp,
    }
    if list(geo["kernel"]) != list(w_shape[2:]):
        raise ShapeError(f"{node.op} node '{node.name}': kernel_shape {geo['kernel']} does not "
                         f"match the weight {w_shape}")
    return geo


def conv_infer(node: Node, x: TensorType, w_shape: tuple[int, ...], out_dtype: DType
               ) -> TensorType:
    """The output type of an integer convolution (shape rules of ONNX Conv)."""
    geo = conv_geometry(node, w_shape)
    layout, nsp, group = geo["layout"], geo["nsp"], geo["group"]
    if x.rank != nsp + 2:
        raise ShapeError(f"{node.op} node '{node.name}': input rank {x.rank} does not match "
                         f"the weight {w_shape}")
    c = channels(x.shape, layout)
    if w_shape[1] * group != c or w_shape[0] % group:
        raise ShapeError(f"{node.op} node '{node.name}': weight {w_shape} does not fit {c} "
                         f"input channels in {group} group(s)")
    sp = spatial_shape(x.shape, layout)
    pads = geo["pads"]
    out_sp = [conv_out_size(sp[i], geo["kernel"][i], geo["strides"][i], geo["dilations"][i],
                            pads[i], pads[i + nsp]) for i in range(nsp)]
    if any(o <= 0 for o in out_sp):
        raise ShapeError(f"{node.op} node '{node.name}': output would be empty ({out_sp})")
    return TensorType(make_shape(x.shape[0], w_shape[0], out_sp, layout), out_dtype)


def conv_acc_nchw(x_minus_zp: np.ndarray, w_eff: np.ndarray, bias, geo: dict) -> np.ndarray:
    """Exact integer accumulators [N, M, out...] of a grouped convolution (int64).

    x_minus_zp is channels-first and already has the input zero point subtracted, so the
    zero padding of `conv_nchw` is real zero, i.e. x_zp in quantised terms.
    """
    acc = conv_nchw(x_minus_zp.astype(np.float64), w_eff.astype(np.float64), None,
                    geo["strides"], geo["dilations"], geo["pads"], geo["group"])
    acc = np.rint(acc).astype(np.int64)
    if bias is not None:
        acc = acc + np.asarray(bias, np.int64).reshape(1, -1, *([1] * geo["nsp"]))
    return acc


def is_depthwise(w_shape: tuple[int, ...], group: int) -> bool:
    """One filter per input channel (channel multiplier 1)."""
    return group > 1 and w_shape[1] == 1 and w_shape[0] == group


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


# ------------------------------------------------------------------------------ epilogues
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
        if len(set(sh)) == 1:  # one shift for the layer (see requant_attrs): a literal
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
        from ..codegen.c.carray import c_scalar

        rq["mult_lit"] = c_scalar(float(mult[0]), "float")
    return rq


INT32_EPILOGUE = {"kind": "int32", "per_channel": False, "out_ctype": "int32_t"}


def flatten_epilogue(p: dict, rq: dict) -> dict:
    """Merge epilogue parameters into a template's `p` (ConstArrays must be top-level)."""
    out = dict(p)
    for key, val in rq.items():
        out[f"rq_{key}"] = val
    return out
