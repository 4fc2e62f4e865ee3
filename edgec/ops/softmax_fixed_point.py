"""TFLite's int8 SOFTMAX in integers: the arithmetic behind QSoftmax (its numpy reference).

TFLite's reference kernel (reference_ops::Softmax for int8 in and out, which LiteRT's
BUILTIN_REF resolver and TensorFlow Lite Micro run) works in gemmlowp-style fixed point.
Q<i> below is a signed 32-bit value with i integer bits and 31 - i fractional bits.

Prepare (from the float32 beta and input scale, computed in float64 as TFLite does):

    real       = min(beta * x_scale * 2^26, 2^31 - 1)     (26 = 31 - 5 fractional bits)
    multiplier, left_shift = QuantizeMultiplier(real)     (real > 1 is required: shift >= 1)
    diff_min   = -floor(31 * 2^26 / 2^left_shift)         (the largest |diff| that cannot
                                                           overflow int32 once shifted)

Per row of the last axis, with d = x - max(row) <= 0:

    a       = SRDHM(d * 2^left_shift, multiplier)          d * beta * x_scale in Q5.26
    e       = exp_on_negative_values(a)                    exp of it in Q0.31
    sum     = sum of RoundingDivideByPOT(e, 12) over d >= diff_min      (Q12.19)
    r, nbou = reciprocal of sum: 1 / sum = r * 2^-nbou, r in Q0.31 (GetReciprocal)
    y       = RoundingDivideByPOT(SRDHM(r, e), nbou + 23) - 128, clamped to int8
              (-128 where d < diff_min)

so the output scale is 1/256 and the zero point -128, as TFLite's Prepare requires.
exp_on_negative_values splits a into a multiple of 1/4 and a remainder in [-1/4, 0): a
4th-order Taylor polynomial around -1/8 for the remainder, then one constant factor
exp(-2^k) per set bit of the multiple (k = -2 ... 4). The reciprocal is three
Newton-Raphson steps on 1 / (1 + x) for the sum normalised into [1, 2).

Limits, from TFLite itself: the sum must stay below 2^28 (Q12.19: 512), or the last shift
exceeds 31 and LiteRT's kernel aborts (TFLITE_CHECK); a row of at most MAX_ROW = 511
elements never reaches it (each term is at most 1). `softmax_params` returns None where
TFLite's Prepare would fail (beta * x_scale * 2^26 <= 1).

SRDHM is SaturatingRoundingDoublingHighMul (round(a * b / 2^31), ties upwards);
RoundingDivideByPOT rounds ties away from zero. All functions take and return int64 numpy
arrays holding int32 values; tests/ops/test_quantized_softmax.py checks them against LiteRT.
"""

from __future__ import annotations

import math

import numpy as np

SCALED_DIFF_INTEGER_BITS = 5  # Q5.26 input of exp: differences down to -32
ACCUMULATION_INTEGER_BITS = 12  # Q12.19 sum of exps
OUTPUT_ZERO_POINT = -128
OUTPUT_SCALE = 1.0 / 256.0
MAX_ROW = 511  # longer rows can make TFLite's int8 SOFTMAX abort (module docstring)
INT32_MAX = 2**31 - 1
INT32_MIN = -(2**31)

# exp(-2^k) in Q0.31 for k = -2 ... 4 (gemmlowp's barrel-shifter constants).
_EXP_FACTORS = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
                (2, 39332535), (3, 720401), (4, 242))
_EXP_MINUS_ONE_EIGHTH = 1895147668  # exp(-1/8) in Q0.31
_ONE_THIRD = 715827883  # 1/3 in Q0.31
_48_OVER_17 = 1515870810  # in Q2.29
_MINUS_32_OVER_17 = -1010580540  # in Q2.29


def softmax_params(beta: float, x_scale: float) -> tuple[int, int, int] | None:
    """(input_multiplier, input_left_shift, diff_min) as TFLite's SOFTMAX Prepare computes
    them from float32 beta and input scale; None when TFLite would refuse the scale."""
    real = float(np.float32(beta)) * float(np.float32(x_scale)) * float(1 << 26)
    real = min(real, float(INT32_MAX))
    if not real > 1.0 or not math.isfinite(real):
        return None
    mantissa, shift = math.frexp(real)
    multiplier = math.floor(mantissa * 2.0**31 + 0.5)  # std::round of a positive value
    if multiplier == 2**31:
        multiplier //= 2
        shift += 1
    radius = math.floor(((1 << SCALED_DIFF_INTEGER_BITS) - 1)
                        * float(1 << (31 - SCALED_DIFF_INTEGER_BITS)) / float(1 << shift))
    return multiplier, shift, -int(radius)


