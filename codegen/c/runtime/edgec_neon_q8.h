/*
 * edgec_neon_q8.h - arm64 NEON int8 micro-kernels of edgec's layer functions (TFLite int8
 * scheme). Generated code includes this file; it is part of edgec (Apache-2.0).
 *
 * Every kernel is bit-exact with edgec's int8 reference (edgec/qmath.py, edgec_qmath.h):
 * accumulation is exact int32 arithmetic, and requantisation is TFLite's double rounding,
 * four lanes at a time, in one of three modes chosen per layer at compile time:
 *   - EDGEC_Q8_RQ_DMULH (every shift <= 0, the usual case): SQRDMULH is exactly the rounding
 *     doubling high multiply h; the rounding division by 2^r, r = -shift, rounds ties away
 *     from zero, which SRSHL by -r (ties upwards) does for h - 1 when h < 0: the fix-up
 *     (h & shift) >> 31 is -1 exactly when h < 0 and r > 0 (the shift's sign bit), added with
 *     saturation (only h = INT32_MIN saturates, and it is a multiple of 2^r: no tie).
 *   - EDGEC_Q8_RQ_RSHR (every shift < 0, the usual case of a layer): as DMULH with the fix-up
 *     h + (h >> 31) in one SSRA; no saturation is needed, since h > INT32_MIN (the
 *     multipliers lie in [2^30, 2^31), so |h| < 2^31 - 1 whatever x is).
 *   - EDGEC_Q8_RQ_RDMULH (every shift == 0): SQRDMULH alone.
 *   - EDGEC_Q8_RQ_WIDE (some shift > 0, multipliers >= 1): SHL by max(shift, 0) first (the
 *     reference's wrapping x * 2^shift), then as DMULH with min(shift, 0).
 *   Then + zero point and the clamp: saturating narrowings to int16 (adding the zero point)
 *   and int8, then the clamp bounds (inside int8): the same result as clamping the exact
 *   value, as the reference does in int64.
 * Requantisation parameters are per output channel, padded to the kernels' channel blocks
 * (edgec_q8_rq: bias, multiplier, and per-channel shifts unless every channel of the layer
 * has the same shift).
 *
 * GEMM tiles (pointwise convolution and fully connected layers: rows = pixels; general
 * convolution: rows = im2col rows) accumulate up to 4 rows by a block of output channels:
 *   - dot product (ARMv8.2 SDOT, __ARM_FEATURE_DOTPROD): blocks of 16 channels, weights
 *     packed [block][K/4][16][4] (4 consecutive k of one channel per 32-bit lane); every 16 k
 *     load 16 bytes per row and 16 weight vectors, then 16 SDOT by lane per row (64 SDOT of
 *     16 MACs each per 20 loads).
 *   - ARMv8.0 (no SDOT): blocks of 4 channels, weights packed [block][K/16][4][16]; for each
 *     (row, channel) pair SMULL + SMLAL2 multiply 16 int8 pairs into 8 int16 pair sums (no
 *     overflow: weights lie in [-127, 127], so two products stay within 2 * 128 * 127) and
 *     SADALP folds them into an int32x4; pairwise adds finish the four channels at the end.
 *   - i8mm (ARMv8.6 SMMLA, __ARM_FEATURE_MATMUL_INT8): blocks of 16 channels, 4 rows as two
 *     row pairs; SMMLA multiplies a 2x8 block of two rows by an 8x2 block of two channels
 *     into a 2x2 int32 block, so weights are packed [block][K/16][k half][channel pair][2][8]
 *     and the requantisation parameters in the accumulators' order (c0 c1 c0 c1 c2 c3 ...);
 *     per 16 k: 4 row loads, 4 ZIPs, 4 four-register weight loads, 32 SMMLA of 32 MACs.
 * K is a multiple of 16 for the tiles (the layer pads rows and weights with zeros); a K of
 * 16 * steps + 8 ends, with SDOT, with a half step on 8-byte row loads (edgec_q8_dot_tile8).
 * Depthwise convolution runs 16 channels per step: SMULL/SMLAL2 on a pair of taps into int16
 * (same bound), SADDW into four int32x4 accumulators. With the dot product, a 3x3 depthwise
 * convolution (stride 1 or 2, channels a multiple of 16) transposes each input column of
 * the window once (three rows of 16 channels -> per channel the 4 bytes row 0, 1, 2, 0) and
 * reuses it for every output pixel whose window holds it (3 with stride 1, 2 with stride 2):
 * 12 SDOT per pixel and 16 channels, weights packed [C/16][kw][4][4 channels][row 0..2, 0].
 */
