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
 *   Depthwise (NHWC): groups of 8 channels; the input lines of an output line (rows, or
 *     columns of a tall output) copied once into a ring (padding: the input zero point),
 *     then per tap VLDRB.S16 of the input and of the packed weights and VMULLB/VMULLT +
 *     VADD into the even and odd channels' int32 sums from bias_eff. On the short
 *     requantisation path the 8 sums are requantised as two vectors (even and odd
 *     channels: parameters gathered once per group, scattered byte stores).
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

/* The scratch words edgec_cm_mve_depthwise_s8 needs: the ring's cells (EDGEC_CM_DW_CELLS,
 * edgec_cm_conv.h) of 8 int8 channels (two words) each. */
#define EDGEC_CM_DW_SCRATCH_WORDS(out_h, out_w, k_h, k_w, s_h, s_w, d_h, d_w) \
    (2 * EDGEC_CM_DW_CELLS(out_h, out_w, k_h, k_w, s_h, s_w, d_h, d_w))

/* Input line `il` of channels c..c+7 (predicate p: fewer past the last channel) copied into
 * `ws`: per cell from position -pad_len, 8 bytes; cells and lines outside the image hold the
 * input zero point (which bias_eff cancels). */
static inline __attribute__((always_inline)) void edgec_cm_mve_dw_fill_line(
    const int8_t *x, const edgec_cm_dw_lines *l, int32_t il, int32_t c, mve_pred16_t p,
    int16x8_t zp_lanes, int8_t *ws)
{
    const int32_t width = l->width;
    const int32_t first = l->pad_len < width ? l->pad_len : width;
    const int32_t end = l->pad_len + l->in_len < width ? l->pad_len + l->in_len : width;
    const int8_t *xp;
    int32_t j;
    if (il < 0 || il >= l->in_lines) {
        for (j = 0; j < width; ++j) {
            vstrbq_s16(ws + 8 * j, zp_lanes);
        }
        return;
    }
    for (j = 0; j < first; ++j) {
        vstrbq_s16(ws + 8 * j, zp_lanes);
    }
    xp = x + (size_t)il * (size_t)l->x_line_step +
         (size_t)(first - l->pad_len) * (size_t)l->x_len_step + (size_t)c;
    for (j = first; j < end; ++j) {
        vstrbq_s16(ws + 8 * j, vldrbq_z_s16(xp, p));
        xp += l->x_len_step;
    }
    for (j = end > first ? end : first; j < width; ++j) {
        vstrbq_s16(ws + 8 * j, zp_lanes);
    }
}

/* One tap of 8 channels: the ring's input (VLDRB.S16) times the packed weights (VLDRB.S16),
 * VMULLB/VMULLT into the even and odd channels' int32 sums. The empty asm statements keep
 * each tap's loads after the previous tap and its sums in registers: GCC 12 otherwise
 * hoists the 18 loads of an unrolled 3 x 3, reassociates the additions and spills the
 * products through the stack (there are 8 vector registers). */
#define EDGEC_CM_MVE_DW_TAP(xq, wq, even, odd)                                             \
    do {                                                                                   \
        __asm__ volatile("" ::: "memory");                                                 \
        const int16x8_t xv_ = vldrbq_s16(xq);                                              \
        const int16x8_t wv_ = vldrbq_s16(wq);                                              \
        even = vaddq_s32(even, vmullbq_int_s16(xv_, wv_));                                 \
        odd = vaddq_s32(odd, vmulltq_int_s16(xv_, wv_));                                   \
        __asm__("" : "+w"(even), "+w"(odd));                                               \
    } while (0)

/* 3 taps along one ring line (dilation 1) of 8 channels: per tap VLDRB.S16 of the input
 * (cells 8 bytes apart) and of the weights (byte offsets o0, o1, o2 from wq), VMULLB +
 * VADD, VMULLT + VADD: 18 instructions for 24 MACs. Inline assembly because GCC 12 keeps
 * each tap's weight address in its own register (spilled) instead of an offset. */
