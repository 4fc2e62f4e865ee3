/*
 * edgec_x86_f32.h - AVX2 + FMA float32 micro-kernels of edgec's x86_64 layer functions.
 * Generated code includes this file; it is part of edgec (Apache-2.0).
 *
 * GEMM tiles. A layer's output channels are cut into panels of 16 columns (8 for a last
 * panel of at most 8 columns) whose weights edgec packs at compile time as [K][16] (or
 * [K][8]; columns past the layer's end are zero). A tile is up to 6 rows (output pixels) by
 * one panel, held in up to 12 ymm accumulators: step k broadcasts one activation per row
 * and issues 2 FMAs per row against row k of the panel (6 broadcasts + 2 loads per 12 FMAs;
 * 15 of the 16 ymm registers live). Rows are given as 6 pointers, row r's element k at
 * a[r][k * a_step], so one kernel serves pointwise convolution (rows = pixels), implicit-GEMM
 * convolution (one call per kernel tap or tap row, rows = the tap's input pixels, a zero row
 * for padding) and fully connected layers. `rows` and `nv` (vectors per row, 1 or 2) are
 * literals at every call site: the functions are forced inline, their loops unroll and the
 * tile struct lives in registers.
 *
 * Epilogue (edgec_f32_tile_store): residual add, then the activation, in registers, then a
 * store (masked for a panel's last columns). EDGEC_ACT_* names the activations that have a
 * vector form; sigmoid, silu and tanh are applied by the layer after the store.
 *
 * GEMV (batch-1 fully connected layers): edgec_f32_gemv_panel runs one row against a panel
 * of up to 64 columns packed [K][8 * nv]; the nv independent accumulators hide FMA latency
 * and the panel streams through memory once.
 */
#ifndef EDGEC_X86_F32_H
#define EDGEC_X86_F32_H

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__) || defined(__clang__)
#define EDGEC_X86_INLINE static inline __attribute__((always_inline))
#else
#define EDGEC_X86_INLINE static inline
#endif

#define EDGEC_F32_MR 6 /* rows of a GEMM tile */
#define EDGEC_F32_NR 16 /* columns of a GEMM panel */

enum {
    EDGEC_ACT_NONE = 0,
    EDGEC_ACT_RELU = 1,
    EDGEC_ACT_CLIP = 2, /* p0 = min, p1 = max */
    EDGEC_ACT_LEAKY_RELU = 3, /* p0 = alpha */
    EDGEC_ACT_PRELU = 4, /* slope[column] */
    EDGEC_ACT_HARDSWISH = 5,
    EDGEC_ACT_HARDSIGMOID = 6 /* p0 = alpha, p1 = beta */
};

/* Lane masks for the first n lanes of a vector: load 8 ints from edgec_f32_lanes + 8 - n. */
static const int32_t edgec_f32_lanes[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

EDGEC_X86_INLINE __m256i edgec_f32_mask(int n)
{
    return _mm256_loadu_si256((const __m256i *)(const void *)(edgec_f32_lanes + 8 - n));
}

/* Load n (1..8) floats; lanes past n are zero. n == 8 is a plain load. */
EDGEC_X86_INLINE __m256 edgec_f32_load_n(const float *p, int n)
{
    return n == 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, edgec_f32_mask(n));
}

/* Store the first n (1..8) lanes. */
EDGEC_X86_INLINE void edgec_f32_store_n(float *p, __m256 v, int n)
{
    if (n == 8) {
        _mm256_storeu_ps(p, v);
    } else {
        _mm256_maskstore_ps(p, edgec_f32_mask(n), v);
    }
}

/* The activation `act` on 8 lanes; slope holds the PReLU slopes of these lanes.
   NaN propagates, with the same bits as the scalar C epilogue (edgec/ops/epilogue.py):
   _mm256_max_ps(a, b) and _mm256_min_ps(a, b) return b when either is NaN, so the bound goes
   first and the value second; ReLU is v <= 0 ? +0 : v (a mask, so -0.0 gives +0.0). */
