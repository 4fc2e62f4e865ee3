/*
 * edgec_cm_mve.h - int8 kernels for ARMv8.1-M cores with Helium (MVE: Cortex-M55, M85),
 * written for edgec. Part of edgec (Apache-2.0).
 *
 * Same arithmetic and API as edgec_cm_dsp.h (bias_eff folds the input zero point in,
 * edgec_cm_requant finishes each output; bit-exact with edgec's int8 reference), with 128-bit
 * vectors of 16 int8 lanes:
 *   GEMM (pointwise convolution, fully connected): blocks of 1 row x 4 output channels;
 *     per 16 K steps 5 vector loads (VLDRB) and 4 VMLADAVA, each multiplying 16 lane pairs
 *     and adding all 16 products to a scalar int32 accumulator. The K % 16 tail is the same
 *     code with a tail predicate (VCTP8: lanes past K load as 0 and add nothing). A row's
 *     sums (64 channels at a time, on the stack) are then requantised 4 at a time as
 *     vectors (VQRDMULH, VRSHL, VSTRB.32) on the short path.
 *   Depthwise (NHWC): 8 channels per step, loaded sign-extended to int16 lanes (VLDRB.S16);
 *     VMULLB/VMULLT multiply the even and odd lanes into two int32x4 products that VADD
 *     adds to per-channel accumulators; the channel tail is predicated (VCTP16). Interior
 *     pixels walk every tap from bias_eff, border pixels only the taps inside the image,
 *     minus the input zero point, from the layer's own bias: no tap is bounds-checked. On the
 *     short requantisation path the 8 sums are requantised as two vectors (even and odd
 *     channels: gathered parameters, scattered byte stores).
 *   General convolution: two pixels' im2col rows, then the GEMM (as edgec_cm_dsp.h).
 */
#ifndef EDGEC_CM_MVE_H
#define EDGEC_CM_MVE_H

#include <stdint.h>
#include <string.h>

#include <arm_mve.h>

#include "edgec_cm_conv.h"
#include "edgec_cm_requant.h"

#if !defined(__ARM_FEATURE_MVE)
#error "edgec_cm_mve.h needs Helium (MVE): -mcpu=cortex-m55 or -march=armv8.1-m.main+mve"
#endif

static inline int8_t edgec_cm_mve_out(int32_t acc, const int32_t *mult, const int32_t *shift,
                                      int32_t n, int per_channel, int32_t y_zp,
                                      int32_t act_min, int32_t act_max)
{
    const int32_t c = per_channel ? n : 0;
    return (int8_t)edgec_cm_requant(acc, mult[c], (int)shift[c], y_zp, act_min, act_max);
}

static inline int32_t edgec_cm_mve_dot_s8(const int8_t *x, const int8_t *w, int32_t k,
                                          int32_t acc)
{
    int32_t i;
    for (i = 0; i < k; i += 16) {
        const mve_pred16_t p = vctp8q((uint32_t)(k - i));
        acc = vmladavaq_s8(acc, vldrbq_z_s8(x + i, p), vldrbq_z_s8(w + i, p));
    }
    return acc;
}

/* edgec_cm_requant of 4 channels at once, for shifts <= 0 only (the usual case):
 * VQRDMULH is the rounding doubling high multiply; the rounding division by 2^-shift rounds
 * ties away from zero as VRSHL (ties upwards) of h - 1 for negative h (the sign bit of
 * h & shift is set only when h < 0 and shift < 0), then zero point and clamp. */
static inline int32x4_t edgec_cm_mve_requant4(int32x4_t acc, int32x4_t mult, int32x4_t shift,
                                              int32_t y_zp, int32_t act_min, int32_t act_max)
{
    const int32x4_t high = vqrdmulhq_s32(acc, mult);
    const int32x4_t fixup = vshrq_n_s32(vandq_s32(high, shift), 31);
    int32x4_t t = vrshlq_s32(vqaddq_s32(high, fixup), shift);
    t = vaddq_n_s32(t, y_zp);
    t = vmaxq_s32(t, vdupq_n_s32(act_min));
    return vminq_s32(t, vdupq_n_s32(act_max));
}

