/*
 * edgec_qsoftmax.h - int8 softmax, bit-exact with TFLite's int8 SOFTMAX reference kernel.
 * Generated code includes this file; it is part of edgec (Apache-2.0).
 *
 * A C transcription of edgec/ops/softmax_fixed_point.py (the algorithm is described there):
 * per row, d = x - max; a = SRDHM(d * 2^left_shift, multiplier) in Q5.26; exp(a) in Q0.31
 * (a polynomial on [-1/4, 0) and one constant factor per set bit of the multiple of 1/4);
 * the sum of exp / 2^12 in Q12.19; its reciprocal by three Newton-Raphson steps; each
 * output RoundingDivideByPOT(SRDHM(reciprocal, exp), num_bits_over_unit + 23) - 128.
 * Elements with d < diff_min give -128. Rows have at most 511 elements (the sum stays
 * below 2^28). Right shifts of negative values are arithmetic on every compiler edgec
 * supports. No allocation; exp is computed twice per element, as TFLite does.
 */
#ifndef EDGEC_QSOFTMAX_H
#define EDGEC_QSOFTMAX_H

#include <stddef.h>
#include <stdint.h>

/* round(a * b / 2^31), ties upwards (SaturatingRoundingDoublingHighMul; a, b never both
 * INT32_MIN here, so |a * b| < 2^62 and no saturation is needed). */
static inline int32_t edgec_qsm_srdhm(int32_t a, int32_t b)
{
    return (int32_t)(((int64_t)a * (int64_t)b + ((int64_t)1 << 30)) >> 31);
}

/* x / 2^exponent, ties away from zero (RoundingDivideByPOT), exponent in [0, 31]. */
static inline int32_t edgec_qsm_rdivpot(int32_t x, int exponent)
{
    const int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + ((x & mask) > threshold ? 1 : 0);
}

/* x * 2^exponent saturated to int32 (exponent 1 or 2). */
static inline int32_t edgec_qsm_shl_sat(int32_t x, int exponent)
{
    const int32_t threshold = (int32_t)(((int64_t)1 << (31 - exponent)) - 1);
    if (x > threshold) return INT32_MAX;
    if (x < -threshold) return INT32_MIN;
    return (int32_t)((uint32_t)x << exponent);
}

/* exp(a) in Q0.31 for a <= 0 in Q5.26. */
static inline int32_t edgec_qsm_exp(int32_t a)
{
    static const int32_t factors[7] = { /* exp(-2^k) in Q0.31, k = -2 ... 4 */
        1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242};
    const int32_t exp_minus_one_eighth = 1895147668;
    const int32_t one_third = 715827883;
    const int32_t quarter = (int32_t)1 << 24;
    const int32_t part = (a & (quarter - 1)) - quarter; /* in [-1/4, 0) */
    const int32_t x = part * 32 + ((int32_t)1 << 28);   /* Q0.31, shifted by +1/8 */
    const int32_t x2 = edgec_qsm_srdhm(x, x);
    const int32_t x3 = edgec_qsm_srdhm(x2, x);
    const int32_t x4 = edgec_qsm_srdhm(x2, x2);
    const int32_t poly = edgec_qsm_rdivpot(
        edgec_qsm_srdhm(edgec_qsm_rdivpot(x4, 2) + x3, one_third) + x2, 1);
    const int32_t multiple = part - a;
    int32_t result = exp_minus_one_eighth + edgec_qsm_srdhm(exp_minus_one_eighth, x + poly);
    int k;
    if (a == 0) return INT32_MAX;
    for (k = 0; k < 7; ++k) {
        if (multiple & ((int32_t)1 << (24 + k))) result = edgec_qsm_srdhm(result, factors[k]);
    }
    return result;
}

/* 1 / sum ~= result * 2^-(*num_bits_over_unit), result in Q0.31, for a Q12.19 sum > 0. */
static inline int32_t edgec_qsm_reciprocal(int32_t sum, int *num_bits_over_unit)
{
    uint32_t normalised = (uint32_t)sum;
    int leading_zeros = 0;
    int32_t half_denominator, r;
    int i;
    while (!(normalised & 0x80000000u)) {
        normalised <<= 1;
        ++leading_zeros;
    }
    *num_bits_over_unit = 12 - leading_zeros;
    /* The normalised sum is 1 + f, f in [0, 1) (Q0.31 after taking 1 off): half of it,
     * RoundingHalfSum(f, 1), is (f + 2^31) / 2 truncated, i.e. normalised / 2. */
    half_denominator = (int32_t)(normalised >> 1);
    r = 1515870810 + edgec_qsm_srdhm(half_denominator, -1010580540); /* 48/17 - 32/17 d */
    for (i = 0; i < 3; ++i) {
        const int32_t one_minus = ((int32_t)1 << 29) - edgec_qsm_srdhm(half_denominator, r);
        r = r + edgec_qsm_shl_sat(edgec_qsm_srdhm(r, one_minus), 2);
    }
    return edgec_qsm_shl_sat(r, 1);
}

/* d * beta * input_scale in Q5.26 (MultiplyByQuantizedMultiplierGreaterThanOne). */
static inline int32_t edgec_qsm_scaled_diff(int32_t diff, int32_t multiplier, int left_shift)
{
    return edgec_qsm_srdhm((int32_t)((int64_t)diff * ((int64_t)1 << left_shift)), multiplier);
}

/* One row of `depth` int8 values (y may alias x). */
static inline void edgec_qsoftmax_row(const int8_t *x, int8_t *y, size_t depth,
                                      int32_t multiplier, int left_shift, int32_t diff_min)
{
    int32_t max = -128, sum = 0, scale;
    int num_bits_over_unit;
    size_t c;
    for (c = 0; c < depth; ++c) {
        if (x[c] > max) max = x[c];
    }
    for (c = 0; c < depth; ++c) {
        const int32_t diff = (int32_t)x[c] - max;
        if (diff >= diff_min) {
            sum += edgec_qsm_rdivpot(
                edgec_qsm_exp(edgec_qsm_scaled_diff(diff, multiplier, left_shift)), 12);
        }
    }
    scale = edgec_qsm_reciprocal(sum, &num_bits_over_unit);
    for (c = 0; c < depth; ++c) {
        const int32_t diff = (int32_t)x[c] - max;
        int32_t out = -128;
        if (diff >= diff_min) {
            const int32_t e = edgec_qsm_exp(edgec_qsm_scaled_diff(diff, multiplier, left_shift));
            out = edgec_qsm_rdivpot(edgec_qsm_srdhm(scale, e), num_bits_over_unit + 23) - 128;
            out = out > 127 ? 127 : (out < -128 ? -128 : out);
        }
        y[c] = (int8_t)out;
    }
}

#endif /* EDGEC_QSOFTMAX_H */
