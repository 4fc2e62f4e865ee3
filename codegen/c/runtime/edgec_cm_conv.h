/*
 * edgec_cm_conv.h - convolution geometry shared by edgec's Cortex-M kernels (the DSP ones in
 * edgec_cm_dsp.h / edgec_cm_dsp_dw.h and the Helium ones in edgec_cm_mve.h). Part of edgec
 * (Apache-2.0).
 */
#ifndef EDGEC_CM_CONV_H
#define EDGEC_CM_CONV_H

#include <stdint.h>

/* Geometry of a 2-D NHWC convolution (batch 1; callers loop over the batch). */
typedef struct edgec_cm_conv_geometry {
    int32_t in_h, in_w, in_c;
    int32_t out_h, out_w, out_c;
    int32_t k_h, k_w;
    int32_t stride_h, stride_w;
    int32_t dilation_h, dilation_w;
    int32_t pad_top, pad_left;
} edgec_cm_conv_geometry;

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

#endif /* EDGEC_CM_CONV_H */
