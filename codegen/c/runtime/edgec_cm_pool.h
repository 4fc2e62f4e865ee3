/*
 * edgec_cm_pool.h - int8 average pooling and addition for edgec's Cortex-M targets with the
 * DSP extension (Cortex-M4, M7) or Helium (Cortex-M55), written for edgec. Part of edgec
 * (Apache-2.0).
 *
 * Average pool (QAveragePool, QGlobalAveragePool: a window over the whole image), NHWC:
 * channel groups outermost, then output pixels; a window's sum per channel accumulates in
 * int16 lanes, exact while at most 256 taps are added (256 * 128 = 2^15), flushed into
 * int32 every 256 / (taps per row) rows. DSP: per tap of 4 channels one LDR and two SXTAB16
 * (bytes 0, 2 and, rotated, 1, 3 added to two int16 pairs); Helium: per tap of 16 channels
 * two VLDRB.S16 and two VADD.I16. Each output then takes the int8 reference's arithmetic
 * (edgec/ops/quantized_pool.py, the portable template ops/qavgpool.c.j2): "requantize":
 * edgec_requant(S - valid x_zp) with the multiplier of the window's count; "divide": the
 * rounding division of S + (count - valid) x_zp by count.
 *
 * Max pool (int8 MaxPool, GlobalMaxPool): edgec_cm_maxpool_s8.
 *
 * Addition (QAdd, TFLite's int8 ADD without broadcasting): y = requant(mbqm((a - a_zp) 2^L,
 * a_mult, a_shift) + mbqm((b - b_zp) 2^L, b_mult, b_shift)). Helium: 4 elements per vector
 * step, the rounding doubling high multiply VQRDMULH and the rounding shift as
 * edgec_cm_mve_requant4; every shift <= 0 (the caller checks at compile time). DSP: one
 * element at a time, each product one SMMULR (edgec_cm_dsp_mbqm30, edgec_cm_dsp_scale)
 * when the input shifts are in [-31, 0], the output's in [-31, -2] and L <= 21 (every value
 * below 2^30), else edgec_mbqm / edgec_requant.
 */
#ifndef EDGEC_CM_POOL_H
#define EDGEC_CM_POOL_H

#include <stdint.h>
#include <string.h>

#include "edgec_cm_conv.h"
#include "edgec_qkernels.h"
#include "edgec_qmath.h"
#if defined(__ARM_FEATURE_MVE)
#include "edgec_cm_mve.h"
#define EDGEC_CM_POOL_LANES 16
#elif defined(__ARM_FEATURE_DSP)
#include "edgec_cm_dsp.h"
#define EDGEC_CM_POOL_LANES 4
#else
#error "edgec_cm_pool.h needs the DSP extension or Helium (cortex-m4, m7, m55)"
#endif

/* Taps an int16 lane sums exactly (|x| <= 128). */
#define EDGEC_CM_POOL_TAPS16 256

/* The output of one channel from its window sum (module comment). */
static inline int8_t edgec_cm_pool_out(int32_t sum, int32_t count, int32_t valid, int divide,
                                       int32_t x_zp, const int32_t *rq_mult,
                                       const int8_t *rq_shift, int32_t count_base,
                                       int32_t y_zp, int32_t lo, int32_t hi)
{
    if (divide) {
        return (int8_t)edgec_clamp_i32(edgec_round_div(sum + (count - valid) * x_zp, count),
                                       lo, hi);
    }
    return (int8_t)edgec_requant(sum - valid * x_zp, rq_mult[count - count_base],
                                 rq_shift[count - count_base], y_zp, lo, hi);
}

/* Window sums of EDGEC_CM_POOL_LANES channels from c (fewer past c_all: lanes the caller
 * ignores) over rows [ky0, ky1) x columns [kx0, kx1) of taps, added to `sums`. */
