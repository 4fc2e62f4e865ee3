"""The int8 scheme's arithmetic, in one home: constants and the integer attributes of int8 ops.

TFLite's int8 scheme: activations int8 asymmetric per tensor (real = scale * (q - zero point));
weights int8 symmetric per output channel (zero point 0, range [-WEIGHT_MAX, WEIGHT_MAX]);
bias int32 with scale x_scale * w_scale[m]; requantisation by a 32-bit fixed-point multiplier
and shift (edgec/qmath.py defines the bits). The functions here compute an int8 op's integer
attributes from real scales the way TFLite prepares them. The quantize pass, import-qdq and
calibration all use these, so a constant or a formula exists once.
"""

from __future__ import annotations

import numpy as np

from edgec import qmath
from edgec.detmath import deterministic_math
from edgec.ir import DType, Graph, QuantParams, TensorType

QMIN, QMAX = -128, 127  # int8 activations
WEIGHT_MAX = 127  # symmetric int8 weights: [-127, 127]
# Symmetric int4 weights (W4A8, `--weight-bits 4`): [-7, 7], as TFLite's int4 weights; -8 is
# left out so that the range stays symmetric (w and -w both exist, as for int8's -127).
WEIGHT4_MAX = 7
WEIGHT_MAX_OF_BITS = {8: WEIGHT_MAX, 4: WEIGHT4_MAX}
# Fused activations that an int8 kernel applies as its output clamp (act_min, act_max); any
# other fused activation becomes a lookup table (or a QPRelu) after the layer.
CLAMP_ACTIVATIONS = ("none", "relu", "clip")
# Calibration observes a layer's value before a non-clamp fused activation under this suffix.
PRE_ACTIVATION = "::pre"
# Per-channel multipliers of one layer share a single shift when the channels' exponents are
# at most this many bits apart: each mantissa then keeps >= 31 - 8 = 23 significant bits
# (float32 precision), the layer stores no shift table and SIMD kernels shift by a constant.


