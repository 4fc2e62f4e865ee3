/*
 * edgec_cm_dsp.h - int8 kernels for ARMv7E-M cores with the DSP extension (Cortex-M4, M7,
 * M33/M35P with DSP), written for edgec. Part of edgec (Apache-2.0).
 *
 * Arithmetic: the TFLite int8 scheme as edgec's int8 reference defines it (edgec/qmath.py,
 * edgec/ops/quantized.py): raw int8 inputs times per-channel int8 weights (zero point 0,
 * range [-127, 127]) accumulate in int32 on top of bias_eff[n] = bias[n] - x_zp * sum(w[n]),
 * which folds the input zero point in; then edgec_cm_requant (edgec_requant's single-rounding
 * fixed-point multiplier with a short path, edgec_cm_requant.h; zero point, activation
 * clamp). Every kernel is bit-exact with that reference:
 * the products are exact in int32 and the order of additions does not matter for integers.
 *
 * The dual 16-bit MAC: SXTB16 sign-extends bytes 0 and 2 of a word into two int16 halves,
 * SXTB16 of the word rotated by 8 bytes 1 and 3; SMLAD then adds both halves' products to an
 * int32 accumulator. Four int8 pairs thus cost 2 SMLAD plus the extensions of both operands.
 * Loop orders:
 *   GEMM (pointwise convolution over pixels, fully connected): blocks of 2 rows x 2 output
 *     channels, so each extended input word feeds 2 channels and each extended weight word
 *     2 rows: per 4 K steps 4 loads, 8 SXTB16 and 8 SMLAD for 16 MACs. Odd rows/channels
 *     and the K % 4 tail run one at a time.
 *   Depthwise (NHWC): per output pixel, 4 channels at a time over the kernel taps; one word
 *     of 4 channels per tap and operand, SMLABB/SMLATT multiply the extended halves into 4
 *     per-channel accumulators (a depthwise MAC has no partner in the same channel to pair
 *     with). Pixels whose taps all lie inside the image walk pointers without bounds
 *     checks; border pixels check each tap and use the input zero point outside.
 *   General convolution: two output pixels' receptive fields are gathered into two rows
 *     (im2col, padding filled with the input zero point, which bias_eff cancels) in a
 *     caller-provided scratch of 2 K bytes, then the GEMM kernel runs its 2 x 2 blocks.
 *
 * Requantisation parameters: `mult`/`shift` hold one value per output channel when
 * `per_channel` is non-zero, one for all channels otherwise.
 */
#ifndef EDGEC_CM_DSP_H
#define EDGEC_CM_DSP_H

#include <stdint.h>
#include <string.h>

#include <arm_acle.h>

#include "edgec_cm_requant.h"

#if !defined(__ARM_FEATURE_DSP)
#error "edgec_cm_dsp.h needs the ARMv7E-M DSP extension (-mcpu=cortex-m4, cortex-m7, ...)"
#endif

/* Four int8 values as one word (unaligned loads are allowed on ARMv7E-M). */
static inline int32_t edgec_cm_load4(const int8_t *p)
{
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* Bytes 0 and 2 of a word as two int16 halves (SXTB16). */
static inline int32_t edgec_cm_even(int32_t v)
{
    return __sxtb16(v);
}

/* Bytes 1 and 3 of a word as two int16 halves: SXTB16 with its operand rotated by 8, one
 * instruction (ACLE has no intrinsic for the rotated form, and GCC 12 does not fuse
 * __sxtb16 of a rotation). */
static inline int32_t edgec_cm_odd(int32_t v)
{
    int32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(v));
    return r;
}

static inline int8_t edgec_cm_out(int32_t acc, const int32_t *mult, const int32_t *shift,
                                  int32_t n, int per_channel, int32_t y_zp, int32_t act_min,
                                  int32_t act_max)
{
    const int32_t c = per_channel ? n : 0;
    return (int8_t)edgec_cm_requant(acc, mult[c], (int)shift[c], y_zp, act_min, act_max);
}

