/*
 * edgec_x86_q8.h - AVX2 int8 micro-kernels of edgec's x86_64 layer functions.
 * Generated code includes this file; it is part of edgec (Apache-2.0).
 *
 * Every kernel reproduces edgec's int8 reference (edgec/ops/quantized.py, edgec/qmath.py) bit
 * for bit: accumulators are exact int32 sums (bias_eff + sum x * w, the zero-point correction
 * folded into bias_eff at compile time, edgec/ops/quant_common.py) and the requantisation is
 * edgec_qmath.h's MultiplyByQuantizedMultiplier (TFLite's double rounding), vectorised
 * exactly on 8 lanes: two _mm256_mul_epi32 give the 64-bit products of the even and odd
 * lanes; 2^30 is added and the products doubled, so that their high halves are the rounding
 * doubling high multiply h; then h / 2^right per lane (vpsravd), plus one where the remainder
 * passes half the divisor (ties away from zero). Shifts are per channel (one int32 array of
 * right shifts beside the multipliers); layers with a positive shift (a multiplier >= 1,
 * rare) use the portable kernels.
 *
 * Products use _mm256_madd_epi16 (vpmaddwd): int16 x int16 pairs summed into int32 lanes,
 * exact for int8 data (no saturation, unlike vpmaddubsw). Activations are widened to int16
 * pairs once per pixel block ("A" rows, edgec_q8_widen); weights stay int8 in memory, packed
 * at compile time as [k/2][16 channels][2] panels, and are widened as they are loaded.
 * A GEMM tile is up to 6 rows (pixels) x 16 channels in 12 ymm accumulators; rows and nv
 * (vectors of 8 channels, 1 or 2) are literals at every call site (forced inline).
 * Targets with AVX-512 VNNI (x86_64-int8-vnni) also get the vpdpbusd kernels at the end of
 * this file: 4 products per int32 lane and instruction instead of 2.
 */
#ifndef EDGEC_X86_Q8_H
#define EDGEC_X86_Q8_H

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__GNUC__) || defined(__clang__)
#define EDGEC_Q8_INLINE static inline __attribute__((always_inline))
#else
#define EDGEC_Q8_INLINE static inline
#endif

/* The two vpmuldq products of the rounding doubling high multiply: even = the even lanes'
   acc * m_even, odd = the odd lanes' acc * m_odd (m_odd holds the odd lanes' multipliers in
   the even positions) as 64-bit lanes, with 2^30 added and doubled, so that the high half of
   each 64-bit lane is floor((acc * m + 2^30) / 2^31) (no overflow: |acc * m| < 2^62 - 2^32). */
EDGEC_Q8_INLINE void edgec_q8_srdhm_products(__m256i acc, __m256i m_even, __m256i m_odd,
                                             __m256i *even, __m256i *odd)
{
    const __m256i rounding = _mm256_set1_epi64x(1LL << 30);
    *even = _mm256_slli_epi64(_mm256_add_epi64(_mm256_mul_epi32(acc, m_even), rounding), 1);
    *odd = _mm256_slli_epi64(
        _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(acc, 32), m_odd), rounding), 1);
}

/* RoundingDivideByPOT of 8 lanes by per-lane exponents `right` (0..31): the arithmetic shift,
   plus one where the remainder exceeds half the divisor (or equals it, for h >= 0): ties
   away from zero, exactly as edgec_rdivpot. */
EDGEC_Q8_INLINE __m256i edgec_q8_rdivpot(__m256i h, __m256i right)
{
    const __m256i one = _mm256_set1_epi32(1);
    const __m256i mask = _mm256_sub_epi32(_mm256_sllv_epi32(one, right), one);
    const __m256i threshold = _mm256_sub_epi32(_mm256_srli_epi32(mask, 1), _mm256_srai_epi32(h, 31));
    const __m256i above = _mm256_cmpgt_epi32(_mm256_and_si256(h, mask), threshold);
    return _mm256_sub_epi32(_mm256_srav_epi32(h, right), above);
}