/* Channels requantised per chunk by edgec_cm_mve_gemm_s8 (its int32 sums on the stack). */
#define EDGEC_CM_MVE_CHUNK 64

/* One row's dot products with `count` weight rows from w0, bias included: sums[n] =
 * bias_eff[n] + dot(x0, w0 + n k). Blocks of 4 channels: per 16 K steps one input vector
 * feeds 4 VMLADAVA (whole vectors, then one predicated tail); leftover channels one at a
 * time. Its own function, so that the caller's requantisation values do not push the 4
 * scalar sums out of registers (GCC 12 spills them otherwise). */
static __attribute__((noinline)) void edgec_cm_mve_row_dots(const int8_t *x0,
                                                            const int8_t *w0, int32_t k,
                                                            int32_t count,
                                                            const int32_t *bias_eff,
                                                            int32_t *sums)
{
    const int32_t k_full = k - k % 16;
    int32_t n = 0;
    for (; n + 4 <= count; n += 4) {
        const int8_t *w1 = w0 + k, *w2 = w1 + k, *w3 = w2 + k;
        int32_t a0 = bias_eff[n], a1 = bias_eff[n + 1], a2 = bias_eff[n + 2];
        int32_t a3 = bias_eff[n + 3];
        int32_t i;
        for (i = 0; i < k_full; i += 16) {
            const int8x16_t xv = vldrbq_s8(x0 + i);
            a0 = vmladavaq_s8(a0, xv, vldrbq_s8(w0 + i));
            a1 = vmladavaq_s8(a1, xv, vldrbq_s8(w1 + i));
            a2 = vmladavaq_s8(a2, xv, vldrbq_s8(w2 + i));
            a3 = vmladavaq_s8(a3, xv, vldrbq_s8(w3 + i));
        }
        if (i < k) {
            const mve_pred16_t p = vctp8q((uint32_t)(k - i));
            const int8x16_t xv = vldrbq_z_s8(x0 + i, p);
            a0 = vmladavaq_s8(a0, xv, vldrbq_z_s8(w0 + i, p));
            a1 = vmladavaq_s8(a1, xv, vldrbq_z_s8(w1 + i, p));
            a2 = vmladavaq_s8(a2, xv, vldrbq_z_s8(w2 + i, p));
            a3 = vmladavaq_s8(a3, xv, vldrbq_z_s8(w3 + i, p));
        }
        sums[n] = a0;
        sums[n + 1] = a1;
        sums[n + 2] = a2;
        sums[n + 3] = a3;
        w0 = w3 + k;
    }
    for (; n < count; ++n) { /* up to 3 channels left */
        sums[n] = edgec_cm_mve_dot_s8(x0, w0, k, bias_eff[n]);
        w0 += k;
    }
}

/* y[r][n] = requant(bias_eff[n] + sum_k x[r][k] * w[n][k]) for r < rows, n < n_out.
 * Per row and chunk of EDGEC_CM_MVE_CHUNK channels: the dot products
 * (edgec_cm_mve_row_dots) into int32 sums, then requantised 4 channels at a time as vectors
 * (edgec_cm_mve_requant4, a predicated narrowing VSTRB.32 for the tail) when every shift
 * takes that path, one by one otherwise. */
static inline void edgec_cm_mve_gemm_s8(const int8_t *x, int32_t rows, int32_t k,
                                        const int8_t *w, int32_t n_out,
                                        const int32_t *bias_eff, const int32_t *mult,
                                        const int32_t *shift, int per_channel, int32_t y_zp,
                                        int32_t act_min, int32_t act_max, int8_t *y)
{
    int32_t sums[EDGEC_CM_MVE_CHUNK];
    int short_path = 1;
    int32_t r, n, j;
    for (n = 0; n < (per_channel ? n_out : 1); ++n) {
        short_path &= shift[n] <= 0;
    }
    for (r = 0; r < rows; ++r) {
        const int8_t *x0 = x + (size_t)r * (size_t)k;
        int8_t *y0 = y + (size_t)r * (size_t)n_out;
        for (n = 0; n < n_out; n += EDGEC_CM_MVE_CHUNK) {
            const int32_t count = n_out - n < EDGEC_CM_MVE_CHUNK ? n_out - n : EDGEC_CM_MVE_CHUNK;
            edgec_cm_mve_row_dots(x0, w + (size_t)n * (size_t)k, k, count, bias_eff + n, sums);
            if (short_path) {
                for (j = 0; j < count; j += 4) {
                    const mve_pred16_t p = vctp32q((uint32_t)(count - j));
                    const int32x4_t mv = per_channel ? vldrwq_z_s32(mult + n + j, p)
                                                     : vdupq_n_s32(mult[0]);
                    const int32x4_t sv = per_channel ? vldrwq_z_s32(shift + n + j, p)
                                                     : vdupq_n_s32(shift[0]);
                    vstrbq_p_s32(y0 + n + j, edgec_cm_mve_requant4(
                        vldrwq_z_s32(sums + j, p), mv, sv, y_zp, act_min, act_max), p);
                }
            } else {
                for (j = 0; j < count; ++j) {
                    y0[n + j] = edgec_cm_mve_out(sums[j], mult, shift, n + j, per_channel,
                                                 y_zp, act_min, act_max);
                }
            }
        }
    }
}