/* Dot product of one row with one weight row (the leftovers of the 2x2 blocks). */
static inline int32_t edgec_cm_dot_s8(const int8_t *x, const int8_t *w, int32_t k, int32_t acc)
{
    int32_t i = 0;
    for (; i + 4 <= k; i += 4) {
        const int32_t xv = edgec_cm_load4(x + i);
        const int32_t wv = edgec_cm_load4(w + i);
        acc = __smlad(edgec_cm_even(xv), edgec_cm_even(wv), acc);
        acc = __smlad(edgec_cm_odd(xv), edgec_cm_odd(wv), acc);
    }
    for (; i < k; ++i) {
        acc += (int32_t)x[i] * (int32_t)w[i];
    }
    return acc;
}

/* The 2 x 2 block's K loop (whole groups of 4): sums = {row0.ch0, row1.ch0, row0.ch1,
 * row1.ch1} += the dot products of rows x0, x0 + k with weight rows w0, w0 + k. Its own
 * function, so that the GEMM's loop invariants (output pointers, requantisation
 * parameters) do not compete for registers with its 14 live values (4 sums, 4 extended
 * inputs, a weight word and its half, 2 pointers, k, the end): GCC 12 spills inside the
 * loop otherwise. */
static __attribute__((noinline)) void edgec_cm_block2x2(const int8_t *x0, const int8_t *w0,
                                                        int32_t k, int32_t *sums)
{
    const int8_t *const x_end = x0 + (k - k % 4);
    int32_t a00 = sums[0], a10 = sums[1], a01 = sums[2], a11 = sums[3];
#pragma GCC unroll 2
    while (x0 < x_end) {
        const int32_t xa = edgec_cm_load4(x0);
        const int32_t xb = edgec_cm_load4(x0 + k);
        const int32_t xa_even = edgec_cm_even(xa), xa_odd = edgec_cm_odd(xa);
        const int32_t xb_even = edgec_cm_even(xb), xb_odd = edgec_cm_odd(xb);
        int32_t wv = edgec_cm_load4(w0);
        int32_t wh = edgec_cm_even(wv);
        a00 = __smlad(xa_even, wh, a00);
        a10 = __smlad(xb_even, wh, a10);
        wh = edgec_cm_odd(wv);
        a00 = __smlad(xa_odd, wh, a00);
        a10 = __smlad(xb_odd, wh, a10);
        wv = edgec_cm_load4(w0 + k);
        wh = edgec_cm_even(wv);
        a01 = __smlad(xa_even, wh, a01);
        a11 = __smlad(xb_even, wh, a11);
        wh = edgec_cm_odd(wv);
        a01 = __smlad(xa_odd, wh, a01);
        a11 = __smlad(xb_odd, wh, a11);
        x0 += 4;
        w0 += 4;
    }
    sums[0] = a00;
    sums[1] = a10;
    sums[2] = a01;
    sums[3] = a11;
}