EDGEC_X86_INLINE __m256 edgec_f32_act(__m256 v, int act, float p0, float p1, __m256 slope)
{
    const __m256 zero = _mm256_setzero_ps();
    switch (act) {
    case EDGEC_ACT_RELU:
        return _mm256_and_ps(v, _mm256_cmp_ps(v, zero, _CMP_NLE_UQ));
    case EDGEC_ACT_CLIP:
        return _mm256_min_ps(_mm256_set1_ps(p1), _mm256_max_ps(_mm256_set1_ps(p0), v));
    case EDGEC_ACT_LEAKY_RELU:
        return _mm256_blendv_ps(_mm256_mul_ps(v, _mm256_set1_ps(p0)), v,
                                _mm256_cmp_ps(v, zero, _CMP_GE_OQ));
    case EDGEC_ACT_PRELU:
        return _mm256_blendv_ps(_mm256_mul_ps(v, slope), v, _mm256_cmp_ps(v, zero, _CMP_GE_OQ));
    case EDGEC_ACT_HARDSWISH: {
        __m256 h = _mm256_fmadd_ps(v, _mm256_set1_ps(0.166666672f), _mm256_set1_ps(0.5f));
        h = _mm256_min_ps(_mm256_max_ps(h, zero), _mm256_set1_ps(1.0f));
        return _mm256_mul_ps(v, h);
    }
    case EDGEC_ACT_HARDSIGMOID: {
        const __m256 h = _mm256_fmadd_ps(v, _mm256_set1_ps(p0), _mm256_set1_ps(p1));
        return _mm256_min_ps(_mm256_set1_ps(1.0f), _mm256_max_ps(zero, h));
    }
    default:
        return v;
    }
}

/* A GEMM tile: up to 6 rows x 2 vectors of accumulators. */
typedef struct {
    __m256 v[EDGEC_F32_MR][2];
} edgec_f32_tile;

/* Start every row from the panel's bias (8 * nv floats) or from zero (bias == NULL). */
EDGEC_X86_INLINE void edgec_f32_tile_init(edgec_f32_tile *t, int rows, int nv, const float *bias)
{
    int r;
    for (r = 0; r < rows; ++r) {
        t->v[r][0] = bias != NULL ? _mm256_loadu_ps(bias) : _mm256_setzero_ps();
        t->v[r][1] = bias != NULL && nv > 1 ? _mm256_loadu_ps(bias + 8) : _mm256_setzero_ps();
    }
}

/* acc[r] += a[r][i * a_step] * b[i * b_step + 0 : 8 * nv] for i < k. Packed panels have
   b_step = 8 * nv; a matrix read in place has b_step = its row length, and bcols (1..8) < 8
   masks the loads of the last vector at the matrix's right edge. */
EDGEC_X86_INLINE void edgec_f32_tile_fma(edgec_f32_tile *t, int rows, int nv,
                                         const float *const *a, size_t a_step,
                                         const float *b, size_t b_step, int bcols, size_t k)
{
    const float *a0 = a[0];
    const float *a1 = rows > 1 ? a[1] : a0;
    const float *a2 = rows > 2 ? a[2] : a0;
    const float *a3 = rows > 3 ? a[3] : a0;
    const float *a4 = rows > 4 ? a[4] : a0;
    const float *a5 = rows > 5 ? a[5] : a0;
    size_t i;
    for (i = 0; i < k; ++i) {
        const size_t ai = i * a_step;
        const float *bi = b + i * b_step;
        const __m256 b0 = edgec_f32_load_n(bi, nv > 1 ? 8 : bcols);
        const __m256 b1 = nv > 1 ? edgec_f32_load_n(bi + 8, bcols) : b0;
        __m256 x;
        x = _mm256_broadcast_ss(a0 + ai);
        t->v[0][0] = _mm256_fmadd_ps(x, b0, t->v[0][0]);
        if (nv > 1) {
            t->v[0][1] = _mm256_fmadd_ps(x, b1, t->v[0][1]);
        }
        if (rows > 1) {
            x = _mm256_broadcast_ss(a1 + ai);
            t->v[1][0] = _mm256_fmadd_ps(x, b0, t->v[1][0]);
            if (nv > 1) {
                t->v[1][1] = _mm256_fmadd_ps(x, b1, t->v[1][1]);
            }
        }
        if (rows > 2) {
            x = _mm256_broadcast_ss(a2 + ai);
            t->v[2][0] = _mm256_fmadd_ps(x, b0, t->v[2][0]);
            if (nv > 1) {
                t->v[2][1] = _mm256_fmadd_ps(x, b1, t->v[2][1]);
            }
        }
        if (rows > 3) {
            x = _mm256_broadcast_ss(a3 + ai);
            t->v[3][0] = _mm256_fmadd_ps(x, b0, t->v[3][0]);
            if (nv > 1) {
                t->v[3][1] = _mm256_fmadd_ps(x, b1, t->v[3][1]);
            }
        }
        if (rows > 4) {
            x = _mm256_broadcast_ss(a4 + ai);
            t->v[4][0] = _mm256_fmadd_ps(x, b0, t->v[4][0]);
            if (nv > 1) {
                t->v[4][1] = _mm256_fmadd_ps(x, b1, t->v[4][1]);
            }
        }
        if (rows > 5) {
            x = _mm256_broadcast_ss(a5 + ai);
            t->v[5][0] = _mm256_fmadd_ps(x, b0, t->v[5][0]);
            if (nv > 1) {
                t->v[5][1] = _mm256_fmadd_ps(x, b1, t->v[5][1]);
            }
        }
    }
}