#ifndef EDGEC_NEON_Q8_H
#define EDGEC_NEON_Q8_H

#include <arm_neon.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__GNUC__) || defined(__clang__)
#define EDGEC_Q8_INLINE static inline __attribute__((always_inline))
#else
#define EDGEC_Q8_INLINE static inline
#endif

#define EDGEC_Q8_TILE_ROWS 4 /* rows (pixels) of a GEMM tile */

#define EDGEC_Q8_RQ_DMULH 0 /* every shift <= 0: SQRDMULH then a rounding shift */
#define EDGEC_Q8_RQ_RDMULH 1 /* every shift == 0: SQRDMULH */
#define EDGEC_Q8_RQ_WIDE 2 /* some shift > 0: a left shift first */
#define EDGEC_Q8_RQ_RSHR 3 /* every shift < 0: SQRDMULH, SSRA fix-up, rounding shift */

/* Per-channel requantisation, padded to the kernel's channel block. */
typedef struct {
    const int32_t *bias;  /* bias with the input zero-point correction folded in */
    const int32_t *mult;  /* Q0.31 multipliers */
    const int32_t *shift; /* per-channel shifts, or NULL: one shift for the layer */
} edgec_q8_rq;

/* The requantisation parameters of 4 channels, loaded once per tile. */
typedef struct {
    int32x4_t mult;
    int32x4_t shift; /* DMULH, RDMULH: the shifts (all <= 0); WIDE: min(shift, 0) */
    int32x4_t left;  /* WIDE: max(shift, 0) */
} edgec_q8_rq4;

/* Parameters of channels c .. c + 3 (`shift_all`: the layer's shift when rq.shift is NULL). */
EDGEC_Q8_INLINE edgec_q8_rq4 edgec_q8_rq_load(edgec_q8_rq rq, size_t c, int mode,
                                             int32_t shift_all)
{
    edgec_q8_rq4 p;
    p.mult = vld1q_s32(rq.mult + c);
    p.shift = rq.shift == NULL ? vdupq_n_s32(shift_all) : vld1q_s32(rq.shift + c);
    if (mode == EDGEC_Q8_RQ_WIDE) {
        p.left = vmaxq_s32(p.shift, vdupq_n_s32(0));
        p.shift = vminq_s32(p.shift, vdupq_n_s32(0));
    } else {
        p.left = vdupq_n_s32(0);
    }
    return p;
}

/* MultiplyByQuantizedMultiplier on 4 lanes, exactly edgec_mbqm (edgec_qmath.h). */
EDGEC_Q8_INLINE int32x4_t edgec_q8_mbqm(int32x4_t x, edgec_q8_rq4 p, int mode)
{
    int32x4_t h;
    if (mode == EDGEC_Q8_RQ_RDMULH) {
        return vqrdmulhq_s32(x, p.mult);
    }
    if (mode == EDGEC_Q8_RQ_RSHR) {
        h = vqrdmulhq_s32(x, p.mult);
        return vrshlq_s32(vsraq_n_s32(h, h, 31), p.shift);
    }
    if (mode == EDGEC_Q8_RQ_WIDE) {
        x = vshlq_s32(x, p.left);
    }
    h = vqrdmulhq_s32(x, p.mult);
    return vrshlq_s32(vqaddq_s32(h, vshrq_n_s32(vandq_s32(h, p.shift), 31)), p.shift);
}

/* Eight int32 lanes (already requantised) + zero point, saturated to int16. */
EDGEC_Q8_INLINE int16x8_t edgec_q8_narrow16(int32x4_t lo, int32x4_t hi, int16x8_t zp)
{
    return vqaddq_s16(vqmovn_high_s32(vqmovn_s32(lo), hi), zp);
}

/* The activation clamp of int8 lanes; a bound at the end of the int8 range is no clamp (the
 * saturating narrowing already applied it), so the literal bounds of a layer fold it away. */