def srdhm(a, b) -> np.ndarray:
    """SaturatingRoundingDoublingHighMul of int32 values (neither pair both INT32_MIN)."""
    a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
    return (a * b + (np.int64(1) << 30)) >> 31


def rounding_divide_by_pot(x, exponent) -> np.ndarray:
    """x / 2^exponent, ties away from zero (gemmlowp's RoundingDivideByPOT); the exponent
    (0 ... 31) may be an array broadcasting against x."""
    x = np.asarray(x, np.int64)
    mask = (np.int64(1) << np.asarray(exponent, np.int64)) - 1
    threshold = (mask >> 1) + (x < 0).astype(np.int64)
    return (x >> exponent) + ((x & mask) > threshold).astype(np.int64)


def saturating_shift_left(x, exponent: int) -> np.ndarray:
    """x * 2^exponent saturated to int32 (gemmlowp's SaturatingRoundingMultiplyByPOT > 0)."""
    x = np.asarray(x, np.int64)
    threshold = (1 << (31 - exponent)) - 1
    return np.where(x > threshold, INT32_MAX, np.where(x < -threshold, INT32_MIN, x << exponent))


def exp_on_negative_values(a) -> np.ndarray:
    """exp(a) in Q0.31 of a <= 0 in Q5.26 (gemmlowp's exp_on_negative_values)."""
    a = np.asarray(a, np.int64)
    quarter = 1 << 24  # 1/4 in Q5.26
    remainder_part = (a & (quarter - 1)) - quarter  # in [-1/4, 0)
    x = (remainder_part << SCALED_DIFF_INTEGER_BITS) + (1 << 28)  # Q0.31, plus 1/8
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    poly = rounding_divide_by_pot(srdhm(rounding_divide_by_pot(x4, 2) + x3, _ONE_THIRD) + x2, 1)
    result = _EXP_MINUS_ONE_EIGHTH + srdhm(_EXP_MINUS_ONE_EIGHTH, x + poly)
    multiple = remainder_part - a  # the multiple of 1/4 taken off, >= 0
    for k, factor in _EXP_FACTORS:
        bit = (multiple & (1 << (26 + k))) != 0
        result = np.where(bit, srdhm(result, factor), result)
    return np.where(a == 0, INT32_MAX, result)


def reciprocal(total) -> tuple[np.ndarray, np.ndarray]:
    """TFLite's GetReciprocal of a positive Q12.19 sum: (r in Q0.31, num_bits_over_unit) with
    1 / total ~= r * 2^-num_bits_over_unit."""
    total = np.asarray(total, np.int64)
    bits = np.vectorize(lambda v: int(v).bit_length(), otypes=[np.int64])(total)
    leading_zeros = 32 - bits
    num_bits_over_unit = ACCUMULATION_INTEGER_BITS - leading_zeros
    x = (total << leading_zeros) - (1 << 31)  # normalised sum minus one, in [0, 1)
    half_denominator = (x + (1 << 31)) >> 1  # RoundingHalfSum(x, 1)
    r = _48_OVER_17 + srdhm(half_denominator, _MINUS_32_OVER_17)  # Q2.29
    for _ in range(3):
        one_minus = (1 << 29) - srdhm(half_denominator, r)
        r = r + saturating_shift_left(srdhm(r, one_minus), 2)
    return saturating_shift_left(r, 1), num_bits_over_unit


def int8_softmax(x, multiplier: int, left_shift: int, diff_min: int) -> np.ndarray:
    """TFLite's int8 SOFTMAX over the last axis of int8 `x` (output scale 1/256, zp -128)."""
    x = np.asarray(x, np.int64)
    diff = x - x.max(axis=-1, keepdims=True)
    inside = diff >= diff_min
    scaled = srdhm(np.where(inside, diff, 0) << left_shift, multiplier)
    exps = exp_on_negative_values(scaled)
    total = np.sum(np.where(inside, rounding_divide_by_pot(exps, ACCUMULATION_INTEGER_BITS), 0),
                   axis=-1, keepdims=True)
    scale, num_bits_over_unit = reciprocal(total)
    exponent = num_bits_over_unit + 31 - 8
    if np.any(exponent > 31):
        raise ValueError("int8 softmax: the sum of exps reached 512 (a row over "
                         f"{MAX_ROW} elements); TFLite's kernel refuses it")
    y = rounding_divide_by_pot(srdhm(scale, exps), exponent) + OUTPUT_ZERO_POINT
    return np.where(inside, np.clip(y, -128, 127), -128).astype(np.int8)

