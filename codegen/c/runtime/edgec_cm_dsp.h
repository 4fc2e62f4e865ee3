/*
 * edgec_cm_dsp.h - int8 kernels for ARMv7E-M cores with the DSP extension (Cortex-M4, M7,
 * M33/M35P with DSP), written for edgec. Part of edgec (Apache-2.0).
 *
 * Arithmetic: the TFLite int8 scheme as edgec's int8 reference defines it (edgec/qmath.py,
 * edgec/ops/quantized.py): raw int8 inputs times per-channel int8 weights (zero point 0,
 * range [-127, 127]) accumulate in int32 on top of bias_eff[n] = bias[n] - x_zp * sum(w[n]),
 * which folds the input zero point in; then edgec_cm_requant (edgec_requant's TFLite
 * double-rounding fixed-point multiplier, edgec_cm_requant.h; zero point, activation
 * clamp). Every kernel is bit-exact with that reference: the products are exact in int32
 * and the order of additions does not matter for integers.
 *
 * The dual 16-bit MAC: SXTB16 sign-extends bytes 0 and 2 of a word into two int16 halves,
 * SXTB16 of the word rotated by 8 bytes 1 and 3; SMLAD then adds both halves' products to an
 * int32 accumulator. Loop orders:
 *   GEMM (pointwise convolution over pixels, fully connected): weights packed at compile
 *     time as int16 pairs in blocks of 4 channels; two input rows widened once per row
 *     pair, then 2 rows x 4 channels blocks: per 2 K steps one LDRD of the rows, two of the
 *     weights and 8 SMLAD (11 instructions, 16 MACs); in the common case (edgec_cm_rq_direct)
 *     the block's 8 sums are requantised straight from the registers.
 *   General convolution: two output pixels' receptive fields are gathered into two rows
 *     (im2col, padding filled with the input zero point, which bias_eff cancels) in the
 *     caller's scratch, then the GEMM.
 *   Depthwise: edgec_cm_dsp_dw.h.
 *
 * Requantisation parameters: `mult`/`shift` hold one value per output channel when
 * `per_channel` has EDGEC_CM_PER_CHANNEL set, one for all channels otherwise; its bit
 * EDGEC_CM_ACC30 says the layer's accumulators stay below 2^30 in magnitude.
 */
#ifndef EDGEC_CM_DSP_H
#define EDGEC_CM_DSP_H

#include <stdint.h>
#include <string.h>

#include <arm_acle.h>

#include "edgec_cm_conv.h"
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

/* ---- requantisation in 32-bit steps: mirrors edgec_requant (edgec_qmath.h, TFLite's
 * double rounding) for shifts in [-31, -2]; keep it in step with that header ----
 * v = floor((acc * mult + 2^30) / 2^31) is the rounding doubling high multiply (SMULL, a
 * 64-bit add, a funnel shift); |v| < 2^31 - 1. The rounding division by 2^e (e = -shift,
 * ties away from zero) equals floor((u + 2^(e-1)) / 2^e) with u = v - [v < 0] (ties of a
 * negative v land one lower, others are unchanged), and for any integer u
 *     (u + 2^(e-1)) >> e  ==  ((u >> (e-1)) + 1) >> 1
 * (write u = A 2^(e-1) + r, 0 <= r < 2^(e-1): (A + 1)/2 + r/2^e has the floor of (A + 1)/2).
 * With e >= 2, |u >> (e-1)| <= 2^30, so the zero point folds in as ((t + 1 + 2 zp) >> 1)
 * without overflow, and one SSAT clamps to int8. Other shifts go through
 * edgec_cm_requant (the kernels check the layer's shifts once per call). */
static inline __attribute__((always_inline)) int32_t edgec_cm_dsp_scale(
    int32_t acc, int32_t mult, int32_t shift, int32_t zp_twice_plus_one, int acc30)
{
    int32_t v, t;
    if (acc30) { /* |acc| < 2^30: SMMULR(2 acc, mult) = (2 acc mult + 2^31) >> 32 is v */
        __asm__("smmulr %0, %1, %2" : "=r"(v) : "r"(acc * 2), "r"(mult));
    } else {
        v = (int32_t)(((int64_t)acc * (int64_t)mult + ((int64_t)1 << 30)) >> 31);
    }
    t = (v - (int32_t)((uint32_t)v >> 31)) >> (-shift - 1);
    return (t + zp_twice_plus_one) >> 1;
}

