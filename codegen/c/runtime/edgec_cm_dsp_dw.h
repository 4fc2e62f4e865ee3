/*
 * edgec_cm_dsp_dw.h - the int8 depthwise convolution for ARMv7E-M cores with the DSP
 * extension (Cortex-M4, M7), written for edgec. Part of edgec (Apache-2.0).
 *
 * Arithmetic, requantisation and the `flags` argument as in edgec_cm_dsp.h. Per output
 * pixel, 4 channels at a time over the kernel taps: one word of 4 input channels per tap,
 * SXTB16 into even and odd int16 halves, the weights packed at compile time as the
 * matching int16 pairs (one LDRD), SMLABB/SMLATT into 4 per-channel accumulators (a
 * depthwise MAC has no partner in its channel to pair with for SMLAD). Interior pixels of a
 * 3x3 kernel run fully unrolled; border pixels walk only the taps inside the image.
 */
#ifndef EDGEC_CM_DSP_DW_H
#define EDGEC_CM_DSP_DW_H

#include <stdint.h>

#include <arm_acle.h>

#include "edgec_cm_dsp.h"

/* The weight of channel c at tap t in the packed depthwise layout (edgec_cm_depthwise_s8). */
static inline int32_t edgec_cm_dw_weight(const int32_t *w16, int32_t tap, int32_t c_groups,
                                         int32_t c)
{
    const int32_t word = w16[((size_t)tap * (size_t)c_groups + (size_t)(c / 4)) * 2u + c % 2];
    return (c % 4) < 2 ? (int32_t)(int16_t)word : word >> 16;
}

/* One tap of 4 channels: a word of input (4 channels, SXTB16 into even and odd int16 halves;
 * `subtract`: minus the input zero point, SSUB16), the packed weight words (an LDRD), 4
 * SMLABB/SMLATT. */
#define EDGEC_CM_DW_TAP(xp, wq, subtract, zp_pair, a0, a1, a2, a3)                           \
    do {                                                                                   \
        const int32_t xv_ = edgec_cm_load4(xp);                                            \
        int32_t x_even_ = edgec_cm_even(xv_), x_odd_ = edgec_cm_odd(xv_);                  \
        const int32_t w_even_ = (wq)[0], w_odd_ = (wq)[1];                                 \
        if (subtract) {                                                                    \
            x_even_ = __ssub16(x_even_, zp_pair);                                          \
            x_odd_ = __ssub16(x_odd_, zp_pair);                                            \
        }                                                                                  \
        a0 = __smlabb(x_even_, w_even_, a0);                                               \
        a2 = __smlatt(x_even_, w_even_, a2);                                               \
        a1 = __smlabb(x_odd_, w_odd_, a1);                                                 \
        a3 = __smlatt(x_odd_, w_odd_, a3);                                                 \
    } while (0)

/* 4 channels of one output pixel over `rows` x `cols` taps starting at x_row / wp. */
static inline __attribute__((always_inline)) void edgec_cm_dw_taps4(
    const int8_t *x_row, size_t row_step, size_t col_step, const int32_t *wp,
    size_t w_row_step, size_t tap_step, int32_t rows, int32_t cols, int subtract,
    int32_t zp_pair, int32_t *sums)
{
    int32_t a0 = sums[0], a1 = sums[1], a2 = sums[2], a3 = sums[3];
    int32_t ky, kx;
    for (ky = 0; ky < rows; ++ky) {
        const int8_t *xp = x_row;
        const int32_t *wq = wp;
#pragma GCC unroll 3
        for (kx = 0; kx < cols; ++kx) {
            EDGEC_CM_DW_TAP(xp, wq, subtract, zp_pair, a0, a1, a2, a3);
            wq += tap_step;
            xp += col_step;
        }
        x_row += row_step;
        wp += w_row_step;
    }
    sums[0] = a0;
    sums[1] = a1;
    sums[2] = a2;
    sums[3] = a3;
}

/* edgec_cm_dw_taps4 for an interior pixel of a 3 x 3 kernel, unrolled: 9 taps of 8
 * instructions for 36 MACs. */