/* MultiplyByQuantizedMultiplier (TFLite's double rounding, edgec_mbqm) of 8 int32 lanes by
   per-lane multipliers and shifts <= 0 (right = -shift per lane; the x86 kernels are only
   chosen for layers without positive shifts); mult_odd holds the odd lanes' multipliers in
   the even positions (_mm256_srli_epi64(mult, 32)), so a caller reusing a multiplier vector
   computes it once. */
EDGEC_Q8_INLINE __m256i edgec_q8_mbqm_odd(__m256i acc, __m256i mult, __m256i mult_odd,
                                          __m256i right)
{
    __m256i even, odd;
    edgec_q8_srdhm_products(acc, mult, mult_odd, &even, &odd);
    return edgec_q8_rdivpot(_mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA), right);
}

/* MultiplyByQuantizedMultiplier of 8 int32 lanes by per-lane multipliers and right shifts. */
EDGEC_Q8_INLINE __m256i edgec_q8_mbqm(__m256i acc, __m256i mult, __m256i right)
{
    return edgec_q8_mbqm_odd(acc, mult, _mm256_srli_epi64(mult, 32), right);
}

/* clamp(MBQM(acc) + zp, lo, hi) on 8 lanes (clamped before the zero point is added, so that
   nothing wraps). */
EDGEC_Q8_INLINE __m256i edgec_q8_requant(__m256i acc, __m256i mult, __m256i right, int zp,
                                         int lo, int hi)
{
    __m256i y = edgec_q8_mbqm(acc, mult, right);
    y = _mm256_max_epi32(y, _mm256_set1_epi32(lo - zp));
    y = _mm256_min_epi32(y, _mm256_set1_epi32(hi - zp));
    return _mm256_add_epi32(y, _mm256_set1_epi32(zp));
}

/* The right shifts of 8 channels at `right` (int32). */
EDGEC_Q8_INLINE __m256i edgec_q8_right8(const int32_t *right)
{
    return _mm256_loadu_si256((const __m256i *)(const void *)right);
}

/* 4 vectors of 8 int32 -> 32 int8 in order (v0's 8 bytes, v1's, v2's, v3's; with v0, v1 one
   row's channels 0-7, 8-15 and v2, v3 the next row's: row one in the low 16 bytes, row two in
   the high 16): saturating packs, then (zp_pack != 0) the zero point added in int16 with
   saturation, then the clamp to [lo, hi] when it is narrower than int8. Both equal the exact
   int32 result after the final clamp, which lies within int8. */
EDGEC_Q8_INLINE __m256i edgec_q8_pack4(__m256i v0, __m256i v1, __m256i v2, __m256i v3,
                                       int zp_pack, int lo, int hi)
{
    __m256i a = _mm256_packs_epi32(v0, v1);
    __m256i b = _mm256_packs_epi32(v2, v3);
    __m256i y;
    if (zp_pack != 0) {
        a = _mm256_adds_epi16(a, _mm256_set1_epi16((short)zp_pack));
        b = _mm256_adds_epi16(b, _mm256_set1_epi16((short)zp_pack));
    }
    y = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(a, b),
                                    _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    if (lo > -128) {
        y = _mm256_max_epi8(y, _mm256_set1_epi8((char)lo));
    }
    if (hi < 127) {
        y = _mm256_min_epi8(y, _mm256_set1_epi8((char)hi));
    }
    return y;
}

/* 16 int32 lanes (channels 0-7 in a, 8-15 in b), already in [-128, 127], as 16 int8. */
EDGEC_Q8_INLINE __m128i edgec_q8_narrow16(__m256i a, __m256i b)
{
    const __m256i w = _mm256_permute4x64_epi64(_mm256_packs_epi32(a, b), 0xD8);
    return _mm256_castsi256_si128(_mm256_permute4x64_epi64(_mm256_packs_epi16(w, w), 0x08));
}

/* The same for the depthwise order: lo = channels 0-3, 8-11; hi = channels 4-7, 12-15. */
EDGEC_Q8_INLINE __m128i edgec_q8_narrow16_lohi(__m256i lo, __m256i hi)
{
    const __m256i w = _mm256_packs_epi32(lo, hi); /* in-lane packing restores the order */
    return _mm256_castsi256_si128(_mm256_permute4x64_epi64(_mm256_packs_epi16(w, w), 0x08));
}