/* Bits of the `flags` argument of the DSP kernels: per-channel multipliers and shifts (else
 * one of each); accumulators known at compile time to stay below 2^30 in magnitude
 * (|bias| + 255 sum|w| < 2^30: the rounding doubling high multiply is then one SMMULR of
 * the doubled accumulator); shifts known to suit edgec_cm_dsp_scale (else checked per
 * call). */
#define EDGEC_CM_PER_CHANNEL 1
#define EDGEC_CM_ACC30 2
#define EDGEC_CM_FAST_SHIFTS 4 /* every shift in [-31, -2]: no check at run time */
/* Internal: the accumulators go through the stack (edgec_cm_conv_s8: next to its im2col the
 * unrolled loop and the requantisation from registers spill; measured on ResNet-8 and the
 * digits model, 3 to 7 % more instructions otherwise). */
#define EDGEC_CM_RQ_STACK 8

/* 1 when every shift of the layer is in [-31, -2] (edgec_cm_dsp_scale's range). */
static inline int edgec_cm_dsp_fast_shifts(const int32_t *shift, int32_t count)
{
    int32_t i;
    for (i = 0; i < count; ++i) {
        if (shift[i] > -2 || shift[i] < -31) {
            return 0;
        }
    }
    return 1;
}

static inline int8_t edgec_cm_out(int32_t acc, const int32_t *mult, const int32_t *shift,
                                  int32_t n, int per_channel, int32_t y_zp, int32_t act_min,
                                  int32_t act_max)
{
    const int32_t c = (per_channel & EDGEC_CM_PER_CHANNEL) ? n : 0;
    return (int8_t)edgec_cm_requant(acc, mult[c], (int)shift[c], y_zp, act_min, act_max);
}

/* The packed GEMM rounds K up to a multiple of 8 (zero weights): its loop takes 4 int16 pairs
 * per step. */
#define EDGEC_CM_GEMM_K_ROUND(k) (((k) + 7) / 8 * 8)

/* Scratch words edgec_cm_gemm_s8 needs for k inputs and n_out channels: two rows widened
 * to int16 pairs (EDGEC_CM_GEMM_K_ROUND(k) words) and the accumulators of a row pair for
 * up to EDGEC_CM_GEMM_CHUNK channels. */
#define EDGEC_CM_GEMM_SCRATCH_WORDS(k, n_out) \
    (EDGEC_CM_GEMM_K_ROUND(k) + 2 * (((n_out) + 3) / 4 * 4 < EDGEC_CM_GEMM_CHUNK               \
                                         ? ((n_out) + 3) / 4 * 4 : EDGEC_CM_GEMM_CHUNK))

/* Channels whose accumulators a row pair holds at a time (a multiple of 4). */
#define EDGEC_CM_GEMM_CHUNK 32

/* Two int8 rows (r1 NULL: a row of zeros) widened into int16 pairs in the order the packed
 * weights use: per 4 K steps the words {r0 even, r1 even, r0 odd, r1 odd}, "even" holding
 * bytes 0 and 2 of the group (SXTB16), "odd" bytes 1 and 3. Up to EDGEC_CM_GEMM_K_ROUND(k)
 * the tail is zeros. */
static inline void edgec_cm_widen_rows2(const int8_t *r0, const int8_t *r1, int32_t k,
                                        int32_t *xs)
{
    const int32_t k_full = k - k % 4;
    int32_t i;
    for (i = 0; i < k_full; i += 4) {
        const int32_t a = edgec_cm_load4(r0 + i);
        const int32_t b = r1 != NULL ? edgec_cm_load4(r1 + i) : 0;
        xs[0] = edgec_cm_even(a);
        xs[1] = edgec_cm_even(b);
        xs[2] = edgec_cm_odd(a);
        xs[3] = edgec_cm_odd(b);
        xs += 4;
    }
    if (i < k) {
        int8_t t0[4] = {0, 0, 0, 0}, t1[4] = {0, 0, 0, 0};
        int32_t a, b;
        memcpy(t0, r0 + i, (size_t)(k - i));
        if (r1 != NULL) {
            memcpy(t1, r1 + i, (size_t)(k - i));
        }
        a = edgec_cm_load4(t0);
        b = edgec_cm_load4(t1);
        xs[0] = edgec_cm_even(a);
        xs[1] = edgec_cm_even(b);
        xs[2] = edgec_cm_odd(a);
        xs[3] = edgec_cm_odd(b);
        xs += 4;
        i += 4;
    }
    if (i < EDGEC_CM_GEMM_K_ROUND(k)) {
        xs[0] = xs[1] = xs[2] = xs[3] = 0;
    }
}