/* y[r][n] = requant(bias_eff[n] + sum_k x[r][k] * w[n][k]) for r < rows, n < n_out. */
static inline void edgec_cm_gemm_s8(const int8_t *x, int32_t rows, int32_t k,
                                    const int8_t *w, int32_t n_out, const int32_t *bias_eff,
                                    const int32_t *mult, const int32_t *shift, int per_channel,
                                    int32_t y_zp, int32_t act_min, int32_t act_max, int8_t *y)
{
    int32_t r = 0;
    for (; r + 2 <= rows; r += 2) {
        const int8_t *x0 = x + (size_t)r * (size_t)k;
        const int8_t *x1 = x0 + k;
        int8_t *y0 = y + (size_t)r * (size_t)n_out;
        int8_t *y1 = y0 + n_out;
        int32_t n = 0;
        for (; n + 2 <= n_out; n += 2) {
            const int8_t *w0 = w + (size_t)n * (size_t)k;
            const int8_t *w1 = w0 + k;
            int32_t sums[4];
            int32_t a00, a01, a10, a11;
            int32_t i = k - k % 4;
            sums[0] = sums[1] = bias_eff[n];
            sums[2] = sums[3] = bias_eff[n + 1];
            edgec_cm_block2x2(x0, w0, k, sums);
            a00 = sums[0];
            a10 = sums[1];
            a01 = sums[2];
            a11 = sums[3];
            for (; i < k; ++i) {
                a00 += (int32_t)x0[i] * (int32_t)w0[i];
                a01 += (int32_t)x0[i] * (int32_t)w1[i];
                a10 += (int32_t)x1[i] * (int32_t)w0[i];
                a11 += (int32_t)x1[i] * (int32_t)w1[i];
            }
            y0[n] = edgec_cm_out(a00, mult, shift, n, per_channel, y_zp, act_min, act_max);
            y0[n + 1] = edgec_cm_out(a01, mult, shift, n + 1, per_channel, y_zp, act_min,
                                     act_max);
            y1[n] = edgec_cm_out(a10, mult, shift, n, per_channel, y_zp, act_min, act_max);
            y1[n + 1] = edgec_cm_out(a11, mult, shift, n + 1, per_channel, y_zp, act_min,
                                     act_max);
        }
        if (n < n_out) { /* an odd channel count: the last channel alone */
            const int8_t *w0 = w + (size_t)n * (size_t)k;
            y0[n] = edgec_cm_out(edgec_cm_dot_s8(x0, w0, k, bias_eff[n]), mult, shift, n,
                                 per_channel, y_zp, act_min, act_max);
            y1[n] = edgec_cm_out(edgec_cm_dot_s8(x1, w0, k, bias_eff[n]), mult, shift, n,
                                 per_channel, y_zp, act_min, act_max);
        }
    }
    if (r < rows) { /* an odd row count: the last row alone */
        const int8_t *x0 = x + (size_t)r * (size_t)k;
        int8_t *y0 = y + (size_t)r * (size_t)n_out;
        int32_t n;
        for (n = 0; n < n_out; ++n) {
            y0[n] = edgec_cm_out(edgec_cm_dot_s8(x0, w + (size_t)n * (size_t)k, k, bias_eff[n]),
                                 mult, shift, n, per_channel, y_zp, act_min, act_max);
        }
    }
}

/* Geometry of a 2-D NHWC convolution (batch 1; callers loop over the batch). */
typedef struct edgec_cm_conv_geometry {
    int32_t in_h, in_w, in_c;
    int32_t out_h, out_w, out_c;
    int32_t k_h, k_w;
    int32_t stride_h, stride_w;
    int32_t dilation_h, dilation_w;
    int32_t pad_top, pad_left;
} edgec_cm_conv_geometry;

