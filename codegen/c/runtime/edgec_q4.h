/*
 * edgec_q4.h - int4 weights two per byte (W4A8, edgec --weight-bits 4), portable C99.
 *
 * Byte b of a packed row holds weight 2i in its low nibble and weight 2i + 1 in its high
 * nibble, two's complement (edgec writes [-7, 7]). ((n ^ 8) - 8) sign-extends a nibble n
 * without shifting a negative number. The arithmetic is the int8 one: an int4 weight is a
 * small int8 weight.
 */
#ifndef EDGEC_Q4_H
#define EDGEC_Q4_H

#include <stddef.h>
#include <stdint.h>

/* Weight i of a packed row. */
static inline int32_t edgec_q4_at(const uint8_t *row, size_t i)
{
    const uint32_t b = row[i >> 1];
    const uint32_t n = (i & 1u) ? (b >> 4) : (b & 15u);
    return (int32_t)(n ^ 8u) - 8;
}

/* sum_k x[k] * w[k] over k < count of one packed row (two weights per byte). */
static inline int32_t edgec_q4_dot(const int8_t *x, const uint8_t *row, size_t count)
{
    int32_t acc = 0;
    size_t i;
    for (i = 0; i + 1 < count; i += 2) {
        const uint32_t b = row[i >> 1];
        acc += (int32_t)x[i] * ((int32_t)((b & 15u) ^ 8u) - 8);
        acc += (int32_t)x[i + 1] * ((int32_t)((b >> 4) ^ 8u) - 8);
    }
    if (i < count) {
        acc += (int32_t)x[i] * edgec_q4_at(row, i);
    }
    return acc;
}

#endif /* EDGEC_Q4_H */
