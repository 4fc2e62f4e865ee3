/*
 * edgec_qkernels.h - scalar helpers of edgec's integer kernels (int8 scheme and ONNX's
 * quantisation operators). Generated code includes this file; it is part of edgec.
 *
 * Every function reproduces the numpy reference of its op bit for bit (edgec/ops/quantized*.py,
 * edgec/ops/onnx_quant.py). The float helpers evaluate one IEEE operation per statement, so no
 * compiler contracts them into a fused multiply-add in ISO C modes, and round with nearbyint
 * (round half to even under the default rounding mode, like numpy's rint).
 */
#ifndef EDGEC_QKERNELS_H
#define EDGEC_QKERNELS_H

#include <math.h>
#include <stdint.h>

#include "edgec_qmath.h"

/* v clamped to [lo, hi]. */
static inline int32_t edgec_clamp_i32(int32_t v, int32_t lo, int32_t hi)
{
    v = v < lo ? lo : v;
    return v > hi ? hi : v;
}

/* acc / count rounded half away from zero (TFLite's average pool division); count > 0. */
static inline int32_t edgec_round_div(int32_t acc, int32_t count)
{
    return acc >= 0 ? (acc + count / 2) / count : -((-acc + count / 2) / count);
}

/* ONNX QLinearConv/QLinearMatMul requantisation: rint(clamp(acc * mult + zp, lo, hi)),
 * with the product and the sum in double (numpy promotes int32 * float32 to float64). */
static inline int32_t edgec_requant_f64(int32_t acc, float mult, int32_t zp, int32_t lo,
                                        int32_t hi)
{
    double r = (double)acc * (double)mult;
    r = r + (double)zp;
    r = r < (double)lo ? (double)lo : r;
    r = r > (double)hi ? (double)hi : r;
    return (int32_t)nearbyint(r);
}

/* ONNX QuantizeLinear: saturate(rint(x / scale) + zp) to [qmin, qmax]; NaN gives qmin. */
static inline int32_t edgec_quantize_f32(float x, float scale, int32_t zp, int32_t qmin,
                                         int32_t qmax)
{
    const float q = nearbyintf(x / scale);
    if (!(q >= (float)(qmin - zp))) {
        return qmin;
    }
    if (q > (float)(qmax - zp)) {
        return qmax;
    }
    return (int32_t)q + zp;
}

#endif /* EDGEC_QKERNELS_H */
