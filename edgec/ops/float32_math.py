"""exp, sigmoid and tanh in float32 from +, -, *, / (and exact floor / ldexp) in a fixed order.

int8 kernels that keep a float32 part (the hybrid QLSTM's gates and state) must give the
same bits on every target and in the numpy reference, so they cannot call libm's expf/tanhf
(whose last bit differs between libraries and ISAs). These functions use only correctly
rounded float32 operations in an order the C transcription (codegen/c/runtime/
edgec_f32_math.h) repeats; built with -ffp-contract=off the C equals this numpy code bit for
bit. Accuracy: a few float32 ulps (measured in tests/ops/test_quantized_lstm.py).

exp: k = floor(x log2(e) + 1/2), r = (x - k ln2_hi) - k ln2_lo (Cody-Waite: ln2_hi has 16
significant bits, so k ln2_hi is exact for |k| < 2^8), e^r by its Taylor series to r^7 in
Horner form (|r| <= 0.35: truncation below 2^-25 relative), times 2^k (exact).
sigmoid(x) = 1 / (1 + exp(-x)) on x clamped to [-30, 30]; tanh(x) = sign(x) (1 - e) / (1 + e)
with e = exp(-2|x|), |x| clamped to 15, and an odd Taylor polynomial to x^7 below 1/16
where 1 - e would cancel.
"""

from __future__ import annotations

import numpy as np

F = np.float32
LOG2E = F(1.44269504088896341)
LN2_HI = F(0.693145751953125)
LN2_LO = F(1.42860682030941723212e-6)
EXP_TAYLOR = [F(1.0 / n) for n in (5040, 720, 120, 24, 6, 2, 1, 1)]  # 1/7! ... 1/0!
SIGMOID_LIMIT = F(30.0)
TANH_LIMIT = F(15.0)
TANH_SMALL = F(0.0625)
TANH_TAYLOR = [F(-17.0 / 315.0), F(2.0 / 15.0), F(-1.0 / 3.0)]  # x^7, x^5, x^3


def exp32(x: np.ndarray) -> np.ndarray:
    """e^x in float32 for x in [-87, 87] (the callers clamp)."""
    x = np.asarray(x, F)
    k = np.floor(x * LOG2E + F(0.5)).astype(F)
    r = (x - k * LN2_HI) - k * LN2_LO
    p = EXP_TAYLOR[0]
    for c in EXP_TAYLOR[1:]:
        p = p * r + c
    return np.ldexp(p.astype(F), k.astype(np.int32)).astype(F)


def sigmoid32(x: np.ndarray) -> np.ndarray:
    """1 / (1 + e^-x) in float32."""
    x = np.clip(np.asarray(x, F), -SIGMOID_LIMIT, SIGMOID_LIMIT)
    return (F(1.0) / (F(1.0) + exp32(-x))).astype(F)


def tanh32(x: np.ndarray) -> np.ndarray:
    """tanh(x) in float32."""
    x = np.asarray(x, F)
    ax = np.minimum(np.abs(x), TANH_LIMIT)
    e = exp32(F(-2.0) * ax)
    big = (F(1.0) - e) / (F(1.0) + e)
    x2 = ax * ax
    poly = TANH_TAYLOR[0]
    for c in TANH_TAYLOR[1:]:
        poly = poly * x2 + c
    small = ax + ax * (x2 * poly)
    t = np.where(ax < TANH_SMALL, small, big).astype(F)
    return np.where(x < 0, -t, t).astype(F)
