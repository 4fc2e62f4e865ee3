/*
 * edgec_cm_mve.h - int8 kernels for ARMv8.1-M cores with Helium (MVE: Cortex-M55, M85),
 * written for edgec. Part of edgec (Apache-2.0).
 *
 * Same arithmetic and API as edgec_cm_dsp.h (bias_eff folds the input zero point in,
 * edgec_cm_requant finishes each output; bit-exact with edgec's int8 reference), with 128-bit
 * vectors of 16 int8 lanes:
 *   GEMM (pointwise convolution, fully connected): weights packed at compile time in blocks
 *     of 4 channels x 16 K steps; blocks of 2 rows x 4 output channels: per 16 K steps 6
 *     vector loads (VLDRB) and 8 VMLADAVA, each multiplying 16 lane pairs and adding all 16
 *     products to a scalar int32 accumulator. The K % 16 tail is the same code with a tail
 *     predicate on the inputs (VCTP8: lanes past K load as 0; the packed weights are zeros
 *     there). A row pair's sums (64 channels at a time, on the stack) are then requantised 4
 *     at a time as vectors (VQRDMULH, VRSHL, VSTRB.32) on the short path.
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

/* The packed GEMM weights (codegen/c/isa/cortexm.py, pack_mve_gemm_weights) round K up to a
 * multiple of 16 and the channels up to a multiple of 4, with zeros. */
#define EDGEC_CM_MVE_K16(k) (((k) + 15) / 16 * 16)

/* Two rows' dot products with `count` channels of the packed weights `w` (from the chunk's
 * first block): sums0[n] = dot(x0, w_n), sums1[n] = dot(x1, w_n), bias not included. Blocks
 * of 2 rows x 4 channels: per 16 K steps 2 input vectors and the block's 4 weight vectors
 * (contiguous) feed 8 VMLADAVA, each multiplying 16 lane pairs and adding the 16 products
 * to a scalar (16 instructions for 128 MACs; the first 16 K steps VMLADAV, which starts the
 * sums; inline assembly with the sums pinned to even registers: GCC 12's allocation of 8
 * VMLADAVA sums shuffles them with moves and spills);
 * the K % 16 tail loads the inputs under a tail predicate (VCTP8: lanes past K load as 0),
 * the weights there are zeros. */
