/*
 * edgec_cm_dsp_dw.h - the int8 depthwise convolution for ARMv7E-M cores with the DSP
 * extension (Cortex-M4, M7), written for edgec. Part of edgec (Apache-2.0).
 *
 * Arithmetic, requantisation and the `flags` argument as in edgec_cm_dsp.h. Loop order:
 * groups of 4 channels outermost, then output lines (rows, or columns when the output is
 * taller than wide); the input lines an output line needs are widened once into a small
 * ring on the caller's stack (SXTB16 into even and odd int16 halves, the input zero point
 * subtracted with SSUB16, padding as zeros), so every output pixel, border or not, is the
 * same loop over its taps: per tap one LDRD of the widened input, one LDRD of the weights
 * (packed at compile time as the matching int16 pairs, the group's taps contiguous), 4
 * SMLABB/SMLATT into 4 per-channel accumulators that start at the layer's own bias (a
 * depthwise MAC has no partner in its channel for SMLAD). A 3x3 kernel with dilation 1 is
 * unrolled. With stride 1 each output line widens one new input line.
 */
#ifndef EDGEC_CM_DSP_DW_H
#define EDGEC_CM_DSP_DW_H

#include <stdint.h>

#include <arm_acle.h>

#include "edgec_cm_dsp.h"

/* The scratch words edgec_cm_depthwise_s8 needs: the ring's cells (EDGEC_CM_DW_CELLS,
 * edgec_cm_conv.h), two words (4 int16 channels) each. */
#define EDGEC_CM_DW_SCRATCH_WORDS(out_h, out_w, k_h, k_w, s_h, s_w, d_h, d_w) \
    (2 * EDGEC_CM_DW_CELLS(out_h, out_w, k_h, k_w, s_h, s_w, d_h, d_w))

/* Input line `il` of channels c..c+3 (fewer past `c_all`: the missing ones read as the zero
 * point) widened into `ws`: per cell from position -pad_len, the words {x even - zp, x odd -
 * zp} of int16 pairs; cells and lines outside the image are zeros. */
static inline __attribute__((always_inline)) void edgec_cm_dw_widen_line(
    const int8_t *x, const edgec_cm_dw_lines *l, int32_t il, int32_t c_all, int32_t c,
    int8_t zp, int32_t zp_pair, int32_t *ws)
{
    const int32_t width = l->width;
    const int32_t first = l->pad_len < width ? l->pad_len : width;
    const int32_t end = l->pad_len + l->in_len < width ? l->pad_len + l->in_len : width;
    const int8_t *p;
    int32_t j;
    if (il < 0 || il >= l->in_lines) {
        for (j = 0; j < 2 * width; ++j) {
            ws[j] = 0;
        }
        return;
    }
    for (j = 0; j < 2 * first; ++j) {
        ws[j] = 0;
    }
    p = x + (size_t)il * (size_t)l->x_line_step +
        (size_t)(first - l->pad_len) * (size_t)l->x_len_step + (size_t)c;
    if (c + 4 <= c_all) {
        for (j = first; j < end; ++j) {
            const int32_t v = edgec_cm_load4(p);
            ws[2 * j] = __ssub16(edgec_cm_even(v), zp_pair);
            ws[2 * j + 1] = __ssub16(edgec_cm_odd(v), zp_pair);
            p += l->x_len_step;
        }
    } else {
        for (j = first; j < end; ++j) {
            int8_t t[4];
            int32_t i, v;
            for (i = 0; i < 4; ++i) {
                t[i] = c + i < c_all ? p[i] : zp;
            }
            v = edgec_cm_load4(t);
            ws[2 * j] = __ssub16(edgec_cm_even(v), zp_pair);
            ws[2 * j + 1] = __ssub16(edgec_cm_odd(v), zp_pair);
            p += l->x_len_step;
        }
    }
    for (j = 2 * (end > first ? end : first); j < 2 * width; ++j) {
        ws[j] = 0;
    }
}

/* One tap of 4 channels: the widened input pair and the weight pair (int16 halves), 4
 * SMLABB/SMLATT. */
#define EDGEC_CM_DW_MAC(xq, wq, a0, a1, a2, a3)                                             \
    do {                                                                                   \
        const int32_t xe_ = (xq)[0], xo_ = (xq)[1], we_ = (wq)[0], wo_ = (wq)[1];          \
        a0 = __smlabb(xe_, we_, a0);                                                       \
        a2 = __smlatt(xe_, we_, a2);                                                       \
        a1 = __smlabb(xo_, wo_, a1);                                                       \
        a3 = __smlatt(xo_, wo_, a3);                                                       \
    } while (0)

/* 3 taps along one ring line (dilation 1) of 4 channels: per tap one LDRD of the widened
 * input (cells 8 bytes apart), one LDRD of the weights (byte offsets o0, o1, o2 from wq), 4
 * SMLABB/SMLATT: 18 instructions for 12 MACs. Inline assembly because GCC 12 splits the
 * 64-bit loads and moves the group's weights through the stack. */
