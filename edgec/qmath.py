"""Fixed-point requantisation, exactly as TFLite's int8 reference kernels round.

A real multiplier M (e.g. input_scale * weight_scale / output_scale) is stored as a 32-bit
fixed-point mantissa q (Q0.31, in [2^30, 2^31)) and a power-of-two exponent `shift`:
M ~= q * 2^(shift - 31). Applying it to an int32 accumulator x is one 64-bit product and one
rounding shift:

    y = (x * q + 2^(30 - shift)) >> (31 - shift)      (arithmetic shift)

i.e. round(x * q * 2^(shift - 31)) with ties rounded upwards. This is the arithmetic of
TFLite's reference `MultiplyByQuantizedMultiplier` built with TFLITE_SINGLE_ROUNDING (the
variant TFLite Micro's optimised kernels agree with). We chose it over the older double
rounding (a rounding doubling high multiply followed by a second rounding shift) because a
single rounding is closer to the exact product: the double form is off by one on about
0.3% of outputs whenever the first rounding lands on a tie of the second, which is also
the classic reference-vs-optimised off-by-one. Every shift is in [-31, 30], so the product
and the rounding term fit in int64.

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


def multiply_by_quantized_multiplier(x, multiplier, shift) -> np.ndarray:
    """TFLite's single-rounding MultiplyByQuantizedMultiplier (int64 arrays out).

    `multiplier` and `shift` broadcast against `x` (per-channel requantisation passes arrays
    shaped to the channel axis). |x| must be below 2^31 (an int32 accumulator); the result
    saturates to int32, as the C and SIMD kernels do.
    """
    x = np.asarray(x, dtype=np.int64)
    q = np.asarray(multiplier, dtype=np.int64)
    total = np.int64(31) - np.asarray(shift, dtype=np.int64)
    if np.any((total < 1) | (total > 62)):
        raise ValueError("shift must be in [-31, 30]")
    rounding = np.int64(1) << (total - 1)
    return np.clip((x * q + rounding) >> total, INT32_MIN, INT32_MAX)  # saturated to int32


def rounding_divide_by_pot(x, exponent) -> np.ndarray:
    """x / 2^exponent rounded to nearest, ties away from zero (TFLite's RoundingDivideByPOT;
    used by ops that divide by powers of two, not by requantisation)."""
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