static inline __attribute__((always_inline)) void edgec_cm_pool_window(
    const int8_t *x, const edgec_cm_conv_geometry *g, int32_t iy0, int32_t ix0, int32_t ky0,
    int32_t ky1, int32_t kx0, int32_t kx1, int32_t c, int32_t *sums)
{
    const int32_t c_all = g->in_c, in_w = g->in_w;
    const int32_t cols = kx1 - kx0;
    const int32_t rows_per_flush = cols > 0 ? EDGEC_CM_POOL_TAPS16 / cols : 1;
    int32_t ky = ky0, kx, j;
    while (ky < ky1) {
        const int32_t ky_end = ky1 - ky < rows_per_flush ? ky1 : ky + rows_per_flush;
#if defined(__ARM_FEATURE_MVE)
        int16x8_t lo = vdupq_n_s16(0), hi = vdupq_n_s16(0);
        int16_t parts[16];
#else
        int32_t even = 0, odd = 0;
#endif
        for (; ky < ky_end; ++ky) {
            const int8_t *p = x + ((size_t)(iy0 + ky * g->dilation_h) * (size_t)in_w +
                                   (size_t)(ix0 + kx0 * g->dilation_w)) * (size_t)c_all +
                              (size_t)c;
            const size_t step = (size_t)g->dilation_w * (size_t)c_all;
            for (kx = kx0; kx < kx1; ++kx) {
#if defined(__ARM_FEATURE_MVE)
                const mve_pred16_t pl = vctp16q((uint32_t)(c_all - c));
                const mve_pred16_t ph = vctp16q((uint32_t)(c_all - c > 8 ? c_all - c - 8 : 0));
                lo = vaddq_s16(lo, vldrbq_z_s16(p, pl));
                hi = vaddq_s16(hi, vldrbq_z_s16(p + 8, ph));
#else
                int32_t v;
                if (c + 4 <= c_all) {
                    v = edgec_cm_load4(p);
                } else {
                    int8_t t[4] = {0, 0, 0, 0};
                    for (j = 0; j < c_all - c; ++j) {
                        t[j] = p[j];
                    }
                    v = edgec_cm_load4(t);
                }
                even = __sxtab16(even, v);
                __asm__("sxtab16 %0, %0, %1, ror #8" : "+r"(odd) : "r"(v));
#endif
                p += step;
            }
        }
#if defined(__ARM_FEATURE_MVE)
        vst1q_s16(parts, lo);
        vst1q_s16(parts + 8, hi);
        for (j = 0; j < 16; ++j) {
            sums[j] += parts[j];
        }
#else
        sums[0] += (int16_t)even; /* channel c: low half of the even pairs */
        sums[1] += (int16_t)odd;
        sums[2] += even >> 16;
        sums[3] += odd >> 16;
#endif
    }
}

/* Average pool, NHWC, batch 1 (module comment): geometry `g` (out_c unused), per-axis
 * tables of the divisor (count_h/w) and of the in-image taps (valid_h/w) per output row and
 * column, `divide` or the requantisation tables rq_mult/rq_shift indexed by count -
 * count_base. */
static inline __attribute__((always_inline)) void edgec_cm_avgpool_s8(
    const edgec_cm_conv_geometry *g, const int8_t *x, const int32_t *count_h,
    const int32_t *count_w, const int32_t *valid_h, const int32_t *valid_w, int divide,
    int32_t x_zp, const int32_t *rq_mult, const int8_t *rq_shift, int32_t count_base,
    int32_t y_zp, int32_t lo, int32_t hi, int8_t *y)
{
    const int32_t c_all = g->in_c, out_h = g->out_h, out_w = g->out_w;
    int32_t c, oy, ox, j;
    for (c = 0; c < c_all; c += EDGEC_CM_POOL_LANES) {
        const int32_t n = c_all - c < EDGEC_CM_POOL_LANES ? c_all - c : EDGEC_CM_POOL_LANES;
        for (oy = 0; oy < out_h; ++oy) {
            const int32_t iy0 = oy * g->stride_h - g->pad_top;
            int32_t ky0, ky1;
            edgec_cm_dw_range(iy0, g->dilation_h, g->k_h, g->in_h, &ky0, &ky1);
            for (ox = 0; ox < out_w; ++ox) {
                const int32_t ix0 = ox * g->stride_w - g->pad_left;
                const int32_t count = count_h[oy] * count_w[ox];
                const int32_t valid = valid_h[oy] * valid_w[ox];
                int8_t *out = y + ((size_t)oy * (size_t)out_w + (size_t)ox) * (size_t)c_all +
                              (size_t)c;
                int32_t sums[EDGEC_CM_POOL_LANES] = {0};
                int32_t kx0, kx1;
                edgec_cm_dw_range(ix0, g->dilation_w, g->k_w, g->in_w, &kx0, &kx1);
                if (ky1 > ky0 && kx1 > kx0) {
                    edgec_cm_pool_window(x, g, iy0, ix0, ky0, ky1, kx0, kx1, c, sums);
                }
                for (j = 0; j < n; ++j) {
                    out[j] = edgec_cm_pool_out(sums[j], count, valid, divide, x_zp, rq_mult,
                                               rq_shift, count_base, y_zp, lo, hi);
                }
            }
        }
    }
}