#if defined(__OPTIMIZE__)
#define EDGEC_CM_DW_LINE3(xq, wq, o0, o1, o2, a0, a1, a2, a3)                               \
    do {                                                                                   \
        int32_t xe_, xo_, we_, wo_;                                                        \
        __asm__("ldrd %[xe], %[xo], [%[xp]]\n\t"                                           \
                "ldrd %[we], %[wo], [%[wp], %[k0]]\n\t"                                    \
                "smlabb %[c0], %[xe], %[we], %[c0]\n\t"                                    \
                "smlatt %[c2], %[xe], %[we], %[c2]\n\t"                                    \
                "smlabb %[c1], %[xo], %[wo], %[c1]\n\t"                                    \
                "smlatt %[c3], %[xo], %[wo], %[c3]\n\t"                                    \
                "ldrd %[xe], %[xo], [%[xp], #8]\n\t"                                       \
                "ldrd %[we], %[wo], [%[wp], %[k1]]\n\t"                                    \
                "smlabb %[c0], %[xe], %[we], %[c0]\n\t"                                    \
                "smlatt %[c2], %[xe], %[we], %[c2]\n\t"                                    \
                "smlabb %[c1], %[xo], %[wo], %[c1]\n\t"                                    \
                "smlatt %[c3], %[xo], %[wo], %[c3]\n\t"                                    \
                "ldrd %[xe], %[xo], [%[xp], #16]\n\t"                                      \
                "ldrd %[we], %[wo], [%[wp], %[k2]]\n\t"                                    \
                "smlabb %[c0], %[xe], %[we], %[c0]\n\t"                                    \
                "smlatt %[c2], %[xe], %[we], %[c2]\n\t"                                    \
                "smlabb %[c1], %[xo], %[wo], %[c1]\n\t"                                    \
                "smlatt %[c3], %[xo], %[wo], %[c3]"                                        \
                : [c0] "+r"(a0), [c1] "+r"(a1), [c2] "+r"(a2), [c3] "+r"(a3),              \
                  [xe] "=&r"(xe_), [xo] "=&r"(xo_), [we] "=&r"(we_), [wo] "=&r"(wo_)       \
                : [xp] "r"(xq), [wp] "r"(wq), [k0] "I"(o0), [k1] "I"(o1), [k2] "I"(o2)     \
                : "memory");                                                               \
    } while (0)
#else /* -O0: the offsets are no constants there; the same arithmetic in C */
#define EDGEC_CM_DW_LINE3(xq, wq, o0, o1, o2, a0, a1, a2, a3)                               \
    do {                                                                                   \
        EDGEC_CM_DW_MAC((xq), (wq) + (o0) / 4, a0, a1, a2, a3);                            \
        EDGEC_CM_DW_MAC((xq) + 2, (wq) + (o1) / 4, a0, a1, a2, a3);                        \
        EDGEC_CM_DW_MAC((xq) + 4, (wq) + (o2) / 4, a0, a1, a2, a3);                        \
    } while (0)
#endif

/* Depthwise convolution, channel multiplier 1, out_c == in_c == C. `w16` is the weight
 * packed at compile time (codegen/c/isa/cortexm.py, pack_dsp_depthwise_weights): per group
 * of 4 channels c..c+3 and tap (k_h x k_w, row-major) the words (w[c], w[c+2]) and
 * (w[c+1], w[c+3]) of two int16 (low half first; C padded to a multiple of 4 with zeros).
 * Groups of 4 channels outermost; for a group, the output is walked along lines (rows, or
 * columns when it is taller than wide: edgec_cm_dw_lines_of) and the input lines an output
 * line needs are widened once into a ring in `scratch` (SXTB16, the input zero point
 * subtracted with SSUB16, padding as zeros; with stride 1 one new line per output line), so
 * every output pixel, border or not, is the same walk over its taps: per tap one LDRD of the
 * widened input, one LDRD of the weights, 4 SMLABB/SMLATT into 4 per-channel accumulators
 * that start at the layer's own bias `bias` (`bias_eff` is not read: the Helium kernel's
 * signature); a 3 x 3 kernel with dilation 1 is unrolled. `scratch` holds
 * EDGEC_CM_DW_SCRATCH_WORDS(out_h, out_w, k_h, k_w, stride_h, stride_w, dilation_h,
 * dilation_w) words. */