/* One int16 pair of the row pair (one LDRD, post-incremented) against the pair of 4
 * channels (two LDRDs): 8 SMLAD, 16 MACs in 11 instructions. Inline assembly because GCC 12
 * splits 64-bit loads into single LDRs and adds pointer arithmetic; Thumb-2 LDRD takes any
 * two registers. The 14 operands take every allocatable core register. */
#if defined(__OPTIMIZE__)
#define EDGEC_CM_SMLAD_2X4(xp, wp, a)                                                      \
    do {                                                                                   \
        int32_t x0_, x1_, w0_, w1_;                                                        \
        __asm__("ldrd %[x0], %[x1], [%[xq]], #8\n\t"                                       \
                "ldrd %[w0], %[w1], [%[wq]], #16\n\t"                                      \
                "smlad %[c00], %[x0], %[w0], %[c00]\n\t"                                   \
                "smlad %[c10], %[x1], %[w0], %[c10]\n\t"                                   \
                "smlad %[c01], %[x0], %[w1], %[c01]\n\t"                                   \
                "smlad %[c11], %[x1], %[w1], %[c11]\n\t"                                   \
                "ldrd %[w0], %[w1], [%[wq], #-8]\n\t"                                      \
                "smlad %[c02], %[x0], %[w0], %[c02]\n\t"                                   \
                "smlad %[c12], %[x1], %[w0], %[c12]\n\t"                                   \
                "smlad %[c03], %[x0], %[w1], %[c03]\n\t"                                   \
                "smlad %[c13], %[x1], %[w1], %[c13]"                                       \
                : [c00] "+r"(a##00), [c10] "+r"(a##10), [c01] "+r"(a##01),                 \
                  [c11] "+r"(a##11), [c02] "+r"(a##02), [c12] "+r"(a##12),                 \
                  [c03] "+r"(a##03), [c13] "+r"(a##13), [xq] "+r"(xp), [wq] "+r"(wp),      \
                  [x0] "=&r"(x0_), [x1] "=&r"(x1_), [w0] "=&r"(w0_), [w1] "=&r"(w1_)       \
                :                                                                          \
                : "memory");                                                               \
    } while (0)
#else /* -O0: the operands would not fit the registers; the same arithmetic in C */
#define EDGEC_CM_SMLAD_2X4(xp, wp, a)                                                      \
    do {                                                                                   \
        const int32_t x0_ = (xp)[0], x1_ = (xp)[1];                                        \
        a##00 = __smlad(x0_, (wp)[0], a##00);                                              \
        a##10 = __smlad(x1_, (wp)[0], a##10);                                              \
        a##01 = __smlad(x0_, (wp)[1], a##01);                                              \
        a##11 = __smlad(x1_, (wp)[1], a##11);                                              \
        a##02 = __smlad(x0_, (wp)[2], a##02);                                              \
        a##12 = __smlad(x1_, (wp)[2], a##12);                                              \
        a##03 = __smlad(x0_, (wp)[3], a##03);                                              \
        a##13 = __smlad(x1_, (wp)[3], a##13);                                              \
        (xp) += 2;                                                                         \
        (wp) += 4;                                                                         \
    } while (0)
#endif

/* The common case of edgec_cm_gemm_s8, requantised straight from the block's registers:
 * both rows, channels a multiple of 4, fast shifts, the full int8 range, EDGEC_CM_ACC30. */
typedef struct edgec_cm_rq_direct {
    const int32_t *mult, *shift; /* from the chunk's first channel */
    int32_t step, zp2, row_stride;
    int8_t *y0;
} edgec_cm_rq_direct;

/* The row pair's K loops: for each block of 4 output channels n..n+3, acc[2n..2n+7] =
 * {row0.ch0, row1.ch0, row0.ch1, row1.ch1, ...}: bias_eff plus the dot products over
 * `pairs` int16 pairs (a multiple of 4). Per pair one LDRD of the rows' words, two LDRDs
 * of the channels' words and 8 SMLAD: 11 instructions for 16 MACs; the K loop unrolls
 * (up to 64 pairs) in the layer, where K and the channel count are constants; the
 * accumulators go through `acc` so that the requantisation's values do not compete with
 * the loop for registers. */
static inline __attribute__((always_inline)) void edgec_cm_rows2_s16(
    const int32_t *xs, const int32_t *w16, int32_t pairs, int32_t n_out,
    const int32_t *bias_eff, int32_t *acc, const edgec_cm_rq_direct *direct)
{
    const int32_t *const x_end = xs + 2 * pairs;
    int32_t n;
    for (n = 0; n < n_out; n += 4) {
        const int32_t *xp = xs;
        int32_t a00 = bias_eff[n], a10 = a00;
        int32_t a01 = n + 1 < n_out ? bias_eff[n + 1] : 0, a11 = a01;
        int32_t a02 = n + 2 < n_out ? bias_eff[n + 2] : 0, a12 = a02;
        int32_t a03 = n + 3 < n_out ? bias_eff[n + 3] : 0, a13 = a03;
        if (direct != NULL) { /* unrolled for the layer's constant K */
            int32_t i;
#pragma GCC unroll 16
            for (i = 0; i < pairs; i += 4) {
                EDGEC_CM_SMLAD_2X4(xp, w16, a);
                EDGEC_CM_SMLAD_2X4(xp, w16, a);
                EDGEC_CM_SMLAD_2X4(xp, w16, a);
                EDGEC_CM_SMLAD_2X4(xp, w16, a);
            }
        } else {
            do {
                EDGEC_CM_SMLAD_2X4(xp, w16, a);
                EDGEC_CM_SMLAD_2X4(xp, w16, a);
                EDGEC_CM_SMLAD_2X4(xp, w16, a);
                EDGEC_CM_SMLAD_2X4(xp, w16, a);
            } while (xp < x_end);
        }
        if (direct != NULL) { /* requantised here, from the registers (module comment) */
            const int32_t *m = direct->mult + n * direct->step;
            const int32_t *e = direct->shift + n * direct->step;
            const int32_t zp2 = direct->zp2, st = direct->step;
            int8_t *y0 = direct->y0 + n, *y1 = direct->y0 + direct->row_stride + n;
            y0[0] = (int8_t)__ssat(edgec_cm_dsp_scale(a00, m[0], e[0], zp2, 1), 8);
            y1[0] = (int8_t)__ssat(edgec_cm_dsp_scale(a10, m[0], e[0], zp2, 1), 8);
            y0[1] = (int8_t)__ssat(edgec_cm_dsp_scale(a01, m[st], e[st], zp2, 1), 8);
            y1[1] = (int8_t)__ssat(edgec_cm_dsp_scale(a11, m[st], e[st], zp2, 1), 8);
            y0[2] = (int8_t)__ssat(edgec_cm_dsp_scale(a02, m[2 * st], e[2 * st], zp2, 1), 8);
            y1[2] = (int8_t)__ssat(edgec_cm_dsp_scale(a12, m[2 * st], e[2 * st], zp2, 1), 8);
            y0[3] = (int8_t)__ssat(edgec_cm_dsp_scale(a03, m[3 * st], e[3 * st], zp2, 1), 8);
            y1[3] = (int8_t)__ssat(edgec_cm_dsp_scale(a13, m[3 * st], e[3 * st], zp2, 1), 8);
            continue;
        }
        acc[0] = a00;
        acc[1] = a10;
        acc[2] = a01;
        acc[3] = a11;
        acc[4] = a02;
        acc[5] = a12;
        acc[6] = a03;
        acc[7] = a13;
        acc += 8;
    }
}

/* The row pair's outputs from the accumulators (acc + 2 n: channel n's row 0 and row 1;
 * bias included) on edgec_cm_dsp_scale's path; `full_range`: the clamp is [-128, 127], one
 * SSAT; `two`: both rows; `acc30`: EDGEC_CM_ACC30 (inlined with constants for the common
 * cases, so that the tests leave the loop). */
static inline __attribute__((always_inline)) void edgec_cm_requant_rows2(
    const int32_t *acc, int32_t n_out, const int32_t *mult, const int32_t *shift,
    int per_channel, int32_t y_zp, int32_t act_min, int32_t act_max, int full_range,
    int two, int acc30, int32_t row_stride, int8_t *y0)
{
    const int32_t step = (per_channel & EDGEC_CM_PER_CHANNEL) ? 1 : 0;
    const int32_t zp2 = 2 * y_zp + 1;
    int32_t n;
    for (n = 0; n < n_out; ++n) {
        int32_t v0 = __ssat(edgec_cm_dsp_scale(acc[0], *mult, *shift, zp2, acc30), 8);
        if (!full_range) {
            v0 = v0 < act_min ? act_min : (v0 > act_max ? act_max : v0);
        }
        y0[n] = (int8_t)v0;
        if (two) {
            int32_t v1 = __ssat(edgec_cm_dsp_scale(acc[1], *mult, *shift, zp2, acc30), 8);
            if (!full_range) {
                v1 = v1 < act_min ? act_min : (v1 > act_max ? act_max : v1);
            }
            y0[row_stride + n] = (int8_t)v1;
        }
        acc += 2;
        mult += step;
        shift += step;
    }
}

/* y[r][n] = requant(bias_eff[n] + sum_k x[r][k] * w[n][k]) for r < rows, n < n_out.
 * `w16` is the weight packed at compile time (codegen/c/isa/cortexm.py,
 * pack_dsp_gemm_weights): words of two int16 (low half first), channels in blocks of 4
 * (padded with zero channels), K rounded up to 8 with zeros, per 4 K steps the words
 * {ch0..ch3 even} then {ch0..ch3 odd} matching edgec_cm_widen_rows2. Rows are taken two at
 * a time: widened once, then every block of 4 channels runs over them (edgec_cm_rows2_s16,
 * accumulators starting at bias_eff; EDGEC_CM_GEMM_CHUNK channels at a time) and the row
 * pair is requantised. `scratch` holds
 * EDGEC_CM_GEMM_SCRATCH_WORDS(k, n_out) words. */
static inline __attribute__((always_inline)) void edgec_cm_gemm_s8(
                                    const int8_t *x, int32_t rows, int32_t k,
                                    const int32_t *w16, int32_t n_out, const int32_t *bias_eff,
                                    const int32_t *mult, const int32_t *shift, int per_channel,
                                    int32_t y_zp, int32_t act_min, int32_t act_max, int8_t *y,
                                    int32_t *scratch)
{
    const int32_t k8 = EDGEC_CM_GEMM_K_ROUND(k);
    int32_t *const xs = scratch;
    int32_t *const acc = scratch + k8;
    const int fast = (per_channel & EDGEC_CM_FAST_SHIFTS) || edgec_cm_dsp_fast_shifts(
        shift, (per_channel & EDGEC_CM_PER_CHANNEL) ? n_out : 1);
    const int full_range = act_min == -128 && act_max == 127;
    const int acc30 = (per_channel & EDGEC_CM_ACC30) != 0;
    int32_t r, n;
    for (r = 0; r < rows; r += 2) {
        const int8_t *x0 = x + (size_t)r * (size_t)k;
        const int two = r + 1 < rows;
        int32_t n0;
        edgec_cm_widen_rows2(x0, two ? x0 + k : NULL, k, xs);
        for (n0 = 0; n0 < n_out; n0 += EDGEC_CM_GEMM_CHUNK) {
            const int32_t count = n_out - n0 < EDGEC_CM_GEMM_CHUNK ? n_out - n0
                                                                    : EDGEC_CM_GEMM_CHUNK;
            const int32_t c0 = (per_channel & EDGEC_CM_PER_CHANNEL) ? n0 : 0;
            int8_t *y0 = y + (size_t)r * (size_t)n_out + (size_t)n0;
            if (fast && full_range && two && acc30 && count % 4 == 0 &&
                !(per_channel & EDGEC_CM_RQ_STACK)) {
                const edgec_cm_rq_direct direct = {
                    mult + c0, shift + c0, (per_channel & EDGEC_CM_PER_CHANNEL) ? 1 : 0,
                    2 * y_zp + 1, n_out, y0};
                edgec_cm_rows2_s16(xs, w16 + (size_t)n0 / 4u * 2u * (size_t)k8, k8 / 2,
                                   count, bias_eff + n0, acc, &direct);
                continue;
            }
            edgec_cm_rows2_s16(xs, w16 + (size_t)n0 / 4u * 2u * (size_t)k8, k8 / 2, count,
                               bias_eff + n0, acc, NULL);
            if (fast && full_range && two && acc30) { /* the common cases, specialised */
                edgec_cm_requant_rows2(acc, count, mult + c0, shift + c0, per_channel, y_zp,
                                       act_min, act_max, 1, 1, 1, n_out, y0);
            } else if (fast && full_range && two) {
                edgec_cm_requant_rows2(acc, count, mult + c0, shift + c0, per_channel, y_zp,
                                       act_min, act_max, 1, 1, 0, n_out, y0);
            } else if (fast) {
                edgec_cm_requant_rows2(acc, count, mult + c0, shift + c0, per_channel, y_zp,
                                       act_min, act_max, full_range, two, acc30, n_out, y0);
            } else {
                for (n = 0; n < count; ++n) {
                    y0[n] = edgec_cm_out(acc[2 * n], mult, shift, n0 + n, per_channel, y_zp,
                                         act_min, act_max);
                    if (two) {
                        y0[n_out + n] = edgec_cm_out(acc[2 * n + 1], mult, shift, n0 + n,
                                                     per_channel, y_zp, act_min, act_max);
                    }
                }
            }
        }
    }
}

/* One output on edgec_cm_dsp_scale's path: requantise with the zero point, clamp
 * (`full_range`: [-128, 127], SSAT alone). */
static inline __attribute__((always_inline)) int8_t edgec_cm_dsp_rq(
    int32_t acc, int32_t mult, int32_t shift, int32_t y_zp, int32_t act_min, int32_t act_max,
    int full_range, int acc30)
{
    int32_t v = __ssat(edgec_cm_dsp_scale(acc, mult, shift, 2 * y_zp + 1, acc30), 8);
    if (!full_range) {
        v = v < act_min ? act_min : (v > act_max ? act_max : v);
    }
    return (int8_t)v;
}

/* Scratch words edgec_cm_conv_s8 needs: two im2col rows of K = k_h * k_w * in_c bytes, then
 * the GEMM's scratch. */
#define EDGEC_CM_CONV_SCRATCH_WORDS(k, n_out) \
    ((2 * (k) + 3) / 4 + EDGEC_CM_GEMM_SCRATCH_WORDS(k, n_out))

/* General convolution, group 1: the weight packed as edgec_cm_gemm_s8's for K = k_h * k_w *
 * in_c (order [k_h][k_w][in_c]); two pixels' im2col rows at a time, then the GEMM. `scratch`
 * holds EDGEC_CM_CONV_SCRATCH_WORDS(K, out_c) words. */
static inline void edgec_cm_conv_s8(const edgec_cm_conv_geometry *g, const int8_t *x,
                                    int32_t x_zp, const int32_t *w16, const int32_t *bias_eff,
                                    const int32_t *mult, const int32_t *shift, int per_channel,
                                    int32_t y_zp, int32_t act_min, int32_t act_max, int8_t *y,
                                    int32_t *scratch)
{
    const int32_t k = g->k_h * g->k_w * g->in_c;
    const int32_t pixels = g->out_h * g->out_w;
    const int32_t out_c = g->out_c;
    int8_t *const rows = (int8_t *)(void *)scratch;
    int32_t *const gemm_scratch = scratch + (2 * k + 3) / 4;
    int32_t p;
    if (edgec_cm_dsp_fast_shifts(shift, (per_channel & EDGEC_CM_PER_CHANNEL) ? out_c : 1)) {
        per_channel |= EDGEC_CM_FAST_SHIFTS; /* checked once, not per pixel pair */
    }
    per_channel |= EDGEC_CM_RQ_STACK; /* measured faster next to the im2col (ResNet-8) */
    for (p = 0; p < pixels; p += 2) {
        const int32_t n_rows = p + 1 < pixels ? 2 : 1;
        edgec_cm_im2col_row(g, x, x_zp, p, rows);
        if (n_rows == 2) {
            edgec_cm_im2col_row(g, x, x_zp, p + 1, rows + k);
        }
        edgec_cm_gemm_s8(rows, n_rows, k, w16, out_c, bias_eff, mult, shift, per_channel,
                         y_zp, act_min, act_max, y + (size_t)p * (size_t)out_c, gemm_scratch);
    }
}

#endif /* EDGEC_CM_DSP_H */