EDGEC_Q8_INLINE int8x16_t edgec_q8_clamp8(int8x16_t v, int32_t act_min, int32_t act_max)
{
    if (act_min > -128) {
        v = vmaxq_s8(v, vdupq_n_s8((int8_t)act_min));
    }
    if (act_max < 127) {
        v = vminq_s8(v, vdupq_n_s8((int8_t)act_max));
    }
    return v;
}

/* Sixteen requantised lanes to clamped int8. */
EDGEC_Q8_INLINE int8x16_t edgec_q8_narrow8(int32x4_t a0, int32x4_t a1, int32x4_t a2,
                                           int32x4_t a3, int16x8_t zp, int32_t act_min,
                                           int32_t act_max)
{
    const int16x8_t s0 = edgec_q8_narrow16(a0, a1, zp);
    const int16x8_t s1 = edgec_q8_narrow16(a2, a3, zp);
    return edgec_q8_clamp8(vqmovn_high_s16(vqmovn_s16(s0), s1), act_min, act_max);
}

/* Store `n` <= 16 bytes of v (a full vector store when n == 16). */
EDGEC_Q8_INLINE void edgec_q8_store(int8_t *dst, int8x16_t v, size_t n)
{
    if (n == 16u) {
        vst1q_s8(dst, v);
    } else {
        int8_t tmp[16];
        vst1q_s8(tmp, v);
        memcpy(dst, tmp, n);
    }
}

/* ------------------------------------------------------------------ dot-product tiles */
#if defined(__ARM_FEATURE_DOTPROD)
/* acc[r][v] = bias of channels 4v..4v+3 of the block, for r < rows. */
EDGEC_Q8_INLINE void edgec_q8_dot_init(int32x4_t acc[EDGEC_Q8_TILE_ROWS][4], size_t rows,
                                       const int32_t *bias16)
{
    const int32x4_t b0 = vld1q_s32(bias16);
    const int32x4_t b1 = vld1q_s32(bias16 + 4);
    const int32x4_t b2 = vld1q_s32(bias16 + 8);
    const int32x4_t b3 = vld1q_s32(bias16 + 12);
    size_t r;
    for (r = 0; r < rows; ++r) {
        acc[r][0] = b0;
        acc[r][1] = b1;
        acc[r][2] = b2;
        acc[r][3] = b3;
    }
}

#define EDGEC_Q8_DOT_GROUP(g)                                                    \
    do {                                                                         \
        const int8x16_t w0 = vld1q_s8(w + 64 * (g));                             \
        const int8x16_t w1 = vld1q_s8(w + 64 * (g) + 16);                        \
        const int8x16_t w2 = vld1q_s8(w + 64 * (g) + 32);                        \
        const int8x16_t w3 = vld1q_s8(w + 64 * (g) + 48);                        \
        for (r = 0; r < rows; ++r) {                                             \
            acc[r][0] = vdotq_laneq_s32(acc[r][0], w0, av[r], (g));              \
            acc[r][1] = vdotq_laneq_s32(acc[r][1], w1, av[r], (g));              \
            acc[r][2] = vdotq_laneq_s32(acc[r][2], w2, av[r], (g));              \
            acc[r][3] = vdotq_laneq_s32(acc[r][3], w3, av[r], (g));              \
        }                                                                        \
    } while (0)

/* acc[r][.] += a[r][0 .. 16 * steps) . w for a block of 16 channels (weights [K/4][16][4]). */
EDGEC_Q8_INLINE void edgec_q8_dot_tile(int32x4_t acc[EDGEC_Q8_TILE_ROWS][4], size_t rows,
                                       const int8_t *const *a, const int8_t *w, size_t steps)
{
    size_t s;
    size_t r;
    for (s = 0; s < steps; ++s) {
        int8x16_t av[EDGEC_Q8_TILE_ROWS];
        for (r = 0; r < rows; ++r) {
            av[r] = vld1q_s8(a[r] + 16u * s);
        }
        EDGEC_Q8_DOT_GROUP(0);
        EDGEC_Q8_DOT_GROUP(1);
        EDGEC_Q8_DOT_GROUP(2);
        EDGEC_Q8_DOT_GROUP(3);
        w += 256;
    }
}
#undef EDGEC_Q8_DOT_GROUP