/* Store the first n (1..16) of 16 int8 lanes. */
EDGEC_Q8_INLINE void edgec_q8_store_n(int8_t *dst, __m128i v, int n)
{
    if (n == 16) {
        _mm_storeu_si128((__m128i *)(void *)dst, v);
    } else if (n == 8) {
        _mm_storel_epi64((__m128i *)(void *)dst, v);
    } else {
        int8_t tmp[16];
        _mm_storeu_si128((__m128i *)(void *)tmp, v);
        memcpy(dst, tmp, (size_t)n);
    }
}

/* Load n (1..8) int32 lanes; lanes past n are zero. */
EDGEC_Q8_INLINE __m256i edgec_q8_load32_n(const int32_t *p, int n)
{
    static const int32_t lanes[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    if (n == 8) {
        return _mm256_loadu_si256((const __m256i *)(const void *)p);
    }
    return _mm256_maskload_epi32((const int *)p,
                                 _mm256_loadu_si256((const __m256i *)(const void *)(lanes + 8 - n)));
}

/* Widen the first n (1..15) of 16 int8 channels at p (the channel tail of a pixel: only n
   bytes may be read); lanes past n are zero. */
EDGEC_Q8_INLINE __m256i edgec_q8_load_tail_n(const int8_t *p, int n)
{
    int8_t tmp[16] = {0};
    memcpy(tmp, p, (size_t)n);
    return _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)tmp));
}

/* Widen k int8 to int16 (dst gets k rounded up to even entries, the last one 0 if k is odd). */
EDGEC_Q8_INLINE void edgec_q8_widen(int16_t *dst, const int8_t *src, size_t k)
{
    size_t i = 0;
    for (; i + 16 <= k; i += 16) {
        _mm256_storeu_si256((__m256i *)(void *)(dst + i),
                            _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(src + i))));
    }
    for (; i < k; ++i) {
        dst[i] = src[i];
    }
    if (k & 1u) {
        dst[k] = 0;
    }
}

/* An int8 GEMM tile: up to 6 rows x 2 vectors of int32 accumulators. */
typedef struct {
    __m256i v[6][2];
} edgec_q8_tile;

/* Start every row from the panel's bias_eff (8 * nv int32). */
EDGEC_Q8_INLINE void edgec_q8_tile_init(edgec_q8_tile *t, int rows, int nv, const int32_t *bias)
{
    int r;
    for (r = 0; r < rows; ++r) {
        t->v[r][0] = _mm256_loadu_si256((const __m256i *)(const void *)bias);
        t->v[r][1] = nv > 1 ? _mm256_loadu_si256((const __m256i *)(const void *)(bias + 8))
                            : _mm256_setzero_si256();
    }
}

/* Broadcast the int16 pair at p (p[0], p[1]) to every 32-bit lane. */
EDGEC_Q8_INLINE __m256i edgec_q8_pair(const int16_t *p)
{
    int32_t v;
    memcpy(&v, p, sizeof v);
    return _mm256_set1_epi32(v);
}

/* The accumulators of a tile as local variables c<row><vector> (rows beyond `rows` and the
   second vector when nv == 1 are zero and dead): the inner loops below then keep them in
   registers instead of re-reading the struct. */
#define EDGEC_Q8_TILE_LOAD(t, rows, nv)                                                      \
    __m256i c00 = (t)->v[0][0];                                                            \
    __m256i c01 = (nv) > 1 ? (t)->v[0][1] : _mm256_setzero_si256();                        \
    __m256i c10 = (rows) > 1 ? (t)->v[1][0] : _mm256_setzero_si256();                      \
    __m256i c11 = (rows) > 1 && (nv) > 1 ? (t)->v[1][1] : _mm256_setzero_si256();          \
    __m256i c20 = (rows) > 2 ? (t)->v[2][0] : _mm256_setzero_si256();                      \
    __m256i c21 = (rows) > 2 && (nv) > 1 ? (t)->v[2][1] : _mm256_setzero_si256();          \
    __m256i c30 = (rows) > 3 ? (t)->v[3][0] : _mm256_setzero_si256();                      \
    __m256i c31 = (rows) > 3 && (nv) > 1 ? (t)->v[3][1] : _mm256_setzero_si256();          \
    __m256i c40 = (rows) > 4 ? (t)->v[4][0] : _mm256_setzero_si256();                      \
    __m256i c41 = (rows) > 4 && (nv) > 1 ? (t)->v[4][1] : _mm256_setzero_si256();          \
    __m256i c50 = (rows) > 5 ? (t)->v[5][0] : _mm256_setzero_si256();                      \
    __m256i c51 = (rows) > 5 && (nv) > 1 ? (t)->v[5][1] : _mm256_setzero_si256()