static inline __attribute__((always_inline)) void edgec_cm_dw_taps4_3x3(
    const int8_t *x_row, size_t row_step, size_t col_step, const int32_t *wp,
    size_t tap_step, int32_t *sums)
{
    int32_t a0 = sums[0], a1 = sums[1], a2 = sums[2], a3 = sums[3];
    int32_t ky;
#pragma GCC unroll 3
    for (ky = 0; ky < 3; ++ky) {
        EDGEC_CM_DW_TAP(x_row, wp, 0, 0, a0, a1, a2, a3);
        EDGEC_CM_DW_TAP(x_row + col_step, wp + tap_step, 0, 0, a0, a1, a2, a3);
        EDGEC_CM_DW_TAP(x_row + 2 * col_step, wp + 2 * tap_step, 0, 0, a0, a1, a2, a3);
        x_row += row_step;
        wp += 3 * tap_step;
    }
    sums[0] = a0;
    sums[1] = a1;
    sums[2] = a2;
    sums[3] = a3;
}

/* Depthwise convolution, channel multiplier 1, out_c == in_c == C. `w16` is the weight
 * packed at compile time (codegen/c/isa/cortexm.py, pack_dsp_depthwise_weights): per tap
 * (k_h x k_w, row-major) and group of 4 channels c..c+3 the words (w[c], w[c+2]) and
 * (w[c+1], w[c+3]) of two int16 (low half first; C padded to a multiple of 4 with zeros),
 * the halves SXTB16 makes of 4 input bytes. Interior pixels start at bias_eff (the input
 * zero point folded in) and walk every tap; border pixels start at the layer's own bias
 * `bias` and walk only the taps inside the image with the zero point subtracted (a tap
 * outside adds (x_zp - x_zp) w = 0), so no tap is bounds-checked. Channels past the last
 * group of 4 run one at a time. */
