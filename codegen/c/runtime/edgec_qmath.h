/*
 * edgec_qmath.h - fixed-point requantisation used by edgec's int8 kernels.
 * Generated code includes this file; it is part of edgec (Apache-2.0).
 *
 * A real multiplier M is stored as a Q0.31 mantissa `mult` (in [0, 2^31)) and an exponent
 * `shift` in [-31, 30] (M ~= mult * 2^(shift - 31)). edgec_mbqm applies it to an int32
 * accumulator as TFLite's MultiplyByQuantizedMultiplier does, rounding twice: a rounding
 * doubling high multiply (ties upwards) of x * 2^max(shift, 0), then a rounding division by
 * 2^max(-shift, 0) (ties away from zero). edgec/qmath.py is the definition of the bits; this
 * is its transcription. Right shifts of negative values are arithmetic on every compiler
 * edgec supports.
 */
#ifndef EDGEC_QMATH_H
#define EDGEC_QMATH_H

#include <stdint.h>

/* x / 2^exponent, ties away from zero (exponent in [0, 31]); TFLite's RoundingDivideByPOT. */
static inline int32_t edgec_rdivpot(int32_t x, int exponent)
{
    const int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* SaturatingRoundingDoublingHighMul for mult >= 0: floor((x * mult + 2^30) / 2^31), which
 * lies within int32 (|x * mult| < 2^62). */
static inline int32_t edgec_srdhm(int32_t x, int32_t mult)
{
    return (int32_t)(((int64_t)x * (int64_t)mult + ((int64_t)1 << 30)) >> 31);
}

/* MultiplyByQuantizedMultiplier (TFLite's double rounding); x * 2^shift wraps in 32 bits
 * for shift > 0 (two's complement, as edgec/qmath.py defines it). */
static inline int32_t edgec_mbqm(int32_t x, int32_t mult, int shift)
{
    const int32_t scaled = shift > 0 ? (int32_t)((uint32_t)x << shift) : x;
    return edgec_rdivpot(edgec_srdhm(scaled, mult), shift > 0 ? 0 : -shift);
}

/* Requantise an accumulator and clamp to [qmin, qmax]. */
static inline int32_t edgec_requant(int32_t acc, int32_t mult, int shift, int32_t zp,
                                    int32_t qmin, int32_t qmax)
{
    const int64_t y = (int64_t)edgec_mbqm(acc, mult, shift) + zp;
    return y < qmin ? qmin : (y > qmax ? qmax : (int32_t)y);
}

#endif /* EDGEC_QMATH_H */