/* The last 8 k of a layer whose K is 16 * steps + 8: acc[r][.] += a[r][off .. off + 8) . w
 * (the first half of a 16-k weight step), 8-byte row loads and SDOT by 64-bit lane. */
EDGEC_Q8_INLINE void edgec_q8_dot_tile8(int32x4_t acc[EDGEC_Q8_TILE_ROWS][4], size_t rows,
                                        const int8_t *const *a, size_t off, const int8_t *w)
{
    int8x8_t av[EDGEC_Q8_TILE_ROWS];
    size_t r;
    size_t j;
    for (r = 0; r < rows; ++r) {
        av[r] = vld1_s8(a[r] + off);
    }
    for (j = 0; j < 4u; ++j) {
        const int8x16_t w0 = vld1q_s8(w + 16u * j);
        const int8x16_t w1 = vld1q_s8(w + 64u + 16u * j);
        for (r = 0; r < rows; ++r) {
            acc[r][j] = vdotq_lane_s32(acc[r][j], w0, av[r], 0);
            acc[r][j] = vdotq_lane_s32(acc[r][j], w1, av[r], 1);
        }
    }
}

/* Requantise a dot tile and store `ncols` <= 16 channels of each row at dst[r]. */
EDGEC_Q8_INLINE void edgec_q8_dot_store(int32x4_t acc[EDGEC_Q8_TILE_ROWS][4], size_t rows,
                                        int8_t *const *dst, size_t ncols, edgec_q8_rq rq,
                                        int mode, int32_t shift_all, int32_t zero_point,
                                        int32_t act_min, int32_t act_max)
{
    const int16x8_t zp = vdupq_n_s16((int16_t)zero_point);
    edgec_q8_rq4 p[4];
    size_t v;
    size_t r;
    for (v = 0; v < 4u; ++v) {
        p[v] = edgec_q8_rq_load(rq, 4u * v, mode, shift_all);
    }
    for (r = 0; r < rows; ++r) {
        int32x4_t q[4];
        for (v = 0; v < 4u; ++v) {
            q[v] = edgec_q8_mbqm(acc[r][v], p[v], mode);
        }
        edgec_q8_store(dst[r], edgec_q8_narrow8(q[0], q[1], q[2], q[3], zp, act_min, act_max), ncols);
    }
}
#endif /* __ARM_FEATURE_DOTPROD */

/* ------------------------------------------------------------------ i8mm tiles */
#if defined(__ARM_FEATURE_MATMUL_INT8)
/* acc[p][j] (row pair p, channel pair j of a 16-channel block) holds the 2x2 block
 * [row 2p: channels 2j, 2j+1 | row 2p+1: channels 2j, 2j+1]; `bias32` is the block's bias in
 * that order (32 values: b0 b1 b0 b1 b2 b3 b2 b3 ...). */
EDGEC_Q8_INLINE void edgec_q8_mmla_init(int32x4_t acc[2][8], const int32_t *bias32)
{
    size_t j;
    for (j = 0; j < 8u; ++j) {
        acc[0][j] = vld1q_s32(bias32 + 4u * j);
        acc[1][j] = acc[0][j];
    }
}

/* acc += a[0..3][0 .. 16 * steps) x w for a block of 16 channels: per 16 k, weights
 * [k half][channel pair][2][8] (256 bytes); rows 0/1 and 2/3 are interleaved by 8 bytes
 * (ZIP1/ZIP2 of 64-bit lanes) into SMMLA's 2x8 operands; 32 SMMLA (32 MACs each) per 16 k. */