#define EDGEC_Q8_TILE_SAVE(t)                                                                \
    (t)->v[0][0] = c00; (t)->v[0][1] = c01; (t)->v[1][0] = c10; (t)->v[1][1] = c11;          \
    (t)->v[2][0] = c20; (t)->v[2][1] = c21; (t)->v[3][0] = c30; (t)->v[3][1] = c31;          \
    (t)->v[4][0] = c40; (t)->v[4][1] = c41; (t)->v[5][0] = c50; (t)->v[5][1] = c51

/* Requantise and store: row r to y + r * y_stride, 8 * (nv - 1) + ncols channels (ncols in
   1..8 valid in the last vector); mult is the panel's multipliers (8 * nv int32). Rows go
   two at a time through edgec_q8_pack4. */
EDGEC_Q8_INLINE void edgec_q8_tile_store(const edgec_q8_tile *t, int rows, int nv, int ncols,
                                         int8_t *y, size_t y_stride, const int32_t *mult,
                                         const int32_t *right, int zp, int lo, int hi)
{
    const int n = 8 * (nv - 1) + ncols;
    const __m256i m0 = _mm256_loadu_si256((const __m256i *)(const void *)mult);
    const __m256i m1 = nv > 1 ? _mm256_loadu_si256((const __m256i *)(const void *)(mult + 8)) : m0;
    const __m256i o0 = _mm256_srli_epi64(m0, 32);
    const __m256i o1 = _mm256_srli_epi64(m1, 32);
    const __m256i s0 = edgec_q8_right8(right);
    const __m256i s1 = nv > 1 ? edgec_q8_right8(right + 8) : s0;
    int r;
    for (r = 0; r + 1 < rows; r += 2) {
        int8_t *y0 = y + (size_t)r * y_stride;
        int8_t *y1 = y0 + y_stride;
        if (nv > 1) {
            const __m256i v = edgec_q8_pack4(edgec_q8_mbqm_odd(t->v[r][0], m0, o0, s0),
                                              edgec_q8_mbqm_odd(t->v[r][1], m1, o1, s1),
                                              edgec_q8_mbqm_odd(t->v[r + 1][0], m0, o0, s0),
                                              edgec_q8_mbqm_odd(t->v[r + 1][1], m1, o1, s1),
                                              zp, lo, hi);
            edgec_q8_store_n(y0, _mm256_castsi256_si128(v), n);
            edgec_q8_store_n(y1, _mm256_extracti128_si256(v, 1), n);
        } else {
            const __m256i a = edgec_q8_mbqm_odd(t->v[r][0], m0, o0, s0);
            const __m256i b = edgec_q8_mbqm_odd(t->v[r + 1][0], m0, o0, s0);
            const __m128i v = _mm256_castsi256_si128(edgec_q8_pack4(a, b, a, b, zp, lo, hi));
            edgec_q8_store_n(y0, v, n);
            edgec_q8_store_n(y1, _mm_srli_si128(v, 8), n);
        }
    }
    if (rows & 1) {
        const __m256i a = edgec_q8_mbqm_odd(t->v[rows - 1][0], m0, o0, s0);
        const __m256i b = nv > 1 ? edgec_q8_mbqm_odd(t->v[rows - 1][1], m1, o1, s1) : a;
        edgec_q8_store_n(y + (size_t)(rows - 1) * y_stride,
                         _mm256_castsi256_si128(edgec_q8_pack4(a, b, a, b, zp, lo, hi)), n);
    }
}

