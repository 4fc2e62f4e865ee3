"""Machinery shared by the integer ops (quantized.py: edgec's int8 ops; onnx_quant.py: ONNX's).

Integer convolution and matrix products all lower to one accumulator form, computed exactly:

    acc[m] = bias[m] + sum_taps (x - x_zp) * w'[m]          (w' = w - w_zp[m], exact ints)

The numpy references compute it in int64 (float64 einsum on integers below 2^53 is exact).
The C kernels (parameters: codegen/c/int_params.py) precompute at compile time, per output
channel,

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

from edgec import qmath
from edgec.errors import ShapeError, UnsupportedError
from edgec.ir import DType, Node, TensorType
from edgec.ops.conv import channels, conv_nchw, conv_out_size, make_shape, spatial_shape

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
    """A 1-element or per-channel vector reshaped to broadcast along `axis` of a rank-`rank`
    array."""
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
