/*
 * edgec_neon_f32.h - arm64 NEON float32 micro-kernels of edgec's layer functions.
 * Generated code includes this file; it is part of edgec (Apache-2.0).
 *
 * GEMM tile. Output channels are cut into panels of 8 columns whose weights edgec packs at
 * compile time as [K][8] (columns past the layer's end are zero). A tile is up to 8 rows
 * (output pixels) by one panel, held in 16 float32x4 accumulators. Every 4 steps of k load
 * one float32x4 of activations per row and 8 panel vectors (two four-register loads), then
 * issue 8 fused multiply-adds per row by lane (vfmaq_laneq_f32): 10 loads per 64 FMAs, 25 of
 * the 32 vector registers live. Rows are pointers (row r's element k at a[r][k]), so one kernel serves pointwise
 * convolution and fully connected layers (rows = pixels) and implicit-GEMM convolution (one
 * call per kernel tap, rows = the tap's input pixels, a zero row for padding). `rows` is a
 * literal at every call site: the function is forced inline, its row loops unroll and the
 * accumulator array lives in registers.
 *
 * The epilogue (residual add, activation) runs in registers in the layer's template; it is
 * C generated per layer, so this header holds only the loops every layer shares.
 */
#ifndef EDGEC_NEON_F32_H
#define EDGEC_NEON_F32_H

#include <arm_neon.h>
#include <stddef.h>

#if defined(__GNUC__) || defined(__clang__)
#define EDGEC_NEON_INLINE static inline __attribute__((always_inline))
#else
#define EDGEC_NEON_INLINE static inline
#endif

#define EDGEC_F32_TILE_ROWS 8 /* rows (pixels) of a GEMM tile */
#define EDGEC_F32_PANEL 8 /* columns (output channels) of a weight panel */

/* acc[r][0..1] += sum over k < K of a[r][k] * panel[k][0..7], for r < rows (<= 8). */
EDGEC_NEON_INLINE void edgec_f32_tile(float32x4_t acc[EDGEC_F32_TILE_ROWS][2], size_t rows,
                                      const float *const *a, const float *panel, size_t K)
{
    size_t k = 0;
    size_t r;
    for (; k + 4u <= K; k += 4u) {
        const float32x4x4_t b01 = vld1q_f32_x4(panel);
        const float32x4x4_t b23 = vld1q_f32_x4(panel + 16);
        const float32x4_t b0l = b01.val[0];
        const float32x4_t b0h = b01.val[1];
        const float32x4_t b1l = b01.val[2];
        const float32x4_t b1h = b01.val[3];
        const float32x4_t b2l = b23.val[0];
        const float32x4_t b2h = b23.val[1];
        const float32x4_t b3l = b23.val[2];
        const float32x4_t b3h = b23.val[3];
        for (r = 0; r < rows; ++r) {
            const float32x4_t av = vld1q_f32(a[r] + k);
            acc[r][0] = vfmaq_laneq_f32(acc[r][0], b0l, av, 0);
            acc[r][1] = vfmaq_laneq_f32(acc[r][1], b0h, av, 0);
            acc[r][0] = vfmaq_laneq_f32(acc[r][0], b1l, av, 1);
            acc[r][1] = vfmaq_laneq_f32(acc[r][1], b1h, av, 1);
            acc[r][0] = vfmaq_laneq_f32(acc[r][0], b2l, av, 2);
            acc[r][1] = vfmaq_laneq_f32(acc[r][1], b2h, av, 2);
            acc[r][0] = vfmaq_laneq_f32(acc[r][0], b3l, av, 3);
            acc[r][1] = vfmaq_laneq_f32(acc[r][1], b3h, av, 3);
        }
        panel += 32;
    }
    for (; k < K; ++k) {
        const float32x4_t bl = vld1q_f32(panel);
        const float32x4_t bh = vld1q_f32(panel + 4);
        for (r = 0; r < rows; ++r) {
            const float32x4_t av = vld1q_dup_f32(a[r] + k);
            acc[r][0] = vfmaq_f32(acc[r][0], bl, av);
            acc[r][1] = vfmaq_f32(acc[r][1], bh, av);
        }
        panel += 8;
    }
}

/* Start every row of a tile from the panel's 8 bias values. */
EDGEC_NEON_INLINE void edgec_f32_tile_init(float32x4_t acc[EDGEC_F32_TILE_ROWS][2],
                                           size_t rows, const float *bias8)
{
    const float32x4_t lo = vld1q_f32(bias8);
    const float32x4_t hi = vld1q_f32(bias8 + 4);
    size_t r;
    for (r = 0; r < rows; ++r) {
        acc[r][0] = lo;
        acc[r][1] = hi;
    }
}

#endif /* EDGEC_NEON_F32_H */