/* Max pool of int8, NHWC, batch 1 (MaxPool, GlobalMaxPool as one window over the image):
 * the maximum of each window's in-image taps (padding never wins, as in ONNX). DSP: 4
 * channels per word, SSUB8 sets a GE flag per byte where the tap is >= the running maximum
 * and SEL takes those bytes (2 instructions per tap); Helium: VMAX.S8 over 16 channels. */
static inline __attribute__((always_inline)) void edgec_cm_maxpool_s8(
    const edgec_cm_conv_geometry *g, const int8_t *x, int8_t *y)
{
    const int32_t c_all = g->in_c, in_w = g->in_w, out_h = g->out_h, out_w = g->out_w;
    int32_t c, oy, ox, ky, kx;
#if !defined(__ARM_FEATURE_MVE)
    int32_t j;
#endif
    for (oy = 0; oy < out_h; ++oy) {
        const int32_t iy0 = oy * g->stride_h - g->pad_top;
        int32_t ky0, ky1;
        edgec_cm_dw_range(iy0, g->dilation_h, g->k_h, g->in_h, &ky0, &ky1);
        for (ox = 0; ox < out_w; ++ox) {
            const int32_t ix0 = ox * g->stride_w - g->pad_left;
            int8_t *out = y + ((size_t)oy * (size_t)out_w + (size_t)ox) * (size_t)c_all;
            int32_t kx0, kx1;
            edgec_cm_dw_range(ix0, g->dilation_w, g->k_w, g->in_w, &kx0, &kx1);
            for (c = 0; c < c_all; c += EDGEC_CM_POOL_LANES) {
                const int32_t n = c_all - c < EDGEC_CM_POOL_LANES ? c_all - c
                                                                  : EDGEC_CM_POOL_LANES;
#if defined(__ARM_FEATURE_MVE)
                const mve_pred16_t p = vctp8q((uint32_t)n);
                int8x16_t m = vdupq_n_s8(INT8_MIN);
#else
                int32_t m = (int32_t)0x80808080u;
                int8_t t[4];
#endif
                for (ky = ky0; ky < ky1; ++ky) {
                    const int8_t *xp = x + ((size_t)(iy0 + ky * g->dilation_h) * (size_t)in_w +
                                            (size_t)(ix0 + kx0 * g->dilation_w)) *
                                               (size_t)c_all + (size_t)c;
                    for (kx = kx0; kx < kx1; ++kx) {
#if defined(__ARM_FEATURE_MVE)
                        m = vmaxq_m_s8(m, m, vldrbq_z_s8(xp, p), p);
#else
                        int32_t v;
                        if (n == 4) {
                            v = edgec_cm_load4(xp);
                        } else {
                            for (j = 0; j < 4; ++j) {
                                t[j] = j < n ? xp[j] : INT8_MIN;
                            }
                            v = edgec_cm_load4(t);
                        }
                        (void)__ssub8(v, m); /* GE[i] = v[i] >= m[i] */
                        m = (int32_t)__sel((uint32_t)v, (uint32_t)m);
#endif
                        xp += (size_t)g->dilation_w * (size_t)c_all;
                    }
                }
#if defined(__ARM_FEATURE_MVE)
                vstrbq_p_s8(out + c, m, p);
#else
                memcpy(t, &m, 4);
                for (j = 0; j < n; ++j) {
                    out[c + j] = t[j];
                }
#endif
            }
        }
    }
}

