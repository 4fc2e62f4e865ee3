/*
 * edgec_cm_requant.h - edgec's requantisation (edgec_qmath.h) with a short path for 32-bit
 * cores. Part of edgec (Apache-2.0).
 *
 * edgec_mbqm computes (x * mult + 2^(t-1)) >> t with t = 31 - shift in 64 bits, which a
 * Cortex-M turns into a long-multiply, a 64-bit add and a 64-bit variable shift. Typical
 * layers have multipliers below 1/4 (shift <= -2, t >= 33); then, with P = x * mult and
 * A = P >> (t - 1) = (high word of P) >> (t - 33),
 *     (P + 2^(t-1)) >> t  ==  (A + 1) >> 1
 * exactly (write P = A 2^(t-1) + r with 0 <= r < 2^(t-1): adding 2^(t-1) and dividing by 2^t
 * gives (A + 1)/2 + r/2^t, whose floor is floor((A + 1)/2) because r/2^t < 1/2). So one
 * SMULL, two arithmetic shifts and an add give edgec's bits; other shifts take edgec_mbqm.
 * |A| < 2^30, so nothing saturates on the short path.
 */
#ifndef EDGEC_CM_REQUANT_H
#define EDGEC_CM_REQUANT_H

#include <stdint.h>

#include "edgec_qmath.h"

static inline int32_t edgec_cm_mbqm(int32_t x, int32_t mult, int shift)
{
    if (shift <= -2) {
        const int32_t high = (int32_t)(((int64_t)x * (int64_t)mult) >> 32);
        return ((high >> (-shift - 2)) + 1) >> 1;
    }
    return edgec_mbqm(x, mult, shift);
}

/* edgec_requant through edgec_cm_mbqm: requantise, add the zero point, clamp. */
static inline int32_t edgec_cm_requant(int32_t acc, int32_t mult, int shift, int32_t zp,
                                       int32_t qmin, int32_t qmax)
{
    const int32_t y = edgec_cm_mbqm(acc, mult, shift) + zp;
    return y < qmin ? qmin : (y > qmax ? qmax : y);
}

#endif /* EDGEC_CM_REQUANT_H */