/* Depthwise convolution, channel multiplier 1: w is [k_h][k_w][C], out_c == in_c == C. */
static inline void edgec_cm_depthwise_s8(const edgec_cm_conv_geometry *g, const int8_t *x,
                                         int32_t x_zp, const int8_t *w,
                                         const int32_t *bias_eff, const int32_t *mult,
                                         const int32_t *shift, int per_channel, int32_t y_zp,
                                         int32_t act_min, int32_t act_max, int8_t *y)
{
    /* Geometry in locals: the int8 output stores may alias *g (char types alias anything),
       which would reload every field after each store. */
    const int32_t c_all = g->in_c, in_h = g->in_h, in_w = g->in_w;
    const int32_t out_h = g->out_h, out_w = g->out_w, k_h = g->k_h, k_w = g->k_w;
    const int32_t stride_h = g->stride_h, stride_w = g->stride_w;
    const int32_t dilation_h = g->dilation_h, dilation_w = g->dilation_w;
    const int32_t pad_top = g->pad_top, pad_left = g->pad_left;
    int32_t oy, ox;
    for (oy = 0; oy < out_h; ++oy) {
        const int32_t iy0 = oy * stride_h - pad_top;
        for (ox = 0; ox < out_w; ++ox) {
            const int32_t ix0 = ox * stride_w - pad_left;
            int8_t *out = y + ((size_t)oy * (size_t)out_w + (size_t)ox) * (size_t)c_all;
            /* Taps outside the image read the zero point (bias_eff counted them as x_zp). */
            const int32_t c_blocks = c_all - c_all % 4;
            const int interior = iy0 >= 0 && ix0 >= 0 && iy0 + (k_h - 1) * dilation_h < in_h &&
                                 ix0 + (k_w - 1) * dilation_w < in_w;
            int32_t c = 0;
            if (interior) { /* every tap inside the image: no bounds checks, pointer steps */
                const int8_t *x_pixel = x + ((size_t)iy0 * (size_t)in_w + (size_t)ix0) *
                                                (size_t)c_all;
                const size_t row_step = (size_t)dilation_h * (size_t)in_w * (size_t)c_all;
                const size_t col_step = (size_t)dilation_w * (size_t)c_all;
                for (; c < c_blocks; c += 4) {
                    int32_t a0 = bias_eff[c], a1 = bias_eff[c + 1];
                    int32_t a2 = bias_eff[c + 2], a3 = bias_eff[c + 3];
                    const int8_t *wp = w + c;
                    const int8_t *x_row = x_pixel + c;
                    int32_t ky, kx;
                    for (ky = 0; ky < k_h; ++ky) {
                        const int8_t *xp = x_row;
                        for (kx = 0; kx < k_w; ++kx) {
                            const int32_t wv = edgec_cm_load4(wp);
                            const int32_t xv = edgec_cm_load4(xp);
                            const int32_t w_even = edgec_cm_even(wv);
                            const int32_t x_even = edgec_cm_even(xv);
                            const int32_t w_odd = edgec_cm_odd(wv);
                            const int32_t x_odd = edgec_cm_odd(xv);
                            a0 = __smlabb(x_even, w_even, a0);
                            a2 = __smlatt(x_even, w_even, a2);
                            a1 = __smlabb(x_odd, w_odd, a1);
                            a3 = __smlatt(x_odd, w_odd, a3);
                            wp += c_all;
                            xp += col_step;
                        }
                        x_row += row_step;
                    }
                    out[c] = edgec_cm_out(a0, mult, shift, c, per_channel, y_zp, act_min,
                                          act_max);
                    out[c + 1] = edgec_cm_out(a1, mult, shift, c + 1, per_channel, y_zp, act_min,
                                              act_max);
                    out[c + 2] = edgec_cm_out(a2, mult, shift, c + 2, per_channel, y_zp, act_min,
                                              act_max);
                    out[c + 3] = edgec_cm_out(a3, mult, shift, c + 3, per_channel, y_zp, act_min,
                                              act_max);
                }
            }
            for (; c < c_blocks; c += 4) { /* border pixels: taps outside read x_zp */
                int32_t a0 = bias_eff[c], a1 = bias_eff[c + 1];
                int32_t a2 = bias_eff[c + 2], a3 = bias_eff[c + 3];
                int32_t ky, kx;
                for (ky = 0; ky < k_h; ++ky) {
                    const int32_t iy = iy0 + ky * dilation_h;
                    for (kx = 0; kx < k_w; ++kx) {
                        const int32_t ix = ix0 + kx * dilation_w;
                        const int8_t *wp = w + ((size_t)ky * (size_t)k_w + (size_t)kx)
                                               * (size_t)c_all + (size_t)c;
                        const int32_t wv = edgec_cm_load4(wp);
                        const int32_t w_even = edgec_cm_even(wv);
                        const int32_t w_odd = edgec_cm_odd(wv);
                        int32_t x_even, x_odd;
                        if (iy < 0 || iy >= in_h || ix < 0 || ix >= in_w) {
                            x_even = x_odd = (int32_t)(((uint32_t)x_zp & 0xFFFFu) |
                                                       ((uint32_t)x_zp << 16));
                        } else {
                            const int32_t xv = edgec_cm_load4(
                                x + ((size_t)iy * (size_t)in_w + (size_t)ix) *
                                        (size_t)c_all + (size_t)c);
                            x_even = edgec_cm_even(xv);
                            x_odd = edgec_cm_odd(xv);
                        }
                        a0 = __smlabb(x_even, w_even, a0);
                        a2 = __smlatt(x_even, w_even, a2);
                        a1 = __smlabb(x_odd, w_odd, a1);
                        a3 = __smlatt(x_odd, w_odd, a3);
                    }
                }
                out[c] = edgec_cm_out(a0, mult, shift, c, per_channel, y_zp, act_min, act_max);
                out[c + 1] = edgec_cm_out(a1, mult, shift, c + 1, per_channel, y_zp, act_min,
                                          act_max);
                out[c + 2] = edgec_cm_out(a2, mult, shift, c + 2, per_channel, y_zp, act_min,
                                          act_max);
                out[c + 3] = edgec_cm_out(a3, mult, shift, c + 3, per_channel, y_zp, act_min,
                                          act_max);
            }
            for (c = c_blocks; c < c_all; ++c) {
                int32_t acc = bias_eff[c];
                int32_t ky, kx;
                for (ky = 0; ky < k_h; ++ky) {
                    const int32_t iy = iy0 + ky * dilation_h;
                    for (kx = 0; kx < k_w; ++kx) {
                        const int32_t ix = ix0 + kx * dilation_w;
                        const int32_t xq = (iy < 0 || iy >= in_h || ix < 0 || ix >= in_w)
                            ? x_zp
                            : x[((size_t)iy * (size_t)in_w + (size_t)ix) * (size_t)c_all +
                                (size_t)c];
                        acc += xq * (int32_t)w[((size_t)ky * (size_t)k_w + (size_t)kx) *
                                               (size_t)c_all + (size_t)c];
                    }
                }
                out[c] = edgec_cm_out(acc, mult, shift, c, per_channel, y_zp, act_min, act_max);
            }
        }
    }
}