# ------------------------------------------------------------------------------ parameters
def quantize_weights(w: np.ndarray, axis: int = 0, bits: int = 8
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-channel weights along `axis`: (int8 weights, float32 scales); with
    bits=4 the values lie in [-7, 7] (scale max|w| / 7), still held in an int8 array: the
    int8 arithmetic is unchanged, only the C packs them two per byte."""
    wmax = WEIGHT_MAX_OF_BITS[bits]
    w = np.asarray(w, np.float32)
    moved = np.moveaxis(w, axis, 0)
    absmax = np.abs(moved.reshape(moved.shape[0], -1)).max(axis=1) if moved.size else \
        np.zeros(moved.shape[0], np.float32)
    scale = np.where(absmax > 0, absmax / np.float32(wmax), np.float32(1.0))
    scale = scale.astype(np.float32)
    shape = [1] * w.ndim
    shape[axis] = scale.size
    q = np.clip(np.rint(w / scale.reshape(shape)), -wmax, wmax).astype(np.int8)
    return q, scale


def quantize_bias(b: np.ndarray | None, x_scale: float, w_scale: np.ndarray) -> np.ndarray:
    """int32 bias with scale x_scale * w_scale[m] (zeros when absent)."""
    scale = np.float64(x_scale) * w_scale.astype(np.float64)
    if b is None:
        return np.zeros(w_scale.size, np.int32)
    q = np.rint(np.asarray(b, np.float64).reshape(-1) / scale)
    return np.clip(q, -(2**31) + 1, 2**31 - 1).astype(np.int32)


def params_from_range(lo: float, hi: float) -> QuantParams:
    """Asymmetric int8 parameters covering [lo, hi] (zero exactly representable)."""
    scale, zp = qmath.choose_qparams(lo, hi, QMIN, QMAX)
    if not scale > 0 or not np.isfinite(scale):
        scale, zp = 1.0, 0
    return QuantParams(np.float32(scale), zp, None, DType.INT8)


# ------------------------------------------------------------------------------ attributes
def requant_attrs(real_multipliers) -> dict:
    """{"multiplier": [...], "shift": [...]} for real multipliers (e.g. sx * sw[m] / sy), one
    (multiplier, shift) per channel exactly as TFLite derives them from the same float
    scales (qmath.quantize_multiplier): the .tflite edgec writes then requantises with the
    bits of edgec's reference and C. Compute the real multipliers in float64 from the
    float32 scales, in TFLite's order (input_scale * filter_scale / output_scale)."""
    mult, shift = qmath.quantize_multiplier_list(real_multipliers)
    return {"multiplier": mult, "shift": shift}


def mean_requant_attrs(x_scale: float, y_scale: float, count: int) -> dict:
    """{"multiplier": [m], "shift": [s]} that requantise the zero-point-free sum of `count`
    int8 values to their mean in the output's scale, as TFLite's int8 MEAN does: the
    multiplier of x_scale / y_scale, with 1 / count folded into its mantissa by an integer
    division after a left shift of k = min(floor(log2 count), 32, 31 + shift) bits."""
    if count < 1:
        raise ValueError(f"a mean over {count} values")
    m, s = qmath.quantize_multiplier(float(np.float64(np.float32(x_scale))
                                           / np.float64(np.float32(y_scale))))
    k = min(count.bit_length() - 1, 32, 31 + s)
    return {"multiplier": [(m << k) // count], "shift": [s - k]}


def activation_range(activation: str, y_scale: float, y_zero_point: int, alpha: float = 0.0,
                     beta: float = 0.0) -> tuple[int, int]:
    """(act_min, act_max) of a fused relu / clip (bounds alpha, beta) on the int8 output."""
    lo, hi = QMIN, QMAX
    if activation == "relu":
        lo = max(lo, y_zero_point)
    elif activation == "clip":
        q = qmath.quantize_float(np.array([alpha, beta], np.float32), y_scale, y_zero_point)
        lo, hi = max(lo, int(q[0])), min(hi, int(q[1]))
    elif activation != "none":
        raise ValueError(f"activation {activation} is not an integer clamp")
    return lo, hi


def qadd_attrs(a_scale: float, b_scale: float, y_scale: float, left_shift: int = 20) -> dict:
    """QAdd's integer multipliers, as TFLite prepares int8 ADD (twice the larger input scale)."""
    twice_max = 2.0 * max(a_scale, b_scale)
    am, ash = qmath.quantize_multiplier_list([a_scale / twice_max])
    bm, bsh = qmath.quantize_multiplier_list([b_scale / twice_max])
    ym, ysh = qmath.quantize_multiplier_list([twice_max / ((1 << left_shift) * y_scale)])
    return {"left_shift": left_shift, "a_multiplier": am[0], "a_shift": ash[0],
            "b_multiplier": bm[0], "b_shift": bsh[0], "multiplier": ym[0], "shift": ysh[0],
            "a_scale": a_scale, "b_scale": b_scale, "y_scale": y_scale}


def qmul_attrs(a_scale: float, b_scale: float, y_scale: float) -> dict:
    """QMul's output multiplier: a_scale * b_scale / y_scale."""
    m, s = qmath.quantize_multiplier_list([a_scale * b_scale / y_scale])
    return {"multiplier": m[0], "shift": s[0], "a_scale": a_scale, "b_scale": b_scale,
            "y_scale": y_scale}


def average_pool_attrs(x_scale: float, y_scale: float, max_count: int) -> dict:
    """QAveragePool's table: entry count-1 requantises the sum of a `count`-tap window to its
    mean (`mean_requant_attrs`, TFLite MEAN's arithmetic) for count = 1..max_count."""
    rows = [mean_requant_attrs(x_scale, y_scale, c) for c in range(1, max_count + 1)]
    return {"mode": "requantize", "multiplier": [r["multiplier"][0] for r in rows],
            "shift": [r["shift"][0] for r in rows], "x_scale": x_scale, "y_scale": y_scale}


def qprelu_attrs(alpha, x_scale: float, x_zero_point: int, y_scale: float,
                 y_zero_point: int) -> dict:
    """QPRelu attributes for slopes `alpha` (one per channel of the last axis, or one)."""
    alpha = np.asarray(alpha, np.float64).reshape(-1)
    identity = requant_attrs([np.float64(x_scale) / np.float64(y_scale)])
    slope = requant_attrs(np.float64(x_scale) * np.abs(alpha) / np.float64(y_scale))
    return {"x_zero_point": int(x_zero_point), "y_zero_point": int(y_zero_point),
            "multiplier": identity["multiplier"], "shift": identity["shift"],
            "alpha_sign": [int(s) for s in np.sign(alpha)],
            "alpha_multiplier": slope["multiplier"], "alpha_shift": slope["shift"],
            "act_min": QMIN, "act_max": QMAX, "x_scale": float(x_scale),
            "y_scale": float(y_scale), "alpha": [float(v) for v in alpha]}


# ------------------------------------------------------------------------------ lookup tables
def lookup_table(fn, x_scale: float, x_zero_point: int, y_scale: float, y_zero_point: int
                 ) -> list[int]:
    """table[q + 128] = quantize(fn(dequantize(q))) for every int8 q; fn maps float32 arrays.

    fn runs under `deterministic_math` (numpy's exp/log/tanh replaced by IEEE-exact
    float64 versions), so the table is the same on every host (edgec/detmath.py)."""
    q = np.arange(QMIN, QMAX + 1)
    x = qmath.dequantize(q, x_scale, x_zero_point)
    with np.errstate(all="ignore"), deterministic_math():
        y = np.asarray(fn(x), dtype=np.float32)
    return [int(v) for v in qmath.quantize_float(y, y_scale, y_zero_point)]


def lookup_table_of(op_name: str, reference, attrs: dict, x_scale: float, x_zero_point: int,
                    y_scale: float, y_zero_point: int) -> list[int]:
    """The QLookup table of unary float op `op_name` whose numpy semantics are `reference`
    (an OpDef's `reference` method), with attributes `attrs`."""
    g = Graph("lookup")
    x = g.add_input("x", TensorType((256,), DType.FLOAT32))
    node = g.add_node(op_name, [x], attrs=attrs)
    return lookup_table(lambda v: reference(node, v)[0], x_scale, x_zero_point, y_scale,
                        y_zero_point)