/* 8 channels (int16 lanes, predicate p) of one output pixel over rows x cols taps from
 * x_row / wp: VLDRB.S16 of input and weights, VMULLB/VMULLT into the even and odd channels'
 * int32 sums (`subtract`: the input minus its zero point first; `full`: all 8 lanes, loads
 * without the predicate, which otherwise costs a VPR move per load). Inlined with constants
 * so that GCC unrolls 3 x 3. */
static inline __attribute__((always_inline)) void edgec_cm_mve_dw_taps8(
    const int8_t *x_row, size_t row_step, size_t col_step, const int8_t *wp,
    size_t w_row_step, size_t w_col_step, int32_t rows, int32_t cols, mve_pred16_t p,
    int full, int subtract, int16x8_t zp_lanes, int32x4_t *even_out, int32x4_t *odd_out)
{
    int32x4_t even = *even_out, odd = *odd_out;
    int32_t ky, kx;
    for (ky = 0; ky < rows; ++ky) {
        const int8_t *xp = x_row;
        const int8_t *wq = wp;
#pragma GCC unroll 3
        for (kx = 0; kx < cols; ++kx) {
            int16x8_t xv = full ? vldrbq_s16(xp) : vldrbq_z_s16(xp, p);
            const int16x8_t wv = full ? vldrbq_s16(wq) : vldrbq_z_s16(wq, p);
            if (subtract) {
                xv = vsubq_s16(xv, zp_lanes);
            }
            even = vaddq_s32(even, vmullbq_int_s16(xv, wv));
            odd = vaddq_s32(odd, vmulltq_int_s16(xv, wv));
            xp += col_step;
            wq += w_col_step;
        }
        x_row += row_step;
        wp += w_row_step;
    }
    *even_out = even;
    *odd_out = odd;
}

/* Depthwise convolution, channel multiplier 1: w is [k_h][k_w][C], out_c == in_c == C.
 * Interior pixels start at bias_eff (the input zero point folded in) and walk every tap;
 * border pixels start at the layer's own bias `bias` and walk only the taps inside the
 * image with the zero point subtracted (a tap outside adds (x_zp - x_zp) w = 0). */
