"""Fixed-point requantisation, exactly as TFLite's int8 reference kernels round.

A real multiplier M (e.g. input_scale * weight_scale / output_scale) is stored as a 32-bit
fixed-point mantissa q (Q0.31, in [2^30, 2^31)) and a power-of-two exponent `shift`:
M ~= q * 2^(shift - 31). Applying it to an int32 accumulator x:

  1. x << max(shift, 0)                              (left shift for multipliers >= 1)
  2. saturating rounding doubling high multiply:      round(x * q / 2^31), ties rounded
     upwards (towards +infinity), saturating the one overflow case
  3. rounding divide by 2^max(-shift, 0):             arithmetic shift with ties away from 0

These functions are vectorised over int64 numpy arrays and are the single definition of the
bits: the int8 reference interpreter calls them, and codegen/c/runtime/edgec_qmath.h is a
line-by-line C transcription that the tests compare against them.
"""

from __future__ import annotations

import math

import numpy as np

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
        raise ValueError(f"multiplier {real} is too large for int32 fixed point")
    return q, shift


def quantize_multipliers(reals) -> tuple[np.ndarray, np.ndarray]:
    """Vector form of `quantize_multiplier` (int32 arrays)."""
    pairs = [quantize_multiplier(float(r)) for r in np.asarray(reals, np.float64).reshape(-1)]
    q = np.array([p[0] for p in pairs], dtype=np.int32)
    s = np.array([p[1] for p in pairs], dtype=np.int32)
    return q, s


def saturating_rounding_doubling_high_mul(a, b) -> np.ndarray:
    """TFLite's SaturatingRoundingDoublingHighMul on int32 values (as int64 arrays)."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    overflow = (a == INT32_MIN) & (b == INT32_MIN)
    ab = a * b
    nudge = np.where(ab >= 0, np.int64(1 << 30), np.int64(1 - (1 << 30)))
    total = ab + nudge
    # C integer division truncates toward zero.
    high = np.where(total >= 0, total >> 31, -((-total) >> 31))
    return np.where(overflow, np.int64(INT32_MAX), high)


def rounding_divide_by_pot(x, exponent) -> np.ndarray:
    """TFLite's RoundingDivideByPOT: x / 2^exponent, ties away from zero."""
    x = np.asarray(x, dtype=np.int64)
    exponent = np.asarray(exponent, dtype=np.int64)
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0).astype(np.int64)
    return (x >> exponent) + (remainder > threshold).astype(np.int64)


def multiply_by_quantized_multiplier(x, multiplier, shift) -> np.ndarray:
    """TFLite's MultiplyByQuantizedMultiplier on int32 accumulators (int64 arrays out).

    `multiplier` and `shift` broadcast against `x` (per-channel requantisation passes arrays
    shaped to the channel axis). The left-shifted value must fit in int32, as in TFLite.
    """
    x = np.asarray(x, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    shifted = x * (np.int64(1) << left)
    if np.any((shifted > INT32_MAX) | (shifted < INT32_MIN)):
        raise OverflowError("requantisation input overflows int32 after the left shift")
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(shifted, multiplier), right)


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