/* One pixel's receptive field as a row of K = k_h * k_w * in_c bytes (im2col); taps outside
 * the image hold the input zero point, which bias_eff cancels. */
static inline void edgec_cm_im2col_row(const edgec_cm_conv_geometry *g, const int8_t *x,
                                       int32_t x_zp, int32_t pixel, int8_t *row)
{
    const int32_t oy = pixel / g->out_w, ox = pixel % g->out_w;
    int32_t ky, kx;
    for (ky = 0; ky < g->k_h; ++ky) {
        const int32_t iy = oy * g->stride_h - g->pad_top + ky * g->dilation_h;
        for (kx = 0; kx < g->k_w; ++kx) {
            const int32_t ix = ox * g->stride_w - g->pad_left + kx * g->dilation_w;
            if (iy < 0 || iy >= g->in_h || ix < 0 || ix >= g->in_w) {
                memset(row, (int)(int8_t)x_zp, (size_t)g->in_c);
            } else {
                memcpy(row, x + ((size_t)iy * (size_t)g->in_w + (size_t)ix) * (size_t)g->in_c,
                       (size_t)g->in_c);
            }
            row += g->in_c;
        }
    }
}

/* General convolution, group 1: w is [out_c][k_h][k_w][in_c] (a GEMM weight of K =
 * k_h * k_w * in_c per channel); `scratch` holds 2 K bytes: two pixels' im2col rows, so the
 * GEMM runs its 2 x 2 blocks. */
static inline void edgec_cm_conv_s8(const edgec_cm_conv_geometry *g, const int8_t *x,
                                    int32_t x_zp, const int8_t *w, const int32_t *bias_eff,
                                    const int32_t *mult, const int32_t *shift, int per_channel,
                                    int32_t y_zp, int32_t act_min, int32_t act_max, int8_t *y,
                                    int8_t *scratch)
{
    const int32_t k = g->k_h * g->k_w * g->in_c;
    const int32_t pixels = g->out_h * g->out_w;
    int32_t p;
    for (p = 0; p < pixels; p += 2) {
        const int32_t rows = p + 1 < pixels ? 2 : 1;
        edgec_cm_im2col_row(g, x, x_zp, p, scratch);
        if (rows == 2) {
            edgec_cm_im2col_row(g, x, x_zp, p + 1, scratch + k);
        }
        edgec_cm_gemm_s8(scratch, rows, k, w, g->out_c, bias_eff, mult, shift, per_channel,
                         y_zp, act_min, act_max, y + (size_t)p * (size_t)g->out_c);
    }
}

#endif /* EDGEC_CM_DSP_H */