static inline __attribute__((always_inline)) void edgec_cm_mve_depthwise_s8(
                                             const edgec_cm_conv_geometry *g,
                                             const int8_t *x, int32_t x_zp, const int8_t *w,
                                             const int32_t *bias_eff, const int32_t *bias,
                                             const int32_t *mult,
                                             const int32_t *shift, int per_channel,
                                             int32_t y_zp, int32_t act_min, int32_t act_max,
                                             int8_t *y)
{
    /* Geometry in locals: the int8 output stores may alias *g (char types alias anything),
       which would reload every field after each store. */
    const int32_t c_all = g->in_c, in_h = g->in_h, in_w = g->in_w;
    const int32_t out_h = g->out_h, out_w = g->out_w, k_h = g->k_h, k_w = g->k_w;
    const int32_t stride_h = g->stride_h, stride_w = g->stride_w;
    const int32_t dilation_h = g->dilation_h, dilation_w = g->dilation_w;
    const int32_t pad_top = g->pad_top, pad_left = g->pad_left;
    const int16x8_t zp_lanes = vdupq_n_s16((int16_t)x_zp);
    int short_path = 1;
    int32_t oy, ox;
    for (oy = 0; oy < (per_channel ? c_all : 1); ++oy) {
        short_path &= shift[oy] <= 0;
    }
    for (oy = 0; oy < out_h; ++oy) {
        const int32_t iy0 = oy * stride_h - pad_top;
        int32_t ky0, ky1;
        edgec_cm_dw_range(iy0, dilation_h, k_h, in_h, &ky0, &ky1);
        for (ox = 0; ox < out_w; ++ox) {
            const int32_t ix0 = ox * stride_w - pad_left;
            int8_t *out = y + ((size_t)oy * (size_t)out_w + (size_t)ox) * (size_t)c_all;
            int32_t kx0, kx1;
            edgec_cm_dw_range(ix0, dilation_w, k_w, in_w, &kx0, &kx1);
            const int interior = ky0 == 0 && ky1 == k_h && kx0 == 0 && kx1 == k_w;
            const int32_t rows = ky1 > ky0 ? ky1 - ky0 : 0;
            const int32_t cols = kx1 > kx0 ? kx1 - kx0 : 0;
            const int8_t *x_first = x + ((size_t)(iy0 + ky0 * dilation_h) * (size_t)in_w +
                                         (size_t)(ix0 + kx0 * dilation_w)) * (size_t)c_all;
            const int8_t *w_first = w + (size_t)(ky0 * k_w + kx0) * (size_t)c_all;
            const size_t row_step = (size_t)dilation_h * (size_t)in_w * (size_t)c_all;
            const size_t col_step = (size_t)dilation_w * (size_t)c_all;
            const size_t w_row_step = (size_t)k_w * (size_t)c_all;
            const int32_t *b = interior ? bias_eff : bias;
            int32_t c;
            for (c = 0; c < c_all; c += 8) {
                const mve_pred16_t p = vctp16q((uint32_t)(c_all - c));
                int32x4_t even = vdupq_n_s32(0), odd = vdupq_n_s32(0);
                int32_t even_sums[4], odd_sums[4];
                int32_t j;
                if (interior && k_h == 3 && k_w == 3 && c + 8 <= c_all) {
                    edgec_cm_mve_dw_taps8(x_first + c, row_step, col_step, w_first + c,
                                          w_row_step, (size_t)c_all, 3, 3, p, 1, 0, zp_lanes,
                                          &even, &odd);
                } else if (interior) {
                    edgec_cm_mve_dw_taps8(x_first + c, row_step, col_step, w_first + c,
                                          w_row_step, (size_t)c_all, k_h, k_w, p, 0, 0,
                                          zp_lanes, &even, &odd);
                } else if (rows > 0 && cols > 0 && c + 8 <= c_all) { /* border: in-image
                                                                         taps, minus x_zp */
                    edgec_cm_mve_dw_taps8(x_first + c, row_step, col_step, w_first + c,
                                          w_row_step, (size_t)c_all, rows, cols, p, 1, 1,
                                          zp_lanes, &even, &odd);
                } else if (rows > 0 && cols > 0) {
                    edgec_cm_mve_dw_taps8(x_first + c, row_step, col_step, w_first + c,
                                          w_row_step, (size_t)c_all, rows, cols, p, 0, 1,
                                          zp_lanes, &even, &odd);
                }
                if (short_path && c + 8 <= c_all) { /* 8 channels requantised as vectors */
                    const uint32x4_t lanes = vidupq_n_u32(0, 2); /* channels 0, 2, 4, 6 */
                    int32x4_t mult_even = vdupq_n_s32(mult[0]), mult_odd = mult_even;
                    int32x4_t shift_even = vdupq_n_s32(shift[0]), shift_odd = shift_even;
                    if (per_channel) {
                        mult_even = vldrwq_gather_shifted_offset_s32(mult + c, lanes);
                        mult_odd = vldrwq_gather_shifted_offset_s32(mult + c + 1, lanes);
                        shift_even = vldrwq_gather_shifted_offset_s32(shift + c, lanes);
                        shift_odd = vldrwq_gather_shifted_offset_s32(shift + c + 1, lanes);
                    }
                    even = vaddq_s32(even, vldrwq_gather_shifted_offset_s32(b + c, lanes));
                    odd = vaddq_s32(odd,
                                    vldrwq_gather_shifted_offset_s32(b + c + 1, lanes));
                    vstrbq_scatter_offset_s32(out + c, lanes, edgec_cm_mve_requant4(
                        even, mult_even, shift_even, y_zp, act_min, act_max));
                    vstrbq_scatter_offset_s32(out + c + 1, lanes, edgec_cm_mve_requant4(
                        odd, mult_odd, shift_odd, y_zp, act_min, act_max));
                    continue;
                }
                vstrwq_s32(even_sums, even); /* channels c, c+2, c+4, c+6 */
                vstrwq_s32(odd_sums, odd);   /* channels c+1, c+3, c+5, c+7 */
                for (j = 0; j < 8 && c + j < c_all; ++j) {
                    const int32_t sum = (j & 1) ? odd_sums[j >> 1] : even_sums[j >> 1];
                    out[c + j] = edgec_cm_mve_out(b[c + j] + sum, mult, shift, c + j,
                                                  per_channel, y_zp, act_min, act_max);
                }
            }
        }
    }
}