static inline __attribute__((always_inline)) void edgec_cm_mve_rows2_dots(const int8_t *x0,
                                                              const int8_t *x1, int32_t k,
                                                              const int8_t *w, int32_t count,
                                                              int32_t *sums0, int32_t *sums1)
{
    const int32_t chunks = k / 16, tail = k % 16;
    const mve_pred16_t p = vctp8q((uint32_t)tail);
    int32_t n;
    for (n = 0; n < count; n += 4) {
        /* the 8 sums in the even registers VMLADAVA writes, the loop's pointers in odd ones
           (r7 and r11 stay free for a frame pointer; builds that reserve r9 with -ffixed-r9
           cannot use this kernel) */
        register int32_t a00 __asm__("r0");
        register int32_t a01 __asm__("r2");
        register int32_t a02 __asm__("r4");
        register int32_t a03 __asm__("r6");
        register int32_t a10 __asm__("r8");
        register int32_t a11 __asm__("r10");
        register int32_t a12 __asm__("r12");
        register int32_t a13 __asm__("r14");
        register const int8_t *p0 __asm__("r1") = x0;
        register const int8_t *p1 __asm__("r3") = x1;
        register const int8_t *wp __asm__("r5") = w;
        register int32_t left __asm__("r9") = chunks - 1;
        if (chunks > 0) { /* per 16 K steps: 2 input and 4 weight vectors, 8 VMLADAV(A) */
            __asm__("vldrb.u8 q0, [%[xa]], #16\n\t"
                    "vldrb.u8 q1, [%[xb]], #16\n\t"
                    "vldrb.u8 q2, [%[wq]], #16\n\t"
                    "vmladav.s8 %[c00], q0, q2\n\t"
                    "vmladav.s8 %[c10], q1, q2\n\t"
                    "vldrb.u8 q2, [%[wq]], #16\n\t"
                    "vmladav.s8 %[c01], q0, q2\n\t"
                    "vmladav.s8 %[c11], q1, q2\n\t"
                    "vldrb.u8 q2, [%[wq]], #16\n\t"
                    "vmladav.s8 %[c02], q0, q2\n\t"
                    "vmladav.s8 %[c12], q1, q2\n\t"
                    "vldrb.u8 q2, [%[wq]], #16\n\t"
                    "vmladav.s8 %[c03], q0, q2\n\t"
                    "vmladav.s8 %[c13], q1, q2"
                    : [c00] "=r"(a00), [c01] "=r"(a01), [c02] "=r"(a02), [c03] "=r"(a03),
                      [c10] "=r"(a10), [c11] "=r"(a11), [c12] "=r"(a12), [c13] "=r"(a13),
                      [xa] "+r"(p0), [xb] "+r"(p1), [wq] "+r"(wp)
                    :
                    : "q0", "q1", "q2", "memory");
        } else {
            a00 = a01 = a02 = a03 = a10 = a11 = a12 = a13 = 0;
        }
        if (chunks > 1) {
            __asm__("1:\n\t"
                    "vldrb.u8 q0, [%[xa]], #16\n\t"
                    "vldrb.u8 q1, [%[xb]], #16\n\t"
                    "vldrb.u8 q2, [%[wq]], #16\n\t"
                    "vmladava.s8 %[c00], q0, q2\n\t"
                    "vmladava.s8 %[c10], q1, q2\n\t"
                    "vldrb.u8 q2, [%[wq]], #16\n\t"
                    "vmladava.s8 %[c01], q0, q2\n\t"
                    "vmladava.s8 %[c11], q1, q2\n\t"
                    "vldrb.u8 q2, [%[wq]], #16\n\t"
                    "vmladava.s8 %[c02], q0, q2\n\t"
                    "vmladava.s8 %[c12], q1, q2\n\t"
                    "vldrb.u8 q2, [%[wq]], #16\n\t"
                    "vmladava.s8 %[c03], q0, q2\n\t"
                    "vmladava.s8 %[c13], q1, q2\n\t"
                    "subs %[n], %[n], #1\n\t"
                    "bne 1b"
                    : [c00] "+r"(a00), [c01] "+r"(a01), [c02] "+r"(a02), [c03] "+r"(a03),
                      [c10] "+r"(a10), [c11] "+r"(a11), [c12] "+r"(a12), [c13] "+r"(a13),
                      [xa] "+r"(p0), [xb] "+r"(p1), [wq] "+r"(wp), [n] "+r"(left)
                    :
                    : "q0", "q1", "q2", "memory", "cc");
        }
        w = wp;
        if (tail != 0) {
            const int8x16_t u = vldrbq_z_s8(p0, p), v = vldrbq_z_s8(p1, p);
            int8x16_t wv = vldrbq_s8(w);
            a00 = vmladavaq_s8(a00, u, wv);
            a10 = vmladavaq_s8(a10, v, wv);
            wv = vldrbq_s8(w + 16);
            a01 = vmladavaq_s8(a01, u, wv);
            a11 = vmladavaq_s8(a11, v, wv);
            wv = vldrbq_s8(w + 32);
            a02 = vmladavaq_s8(a02, u, wv);
            a12 = vmladavaq_s8(a12, v, wv);
            wv = vldrbq_s8(w + 48);
            a03 = vmladavaq_s8(a03, u, wv);
            a13 = vmladavaq_s8(a13, v, wv);
            w += 64;
        }
        sums0[n] = a00;
        sums0[n + 1] = a01;
        sums0[n + 2] = a02;
        sums0[n + 3] = a03;
        sums1[n] = a10;
        sums1[n + 1] = a11;
        sums1[n + 2] = a12;
        sums1[n + 3] = a13;
    }
}

/* One row's outputs from its sums (bias not included) on the short requantisation path, 4
 * channels at a time as vectors (a predicated narrowing VSTRB.32 for the tail), or one by
 * one. */
static inline __attribute__((always_inline)) void edgec_cm_mve_requant_row(
    const int32_t *sums, int32_t count, const int32_t *bias_eff, const int32_t *mult,
    const int32_t *shift, int per_channel, int short_path, int32_t y_zp, int32_t act_min,
    int32_t act_max, int32_t n0, int8_t *y0)
{
    int32_t j;
    if (short_path) {
        for (j = 0; j + 4 <= count; j += 4) { /* whole vectors: no predicate */
            const int32x4_t mv = per_channel ? vldrwq_s32(mult + n0 + j) : vdupq_n_s32(mult[0]);
            const int32x4_t sv = per_channel ? vldrwq_s32(shift + n0 + j)
                                             : vdupq_n_s32(shift[0]);
            const int32x4_t acc = vaddq_s32(vldrwq_s32(sums + j), vldrwq_s32(bias_eff + n0 + j));
            vstrbq_s32(y0 + n0 + j, edgec_cm_mve_requant4(acc, mv, sv, y_zp, act_min, act_max));
        }
        if (j < count) {
            const mve_pred16_t p = vctp32q((uint32_t)(count - j));
            const int32x4_t mv = per_channel ? vldrwq_z_s32(mult + n0 + j, p)
                                             : vdupq_n_s32(mult[0]);
            const int32x4_t sv = per_channel ? vldrwq_z_s32(shift + n0 + j, p)
                                             : vdupq_n_s32(shift[0]);
            const int32x4_t acc = vaddq_s32(vldrwq_z_s32(sums + j, p),
                                            vldrwq_z_s32(bias_eff + n0 + j, p));
            vstrbq_p_s32(y0 + n0 + j, edgec_cm_mve_requant4(acc, mv, sv, y_zp, act_min,
                                                            act_max), p);
        }
    } else {
        for (j = 0; j < count; ++j) {
            y0[n0 + j] = edgec_cm_mve_out(bias_eff[n0 + j] + sums[j], mult, shift, n0 + j,
                                          per_channel, y_zp, act_min, act_max);
        }
    }
}

