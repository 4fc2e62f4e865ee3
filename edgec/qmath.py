"""Fixed-point requantisation, exactly as TFLite's int8 kernels round.

A real multiplier M (e.g. input_scale * weight_scale / output_scale) is stored as a 32-bit
fixed-point mantissa q (Q0.31, in [2^30, 2^31)) and a power-of-two exponent `shift`:
M ~= q * 2^(shift - 31). Applying it to an int32 accumulator x is TFLite's
MultiplyByQuantizedMultiplier, which rounds twice:

    left = max(shift, 0), right = max(-shift, 0)
    h = SaturatingRoundingDoublingHighMul(x * 2^left, q) = floor((x * 2^left * q + 2^30) / 2^31)
    y = RoundingDivideByPOT(h, right)  (h / 2^right, ties away from zero)

TFLite's integer scheme is the specification edgec follows (issue #14: a .tflite from edgec
must give LiteRT's and TFLite Micro's bits), and LiteRT and TFLite Micro are built with this
double rounding (TFLITE_SINGLE_ROUNDING is off by default; CMSIS-NN follows the same default).
edgec used the single rounding round(x * q * 2^(shift - 31)) before; the two differ by one on
~0.1-0.4% of a convolution's outputs (when h lands on a tie of the second rounding), which
is why edgec now rounds twice. `x * 2^left` wraps in int32 as two's complement (TFLite's C++
leaves it undefined; it only happens for multipliers >= 1 on accumulators near 2^31 / 2^left).
Every shift is in [-31, 30].

Multipliers are derived as TFLite derives them from the file's float scales: the real
multiplier in float64 from the float32 scales (`conv_real_multipliers`), then frexp and a
rounding half away from zero (`quantize_multiplier`), one (multiplier, shift) per channel.

These functions are vectorised over int64 numpy arrays and are the single definition of the
bits: the int8 reference interpreter calls them, and codegen/c/runtime/edgec_qmath.h is a
line-by-line C transcription that the tests compare against them.
"""

from __future__ import annotations

import math

import numpy as np

from edgec.errors import DataError


class MultiplierRangeError(DataError, ValueError):
    """A requantisation multiplier int32 fixed point cannot hold: the ranges calibration
    chose for a layer's input(s) and output differ by more than 2^30 (bad data, not a bug)."""

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1


def quantize_multiplier(real: float) -> tuple[int, int]:
    """(q, shift) with real ~= q * 2^(shift - 31), q in [2^30, 2^31); (0, 0) for real == 0."""
    if real < 0 or not math.isfinite(real):
        raise ValueError(f"multiplier must be finite and non-negative, got {real}")
    if real == 0.0:
        return 0, 0
    mantissa, shift = math.frexp(real)  # real = mantissa * 2^shift, mantissa in [0.5, 1)
    q = int(math.floor(mantissa * (1 << 31) + 0.5))  # std::round: ties away from zero
    if q == (1 << 31):
        q //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    if shift > 30:
        raise MultiplierRangeError(
            f"an int8 requantisation multiplier of {real:.3g} exceeds what int32 fixed point "
            "holds (2^30): a layer's input range is over 2^30 times its output range; check "
            "the calibration data's scale (values near 3e38?) or keep that layer in float32 "
            "with --keep-float")
    return q, shift


def quantize_multipliers(reals) -> tuple[np.ndarray, np.ndarray]:
    """Vector form of `quantize_multiplier` (int32 arrays)."""
    pairs = [quantize_multiplier(float(r)) for r in np.asarray(reals, np.float64).reshape(-1)]
    q = np.array([p[0] for p in pairs], dtype=np.int32)
    s = np.array([p[1] for p in pairs], dtype=np.int32)
    return q, s


def quantize_multiplier_list(reals) -> tuple[list[int], list[int]]:
    """`quantize_multipliers` as lists of Python ints (for node attributes)."""
    q, s = quantize_multipliers(np.atleast_1d(np.asarray(reals, dtype=np.float64)))
    return [int(v) for v in q], [int(v) for v in s]


