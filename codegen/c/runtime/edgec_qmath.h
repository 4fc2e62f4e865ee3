/*
 * edgec_qmath.h - fixed-point requantisation used by edgec's int8 kernels.
 * Generated code includes this file; it is part of edgec (Apache-2.0).
 *
 * A real multiplier M is stored as a Q0.31 mantissa `mult` and an exponent `shift`
 * (M ~= mult * 2^(shift - 31)). edgec_mbqm applies it to an int32 accumulator exactly as
 * edgec/qmath.py (the definition of the bits) and TFLite's reference kernels do:
 * left shift, saturating rounding doubling high multiply, rounding divide by a power of two.
 */
#ifndef EDGEC_QMATH_H
#define EDGEC_QMATH_H

#include <stdint.h>

/* round(a * b / 2^31), ties rounded upwards; saturates the single overflow case. */
static inline int32_t edgec_srdhm(int32_t a, int32_t b)
{
    const int64_t ab = (int64_t)a * (int64_t)b;
    const int64_t nudge = ab >= 0 ? ((int64_t)1 << 30) : (1 - ((int64_t)1 << 30));
    if (a == INT32_MIN && b == INT32_MIN) {
        return INT32_MAX;
    }
    return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
}

/* x / 2^exponent, ties away from zero (exponent in [0, 31]). */
static inline int32_t edgec_rdivpot(int32_t x, int exponent)
{
    const int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* MultiplyByQuantizedMultiplier: x * mult * 2^(shift - 31) with TFLite's rounding. */
static inline int32_t edgec_mbqm(int32_t x, int32_t mult, int shift)
{
    const int left = shift > 0 ? shift : 0;
    const int right = shift > 0 ? 0 : -shift;
    return edgec_rdivpot(edgec_srdhm((int32_t)((uint32_t)x << left), mult), right);
}

/* Requantise an accumulator and clamp to [qmin, qmax]. */
static inline int32_t edgec_requant(int32_t acc, int32_t mult, int shift, int32_t zp,
                                    int32_t qmin, int32_t qmax)
{
    int32_t y = edgec_mbqm(acc, mult, shift) + zp;
    y = y < qmin ? qmin : y;
    return y > qmax ? qmax : y;
}

#endif /* EDGEC_QMATH_H */