/* One row against a GEMV panel of 8 * nv (nv <= 8) channels packed [kp][8 * nv][2] int8:
   y[0 : 8 * (nv - 1) + ncols] = requant(bias + a . b); a is the widened row (kp pairs). */
EDGEC_Q8_INLINE void edgec_q8_gemv_panel(int nv, int ncols, const int16_t *a, const int8_t *b,
                                         size_t kp, const int32_t *bias, const int32_t *mult,
                                         const int32_t *right, int zp, int lo, int hi, int8_t *y)
{
    __m256i acc[8];
    size_t i;
    int v;
    for (v = 0; v < nv; ++v) {
        acc[v] = _mm256_loadu_si256((const __m256i *)(const void *)(bias + 8 * v));
    }
    for (i = 0; i < kp; ++i) {
        const __m256i x = edgec_q8_pair(a + 2 * i);
        const int8_t *bi = b + i * (size_t)(16 * nv);
        for (v = 0; v < nv; ++v) {
            const __m256i w = _mm256_cvtepi8_epi16(
                _mm_loadu_si128((const __m128i *)(const void *)(bi + 16 * v)));
            acc[v] = _mm256_add_epi32(acc[v], _mm256_madd_epi16(x, w));
        }
    }
    for (v = 0; v < nv; v += 2) {
        const __m256i m0 = _mm256_loadu_si256((const __m256i *)(const void *)(mult + 8 * v));
        const __m256i y0 = edgec_q8_requant(acc[v], m0, edgec_q8_right8(right + 8 * v), zp, lo, hi);
        if (v + 1 < nv) {
            const __m256i m1 = _mm256_loadu_si256((const __m256i *)(const void *)(mult + 8 * v + 8));
            const __m256i y1 = edgec_q8_requant(acc[v + 1], m1, edgec_q8_right8(right + 8 * v + 8), zp, lo, hi);
            edgec_q8_store_n(y + 8 * v, edgec_q8_narrow16(y0, y1),
                             v + 2 == nv ? 8 + ncols : 16);
        } else {
            edgec_q8_store_n(y + 8 * v, edgec_q8_narrow16(y0, y0), ncols);
        }
    }
}

/*
 * AVX2 GEMM tiles with int16 weights (x86_64-int8: pointwise and im2col convolutions, fully
 * connected layers with more than 2 rows).
 *
 * Weights are widened to int16 at compile time and packed per panel of 16 (or 8) output
 * channels as [k/2][16][2]; a step of the k loop loads the panel's 2 weight vectors once,
 * broadcasts one int16 pair per row (from the rows widened once per pixel block) and issues
 * 2 vpmaddwd + 2 vpaddd per row. A tile of 6 rows keeps 12 accumulators, 2 weight vectors,
 * the broadcast and one product in the 16 ymm registers (gcc 12 and clang 14 keep the loop
 * free of spills; the k loop's trip count is made opaque to gcc so that it does not unroll
 * and interleave it, which is what made it spill). On Zen 3/4 vpmaddwd shares two pipes with
 * FMAs and vpmuldq: the kernel reaches ~90% of that 32-MAC-per-cycle bound on long k loops.
 *
 * Requantisation (edgec_q8_rq8): the accumulator lanes hold the channels of a vector in the
 * order [0, 2, 1, 3, 4, 6, 5, 7] (LANE_ORDER in codegen/c/isa/x86_q8.py packs them so), so that
 * one vshufps of the two vpmuldq products' high halves yields the 8 rounding doubling high
 * multiplies in natural order; the rounding division by 2^right then runs on natural-order
 * lanes (right shifts are stored in natural order). 4 vectors of results become 32 bytes
 * with saturating packs, the zero point added in int16 with saturation, and a narrower
 * activation range adds a byte max/min (the same as clamping the exact value).
 */

/* Requantise 8 accumulators (lanes in LANE_ORDER) -> MBQM(acc) in natural channel order;
   m_even / m_odd hold the multipliers of the even / odd lanes in the low halves of the 64-bit
   lanes; right: the natural-order channels' right shifts. */