def saturating_rounding_doubling_high_mul(x, multiplier) -> np.ndarray:
    """TFLite's SaturatingRoundingDoublingHighMul: round(x * m / 2^31), ties upwards (int64
    arrays out). Saturates only for x == m == -2^31, which edgec's multipliers (>= 0) never
    are."""
    x = np.asarray(x, dtype=np.int64)
    m = np.asarray(multiplier, dtype=np.int64)
    both_min = (x == INT32_MIN) & (m == INT32_MIN)
    return np.where(both_min, INT32_MAX, (x * m + (np.int64(1) << 30)) >> 31)


def wrap_int32(x) -> np.ndarray:
    """Two's complement wrap of int64 values into int32's range (int64 arrays out)."""
    x = np.asarray(x, dtype=np.int64)
    return ((x - INT32_MIN) & np.int64(0xFFFFFFFF)) + INT32_MIN


def multiply_by_quantized_multiplier(x, multiplier, shift) -> np.ndarray:
    """TFLite's (double-rounding) MultiplyByQuantizedMultiplier (int64 arrays out).

    `multiplier` and `shift` broadcast against `x` (per-channel requantisation passes arrays
    shaped to the channel axis). x must be an int32 value (an accumulator).
    """
    x = np.asarray(x, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    if np.any((shift < -31) | (shift > 30)):
        raise ValueError("shift must be in [-31, 30]")
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    high = saturating_rounding_doubling_high_mul(wrap_int32(x << left), multiplier)
    return rounding_divide_by_pot(high, right)


def rounding_divide_by_pot(x, exponent) -> np.ndarray:
    """x / 2^exponent rounded to nearest, ties away from zero (TFLite's RoundingDivideByPOT:
    the second rounding of requantisation, and ops that divide by powers of two)."""
    x = np.asarray(x, dtype=np.int64)
    exponent = np.asarray(exponent, dtype=np.int64)
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0).astype(np.int64)
    return (x >> exponent) + (remainder > threshold).astype(np.int64)


def requantize(acc, multiplier, shift, zero_point: int, qmin: int, qmax: int) -> np.ndarray:
    """int32 accumulator -> clamped quantised value: MBQM(acc) + zero_point, clamped."""
    y = multiply_by_quantized_multiplier(acc, multiplier, shift) + np.int64(zero_point)
    return np.clip(y, qmin, qmax)


def quantize_float(x, scale, zero_point, qmin: int = -128, qmax: int = 127) -> np.ndarray:
    """ONNX QuantizeLinear: round(x / scale) (ties to even) + zero_point, saturated."""
    q = np.rint(np.asarray(x, np.float32) / np.asarray(scale, np.float32)).astype(np.int64)
    return np.clip(q + np.asarray(zero_point, np.int64), qmin, qmax)


def dequantize(q, scale, zero_point) -> np.ndarray:
    """ONNX DequantizeLinear: (q - zero_point) * scale in float32."""
    diff = (np.asarray(q, np.int64) - np.asarray(zero_point, np.int64)).astype(np.float32)
    return diff * np.asarray(scale, np.float32)


def choose_qparams(lo: float, hi: float, qmin: int = -128, qmax: int = 127,
                   symmetric: bool = False) -> tuple[float, int]:
    """Scale and zero point covering [lo, hi] (range widened to include 0), TFLite style."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if symmetric:
        bound = max(abs(lo), abs(hi))
        scale = bound / ((qmax - qmin) / 2) if bound > 0 else 1.0
        return float(np.float32(scale)), 0
    if hi == lo:
        return 1.0, 0
    scale = (hi - lo) / (qmax - qmin)
    scale = float(np.float32(scale))
    zp = qmin - lo / scale
    zp = int(min(max(round(zp), qmin), qmax))
    return scale, zp