static inline __attribute__((always_inline)) void edgec_cm_depthwise_s8(
                                         const edgec_cm_conv_geometry *g, const int8_t *x,
                                         int32_t x_zp, const int32_t *w16,
                                         const int32_t *bias_eff, const int32_t *bias,
                                         const int32_t *mult, const int32_t *shift,
                                         int per_channel, int32_t y_zp, int32_t act_min,
                                         int32_t act_max, int8_t *y, int32_t *scratch)
{
    /* Geometry in locals: the int8 output stores may alias *g. */
    const edgec_cm_dw_lines l = edgec_cm_dw_lines_of(g);
    const int32_t c_all = g->in_c, taps = g->k_h * g->k_w;
    const int32_t span = l.span, line_words = 2 * l.width;
    const int32_t zp_pair = (int32_t)(((uint32_t)x_zp & 0xFFFFu) | ((uint32_t)x_zp << 16));
    const int fast = (per_channel & EDGEC_CM_FAST_SHIFTS) || edgec_cm_dsp_fast_shifts(
        shift, (per_channel & EDGEC_CM_PER_CHANNEL) ? c_all : 1);
    const int acc30 = (per_channel & EDGEC_CM_ACC30) != 0;
    const int full_range = act_min == -128 && act_max == 127;
    const int32_t step = (per_channel & EDGEC_CM_PER_CHANNEL) ? 1 : 0;
    const int unrolled = l.k_line == 3 && l.k_len == 3 && l.dil_line == 1 && l.dil_len == 1;
    /* byte offsets of the 3 weights along a line of an unrolled 3 x 3, per line */
    const int32_t w_across = 8 * l.tap_line, w_along = 8 * l.tap_len;
    int32_t *const ring = scratch;
    int32_t c;
    (void)bias_eff;
    for (c = 0; c < c_all; c += 4) {
        const int32_t *const wg = w16 + (size_t)(c / 4) * 2u * (size_t)taps;
        const int32_t n = c_all - c < 4 ? c_all - c : 4;
        int32_t ol, op, next_line = 0;
        for (ol = 0; ol < l.out_lines; ++ol) {
            const int32_t start = ol * l.stride_line; /* padded line of the first tap */
            const int32_t *r0, *r1, *r2;
            int32_t line, kl;
            /* padded lines [start, start + span) in the ring, slot line % span; lines below
               next_line are there already */
            for (line = start > next_line ? start : next_line; line < start + span; ++line) {
                edgec_cm_dw_widen_line(x, &l, line - l.pad_line, c_all, c, (int8_t)x_zp,
                                       zp_pair,
                                       ring + (size_t)(line % span) * (size_t)line_words);
            }
            next_line = start + span;
            r0 = ring + (size_t)(start % span) * (size_t)line_words;
            r1 = ring + (size_t)((start + 1) % span) * (size_t)line_words;
            r2 = ring + (size_t)((start + 2) % span) * (size_t)line_words;
            for (op = 0; op < l.out_len; ++op) {
                const int32_t cell = 2 * op * l.stride_len;
                int8_t *out = y + (size_t)ol * (size_t)l.y_line_step +
                              (size_t)op * (size_t)l.y_len_step + (size_t)c;
                int32_t a0, a1, a2, a3, sums[4], j;
                if (n == 4) {
                    a0 = bias[c];
                    a1 = bias[c + 1];
                    a2 = bias[c + 2];
                    a3 = bias[c + 3];
                } else {
                    a0 = bias[c];
                    a1 = n > 1 ? bias[c + 1] : 0;
                    a2 = n > 2 ? bias[c + 2] : 0;
                    a3 = 0;
                }
                if (unrolled) {
                    EDGEC_CM_DW_LINE3(r0 + cell, wg, 0, w_along, 2 * w_along, a0, a1, a2, a3);
                    EDGEC_CM_DW_LINE3(r1 + cell, wg, w_across, w_across + w_along,
                                      w_across + 2 * w_along, a0, a1, a2, a3);
                    EDGEC_CM_DW_LINE3(r2 + cell, wg, 2 * w_across, 2 * w_across + w_along,
                                      2 * w_across + 2 * w_along, a0, a1, a2, a3);
                } else {
                    int32_t kp;
                    for (kl = 0; kl < l.k_line; ++kl) {
                        const int32_t *xq = ring + (size_t)((start + kl * l.dil_line) % span) *
                                                       (size_t)line_words + cell;
                        const int32_t *wq = wg + 2 * kl * l.tap_line;
                        for (kp = 0; kp < l.k_len; ++kp) {
                            EDGEC_CM_DW_MAC(xq, wq, a0, a1, a2, a3);
                            xq += 2 * l.dil_len;
                            wq += 2 * l.tap_len;
                        }
                    }
                }
                sums[0] = a0;
                sums[1] = a1;
                sums[2] = a2;
                sums[3] = a3;
                if (fast && full_range && n == 4) {
#pragma GCC unroll 4
                    for (j = 0; j < 4; ++j) {
                        out[j] = edgec_cm_dsp_rq(sums[j], mult[(c + j) * step],
                                                 shift[(c + j) * step], y_zp, act_min, act_max,
                                                 1, acc30);
                    }
                } else if (fast) {
                    for (j = 0; j < n; ++j) {
                        out[j] = edgec_cm_dsp_rq(sums[j], mult[(c + j) * step],
                                                 shift[(c + j) * step], y_zp, act_min, act_max,
                                                 0, acc30);
                    }
                } else {
                    for (j = 0; j < n; ++j) {
                        out[j] = edgec_cm_out(sums[j], mult, shift, c + j, per_channel, y_zp,
                                              act_min, act_max);
                    }
                }
            }
        }
    }
}

#endif /* EDGEC_CM_DSP_DW_H */
