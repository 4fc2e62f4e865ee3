/*
 * edgec_f32_math.h - exp, sigmoid and tanh in float32 from +, -, *, / in a fixed order.
 * Generated code includes this file; it is part of edgec (Apache-2.0).
 *
 * A transcription of edgec/ops/float32_math.py (the algorithm and its constants are described
 * there): int8 kernels with a float32 part (the hybrid QLSTM) call these instead of libm's
 * expf/tanhf, whose last bit differs between libraries and ISAs. Built with
 * -ffp-contract=off (every edgec target) they equal the numpy reference bit for bit.
 */
#ifndef EDGEC_F32_MATH_H
#define EDGEC_F32_MATH_H

#include <math.h>

static inline float edgec_exp32(float x)
{
    const float k = floorf(x * 1.44269502f + 0.5f);
    const float r = (x - k * 0.693145752f) - k * 1.42860677e-06f;
    float p = 0.000198412701f;
    p = p * r + 0.00138888892f;
    p = p * r + 0.00833333377f;
    p = p * r + 0.0416666679f;
    p = p * r + 0.166666672f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    return ldexpf(p, (int)k);
}

static inline float edgec_sigmoid32(float x)
{
    x = x > 30.0f ? 30.0f : (x < -30.0f ? -30.0f : x);
    return 1.0f / (1.0f + edgec_exp32(-x));
}

static inline float edgec_tanh32(float x)
{
    const float ax = fabsf(x) < 15.0f ? fabsf(x) : 15.0f;
    float t;
    if (ax < 0.0625f) {
        const float x2 = ax * ax;
        float poly = -0.0539682545f;
        poly = poly * x2 + 0.13333334f;
        poly = poly * x2 + -0.333333343f;
        t = ax + ax * (x2 * poly);
    } else {
        const float e = edgec_exp32(-2.0f * ax);
        t = (1.0f - e) / (1.0f + e);
    }
    return x < 0.0f ? -t : t;
}

#endif /* EDGEC_F32_MATH_H */