/* y[r][n] = requant(bias_eff[n] + sum_k x[r][k] * w[n][k]) for r < rows, n < n_out; `w16x4`
 * is the weight packed at compile time (codegen/c/isa/cortexm.py, pack_mve_gemm_weights):
 * channels in blocks of 4 (padded with zero channels), per block and 16 K steps (K padded
 * to a multiple of 16 with zeros) the 4 channels' 16 bytes. Per pair of rows (the last row
 * of an odd count pairs with itself) and chunk of EDGEC_CM_MVE_CHUNK channels: the dot
 * products (edgec_cm_mve_rows2_dots) into int32 sums, then each row requantised 4 channels
 * at a time as vectors (edgec_cm_mve_requant4) when every shift takes that path, one by one
 * otherwise. */
static inline __attribute__((always_inline)) void edgec_cm_mve_gemm_s8(
                                        const int8_t *x, int32_t rows, int32_t k,
                                        const int8_t *w16x4, int32_t n_out,
                                        const int32_t *bias_eff, const int32_t *mult,
                                        const int32_t *shift, int per_channel, int32_t y_zp,
                                        int32_t act_min, int32_t act_max, int8_t *y)
{
    int32_t sums0[EDGEC_CM_MVE_CHUNK], sums1[EDGEC_CM_MVE_CHUNK];
    const size_t block_bytes = 4u * (size_t)EDGEC_CM_MVE_K16(k);
    int short_path = 1;
    int32_t r, n;
    for (n = 0; n < (per_channel ? n_out : 1); ++n) {
        short_path &= shift[n] <= 0;
    }
    for (r = 0; r < rows; r += 2) {
        const int8_t *x0 = x + (size_t)r * (size_t)k;
        const int two = r + 1 < rows;
        int8_t *y0 = y + (size_t)r * (size_t)n_out;
        for (n = 0; n < n_out; n += EDGEC_CM_MVE_CHUNK) {
            const int32_t count = n_out - n < EDGEC_CM_MVE_CHUNK ? n_out - n : EDGEC_CM_MVE_CHUNK;
            edgec_cm_mve_rows2_dots(x0, two ? x0 + k : x0, k, w16x4 + (size_t)n / 4u * block_bytes,
                                    count, sums0, sums1);
            edgec_cm_mve_requant_row(sums0, count, bias_eff, mult, shift, per_channel,
                                     short_path, y_zp, act_min, act_max, n, y0);
            if (two) {
                edgec_cm_mve_requant_row(sums1, count, bias_eff, mult, shift, per_channel,
                                         short_path, y_zp, act_min, act_max, n, y0 + n_out);
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
 * each tap's weight address in its own register (spilled) instead of an offset; the widening
 * loads take a low register (r0-r7) as base, hence "l". */
#if defined(__OPTIMIZE__)
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
                : [xp] "l"(xq), [wp] "l"(wq), [k0] "I"(o0), [k1] "I"(o1), [k2] "I"(o2)     \
                : "memory");                                                               \
    } while (0)
#else /* -O0: the offsets are no constants there; the same arithmetic in C */
#define EDGEC_CM_MVE_DW_LINE3(xq, wq, o0, o1, o2, even, odd)                                \
    do {                                                                                   \
        EDGEC_CM_MVE_DW_TAP((xq), (wq) + (o0), even, odd);                                 \
        EDGEC_CM_MVE_DW_TAP((xq) + 8, (wq) + (o1), even, odd);                             \
        EDGEC_CM_MVE_DW_TAP((xq) + 16, (wq) + (o2), even, odd);                            \
    } while (0)
#endif

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

/* General convolution, group 1: w is [out_c][k_h][k_w][in_c]; `scratch` holds 2 K bytes. */
static inline __attribute__((always_inline)) void edgec_cm_mve_conv_s8(const edgec_cm_conv_geometry *g, const int8_t *x,
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
        edgec_cm_im2col_row(g, x, x_zp, p, scratch);
        if (rows == 2) {
            edgec_cm_im2col_row(g, x, x_zp, p + 1, scratch + k);
        }
        edgec_cm_mve_gemm_s8(scratch, rows, k, w, g->out_c, bias_eff, mult, shift, per_channel,
                             y_zp, act_min, act_max, y + (size_t)p * (size_t)g->out_c);
    }
}

#endif /* EDGEC_CM_MVE_H */