EDGEC_Q8_INLINE void edgec_q8_mmla_tile(int32x4_t acc[2][8], const int8_t *const *a,
                                        const int8_t *w, size_t steps)
{
    size_t s;
    size_t j;
    for (s = 0; s < steps; ++s) {
        const int64x2_t r0 = vreinterpretq_s64_s8(vld1q_s8(a[0] + 16u * s));
        const int64x2_t r1 = vreinterpretq_s64_s8(vld1q_s8(a[1] + 16u * s));
        const int64x2_t r2 = vreinterpretq_s64_s8(vld1q_s8(a[2] + 16u * s));
        const int64x2_t r3 = vreinterpretq_s64_s8(vld1q_s8(a[3] + 16u * s));
        const int8x16_t p0[2] = {vreinterpretq_s8_s64(vzip1q_s64(r0, r1)),
                                 vreinterpretq_s8_s64(vzip2q_s64(r0, r1))};
        const int8x16_t p1[2] = {vreinterpretq_s8_s64(vzip1q_s64(r2, r3)),
                                 vreinterpretq_s8_s64(vzip2q_s64(r2, r3))};
        size_t h;
        for (h = 0; h < 2u; ++h) {
            const int8x16x4_t wa = vld1q_s8_x4(w);
            const int8x16x4_t wb = vld1q_s8_x4(w + 64);
            const int8x16_t wv[8] = {wa.val[0], wa.val[1], wa.val[2], wa.val[3],
                                     wb.val[0], wb.val[1], wb.val[2], wb.val[3]};
            for (j = 0; j < 8u; ++j) {
                acc[0][j] = vmmlaq_s32(acc[0][j], p0[h], wv[j]);
                acc[1][j] = vmmlaq_s32(acc[1][j], p1[h], wv[j]);
            }
            w += 128;
        }
    }
}

/* Requantise an i8mm tile (parameters in the interleaved order of the accumulators, 32 per
 * block) and store `ncols` <= 16 channels of the first `rows` rows at dst[r]. Requantised
 * and narrowed in the accumulators' order, a row pair's 32 bytes are de-interleaved by
 * UZP1/UZP2 of 16-bit lanes (each lane: two channels of one row). */
EDGEC_Q8_INLINE void edgec_q8_mmla_store(int32x4_t acc[2][8], size_t rows, int8_t *const *dst,
                                         size_t ncols, edgec_q8_rq rq, int mode,
                                         int32_t shift_all, int32_t zero_point,
                                         int32_t act_min, int32_t act_max)
{
    const int16x8_t zp = vdupq_n_s16((int16_t)zero_point);
    edgec_q8_rq4 p[8];
    size_t j;
    size_t pr;
    for (j = 0; j < 8u; ++j) {
        p[j] = edgec_q8_rq_load(rq, 4u * j, mode, shift_all);
    }
    for (pr = 0; pr < 2u && 2u * pr < rows; ++pr) {
        int32x4_t q[8];
        int16x8_t lo;
        int16x8_t hi;
        for (j = 0; j < 8u; ++j) {
            q[j] = edgec_q8_mbqm(acc[pr][j], p[j], mode);
        }
        lo = vreinterpretq_s16_s8(edgec_q8_narrow8(q[0], q[1], q[2], q[3], zp, act_min,
                                                   act_max));
        hi = vreinterpretq_s16_s8(edgec_q8_narrow8(q[4], q[5], q[6], q[7], zp, act_min,
                                                   act_max));
        edgec_q8_store(dst[2u * pr], vreinterpretq_s8_s16(vuzp1q_s16(lo, hi)), ncols);
        if (2u * pr + 1u < rows) {
            edgec_q8_store(dst[2u * pr + 1u], vreinterpretq_s8_s16(vuzp2q_s16(lo, hi)), ncols);
        }
    }
}
#endif /* __ARM_FEATURE_MATMUL_INT8 */

/* ------------------------------------------------------------------ ARMv8.0 tiles */
/* acc[r][c] += lane sums of a[r][0 .. 16 * steps) * w for 4 channels (weights [K/16][4][16]). */
EDGEC_Q8_INLINE void edgec_q8_mull_tile(int32x4_t acc[EDGEC_Q8_TILE_ROWS][4], size_t rows,
                                        const int8_t *const *a, const int8_t *w, size_t steps)
{
    size_t s;
    size_t r;
    size_t c;
    for (s = 0; s < steps; ++s) {
        int8x16_t wv[4];
        for (c = 0; c < 4u; ++c) {
            wv[c] = vld1q_s8(w + 16u * c);
        }
        for (r = 0; r < rows; ++r) {
            const int8x16_t av = vld1q_s8(a[r] + 16u * s);
            for (c = 0; c < 4u; ++c) {
                int16x8_t prod = vmull_s8(vget_low_s8(av), vget_low_s8(wv[c]));
                prod = vmlal_high_s8(prod, av, wv[c]);
                acc[r][c] = vpadalq_s16(acc[r][c], prod);
            }
        }
        w += 64;
    }
}

