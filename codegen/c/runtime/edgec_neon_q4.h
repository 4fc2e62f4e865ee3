/*
 * edgec_neon_q4.h - NEON int8 GEMM tiles with int4 weights (W4A8, edgec --weight-bits 4),
 * bit-exact with the int8 reference (the arithmetic of edgec_q8_dot_tile / _mull_tile).
 *
 * The weights are those kernels' int8 layouts stored as nibbles, two consecutive 16-byte
 * weight vectors per 16 bytes: byte j holds lane j of the first vector (low nibble) and lane
 * j of the second (high nibble). SSHR(SHL(b, 4), 4) and SSHR(b, 4) sign-extend them back
 * into two int8x16 registers; nothing is unpacked to memory.
 */
#ifndef EDGEC_NEON_Q4_H
#define EDGEC_NEON_Q4_H

#include "edgec_neon_q8.h"

/* The two weight vectors held by 16 packed bytes at p. */
EDGEC_Q8_INLINE void edgec_q4_unpack(const uint8_t *p, int8x16_t *first, int8x16_t *second)
{
    const int8x16_t b = vreinterpretq_s8_u8(vld1q_u8(p));
    *first = vshrq_n_s8(vshlq_n_s8(b, 4), 4);
    *second = vshrq_n_s8(b, 4);
}

#if defined(__ARM_FEATURE_DOTPROD)
#define EDGEC_Q4_DOT_GROUP(g)                                                    \
    do {                                                                         \
        int8x16_t w0, w1, w2, w3;                                                \
        edgec_q4_unpack(w + 32 * (g), &w0, &w1);                                 \
        edgec_q4_unpack(w + 32 * (g) + 16, &w2, &w3);                            \
        for (r = 0; r < rows; ++r) {                                             \
            acc[r][0] = vdotq_laneq_s32(acc[r][0], w0, av[r], (g));              \
            acc[r][1] = vdotq_laneq_s32(acc[r][1], w1, av[r], (g));              \
            acc[r][2] = vdotq_laneq_s32(acc[r][2], w2, av[r], (g));              \
            acc[r][3] = vdotq_laneq_s32(acc[r][3], w3, av[r], (g));              \
        }                                                                        \
    } while (0)

/* edgec_q8_dot_tile with nibble weights (128 bytes per step of 16 K). */
EDGEC_Q8_INLINE void edgec_q4_dot_tile(int32x4_t acc[EDGEC_Q8_TILE_ROWS][4], size_t rows,
                                       const int8_t *const *a, const uint8_t *w, size_t steps)
{
    size_t s;
    size_t r;
    for (s = 0; s < steps; ++s) {
        int8x16_t av[EDGEC_Q8_TILE_ROWS];
        for (r = 0; r < rows; ++r) {
            av[r] = vld1q_s8(a[r] + 16u * s);
        }
        EDGEC_Q4_DOT_GROUP(0);
        EDGEC_Q4_DOT_GROUP(1);
        EDGEC_Q4_DOT_GROUP(2);
        EDGEC_Q4_DOT_GROUP(3);
        w += 128;
    }
}
#undef EDGEC_Q4_DOT_GROUP
#endif /* __ARM_FEATURE_DOTPROD */

/* edgec_q8_mull_tile with nibble weights (32 bytes per step of 16 K). */
EDGEC_Q8_INLINE void edgec_q4_mull_tile(int32x4_t acc[EDGEC_Q8_TILE_ROWS][4], size_t rows,
                                        const int8_t *const *a, const uint8_t *w, size_t steps)
{
    size_t s;
    size_t r;
    size_t c;
    for (s = 0; s < steps; ++s) {
        int8x16_t wv[4];
        edgec_q4_unpack(w, &wv[0], &wv[1]);
        edgec_q4_unpack(w + 16, &wv[2], &wv[3]);
        for (r = 0; r < rows; ++r) {
            const int8x16_t av = vld1q_s8(a[r] + 16u * s);
            for (c = 0; c < 4u; ++c) {
                int16x8_t prod = vmull_s8(vget_low_s8(av), vget_low_s8(wv[c]));
                prod = vmlal_high_s8(prod, av, wv[c]);
                acc[r][c] = vpadalq_s16(acc[r][c], prod);
            }
        }
        w += 32;
    }
}

#endif /* EDGEC_NEON_Q4_H */
