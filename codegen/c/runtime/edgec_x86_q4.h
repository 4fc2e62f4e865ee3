/*
 * edgec_x86_q4.h - AVX2 int8 GEMM tiles with int4 weights (W4A8, edgec --weight-bits 4),
 * bit-exact with the int8 reference (the arithmetic is edgec_q8_gemm_tile's).
 *
 * The weights are the AVX2 panels of edgec_x86_q8.h ([k/2][8 * nv][2] int16 values in
 * LANE_ORDER) stored as nibbles: for each k-pair the 16 * nv values e[] become 8 * nv bytes,
 * byte j holding e[j] (low nibble) and e[j + 8 * nv] (high nibble). One vpmovsxbw of those
 * bytes gives int16 lanes v = sext(byte); (v << 12) >> 12 is the low nibble sign-extended
 * (the first vector of the k-pair) and v >> 4 the high nibble (the second vector; with nv == 1
 * the upper half of the only vector). The weights are unpacked in registers, once per k-pair
 * and tile, and used by every row of the tile.
 */
#ifndef EDGEC_X86_Q4_H
#define EDGEC_X86_Q4_H

#include "edgec_x86_q8.h"

/* The two weight vectors of one k-pair of an nv == 2 panel (16 packed bytes at p). */
EDGEC_Q8_INLINE void edgec_q4_unpack16(const uint8_t *p, __m256i *w0, __m256i *w1)
{
    const __m256i v = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)p));
    *w0 = _mm256_srai_epi16(_mm256_slli_epi16(v, 12), 12);
    *w1 = _mm256_srai_epi16(v, 4);
}

/* The weight vector of one k-pair of an nv == 1 panel (8 packed bytes at p). */
EDGEC_Q8_INLINE __m256i edgec_q4_unpack8(const uint8_t *p)
{
    const __m128i v = _mm_cvtepi8_epi16(_mm_loadl_epi64((const __m128i *)(const void *)p));
    const __m128i lo = _mm_srai_epi16(_mm_slli_epi16(v, 12), 12);
    const __m128i hi = _mm_srai_epi16(v, 4);
    return _mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1);
}

/* edgec_q8_gemm_tile with the panel's weights as nibbles (8 * nv bytes per k-pair), and
   without the m_odd table: the odd lanes' multipliers are m_even's 64-bit lanes shifted
   right by 32 (vpsrlq), once per tile. */
EDGEC_Q8_INLINE void edgec_q4_gemm_tile(int rows, int nv, int ncols, const int16_t *a,
                                        size_t a_stride, const uint8_t *w, size_t kp,
                                        const int32_t *bias, const int32_t *m_even,
                                        const int32_t *right,
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
        __m256i w0;
        __m256i w1;
        if (nv > 1) {
            edgec_q4_unpack16(w + i * 16u, &w0, &w1);
        } else {
            w0 = edgec_q4_unpack8(w + i * 8u);
            w1 = w0;
        }
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
        const __m256i mo0 = _mm256_srli_epi64(me0, 32);
        const __m256i me1 = nv > 1 ? _mm256_loadu_si256((const __m256i *)(const void *)(m_even + 8))
                                   : me0;
        const __m256i mo1 = _mm256_srli_epi64(me1, 32);
        const __m256i s0 = edgec_q8_right8(right);
        const __m256i s1 = nv > 1 ? edgec_q8_right8(right + 8) : s0;
        for (r = 0; r < rows; ++r) {
            q[r][0] = edgec_q8_rq8(c[r][0], me0, mo0, s0);
            q[r][1] = nv > 1 ? edgec_q8_rq8(c[r][1], me1, mo1, s1) : q[r][0];
        }
    }
    if (nv > 1) {
        const int n = 8 + ncols;
        for (r = 0; r < rows; r += 2) {
            const int r1 = r + 1 < rows ? r + 1 : r;
            const __m256i v = edgec_q8_pack4(q[r][0], q[r][1], q[r1][0], q[r1][1], zp_pack, lo,
                                             hi);
            int8_t *y0 = y + (size_t)r * y_stride;
            if (n == 16) {
                _mm_storeu_si128((__m128i *)(void *)y0, _mm256_castsi256_si128(v));
            } else {
                edgec_q8_store8_n(y0, v, 0, 8);
                edgec_q8_store8_n(y0 + 8, v, 1, ncols);
            }
            if (r1 != r) {
                int8_t *y1 = y0 + y_stride;
                if (n == 16) {
                    _mm_storeu_si128((__m128i *)(void *)y1, _mm256_extracti128_si256(v, 1));
                } else {
                    edgec_q8_store8_n(y1, v, 2, 8);
                    edgec_q8_store8_n(y1 + 8, v, 3, ncols);
                }
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

#endif /* EDGEC_X86_Q4_H */