#if !defined(__ARM_FEATURE_MVE)
/* edgec_mbqm(x, mult, shift) for |x| < 2^30 and shift in [-31, 0]: SMMULR of 2 x is the
 * rounding doubling high multiply v (|v| < 2^30); the rounding division by 2^e as in
 * edgec_cm_dsp_scale, whose identity holds for e = 1 too ((u + 1) >> 1, u = v - [v < 0]).
 * The input with the larger scale has shift 0 in TFLite's ADD (its multiplier is 1/2). */
static inline __attribute__((always_inline)) int32_t edgec_cm_dsp_mbqm30(int32_t x,
                                                                         int32_t mult,
                                                                         int32_t shift)
{
    int32_t v;
    __asm__("smmulr %0, %1, %2" : "=r"(v) : "r"(x * 2), "r"(mult));
    if (shift == 0) {
        return v;
    }
    return (((v - (int32_t)((uint32_t)v >> 31)) >> (-shift - 1)) + 1) >> 1;
}
#endif

/* QAdd of `count` elements without broadcasting (module comment); `left` = 2^L. */
static inline __attribute__((always_inline)) void edgec_cm_add_s8(
    const int8_t *a, const int8_t *b, int32_t count, int32_t a_zp, int32_t b_zp, int32_t left,
    int32_t a_mult, int32_t a_shift, int32_t b_mult, int32_t b_shift, int32_t y_mult,
    int32_t y_shift, int32_t y_zp, int32_t lo, int32_t hi, int8_t *y)
{
    int32_t i;
#if defined(__ARM_FEATURE_MVE)
    const int32x4_t am = vdupq_n_s32(a_mult), as = vdupq_n_s32(a_shift);
    const int32x4_t bm = vdupq_n_s32(b_mult), bs = vdupq_n_s32(b_shift);
    const int32x4_t ym = vdupq_n_s32(y_mult), ys = vdupq_n_s32(y_shift);
    for (i = 0; i < count; i += 4) {
        const mve_pred16_t p = vctp32q((uint32_t)(count - i));
        const int32x4_t av = vmulq_n_s32(vsubq_n_s32(vldrbq_z_s32(a + i, p), a_zp), left);
        const int32x4_t bv = vmulq_n_s32(vsubq_n_s32(vldrbq_z_s32(b + i, p), b_zp), left);
        const int32x4_t sum = vaddq_s32(edgec_cm_mve_requant4(av, am, as, 0, INT32_MIN,
                                                              INT32_MAX),
                                        edgec_cm_mve_requant4(bv, bm, bs, 0, INT32_MIN,
                                                              INT32_MAX));
        vstrbq_p_s32(y + i, edgec_cm_mve_requant4(sum, ym, ys, y_zp, lo, hi), p);
    }
#else
    const int fast = a_shift <= 0 && b_shift <= 0 && y_shift <= -2 && a_shift >= -31 &&
                     b_shift >= -31 && y_shift >= -31 && left <= (1 << 21);
    for (i = 0; i < count; ++i) {
        const int32_t av = ((int32_t)a[i] - a_zp) * left, bv = ((int32_t)b[i] - b_zp) * left;
        if (fast) { /* |av|, |bv| < 2^29, the scaled terms too: their sum < 2^30 */
            const int32_t sum = edgec_cm_dsp_mbqm30(av, a_mult, a_shift) +
                                edgec_cm_dsp_mbqm30(bv, b_mult, b_shift);
            int32_t v = edgec_cm_dsp_scale(sum, y_mult, y_shift, 2 * y_zp + 1, 1);
            v = v < lo ? lo : (v > hi ? hi : v);
            y[i] = (int8_t)v;
        } else {
            const int32_t sum = edgec_mbqm(av, a_mult, a_shift) + edgec_mbqm(bv, b_mult, b_shift);
            y[i] = (int8_t)edgec_requant(sum, y_mult, y_shift, y_zp, lo, hi);
        }
    }
#endif
}

#endif /* EDGEC_CM_POOL_H */