#define EDGEC_CM_MVE_DW_LINE3(xq, wq, o0, o1, o2, even, odd)                                \
    do {                                                                                   \
        int16x8_t xv_, wv_;                                                                \
        int32x4_t t_;                                                                      \
        __asm__("vldrb.s16 %q[xv], [%[xp]]\n\t"                                            \
                "vldrb.s16 %q[wv], [%[wp], %[k0]]\n\t"                                     \
                "vmullb.s16 %q[t], %q[xv], %q[wv]\n\t"                                     \
                "vadd.i32 %q[e], %q[e], %q[t]\n\t"                                         \
                "vmullt.s16 %q[t], %q[xv], %q[wv]\n\t"                                     \
                "vadd.i32 %q[od], %q[od], %q[t]\n\t"                                       \
                "vldrb.s16 %q[xv], [%[xp], #8]\n\t"                                        \
                "vldrb.s16 %q[wv], [%[wp], %[k1]]\n\t"                                     \
                "vmullb.s16 %q[t], %q[xv], %q[wv]\n\t"                                     \
                "vadd.i32 %q[e], %q[e], %q[t]\n\t"                                         \
                "vmullt.s16 %q[t], %q[xv], %q[wv]\n\t"                                     \
                "vadd.i32 %q[od], %q[od], %q[t]\n\t"                                       \
                "vldrb.s16 %q[xv], [%[xp], #16]\n\t"                                       \
                "vldrb.s16 %q[wv], [%[wp], %[k2]]\n\t"                                     \
                "vmullb.s16 %q[t], %q[xv], %q[wv]\n\t"                                     \
                "vadd.i32 %q[e], %q[e], %q[t]\n\t"                                         \
                "vmullt.s16 %q[t], %q[xv], %q[wv]\n\t"                                     \
                "vadd.i32 %q[od], %q[od], %q[t]"                                           \
                : [e] "+w"(even), [od] "+w"(odd), [xv] "=&w"(xv_), [wv] "=&w"(wv_),        \
                  [t] "=&w"(t_)                                                            \
                : [xp] "r"(xq), [wp] "r"(wq), [k0] "I"(o0), [k1] "I"(o1), [k2] "I"(o2)     \
                : "memory");                                                               \
    } while (0)

/* Depthwise convolution, channel multiplier 1, out_c == in_c == C. `w8` is the weight
 * packed at compile time (codegen/c/isa/cortexm.py, pack_mve_depthwise_weights): per group
 * of 8 channels and tap (k_h x k_w, row-major) 8 bytes, C padded to a multiple of 8 with
 * zeros. Groups of 8 channels outermost, then output lines (rows, or columns when the
 * output is taller than wide: edgec_cm_dw_lines_of); the input lines an output line needs
 * are copied once into a ring in `scratch` (padding: the input zero point; with stride 1
 * one new line per output line), so every output pixel is the same walk over all taps
 * (3 x 3 with dilation 1 unrolled) from bias_eff (`bias`, the layer's own bias, is not
 * read). On the short requantisation path the 8 sums are requantised as two vectors (even
 * and odd channels, their parameters gathered once per group; scattered byte stores).
 * `scratch` holds EDGEC_CM_DW_SCRATCH_WORDS(out_h, out_w, k_h, k_w, stride_h, stride_w,
 * dilation_h, dilation_w) words. */
