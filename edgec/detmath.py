"""Host-independent float arithmetic for everything that decides int8 bits.

Why: calibration statistics, lookup tables and int8 scales must come out bit-identical on
every machine (an AVX2 host, an AVX-512 host, an arm64 laptop), or a golden recorded on one
fails on another. Two numpy facilities are *not* host-independent:

- numpy's transcendental ufuncs (exp, log, tanh, expm1, log1p, power...) dispatch at run time
  to SIMD implementations (AVX512F/SKX via SVML, AVX2/FMA3, or the C library), which differ
  in the last bit;
- BLAS products (matmul, dot, einsum with optimize, torch convolutions) sum in an order that
  depends on the CPU kernel OpenBLAS/oneDNN picks (OPENBLAS_CORETYPE, ATEN_CPU_CAPABILITY).

The argument that the functions below cannot depend on the host:

1. They use only numpy elementwise +, -, *, / (IEEE 754 correctly rounded in float64, each a
   separate ufunc call, so nothing is contracted into an FMA), `rint` (exact), comparisons,
   `where`, `abs`, `max` (exact), multiplication by exact powers of two (exact, or correctly
   rounded below the normal range), and a fixed evaluation order written out in Python. A
   correctly rounded operation has exactly one result, whatever instructions compute it.
2. Products of matrices (`exact_matmul`) round each operand onto an integer grid first (a
   power of two per row of A and per column of B, chosen from that row or column alone, so
   a row's result does not depend on what it is batched with). With at most `bits` bits per
   operand and K terms, every product and every partial sum is an integer of magnitude
   <= K * 2^(bits_a + bits_b) <= 2^53, exactly representable in float64: any summation
   order, blocking, SIMD width or FMA gives the exact sum, so BLAS is free to do as it likes.
   The grid costs accuracy only below 2^-(bits) of the row's largest value (>= 2^-13 even
   for K = 2^26); calibration needs 2^-8.
3. Sums along an axis (np.sum/np.mean/np.cumsum) are plain additions: numpy's pairwise and
   sequential summation loops fix the order by the array's length and strides, not by the
   ISA (no multiplications, so no FMA contraction; compilers do not reassociate without
   -ffast-math). tests/quant/test_host_independence.py checks this claim under forced
   feature sets.

`deterministic_math()` swaps these functions in for numpy's transcendental ufuncs while
calibration runs and while lookup tables are built; results are float64, rounded once to
the caller's dtype. Accuracy: within a few float64 ulps (far below float32's resolution).
"""

from __future__ import annotations

import contextlib
import math

import numpy as np

LN2_HI = 6.93147180369123816490e-01  # ln 2 with 21 trailing zero bits: n * LN2_HI is exact
LN2_LO = 1.90821492927058770002e-10
INV_LN2 = 1.44269504088896338700e+00
SQRT_HALF = 0.70710678118654752440
EXP_TERMS = 14  # Taylor terms of exp(r), |r| <= ln2/2: truncation below 2^-60
EXP_MAX, EXP_MIN = 709.78, -745.2


def _f64(x) -> tuple[np.ndarray, np.dtype | None]:
    """x as a float64 array, and the float dtype to return (None: float64)."""
    arr = np.asarray(x)
    out = arr.dtype if arr.dtype.kind == "f" and arr.dtype != np.float64 else None
    return arr.astype(np.float64), out


def _ret(y: np.ndarray, dtype):
    y = y if dtype is None else y.astype(dtype)
    return y[()] if y.ndim == 0 else y


def _pow2(n: np.ndarray) -> np.ndarray:
    """2.0**n exactly for integer n in [-1022, 1023] (built from the exponent bits)."""
    return ((n.astype(np.int64) + 1023) << 52).view(np.float64)