EDGEC_Q8_INLINE __m256i edgec_q8_rq8(__m256i acc, __m256i m_even, __m256i m_odd, __m256i right)
{
    __m256i even, odd, high;
    edgec_q8_srdhm_products(acc, m_even, m_odd, &even, &odd);
    high = _mm256_castps_si256(_mm256_shuffle_ps(
        _mm256_castsi256_ps(even), _mm256_castsi256_ps(odd), _MM_SHUFFLE(3, 1, 3, 1)));
    return edgec_q8_rdivpot(high, right);
}

/* Store the first n (1..8) bytes of the 8-byte group g (0..3) of v. */
EDGEC_Q8_INLINE void edgec_q8_store8_n(int8_t *dst, __m256i v, int g, int n)
{
    const __m128i half = g < 2 ? _mm256_castsi256_si128(v) : _mm256_extracti128_si256(v, 1);
    const __m128i part = (g & 1) ? _mm_unpackhi_epi64(half, half) : half;
    if (n == 8) {
        _mm_storel_epi64((__m128i *)(void *)dst, part);
    } else {
        int8_t tmp[16];
        _mm_storeu_si128((__m128i *)(void *)tmp, part);
        memcpy(dst, tmp, (size_t)n);
    }
}

/* Hide a loop bound from gcc's unroller (see above); no code. */
#if defined(__GNUC__) || defined(__clang__)
#define EDGEC_Q8_OPAQUE(n) __asm__("" : "+r"(n))
#else
#define EDGEC_Q8_OPAQUE(n) ((void)0)
#endif

/* A tile of `rows` (1..6) rows x 8 * nv (nv 1 or 2) channels: acc = bias + a . w over kp
   int16 pairs, requantised and stored (8 * (nv - 1) + ncols channels per row, ncols 1..8).
   Row r's pairs are at a + r * a_stride; w is the panel [kp][8 * nv][2], bias, m_even and
   m_odd its 8 * nv values, all in LANE_ORDER; right the 8 * nv right shifts in natural order.
   rows, nv, ncols, zp_pack, lo, hi are literals at every call site. */