/* One pixel's im2col row of K = k_h * k_w * in_c bytes (padding: the input zero point). */
static inline void edgec_cm_mve_im2col_row(const edgec_cm_conv_geometry *g,
                                           const int8_t *x, int32_t x_zp, int32_t pixel,
                                           int8_t *row)
{
    /* Geometry in locals: the int8 stores may alias *g. */
    const int32_t in_h = g->in_h, in_w = g->in_w, in_c = g->in_c, k_h = g->k_h, k_w = g->k_w;
    const int32_t dilation_h = g->dilation_h, dilation_w = g->dilation_w;
    const int32_t oy = pixel / g->out_w, ox = pixel % g->out_w;
    const int32_t iy0 = oy * g->stride_h - g->pad_top, ix0 = ox * g->stride_w - g->pad_left;
    int32_t ky, kx;
    for (ky = 0; ky < k_h; ++ky) {
        const int32_t iy = iy0 + ky * dilation_h;
        for (kx = 0; kx < k_w; ++kx) {
            const int32_t ix = ix0 + kx * dilation_w;
            const int outside = iy < 0 || iy >= in_h || ix < 0 || ix >= in_w;
            if (in_c == 1) { /* one channel (audio features, grey images): one byte */
                *row = outside ? (int8_t)x_zp : x[(size_t)iy * (size_t)in_w + (size_t)ix];
            } else if (outside) {
                memset(row, (int)(int8_t)x_zp, (size_t)in_c);
            } else {
                memcpy(row, x + ((size_t)iy * (size_t)in_w + (size_t)ix) * (size_t)in_c,
                       (size_t)in_c);
            }
            row += in_c;
        }
    }
}

/* General convolution, group 1: w is [out_c][k_h][k_w][in_c]; `scratch` holds 2 K bytes. */
static inline void edgec_cm_mve_conv_s8(const edgec_cm_conv_geometry *g, const int8_t *x,
                                        int32_t x_zp, const int8_t *w, const int32_t *bias_eff,
                                        const int32_t *mult, const int32_t *shift,
                                        int per_channel, int32_t y_zp, int32_t act_min,
                                        int32_t act_max, int8_t *y, int8_t *scratch)
{
    const int32_t k = g->k_h * g->k_w * g->in_c;
    const int32_t pixels = g->out_h * g->out_w;
    int32_t p;
    for (p = 0; p < pixels; p += 2) {
        const int32_t rows = p + 1 < pixels ? 2 : 1;
        edgec_cm_mve_im2col_row(g, x, x_zp, p, scratch);
        if (rows == 2) {
            edgec_cm_mve_im2col_row(g, x, x_zp, p + 1, scratch + k);
        }
        edgec_cm_mve_gemm_s8(scratch, rows, k, w, g->out_c, bias_eff, mult, shift, per_channel,
                             y_zp, act_min, act_max, y + (size_t)p * (size_t)g->out_c);
    }
}

#endif /* EDGEC_CM_MVE_H */