static inline __attribute__((always_inline)) void edgec_cm_mve_depthwise_s8(
                                             const edgec_cm_conv_geometry *g,
                                             const int8_t *x, int32_t x_zp, const int8_t *w8,
                                             const int32_t *bias_eff, const int32_t *bias,
                                             const int32_t *mult,
                                             const int32_t *shift, int per_channel,
                                             int32_t y_zp, int32_t act_min, int32_t act_max,
                                             int8_t *y, int32_t *scratch)
{
    /* Geometry in locals: the int8 output stores may alias *g (char types alias anything),
       which would reload every field after each store. */
    const edgec_cm_dw_lines l = edgec_cm_dw_lines_of(g);
    const int32_t c_all = g->in_c, taps = g->k_h * g->k_w;
    const int32_t span = l.span, line_bytes = 8 * l.width;
    const int16x8_t zp_lanes = vdupq_n_s16((int16_t)x_zp);
    const uint32x4_t lanes = vidupq_n_u32(0, 2); /* channels 0, 2, 4, 6 of a group */
    const int unrolled = l.k_line == 3 && l.k_len == 3 && l.dil_line == 1 && l.dil_len == 1;
    const int32_t w_across = 8 * l.tap_line, w_along = 8 * l.tap_len;
    int8_t *const ring = (int8_t *)(void *)scratch;
    int short_path = 1;
    int32_t c, i;
    (void)bias;
    for (i = 0; i < (per_channel ? c_all : 1); ++i) {
        short_path &= shift[i] <= 0;
    }
    for (c = 0; c < c_all; c += 8) {
        const int32_t n = c_all - c < 8 ? c_all - c : 8;
        const mve_pred16_t p = vctp16q((uint32_t)n);
        const mve_pred16_t p_even = vctp32q((uint32_t)(n + 1) / 2u);
        const mve_pred16_t p_odd = vctp32q((uint32_t)n / 2u);
        const int32x4_t bias_even = vldrwq_gather_shifted_offset_z_s32(bias_eff + c, lanes,
                                                                       p_even);
        const int32x4_t bias_odd = vldrwq_gather_shifted_offset_z_s32(bias_eff + c + 1, lanes,
                                                                      p_odd);
        int32x4_t mult_even = vdupq_n_s32(mult[0]), mult_odd = mult_even;
        int32x4_t shift_even = vdupq_n_s32(shift[0]), shift_odd = shift_even;
        const int8_t *const wg = w8 + (size_t)c * (size_t)taps;
        int32_t ol, op, next_line = 0;
        if (per_channel) {
            mult_even = vldrwq_gather_shifted_offset_z_s32(mult + c, lanes, p_even);
            mult_odd = vldrwq_gather_shifted_offset_z_s32(mult + c + 1, lanes, p_odd);
            shift_even = vldrwq_gather_shifted_offset_z_s32(shift + c, lanes, p_even);
            shift_odd = vldrwq_gather_shifted_offset_z_s32(shift + c + 1, lanes, p_odd);
        }
        for (ol = 0; ol < l.out_lines; ++ol) {
            const int32_t start = ol * l.stride_line; /* padded line of the first tap */
            const int8_t *r0, *r1, *r2;
            int32_t line;
            for (line = start > next_line ? start : next_line; line < start + span; ++line) {
                edgec_cm_mve_dw_fill_line(x, &l, line - l.pad_line, c, p, zp_lanes,
                                          ring + (size_t)(line % span) * (size_t)line_bytes);
            }
            next_line = start + span;
            r0 = ring + (size_t)(start % span) * (size_t)line_bytes;
            r1 = ring + (size_t)((start + 1) % span) * (size_t)line_bytes;
            r2 = ring + (size_t)((start + 2) % span) * (size_t)line_bytes;
            for (op = 0; op < l.out_len; ++op) {
                const int32_t cell = 8 * op * l.stride_len;
                int8_t *out = y + (size_t)ol * (size_t)l.y_line_step +
                              (size_t)op * (size_t)l.y_len_step + (size_t)c;
                int32x4_t even = bias_even, odd = bias_odd;
                if (unrolled) {
                    EDGEC_CM_MVE_DW_LINE3(r0 + cell, wg, 0, w_along, 2 * w_along, even, odd);
                    EDGEC_CM_MVE_DW_LINE3(r1 + cell, wg, w_across, w_across + w_along,
                                          w_across + 2 * w_along, even, odd);
                    EDGEC_CM_MVE_DW_LINE3(r2 + cell, wg, 2 * w_across, 2 * w_across + w_along,
                                          2 * w_across + 2 * w_along, even, odd);
                } else {
                    int32_t kl, kp;
                    for (kl = 0; kl < l.k_line; ++kl) {
                        const int8_t *xq = ring + (size_t)((start + kl * l.dil_line) % span) *
                                                      (size_t)line_bytes + cell;
                        const int8_t *wq = wg + 8 * kl * l.tap_line;
                        for (kp = 0; kp < l.k_len; ++kp) {
                            EDGEC_CM_MVE_DW_TAP(xq, wq, even, odd);
                            xq += 8 * l.dil_len;
                            wq += 8 * l.tap_len;
                        }
                    }
                }
                if (short_path) {
                    vstrbq_scatter_offset_p_s32(out, lanes, edgec_cm_mve_requant4(
                        even, mult_even, shift_even, y_zp, act_min, act_max), p_even);
                    vstrbq_scatter_offset_p_s32(out + 1, lanes, edgec_cm_mve_requant4(
                        odd, mult_odd, shift_odd, y_zp, act_min, act_max), p_odd);
                } else {
                    int32_t even_sums[4], odd_sums[4], j;
                    vstrwq_s32(even_sums, even); /* channels c, c+2, c+4, c+6 */
                    vstrwq_s32(odd_sums, odd);   /* channels c+1, c+3, c+5, c+7 */
                    for (j = 0; j < n; ++j) {
                        const int32_t sum = (j & 1) ? odd_sums[j >> 1] : even_sums[j >> 1];
                        out[j] = edgec_cm_mve_out(sum, mult, shift, c + j, per_channel, y_zp,
                                                  act_min, act_max);
                    }
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