/* Epilogue and store: row r goes to y + r * y_stride (8 * (nv - 1) + ncols columns, ncols in
   1..8 valid in the last vector), plus the residual at res + r * res_stride when res is not
   NULL, then the activation (slope: the panel's PReLU slopes, or NULL). */
EDGEC_X86_INLINE void edgec_f32_tile_store(const edgec_f32_tile *t, int rows, int nv, int ncols,
                                           float *y, size_t y_stride, const float *res,
                                           size_t res_stride, int act, float p0, float p1,
                                           const float *slope)
{
    const __m256 s0 = slope != NULL ? edgec_f32_load_n(slope, nv > 1 ? 8 : ncols)
                                    : _mm256_setzero_ps();
    const __m256 s1 = slope != NULL && nv > 1 ? edgec_f32_load_n(slope + 8, ncols)
                                              : _mm256_setzero_ps();
    int r;
    for (r = 0; r < rows; ++r) {
        float *yr = y + (size_t)r * y_stride;
        __m256 v0 = t->v[r][0];
        __m256 v1 = t->v[r][1];
        if (res != NULL) {
            const float *rr = res + (size_t)r * res_stride;
            if (nv > 1) {
                v0 = _mm256_add_ps(v0, _mm256_loadu_ps(rr));
                v1 = _mm256_add_ps(v1, edgec_f32_load_n(rr + 8, ncols));
            } else {
                v0 = _mm256_add_ps(v0, edgec_f32_load_n(rr, ncols));
            }
        }
        v0 = edgec_f32_act(v0, act, p0, p1, s0);
        if (nv > 1) {
            v1 = edgec_f32_act(v1, act, p0, p1, s1);
            _mm256_storeu_ps(yr, v0);
            edgec_f32_store_n(yr + 8, v1, ncols);
        } else {
            edgec_f32_store_n(yr, v0, ncols);
        }
    }
}

/* y[0 : ncols_total] = act(bias + a[0 : k] . b) for one row against one GEMV panel packed
   [k][8 * nv] (nv <= 8); ncols in 1..8 is the count of valid lanes of the last vector. */
EDGEC_X86_INLINE void edgec_f32_gemv_panel(int nv, int ncols, const float *a, const float *b,
                                           size_t k, const float *bias, float *y,
                                           const float *res, int act, float p0, float p1,
                                           const float *slope)
{
    __m256 acc[8];
    size_t i;
    int v;
    for (v = 0; v < nv; ++v) {
        acc[v] = bias != NULL ? edgec_f32_load_n(bias + 8 * v, v == nv - 1 ? ncols : 8)
                              : _mm256_setzero_ps();
    }
    for (i = 0; i < k; ++i) {
        const __m256 x = _mm256_broadcast_ss(a + i);
        const float *bi = b + i * (size_t)(8 * nv);
        for (v = 0; v < nv; ++v) {
            acc[v] = _mm256_fmadd_ps(x, _mm256_loadu_ps(bi + 8 * v), acc[v]);
        }
    }
    for (v = 0; v < nv; ++v) {
        const int n = v == nv - 1 ? ncols : 8;
        __m256 o = acc[v];
        if (res != NULL) {
            o = _mm256_add_ps(o, edgec_f32_load_n(res + 8 * v, n));
        }
        o = edgec_f32_act(o, act, p0, p1,
                          slope != NULL ? edgec_f32_load_n(slope + 8 * v, n) : _mm256_setzero_ps());
        edgec_f32_store_n(y + 8 * v, o, n);
    }
}

#endif /* EDGEC_X86_F32_H */
