/*
 * edgec_qmath.h - fixed-point requantisation used by edgec's int8 kernels.
 * Generated code includes this file; it is part of edgec (Apache-2.0).
 *
 * A real multiplier M is stored as a Q0.31 mantissa `mult` (in [2^30, 2^31)) and an exponent
 * `shift` in [-31, 30] (M ~= mult * 2^(shift - 31)). edgec_mbqm applies it to an int32
 * accumulator with one 64-bit product and one rounding shift, exactly as edgec/qmath.py
 * (the definition of the bits) and TFLite's reference kernels built with
 * TFLITE_SINGLE_ROUNDING: round(x * M), ties rounded upwards.
 * Right shifts of negative values are arithmetic on every compiler edgec supports.
 */
#ifndef EDGEC_QMATH_H
#define EDGEC_QMATH_H

#include <stdint.h>

/* MultiplyByQuantizedMultiplier (single rounding): (x * mult + 2^(30 - shift)) >> (31 - shift),
 * saturated to int32 (only a multiplier >= 1 on a huge accumulator can leave that range). */
static inline int32_t edgec_mbqm(int32_t x, int32_t mult, int shift)
{
    const int total = 31 - shift;
    const int64_t rounding = (int64_t)1 << (total - 1);
    const int64_t y = ((int64_t)x * (int64_t)mult + rounding) >> total;
    return y > INT32_MAX ? INT32_MAX : (y < INT32_MIN ? INT32_MIN : (int32_t)y);
}

/* x / 2^exponent, ties away from zero (exponent in [0, 31]); TFLite's RoundingDivideByPOT. */
static inline int32_t edgec_rdivpot(int32_t x, int exponent)
{
    const int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* Requantise an accumulator and clamp to [qmin, qmax]. */
static inline int32_t edgec_requant(int32_t acc, int32_t mult, int shift, int32_t zp,
                                    int32_t qmin, int32_t qmax)
{
    const int64_t y = (int64_t)edgec_mbqm(acc, mult, shift) + zp;
    return y < qmin ? qmin : (y > qmax ? qmax : (int32_t)y);
}

#endif /* EDGEC_QMATH_H */
