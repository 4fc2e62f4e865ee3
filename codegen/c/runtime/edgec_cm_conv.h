/*
 * edgec_cm_conv.h - convolution geometry shared by edgec's Cortex-M kernels (the DSP ones in
 * edgec_cm_dsp.h / edgec_cm_dsp_dw.h and the Helium ones in edgec_cm_mve.h). Part of edgec
 * (Apache-2.0).
 */
#ifndef EDGEC_CM_CONV_H
#define EDGEC_CM_CONV_H

#include <stdint.h>
#include <string.h>

/* Geometry of a 2-D NHWC convolution (batch 1; callers loop over the batch). */
typedef struct edgec_cm_conv_geometry {
    int32_t in_h, in_w, in_c;
    int32_t out_h, out_w, out_c;
    int32_t k_h, k_w;
    int32_t stride_h, stride_w;
    int32_t dilation_h, dilation_w;
    int32_t pad_top, pad_left;
} edgec_cm_conv_geometry;

/* ---- the depthwise kernels' lines (edgec_cm_dsp_dw.h, edgec_cm_mve.h) ----
 * The kernels walk the output along lines: its rows, or its columns when the output has more
 * rows than columns (DS-CNN's 25 x 5), so that the per-line work (filling the ring of input
 * lines) is shared by the longer side. A ring of EDGEC_CM_DW_SPAN input lines, each of
 * `width` cells from position -pad, holds the lines the current output line needs. */
#define EDGEC_CM_DW_SPAN(k, dilation) (((k) - 1) * (dilation) + 1)
#define EDGEC_CM_DW_WIDTH(out_len, stride, k, dilation) \
    (((out_len) - 1) * (stride) + EDGEC_CM_DW_SPAN(k, dilation))
#define EDGEC_CM_DW_COLUMNS(out_h, out_w) ((out_h) > (out_w))
/* Cells of the ring (lines x width) for a layer's output size, kernel, strides, dilations. */
#define EDGEC_CM_DW_CELLS(out_h, out_w, k_h, k_w, s_h, s_w, d_h, d_w)                      \
    (EDGEC_CM_DW_COLUMNS(out_h, out_w)                                                     \
         ? EDGEC_CM_DW_SPAN(k_w, d_w) * EDGEC_CM_DW_WIDTH(out_h, s_h, k_h, d_h)            \
         : EDGEC_CM_DW_SPAN(k_h, d_h) * EDGEC_CM_DW_WIDTH(out_w, s_w, k_w, d_w))

/* A depthwise layer seen as lines: sizes across (`lines`) and along (`len`) the lines of
 * input and output, taps, strides, dilations and padding in each direction, the steps in
 * elements between lines and along a line of input and output, the steps of the tap index
 * (row-major k_h x k_w) across and along, the ring's lines and width. */
typedef struct edgec_cm_dw_lines {
    int32_t in_lines, in_len, out_lines, out_len, k_line, k_len;
    int32_t stride_line, stride_len, dil_line, dil_len, pad_line, pad_len;
    int32_t x_line_step, x_len_step, y_line_step, y_len_step, tap_line, tap_len;
    int32_t span, width;
} edgec_cm_dw_lines;

static inline __attribute__((always_inline)) edgec_cm_dw_lines edgec_cm_dw_lines_of(
    const edgec_cm_conv_geometry *g)
{
    edgec_cm_dw_lines l;
    const int32_t c = g->in_c;
    if (EDGEC_CM_DW_COLUMNS(g->out_h, g->out_w)) {
        l.in_lines = g->in_w, l.in_len = g->in_h, l.out_lines = g->out_w, l.out_len = g->out_h;
        l.k_line = g->k_w, l.k_len = g->k_h, l.stride_line = g->stride_w;
        l.stride_len = g->stride_h, l.dil_line = g->dilation_w, l.dil_len = g->dilation_h;
        l.pad_line = g->pad_left, l.pad_len = g->pad_top, l.x_line_step = c;
        l.x_len_step = g->in_w * c, l.y_line_step = c, l.y_len_step = g->out_w * c;
        l.tap_line = 1, l.tap_len = g->k_w;
    } else {
        l.in_lines = g->in_h, l.in_len = g->in_w, l.out_lines = g->out_h, l.out_len = g->out_w;
        l.k_line = g->k_h, l.k_len = g->k_w, l.stride_line = g->stride_h;
        l.stride_len = g->stride_w, l.dil_line = g->dilation_h, l.dil_len = g->dilation_w;
        l.pad_line = g->pad_top, l.pad_len = g->pad_left, l.x_line_step = g->in_w * c;
        l.x_len_step = c, l.y_line_step = g->out_w * c, l.y_len_step = c;
        l.tap_line = g->k_w, l.tap_len = 1;
    }
    l.span = EDGEC_CM_DW_SPAN(l.k_line, l.dil_line);
    l.width = EDGEC_CM_DW_WIDTH(l.out_len, l.stride_len, l.k_len, l.dil_len);
    return l;
}

/* First and end (exclusive) tap index along one axis whose input lies inside [0, size). */
static inline void edgec_cm_dw_range(int32_t start, int32_t dilation, int32_t taps,
                                     int32_t size, int32_t *first, int32_t *end)
{
    const int32_t lo = start < 0 ? (-start + dilation - 1) / dilation : 0;
    const int32_t room = size - start;
    const int32_t hi = room <= 0 ? 0 : (room + dilation - 1) / dilation;
    *first = lo;
    *end = hi < taps ? hi : taps;
}

/* One pixel's receptive field as a row of K = k_h * k_w * in_c bytes (im2col) for the DSP and
 * Helium convolutions; taps outside the image hold the input zero point, which bias_eff
 * cancels. */
static inline __attribute__((always_inline)) void edgec_cm_im2col_row(
    const edgec_cm_conv_geometry *g, const int8_t *x, int32_t x_zp, int32_t pixel, int8_t *row)
{
    /* Geometry in locals: the int8 stores may alias *g. */
    const int32_t in_h = g->in_h, in_w = g->in_w, in_c = g->in_c, k_h = g->k_h, k_w = g->k_w;
    const int32_t dilation_h = g->dilation_h, dilation_w = g->dilation_w;
    const int32_t oy = pixel / g->out_w, ox = pixel % g->out_w;
    const int32_t iy0 = oy * g->stride_h - g->pad_top, ix0 = ox * g->stride_w - g->pad_left;
    const int row_inside = dilation_w == 1 && ix0 >= 0 && ix0 + k_w <= in_w;
    const size_t row_bytes = (size_t)k_w * (size_t)in_c;
    int32_t ky, kx;
    for (ky = 0; ky < k_h; ++ky) {
        const int32_t iy = iy0 + ky * dilation_h;
        if (iy < 0 || iy >= in_h) { /* a kernel row above or below the image */
            memset(row, (int)(int8_t)x_zp, row_bytes);
            row += row_bytes;
            continue;
        }
        if (row_inside) { /* the kernel row's taps are contiguous in NHWC: one copy */
            const int8_t *src = x + ((size_t)iy * (size_t)in_w + (size_t)ix0) * (size_t)in_c;
            if (row_bytes == 4u) {
                memcpy(row, src, 4u); /* one unaligned word (DS-CNN's 4 x 1 rows) */
            } else {
                memcpy(row, src, row_bytes);
            }
            row += row_bytes;
            continue;
        }
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

#endif /* EDGEC_CM_CONV_H */
