"""Integer arithmetic with edgec's defined semantics, in numpy: the reference of the C
helpers in codegen/c/runtime/edgec_int.h (docs/robustness.md, "Integer semantics").

+ - * and negation wrap (numpy's integer arrays already do). Division truncates toward zero;
x / 0 = 0 and x % 0 = 0 (onnxruntime stops with an error there, C is undefined);
INT_MIN / -1 wraps to INT_MIN. Pow is exact and wraps for exponents >= 0; a negative
exponent gives the truncated real result (1, -1 or 0, and 0 for a zero base).
"""

from __future__ import annotations

import numpy as np


def int_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a / b truncated toward zero, in a's dtype; x / 0 = 0, INT_MIN / -1 = INT_MIN."""
    a, b = np.broadcast_arrays(np.asarray(a), np.asarray(b).astype(np.asarray(a).dtype))
    zero = b == 0
    safe = np.where(zero, 1, b).astype(a.dtype)
    with np.errstate(all="ignore"):
        q = np.floor_divide(a, safe)  # numpy wraps INT_MIN // -1 to INT_MIN
        r = a - q * safe
        q = q + ((r != 0) & ((a < 0) != (safe < 0))).astype(a.dtype)  # floor -> trunc
    return np.where(zero, 0, q).astype(a.dtype)


def int_mod(a: np.ndarray, b: np.ndarray, fmod: bool) -> np.ndarray:
    """ONNX Mod on integers: the divisor's sign (fmod=0) or the dividend's (fmod=1); x % 0 = 0."""
    a, b = np.broadcast_arrays(np.asarray(a), np.asarray(b).astype(np.asarray(a).dtype))
    trivial = b == 0
    if a.dtype.kind == "i":
        trivial |= b == -1
    safe = np.where(trivial, 1, b).astype(a.dtype)
    with np.errstate(all="ignore"):
        r = np.fmod(a, safe) if fmod else np.mod(a, safe)
    return np.where(trivial, 0, r).astype(a.dtype)


def int_pow(a: np.ndarray, e: np.ndarray) -> np.ndarray:
    """a ** e for an integer base and integer exponent, in a's dtype (see the module doc)."""
    a = np.asarray(a)
    a_b, e_b = np.broadcast_arrays(a, np.asarray(e).astype(np.int64))
    base = a_b.astype(np.int64).astype(np.uint64)
    bits = np.where(e_b < 0, 0, e_b).astype(np.uint64)
    result = np.ones(a_b.shape, np.uint64)
    with np.errstate(all="ignore"):
        for _ in range(64):
            result = np.where(bits & np.uint64(1), result * base, result)
            base = base * base
            bits = bits >> np.uint64(1)
    wide = a_b.astype(np.int64)
    negative = np.where(wide == 1, 1, np.where(wide == -1, np.where(e_b % 2 != 0, -1, 1), 0))
    out = np.where(e_b < 0, negative.astype(np.int64).astype(np.uint64), result)
    return out.astype(a.dtype)


INT64_LIMIT = 2.0 ** 63


def cast_np(x: np.ndarray, to: np.dtype) -> np.ndarray:
    """numpy cast with C-defined float->int: truncate, NaN -> 0, saturate to int64, wrap."""
    to = np.dtype(to)
    if x.dtype.kind != "f" or to.kind not in "iu":
        return x.astype(to)
    with np.errstate(invalid="ignore"):
        t = np.trunc(x.astype(np.float64))
        t = np.where(np.isnan(t), 0.0, t)
        big, small = t >= INT64_LIMIT, t < -INT64_LIMIT
        y = np.where(big | small, 0.0, t).astype(np.int64)
    y = np.where(big, np.iinfo(np.int64).max, np.where(small, np.iinfo(np.int64).min, y))
    return y.astype(to)