EDGEC_Q8_INLINE void edgec_q8_gemm_tile(int rows, int nv, int ncols, const int16_t *a,
                                        size_t a_stride, const int16_t *w, size_t kp,
                                        const int32_t *bias, const int32_t *m_even,
                                        const int32_t *m_odd, const int32_t *right,
                                        int zp_pack, int lo, int hi, int8_t *y,
                                        size_t y_stride)
{
    __m256i c[6][2];
    __m256i q[6][2];
    size_t i;
    int r;
    const __m256i bias0 = _mm256_loadu_si256((const __m256i *)(const void *)bias);
    const __m256i bias1 = nv > 1 ? _mm256_loadu_si256((const __m256i *)(const void *)(bias + 8))
                                 : bias0;
    for (r = 0; r < 6; ++r) {
        c[r][0] = bias0;
        c[r][1] = bias1;
    }
    EDGEC_Q8_OPAQUE(kp);
    for (i = 0; i < kp; ++i) {
        const int16_t *wi = w + i * (size_t)(16 * nv);
        const __m256i w0 = _mm256_loadu_si256((const __m256i *)(const void *)wi);
        const __m256i w1 = nv > 1 ? _mm256_loadu_si256((const __m256i *)(const void *)(wi + 16))
                                  : w0;
        for (r = 0; r < rows; ++r) {
            const __m256i x = edgec_q8_pair(a + (size_t)r * a_stride + 2 * i);
            c[r][0] = _mm256_add_epi32(c[r][0], _mm256_madd_epi16(x, w0));
            if (nv > 1) {
                c[r][1] = _mm256_add_epi32(c[r][1], _mm256_madd_epi16(x, w1));
            }
        }
    }
    {
        const __m256i me0 = _mm256_loadu_si256((const __m256i *)(const void *)m_even);
        const __m256i mo0 = _mm256_loadu_si256((const __m256i *)(const void *)m_odd);
        const __m256i me1 = nv > 1 ? _mm256_loadu_si256((const __m256i *)(const void *)(m_even + 8))
                                   : me0;
        const __m256i mo1 = nv > 1 ? _mm256_loadu_si256((const __m256i *)(const void *)(m_odd + 8))
                                   : mo0;
        const __m256i s0 = edgec_q8_right8(right);
        const __m256i s1 = nv > 1 ? edgec_q8_right8(right + 8) : s0;
        for (r = 0; r < rows; ++r) {
            q[r][0] = edgec_q8_rq8(c[r][0], me0, mo0, s0);
            q[r][1] = nv > 1 ? edgec_q8_rq8(c[r][1], me1, mo1, s1) : q[r][0];
        }
    }
    if (nv > 1) {
        const int n = 8 + ncols;
        for (r = 0; r + 1 < rows; r += 2) {
            const __m256i v = edgec_q8_pack4(q[r][0], q[r][1], q[r + 1][0], q[r + 1][1],
                                             zp_pack, lo, hi);
            int8_t *y0 = y + (size_t)r * y_stride;
            if (n == 16) {
                _mm_storeu_si128((__m128i *)(void *)y0, _mm256_castsi256_si128(v));
                _mm_storeu_si128((__m128i *)(void *)(y0 + y_stride), _mm256_extracti128_si256(v, 1));
            } else {
                edgec_q8_store8_n(y0, v, 0, 8);
                edgec_q8_store8_n(y0 + 8, v, 1, ncols);
                edgec_q8_store8_n(y0 + y_stride, v, 2, 8);
                edgec_q8_store8_n(y0 + y_stride + 8, v, 3, ncols);
            }
        }
        if (rows & 1) {
            const __m256i v = edgec_q8_pack4(q[rows - 1][0], q[rows - 1][1], q[rows - 1][0],
                                             q[rows - 1][1], zp_pack, lo, hi);
            int8_t *y0 = y + (size_t)(rows - 1) * y_stride;
            if (n == 16) {
                _mm_storeu_si128((__m128i *)(void *)y0, _mm256_castsi256_si128(v));
            } else {
                edgec_q8_store8_n(y0, v, 0, 8);
                edgec_q8_store8_n(y0 + 8, v, 1, ncols);
            }
        }
    } else {
        for (r = 0; r < rows; r += 4) {
            const __m256i v = edgec_q8_pack4(q[r][0], q[r + 1 < rows ? r + 1 : r][0],
                                             q[r + 2 < rows ? r + 2 : r][0],
                                             q[r + 3 < rows ? r + 3 : r][0], zp_pack, lo, hi);
            int g;
            for (g = 0; g < 4 && r + g < rows; ++g) {
                edgec_q8_store8_n(y + (size_t)(r + g) * y_stride, v, g, ncols);
            }
        }
    }
}

#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
/*
 * AVX-512 VNNI (targets x86_64-int8-vnni): vpdpbusd on 256-bit vectors multiplies 4 unsigned
 * bytes by 4 signed bytes and adds the 4 products to an int32 lane, exactly (no intermediate
 * saturation). Activations become unsigned by flipping their sign bit (x + 128, edgec_q8_u8);
 * the 128 * sum(w) this adds is taken out of bias_eff at compile time. Weights are packed
 * [k/4][16 channels][4]; a tile step broadcasts 4 bytes of each row.
 */

/* dst[0 : k rounded up to 4] = src[i] + 128 as unsigned bytes, zero padding. */
EDGEC_Q8_INLINE void edgec_q8_u8(uint8_t *dst, const int8_t *src, size_t k)
{
    const __m256i flip = _mm256_set1_epi8((char)0x80);
    size_t i = 0;
    for (; i + 32 <= k; i += 32) {
        _mm256_storeu_si256((__m256i *)(void *)(dst + i),
                            _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(const void *)(src + i)), flip));
    }
    for (; i < k; ++i) {
        dst[i] = (uint8_t)((int)src[i] + 128);
    }
    for (; i & 3u; ++i) {
        dst[i] = 0;
    }
}

/* Broadcast the 4 bytes at p to every 32-bit lane. */
EDGEC_Q8_INLINE __m256i edgec_q8_quad(const uint8_t *p)
{
    int32_t v;
    memcpy(&v, p, sizeof v);
    return _mm256_set1_epi32(v);
}

/* acc[r] += sum over k quads i of a[r][4i..4i+3] . b[i][channel][0..3] (a unsigned).
   vpdpbusd accumulates in place: 6 rows x 2 vectors, 2 weight vectors and the broadcast
   need 15 registers. */