/* Requantise an ARMv8.0 tile (rows x 4 channels) and store `ncols` <= 4 channels per row. */
EDGEC_Q8_INLINE void edgec_q8_mull_store(int32x4_t acc[EDGEC_Q8_TILE_ROWS][4], size_t rows,
                                         int8_t *const *dst, size_t ncols, edgec_q8_rq rq,
                                         int mode, int32_t shift_all, int32_t zero_point,
                                         int32_t act_min, int32_t act_max)
{
    const int16x8_t zp = vdupq_n_s16((int16_t)zero_point);
    const int32x4_t bias = vld1q_s32(rq.bias);
    const edgec_q8_rq4 p = edgec_q8_rq_load(rq, 0, mode, shift_all);
    int32x4_t q[EDGEC_Q8_TILE_ROWS];
    int8_t out[16];
    size_t r;
    for (r = 0; r < EDGEC_Q8_TILE_ROWS; ++r) {
        q[r] = vdupq_n_s32(0);
    }
    for (r = 0; r < rows; ++r) {
        const int32x4_t sums = vpaddq_s32(vpaddq_s32(acc[r][0], acc[r][1]),
                                          vpaddq_s32(acc[r][2], acc[r][3]));
        q[r] = edgec_q8_mbqm(vaddq_s32(sums, bias), p, mode);
    }
    vst1q_s8(out, edgec_q8_narrow8(q[0], q[1], q[2], q[3], zp, act_min, act_max));
    for (r = 0; r < rows; ++r) {
        memcpy(dst[r], out + 4u * r, ncols);
    }
}

/* ------------------------------------------------------------------ depthwise */
/* acc (16 channels) += x * w over one tap (8-bit products widened exactly). */
EDGEC_Q8_INLINE void edgec_q8_dw_tap(int32x4_t acc[4], const int8_t *x, const int8_t *w)
{
    const int8x16_t xv = vld1q_s8(x);
    const int8x16_t wv = vld1q_s8(w);
    const int16x8_t lo = vmull_s8(vget_low_s8(xv), vget_low_s8(wv));
    const int16x8_t hi = vmull_high_s8(xv, wv);
    acc[0] = vaddw_s16(acc[0], vget_low_s16(lo));
    acc[1] = vaddw_high_s16(acc[1], lo);
    acc[2] = vaddw_s16(acc[2], vget_low_s16(hi));
    acc[3] = vaddw_high_s16(acc[3], hi);
}

/* acc (16 channels) += x0 * w0 + x1 * w1 over two taps (pair sums fit int16: |w| <= 127). */
EDGEC_Q8_INLINE void edgec_q8_dw_tap2(int32x4_t acc[4], const int8_t *x0, const int8_t *w0,
                                      const int8_t *x1, const int8_t *w1)
{
    const int8x16_t xv0 = vld1q_s8(x0);
    const int8x16_t wv0 = vld1q_s8(w0);
    const int8x16_t xv1 = vld1q_s8(x1);
    const int8x16_t wv1 = vld1q_s8(w1);
    int16x8_t lo = vmull_s8(vget_low_s8(xv0), vget_low_s8(wv0));
    int16x8_t hi = vmull_high_s8(xv0, wv0);
    lo = vmlal_s8(lo, vget_low_s8(xv1), vget_low_s8(wv1));
    hi = vmlal_high_s8(hi, xv1, wv1);
    acc[0] = vaddw_s16(acc[0], vget_low_s16(lo));
    acc[1] = vaddw_high_s16(acc[1], lo);
    acc[2] = vaddw_s16(acc[2], vget_low_s16(hi));
    acc[3] = vaddw_high_s16(acc[3], hi);
}

/* Requantise 16 depthwise channels (from channel c0 of the padded parameters), store n. */
EDGEC_Q8_INLINE void edgec_q8_dw_store(int8_t *dst, const int32x4_t acc[4], size_t n,
                                       edgec_q8_rq rq, size_t c0, int mode, int32_t shift_all,
                                       int32_t zero_point, int32_t act_min, int32_t act_max)
{
    int32x4_t q[4];
    size_t v;
    for (v = 0; v < 4u; ++v) {
        q[v] = edgec_q8_mbqm(acc[v], edgec_q8_rq_load(rq, c0 + 4u * v, mode, shift_all), mode);
    }
    edgec_q8_store(dst, edgec_q8_narrow8(q[0], q[1], q[2], q[3],
                                         vdupq_n_s16((int16_t)zero_point),
                                         act_min, act_max), n);
}