def _exp_reduced(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(p, n) with exp(x) = p * 2^n, p in [0.7, 1.42]; x finite and in [EXP_MIN, EXP_MAX]."""
    n = np.rint(x * INV_LN2)
    r = (x - n * LN2_HI) - n * LN2_LO
    p = np.full_like(r, 1.0 / math.factorial(EXP_TERMS))
    for k in range(EXP_TERMS - 1, -1, -1):  # Horner, highest degree first
        p = p * r + 1.0 / math.factorial(k)
    return p, n


def _scale_pow2(p: np.ndarray, n: np.ndarray) -> np.ndarray:
    """p * 2^n with two exact power-of-two factors (correctly rounded when subnormal)."""
    n1 = np.clip(n // 2, -1022, 1023)
    return p * _pow2(n1) * _pow2(np.clip(n - n1, -1022, 1023))


def exp(x):
    """e^x, deterministic (see the module docstring)."""
    x, dt = _f64(x)
    with np.errstate(all="ignore"):
        xc = np.clip(np.where(np.isnan(x), 0.0, x), EXP_MIN, EXP_MAX)
        p, n = _exp_reduced(xc)
        y = _scale_pow2(p, n)
        y = np.where(x > EXP_MAX, np.inf, np.where(x < EXP_MIN, 0.0, y))
        y = np.where(np.isnan(x), np.nan, y)
    return _ret(y, dt)


def expm1(x):
    """e^x - 1 with full relative accuracy near 0."""
    x, dt = _f64(x)
    with np.errstate(all="ignore"):
        small = np.abs(x) < 0.5
        xs = np.where(small, x, 0.0)
        s = np.full_like(xs, 1.0 / math.factorial(EXP_TERMS + 4))
        for k in range(EXP_TERMS + 3, 0, -1):  # x + x^2/2! + ... (Horner)
            s = s * xs + 1.0 / math.factorial(k)
        s = s * xs
        y = np.where(small, s, _f64(exp(x))[0] - 1.0)
    return _ret(y, dt)


def _atanh_series(s: np.ndarray) -> np.ndarray:
    """2 * atanh(s) = 2(s + s^3/3 + s^5/5 + ...), |s| <= 0.1716 (terms to s^27)."""
    s2 = s * s
    acc = np.full_like(s, 1.0 / 27.0)
    for k in range(25, 0, -2):
        acc = acc * s2 + 1.0 / k
    return 2.0 * (s * acc)


def log(x):
    """Natural logarithm (nan below 0, -inf at 0, inf at inf)."""
    x, dt = _f64(x)
    with np.errstate(all="ignore"):
        ok = np.isfinite(x) & (x > 0)
        xs = np.where(ok, x, 1.0)
        m, e = np.frexp(xs)  # exact: xs = m * 2^e, m in [0.5, 1)
        low = m < SQRT_HALF
        m = np.where(low, m * 2.0, m)
        e = np.where(low, e - 1, e).astype(np.float64)
        f = m - 1.0  # exact (Sterbenz)
        y = e * LN2_HI + (e * LN2_LO + _atanh_series(f / (2.0 + f)))
        y = np.where(ok, y, np.where(x == 0, -np.inf, np.where(x == np.inf, np.inf, np.nan)))
    return _ret(y, dt)


def log1p(x):
    """log(1 + x) with full relative accuracy near 0."""
    x, dt = _f64(x)
    with np.errstate(all="ignore"):
        small = (x > SQRT_HALF - 1.0) & (x < 1.0 / SQRT_HALF - 1.0)
        xs = np.where(small, x, 0.0)
        y = np.where(small, _atanh_series(xs / (2.0 + xs)), _f64(log(1.0 + x))[0])
    return _ret(y, dt)


def tanh(x):
    """Hyperbolic tangent: expm1(2|x|) / (expm1(2|x|) + 2), sign restored."""
    x, dt = _f64(x)
    with np.errstate(all="ignore"):
        a = np.minimum(np.abs(x), 20.0)  # tanh(20) rounds to 1 in float64
        t = _f64(expm1(2.0 * a))[0]
        y = np.where(np.abs(x) >= 20.0, 1.0, t / (t + 2.0))
        y = np.where(x < 0, -y, y)
        y = np.where(np.isnan(x), np.nan, y)
    return _ret(y, dt)


def exact_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b (numpy broadcasting rules, 2-D or batched) computed exactly on a per-row /
    per-column integer grid, so the float64 result is the same whatever BLAS kernel runs."""
    a = np.asarray(a)
    b = np.asarray(b)
    if a.dtype not in (np.float32, np.float64):
        a = a.astype(np.float64)
    if b.dtype not in (np.float32, np.float64):
        b = b.astype(np.float64)
    squeeze_a, squeeze_b = a.ndim == 1, b.ndim == 1
    if squeeze_a:
        a = a[None]
    if squeeze_b:
        b = b[:, None]
    k = a.shape[-1]
    bits_total = 53 - max(1, math.ceil(math.log2(max(k, 2))))
    bits_a = bits_total // 2
    bits_b = bits_total - bits_a
    with np.errstate(all="ignore"):
        # max, abs and frexp are exact, in float32 as in float64
        ea = np.frexp(np.max(np.abs(a), axis=-1, keepdims=True, initial=0.0)  # K = 0 too
                      .astype(np.float64))[1]
        eb = np.frexp(np.max(np.abs(b), axis=-2, keepdims=True, initial=0.0)
                      .astype(np.float64))[1]
        ai = np.multiply(a, _pow2(np.clip(bits_a - ea, -1022, 1023)), dtype=np.float64)
        np.rint(ai, out=ai)  # onto the grid: |ai| <= 2^bits_a
        bi = np.multiply(b, _pow2(np.clip(bits_b - eb, -1022, 1023)), dtype=np.float64)
        np.rint(bi, out=bi)
        y = np.matmul(ai, bi)  # exact: integers, every partial sum below 2^53
        # back to real units: two power-of-two factors, row then column (exact unless the
        # result leaves the normal range; correctly rounded, hence deterministic, even then)
        y *= _pow2(np.clip(ea - bits_a, -1022, 1023))
        y *= _pow2(np.clip(eb - bits_b, -1022, 1023))
    if squeeze_a:
        y = y[..., 0, :]
    if squeeze_b:
        y = y[..., 0]
    return y


_UFUNCS = {"exp": exp, "expm1": expm1, "log": log, "log1p": log1p, "tanh": tanh}


@contextlib.contextmanager
def deterministic_math():
    """Within the block, numpy's exp/expm1/log/log1p/tanh (module attributes, as the op
    references call them) are the deterministic versions above. Not thread-safe; edgec
    runs references on one thread."""
    saved = {name: getattr(np, name) for name in _UFUNCS}
    try:
        for name, fn in _UFUNCS.items():
            setattr(np, name, fn)
        yield
    finally:
        for name, fn in saved.items():
            setattr(np, name, fn)
