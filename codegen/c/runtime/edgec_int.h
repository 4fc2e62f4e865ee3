/*
 * edgec_int.h - integer arithmetic with ONNX semantics for edgec's generated code.
 * Generated code includes this file; it is part of edgec (Apache-2.0).
 *
 * ONNX integer arithmetic wraps around (two's complement, as numpy and onnxruntime); in C a
 * signed overflow is undefined behaviour. These helpers compute in the unsigned type of the
 * same width, where wrap-around is defined, and convert back with edgec_i32_of/edgec_i64_of,
 * which are exact for every value (no implementation-defined conversion; compilers reduce
 * them to nothing). Narrower types (int8, int16, uint8) need no helper for + - * and negation:
 * C computes them in int, where they cannot overflow.
 *
 * What C leaves undefined is defined here (docs/robustness.md, "Integer semantics"):
 *   x / 0 = 0, x % 0 = 0 (numpy's results; onnxruntime stops with an error),
 *   INT_MIN / -1 = INT_MIN (wraps), INT_MIN % -1 = 0, -INT_MIN = abs(INT_MIN) = INT_MIN,
 *   pow(a, e): exact, wrapping, for e >= 0; for e < 0 the truncated real result
 *   (1, -1 or 0; 0 ** e = 0, as a division by zero).
 */
#ifndef EDGEC_INT_H
#define EDGEC_INT_H

#include <stdint.h>

#if defined(__GNUC__) || defined(__clang__)
#define EDGEC_INT_FN static inline __attribute__((unused))
#else
#define EDGEC_INT_FN static inline
#endif

/* The int32 with the bits of x (x - 2^32 when x > INT32_MAX), without an out-of-range cast. */
EDGEC_INT_FN int32_t edgec_i32_of(uint32_t x)
{
    return x <= (uint32_t)INT32_MAX ? (int32_t)x : -(int32_t)~x - 1;
}

/* The int64 with the bits of x. */
EDGEC_INT_FN int64_t edgec_i64_of(uint64_t x)
{
    return x <= (uint64_t)INT64_MAX ? (int64_t)x : -(int64_t)~x - 1;
}

EDGEC_INT_FN int32_t edgec_add_i32(int32_t a, int32_t b)
{
    return edgec_i32_of((uint32_t)a + (uint32_t)b);
}

EDGEC_INT_FN int32_t edgec_sub_i32(int32_t a, int32_t b)
{
    return edgec_i32_of((uint32_t)a - (uint32_t)b);
}

EDGEC_INT_FN int32_t edgec_mul_i32(int32_t a, int32_t b)
{
    return edgec_i32_of((uint32_t)a * (uint32_t)b);
}

EDGEC_INT_FN int32_t edgec_neg_i32(int32_t a)
{
    return edgec_i32_of(0u - (uint32_t)a);
}

EDGEC_INT_FN int32_t edgec_abs_i32(int32_t a)
{
    return a < 0 ? edgec_neg_i32(a) : a;
}

EDGEC_INT_FN int64_t edgec_add_i64(int64_t a, int64_t b)
{
    return edgec_i64_of((uint64_t)a + (uint64_t)b);
}

EDGEC_INT_FN int64_t edgec_sub_i64(int64_t a, int64_t b)
{
    return edgec_i64_of((uint64_t)a - (uint64_t)b);
}

EDGEC_INT_FN int64_t edgec_mul_i64(int64_t a, int64_t b)
{
    return edgec_i64_of((uint64_t)a * (uint64_t)b);
}

EDGEC_INT_FN int64_t edgec_neg_i64(int64_t a)
{
    return edgec_i64_of((uint64_t)0 - (uint64_t)a);
}

EDGEC_INT_FN int64_t edgec_abs_i64(int64_t a)
{
    return a < 0 ? edgec_neg_i64(a) : a;
}

/* Division truncating toward zero (C, ONNX); x / 0 = 0; x / -1 = -x, wrapping. */
EDGEC_INT_FN int32_t edgec_div_i32(int32_t a, int32_t b)
{
    return b == 0 ? 0 : (b == -1 ? edgec_neg_i32(a) : a / b);
}

EDGEC_INT_FN int64_t edgec_div_i64(int64_t a, int64_t b)
{
    return b == 0 ? 0 : (b == -1 ? edgec_neg_i64(a) : a / b);
}

/* Remainder with the dividend's sign (C %, ONNX Mod fmod=1); x % 0 = 0, x % -1 = 0. */
EDGEC_INT_FN int32_t edgec_fmod_i32(int32_t a, int32_t b)
{
    return b == 0 || b == -1 ? 0 : a % b;
}

EDGEC_INT_FN int64_t edgec_fmod_i64(int64_t a, int64_t b)
{
    return b == 0 || b == -1 ? 0 : a % b;
}

/* Remainder with the divisor's sign (Python, ONNX Mod fmod=0); x mod 0 = 0. r + b cannot
   overflow: it is only taken when r and b have opposite signs. */
EDGEC_INT_FN int32_t edgec_mod_i32(int32_t a, int32_t b)
{
    const int32_t r = edgec_fmod_i32(a, b);
    return r != 0 && (r < 0) != (b < 0) ? r + b : r;
}

EDGEC_INT_FN int64_t edgec_mod_i64(int64_t a, int64_t b)
{
    const int64_t r = edgec_fmod_i64(a, b);
    return r != 0 && (r < 0) != (b < 0) ? r + b : r;
}

/* a ** e by squaring in the unsigned type (exact, wrapping); e < 0: 1, -1 or 0. */
EDGEC_INT_FN int32_t edgec_pow_i32(int32_t a, int64_t e)
{
    uint32_t result = 1u, base = (uint32_t)a;
    if (e < 0) {
        return a == 1 ? 1 : (a == -1 ? (e % 2 != 0 ? -1 : 1) : 0);
    }
    for (; e != 0; e /= 2) {
        if (e % 2 != 0) {
            result *= base;
        }
        base *= base;
    }
    return edgec_i32_of(result);
}

EDGEC_INT_FN int64_t edgec_pow_i64(int64_t a, int64_t e)
{
    uint64_t result = 1u, base = (uint64_t)a;
    if (e < 0) {
        return a == 1 ? 1 : (a == -1 ? (e % 2 != 0 ? -1 : 1) : 0);
    }
    for (; e != 0; e /= 2) {
        if (e % 2 != 0) {
            result *= base;
        }
        base *= base;
    }
    return edgec_i64_of(result);
}

/* A double as int64 like edgec's Cast: truncated, NaN -> 0, saturated beyond int64. */
EDGEC_INT_FN int64_t edgec_i64_of_f64(double x)
{
    return x != x ? 0 : (x >= 9223372036854775808.0 ? INT64_MAX
                         : (x < -9223372036854775808.0 ? INT64_MIN : (int64_t)x));
}

#endif /* EDGEC_INT_H */
