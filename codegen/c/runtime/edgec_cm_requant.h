/*
 * edgec_cm_requant.h - edgec's requantisation (edgec_qmath.h) as the Cortex-M kernels call
 * it. Part of edgec (Apache-2.0).
 *
 * TFLite's double rounding (edgec_mbqm) compiles on a 32-bit core to one SMULL, a 64-bit add
 * of 2^30 and a 31-bit funnel shift (the rounding doubling high multiply), then the rounding
 * division by a power of two in 32-bit arithmetic; the kernels call it through this one
 * function so that a core-specific form has one place to live.
 */
#ifndef EDGEC_CM_REQUANT_H
#define EDGEC_CM_REQUANT_H

#include <stdint.h>

#include "edgec_qmath.h"

static inline int32_t edgec_cm_mbqm(int32_t x, int32_t mult, int shift)
{
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