/* ------------------------------------------------------------------ depthwise 3x3, SDOT */
#if defined(__ARM_FEATURE_DOTPROD)
/* One input column of a 3x3 window for 16 channels, transposed for SDOT: v[j] holds channels
 * 4j .. 4j + 3, each as the bytes (row 0, row 1, row 2, 0) of the column. */
typedef struct {
    int8x16_t v[4];
} edgec_q8_col3;

/* The column of three rows of 16 channels (8 ZIPs). */
EDGEC_Q8_INLINE edgec_q8_col3 edgec_q8_col3_zip(int8x16_t r0, int8x16_t r1, int8x16_t r2)
{
    const int8x16_t zero = vdupq_n_s8(0);
    const int16x8_t a = vreinterpretq_s16_s8(vzip1q_s8(r0, r1));
    const int16x8_t b = vreinterpretq_s16_s8(vzip2q_s8(r0, r1));
    const int16x8_t c = vreinterpretq_s16_s8(vzip1q_s8(r2, zero));
    const int16x8_t d = vreinterpretq_s16_s8(vzip2q_s8(r2, zero));
    edgec_q8_col3 col;
    col.v[0] = vreinterpretq_s8_s16(vzip1q_s16(a, c));
    col.v[1] = vreinterpretq_s8_s16(vzip2q_s16(a, c));
    col.v[2] = vreinterpretq_s8_s16(vzip1q_s16(b, d));
    col.v[3] = vreinterpretq_s8_s16(vzip2q_s16(b, d));
    return col;
}

/* Column iw (channels from c0) of the window rows rp[kh] (row stride per column cs[kh]: the
 * channel count, or 0 for a row of padding that points at a row of zero points); for iw
 * outside [0, width) the padding column, whose 16 bytes are the same for every channel
 * (pad16: zero point, zero point, zero point, 0, ...). */
EDGEC_Q8_INLINE edgec_q8_col3 edgec_q8_col3_load(const int8_t *const *rp, const size_t *cs,
                                                 ptrdiff_t iw, size_t width, size_t c0,
                                                 const int8_t *pad16)
{
    if ((size_t)iw >= width) {
        edgec_q8_col3 pad;
        pad.v[0] = vld1q_s8(pad16);
        pad.v[1] = pad.v[0];
        pad.v[2] = pad.v[0];
        pad.v[3] = pad.v[0];
        return pad;
    }
    return edgec_q8_col3_zip(vld1q_s8(rp[0] + (size_t)iw * cs[0] + c0),
                             vld1q_s8(rp[1] + (size_t)iw * cs[1] + c0),
                             vld1q_s8(rp[2] + (size_t)iw * cs[2] + c0));
}

/* One output pixel of 16 channels: bias + the three columns . their packed weights w[kw]
 * (12 SDOT, exact), then requantise, clamp and store 16 bytes at dst. */
EDGEC_Q8_INLINE void edgec_q8_dw3_out(int8_t *dst, edgec_q8_col3 a, edgec_q8_col3 b,
                                      edgec_q8_col3 c, const edgec_q8_col3 *w,
                                      edgec_q8_rq rq, size_t c0, int mode, int32_t shift_all,
                                      int32_t zero_point, int32_t act_min, int32_t act_max)
{
    int32x4_t acc[4];
    size_t j;
    for (j = 0; j < 4u; ++j) {
        acc[j] = vdotq_s32(vld1q_s32(rq.bias + c0 + 4u * j), a.v[j], w[0].v[j]);
        acc[j] = vdotq_s32(acc[j], b.v[j], w[1].v[j]);
        acc[j] = vdotq_s32(acc[j], c.v[j], w[2].v[j]);
    }
    edgec_q8_dw_store(dst, acc, 16u, rq, c0, mode, shift_all, zero_point, act_min, act_max);
}
#endif /* __ARM_FEATURE_DOTPROD */

#endif /* EDGEC_NEON_Q8_H */