EDGEC_Q8_INLINE void edgec_q8_tile_dpbusd(edgec_q8_tile *t, int rows, int nv,
                                          const uint8_t *const *a, const int8_t *b, size_t kq)
{
    const uint8_t *a0 = a[0];
    const uint8_t *a1 = rows > 1 ? a[1] : a0;
    const uint8_t *a2 = rows > 2 ? a[2] : a0;
    const uint8_t *a3 = rows > 3 ? a[3] : a0;
    const uint8_t *a4 = rows > 4 ? a[4] : a0;
    const uint8_t *a5 = rows > 5 ? a[5] : a0;
    size_t i;
    EDGEC_Q8_TILE_LOAD(t, rows, nv);
    for (i = 0; i < kq; ++i) {
        const int8_t *bi = b + i * (size_t)(32 * nv);
        const __m256i b0 = _mm256_loadu_si256((const __m256i *)(const void *)bi);
        const __m256i b1 = nv > 1 ? _mm256_loadu_si256((const __m256i *)(const void *)(bi + 32)) : b0;
        __m256i x;
#define EDGEC_Q8_QROW(R, AR, C0, C1)                                           \
        if (rows > (R)) {                                                      \
            x = edgec_q8_quad((AR) + 4 * i);                                   \
            C0 = _mm256_dpbusd_epi32(C0, x, b0);                               \
            if (nv > 1) {                                                      \
                C1 = _mm256_dpbusd_epi32(C1, x, b1);                           \
            }                                                                  \
        }
        EDGEC_Q8_QROW(0, a0, c00, c01)
        EDGEC_Q8_QROW(1, a1, c10, c11)
        EDGEC_Q8_QROW(2, a2, c20, c21)
        EDGEC_Q8_QROW(3, a3, c30, c31)
        EDGEC_Q8_QROW(4, a4, c40, c41)
        EDGEC_Q8_QROW(5, a5, c50, c51)
#undef EDGEC_Q8_QROW
    }
    EDGEC_Q8_TILE_SAVE(t);
}

/* GEMV panel (see edgec_q8_gemv_panel) with weights [kq][8 * nv][4] and an unsigned row. */
EDGEC_Q8_INLINE void edgec_q8_gemv_panel_vnni(int nv, int ncols, const uint8_t *a,
                                              const int8_t *b, size_t kq, const int32_t *bias,
                                              const int32_t *mult, const int32_t *right, int zp,
                                              int lo, int hi, int8_t *y)
{
    __m256i acc[8];
    size_t i;
    int v;
    for (v = 0; v < nv; ++v) {
        acc[v] = _mm256_loadu_si256((const __m256i *)(const void *)(bias + 8 * v));
    }
    for (i = 0; i < kq; ++i) {
        const __m256i x = edgec_q8_quad(a + 4 * i);
        const int8_t *bi = b + i * (size_t)(32 * nv);
        for (v = 0; v < nv; ++v) {
            acc[v] = _mm256_dpbusd_epi32(acc[v], x,
                                         _mm256_loadu_si256((const __m256i *)(const void *)(bi + 32 * v)));
        }
    }
    for (v = 0; v < nv; v += 2) {
        const __m256i m0 = _mm256_loadu_si256((const __m256i *)(const void *)(mult + 8 * v));
        const __m256i y0 = edgec_q8_requant(acc[v], m0, edgec_q8_right8(right + 8 * v), zp, lo, hi);
        if (v + 1 < nv) {
            const __m256i m1 = _mm256_loadu_si256((const __m256i *)(const void *)(mult + 8 * v + 8));
            const __m256i y1 = edgec_q8_requant(acc[v + 1], m1, edgec_q8_right8(right + 8 * v + 8), zp, lo, hi);
            edgec_q8_store_n(y + 8 * v, edgec_q8_narrow16(y0, y1), v + 2 == nv ? 8 + ncols : 16);
        } else {
            edgec_q8_store_n(y + 8 * v, edgec_q8_narrow16(y0, y0), ncols);
        }
    }
}
#endif /* AVX-512 VNNI */

#endif /* EDGEC_X86_Q8_H */