static inline __attribute__((always_inline)) void edgec_cm_depthwise_s8(
                                         const edgec_cm_conv_geometry *g, const int8_t *x,
                                         int32_t x_zp, const int32_t *w16,
                                         const int32_t *bias_eff, const int32_t *bias,
                                         const int32_t *mult, const int32_t *shift,
                                         int per_channel, int32_t y_zp, int32_t act_min,
                                         int32_t act_max, int8_t *y)
{
    /* Geometry in locals: the int8 output stores may alias *g (char types alias anything),
       which would reload every field after each store. */
    const int32_t c_all = g->in_c, in_h = g->in_h, in_w = g->in_w;
    const int32_t out_h = g->out_h, out_w = g->out_w, k_h = g->k_h, k_w = g->k_w;
    const int32_t stride_h = g->stride_h, stride_w = g->stride_w;
    const int32_t dilation_h = g->dilation_h, dilation_w = g->dilation_w;
    const int32_t pad_top = g->pad_top, pad_left = g->pad_left;
    const int32_t c_groups = (c_all + 3) / 4, c_blocks = c_all - c_all % 4;
    const size_t tap_step = 2u * (size_t)c_groups, w_row_step = (size_t)k_w * tap_step;
    const size_t row_step = (size_t)dilation_h * (size_t)in_w * (size_t)c_all;
    const size_t col_step = (size_t)dilation_w * (size_t)c_all;
    const int32_t zp_pair = (int32_t)(((uint32_t)x_zp & 0xFFFFu) | ((uint32_t)x_zp << 16));
    const int fast = (per_channel & EDGEC_CM_FAST_SHIFTS) || edgec_cm_dsp_fast_shifts(
        shift, (per_channel & EDGEC_CM_PER_CHANNEL) ? c_all : 1);
    const int acc30 = (per_channel & EDGEC_CM_ACC30) != 0;
    const int full_range = act_min == -128 && act_max == 127;
    const int32_t step = (per_channel & EDGEC_CM_PER_CHANNEL) ? 1 : 0;
    int32_t oy, ox;
    for (oy = 0; oy < out_h; ++oy) {
        const int32_t iy0 = oy * stride_h - pad_top;
        int32_t ky0, ky1;
        edgec_cm_dw_range(iy0, dilation_h, k_h, in_h, &ky0, &ky1);
        for (ox = 0; ox < out_w; ++ox) {
            const int32_t ix0 = ox * stride_w - pad_left;
            int8_t *out = y + ((size_t)oy * (size_t)out_w + (size_t)ox) * (size_t)c_all;
            int32_t kx0, kx1, c;
            edgec_cm_dw_range(ix0, dilation_w, k_w, in_w, &kx0, &kx1);
            {
                const int interior = ky0 == 0 && ky1 == k_h && kx0 == 0 && kx1 == k_w;
                const int32_t rows = ky1 > ky0 ? ky1 - ky0 : 0;
                const int32_t cols = kx1 > kx0 ? kx1 - kx0 : 0;
                const int8_t *x_first = x + ((size_t)(iy0 + ky0 * dilation_h) * (size_t)in_w +
                                             (size_t)(ix0 + kx0 * dilation_w)) *
                                                (size_t)c_all;
                const int32_t *w_first = w16 + (size_t)(ky0 * k_w + kx0) * tap_step;
                for (c = 0; c < c_blocks; c += 4) {
                    const int32_t *wp = w_first + (size_t)(c / 4) * 2u;
                    const int32_t *b = interior ? bias_eff : bias;
                    int32_t sums[4];
                    int32_t j;
                    sums[0] = b[c];
                    sums[1] = b[c + 1];
                    sums[2] = b[c + 2];
                    sums[3] = b[c + 3];
                    if (interior && k_h == 3 && k_w == 3) {
                        edgec_cm_dw_taps4_3x3(x_first + c, row_step, col_step, wp, tap_step,
                                              sums);
                    } else if (interior) {
                        edgec_cm_dw_taps4(x_first + c, row_step, col_step, wp, w_row_step,
                                          tap_step, k_h, k_w, 0, zp_pair, sums);
                    } else if (cols == 3) { /* border pixels, by their column count */
                        edgec_cm_dw_taps4(x_first + c, row_step, col_step, wp, w_row_step,
                                          tap_step, rows, 3, 1, zp_pair, sums);
                    } else if (cols == 2) {
                        edgec_cm_dw_taps4(x_first + c, row_step, col_step, wp, w_row_step,
                                          tap_step, rows, 2, 1, zp_pair, sums);
                    } else if (rows > 0 && cols > 0) {
                        edgec_cm_dw_taps4(x_first + c, row_step, col_step, wp, w_row_step,
                                          tap_step, rows, cols, 1, zp_pair, sums);
                    }
                    if (fast && full_range) {
#pragma GCC unroll 4
                        for (j = 0; j < 4; ++j) {
                            out[c + j] = edgec_cm_dsp_rq(sums[j], mult[(c + j) * step],
                                                         shift[(c + j) * step], y_zp, act_min,
                                                         act_max, 1, acc30);
                        }
                    } else if (fast) {
                        for (j = 0; j < 4; ++j) {
                            out[c + j] = edgec_cm_dsp_rq(sums[j], mult[(c + j) * step],
                                                         shift[(c + j) * step], y_zp, act_min,
                                                         act_max, 0, acc30);
                        }
                    } else {
                        for (j = 0; j < 4; ++j) {
                            out[c + j] = edgec_cm_out(sums[j], mult, shift, c + j, per_channel,
                                                      y_zp, act_min, act_max);
                        }
                    }
                }
            }
            for (c = c_blocks; c < c_all; ++c) { /* the channels past the last group of 4 */
                int32_t acc = bias[c];
                int32_t ky, kx;
                for (ky = ky0; ky < ky1; ++ky) {
                    for (kx = kx0; kx < kx1; ++kx) {
                        const int32_t xq = x[((size_t)(iy0 + ky * dilation_h) * (size_t)in_w +
                                              (size_t)(ix0 + kx * dilation_w)) *
                                                 (size_t)c_all + (size_t)c];
                        acc += (xq - x_zp) * edgec_cm_dw_weight(w16, ky * k_w + kx, c_groups, c);
                    }
                }
                out[c] = edgec_cm_out(acc, mult, shift, c, per_channel, y_zp, act_min, act_max);
            }
        }
    }
}

#endif /* EDGEC_CM_DSP_DW_H */
