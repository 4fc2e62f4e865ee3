"""The Cortex-M int8 average pool, max pool and add kernels (codegen/c/runtime/edgec_cm_pool.h) under
qemu-system-arm on the DSP (cortex-m4, m7) and Helium (cortex-m55) targets, bit-exact with
Python-integer references: window sums in Python ints, then TFLite's
MultiplyByQuantizedMultiplier as its C++ writes it (tests/helpers.tflite_mbqm) or the
rounding division; ADD as TFLite's int8 reference kernel computes it. Shapes cover padding,
strides, dilation, channel tails, both averaging modes and windows over 256 taps (the int16
sums' flush)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import tflite_mbqm
from kernel_case import run_case

from edgec import qmath

TARGETS = ["cortex-m4-int8", "cortex-m7-int8", "cortex-m55-int8"]


def round_div(v: int, n: int) -> int:
    """Rounding division, ties away from zero."""
    return (v + n // 2) // n if v >= 0 else -((-v + n // 2) // n)


def axis_taps(size: int, k: int, stride: int, dil: int, pad: int, out: int) -> list[list[int]]:
    """In-image input indices of each output position's taps along one axis."""
    return [[o * stride - pad + t * dil for t in range(k) if 0 <= o * stride - pad + t * dil < size]
            for o in range(out)]


POOL_CASES = [  # h, w, c, k, stride, dilation, pads (top, left), out, mode, include_pad
    (7, 6, 13, (3, 3), (2, 2), (1, 1), (1, 1), (4, 3), "requantize", False),
    (8, 8, 20, (2, 2), (2, 2), (1, 1), (0, 0), (4, 4), "divide", False),
    (25, 5, 64, (25, 5), (1, 1), (1, 1), (0, 0), (1, 1), "requantize", False),  # DS-CNN's
    (20, 20, 5, (20, 20), (1, 1), (1, 1), (0, 0), (1, 1), "divide", False),  # 400 taps
    (9, 7, 17, (3, 3), (1, 1), (2, 1), (2, 1), (9, 7), "requantize", True),
]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("case", POOL_CASES)
def test_avgpool_bit_exact(tmp_path, target, case):
    h, w, c, k, stride, dil, pads, out, mode, include_pad = case
    rng = np.random.default_rng(h * 100 + c)
    x = rng.integers(-128, 128, (h, w, c)).astype(np.int8)
    x_zp = int(rng.integers(-20, 20))
    y_zp = x_zp if mode == "divide" else int(rng.integers(-20, 20))
    rows = axis_taps(h, k[0], stride[0], dil[0], pads[0], out[0])
    cols = axis_taps(w, k[1], stride[1], dil[1], pads[1], out[1])
    valid_h, valid_w = [len(r) for r in rows], [len(q) for q in cols]
    count_h = [k[0] if include_pad else v for v in valid_h]
    count_w = [k[1] if include_pad else v for v in valid_w]
    max_count = max(count_h) * max(count_w)
    mult, shift = qmath.quantize_multipliers(rng.uniform(0.5, 2.0) / np.arange(1, max_count + 1))
    lo, hi = -128, 127
    want = np.zeros((out[0], out[1], c), np.int8)
    for oy, r in enumerate(rows):
        for ox, q in enumerate(cols):
            count, valid = count_h[oy] * count_w[ox], valid_h[oy] * valid_w[ox]
            for ch in range(c):
                s = sum(int(x[iy, ix, ch]) for iy in r for ix in q)
                if mode == "divide":
                    v = round_div(s + (count - valid) * x_zp, count)
                else:
                    v = tflite_mbqm(s - valid * x_zp, int(mult[count - 1]),
                                    int(shift[count - 1])) + y_zp
                want[oy, ox, ch] = min(max(v, lo), hi)
    arrays = {"x": x, "count_h": np.array(count_h, np.int32),
              "count_w": np.array(count_w, np.int32), "valid_h": np.array(valid_h, np.int32),
              "valid_w": np.array(valid_w, np.int32), "mult": mult.astype(np.int32),
              "shift": shift.astype(np.int8)}
    body = (f"    const edgec_cm_conv_geometry g = {{{h}, {w}, {c}, {out[0]}, {out[1]}, {c}, "
            f"{k[0]}, {k[1]}, {stride[0]}, {stride[1]}, {dil[0]}, {dil[1]}, {pads[0]}, "
            f"{pads[1]}}};\n"
            f"    edgec_cm_avgpool_s8(&g, x, count_h, count_w, valid_h, valid_w, "
            f"{int(mode == 'divide')}, {x_zp}, mult, shift, 1, {y_zp}, {lo}, {hi}, kcase_out);")
    got, _ = run_case(tmp_path, target, "edgec_cm_pool.h", arrays, want.size, body)
    np.testing.assert_array_equal(got.reshape(want.shape), want)


MAX_CASES = [  # h, w, c, k, stride, dilation, pads (top, left), out
    (7, 6, 13, (3, 3), (2, 2), (1, 1), (1, 1), (4, 3)),
    (8, 8, 16, (2, 2), (2, 2), (1, 1), (0, 0), (4, 4)),
    (9, 7, 21, (3, 2), (1, 2), (2, 1), (2, 0), (9, 3)),
    (5, 5, 6, (5, 5), (1, 1), (1, 1), (0, 0), (1, 1)),  # global
]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("case", MAX_CASES)
def test_maxpool_bit_exact(tmp_path, target, case):
    """Against numpy's maximum over each window's in-image taps (padding never wins)."""
    h, w, c, k, stride, dil, pads, out = case
    rng = np.random.default_rng(h * 10 + c)
    x = rng.integers(-128, 128, (h, w, c)).astype(np.int8)
    x[0, 0, :] = -128
    rows = axis_taps(h, k[0], stride[0], dil[0], pads[0], out[0])
    cols = axis_taps(w, k[1], stride[1], dil[1], pads[1], out[1])
    want = np.stack([np.stack([x[np.ix_(r, q)].reshape(-1, c).max(0) for q in cols])
                     for r in rows])
    body = (f"    const edgec_cm_conv_geometry g = {{{h}, {w}, {c}, {out[0]}, {out[1]}, {c}, "
            f"{k[0]}, {k[1]}, {stride[0]}, {stride[1]}, {dil[0]}, {dil[1]}, {pads[0]}, "
            f"{pads[1]}}};\n    edgec_cm_maxpool_s8(&g, x, kcase_out);")
    got, _ = run_case(tmp_path, target, "edgec_cm_pool.h", {"x": x}, want.size, body)
    np.testing.assert_array_equal(got.reshape(want.shape), want)


def tflite_add(a: int, b: int, p: dict) -> int:
    """TFLite's int8 ADD reference (AddElementwise) in Python integers."""
    sa = tflite_mbqm((a - p["a_zp"]) << p["left_shift"], p["a_mult"], p["a_shift"])
    sb = tflite_mbqm((b - p["b_zp"]) << p["left_shift"], p["b_mult"], p["b_shift"])
    return min(max(tflite_mbqm(sa + sb, p["y_mult"], p["y_shift"]) + p["y_zp"], p["lo"]),
               p["hi"])


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("scales,count,relu", [((0.05, 0.02, 0.06), 37, False),
                                               ((0.01, 0.04, 0.03), 64, True),
                                               ((0.03, 0.03, 0.011), 101, False)])
def test_add_bit_exact(tmp_path, target, scales, count, relu):
    """Parameters as TFLite's PrepareGeneralSubOp derives them (left shift 20, inputs scaled
    by 1 / (2 max scale), the output by 2 max scale / (2^20 y scale))."""
    sa, sb, sy = scales
    rng = np.random.default_rng(count)
    twice_max = 2 * max(sa, sb)
    a_mult, a_shift = qmath.quantize_multiplier(sa / twice_max)
    b_mult, b_shift = qmath.quantize_multiplier(sb / twice_max)
    y_mult, y_shift = qmath.quantize_multiplier(twice_max / ((1 << 20) * sy))
    p = {"a_zp": int(rng.integers(-30, 30)), "b_zp": int(rng.integers(-30, 30)),
         "y_zp": int(rng.integers(-30, 30)), "left_shift": 20, "a_mult": a_mult,
         "a_shift": a_shift, "b_mult": b_mult, "b_shift": b_shift, "y_mult": y_mult,
         "y_shift": y_shift}
    p["lo"], p["hi"] = (p["y_zp"], 127) if relu else (-128, 127)
    a = rng.integers(-128, 128, count).astype(np.int8)
    b = rng.integers(-128, 128, count).astype(np.int8)
    a[:4], b[:4] = [-128, 127, -128, 127], [-128, 127, 127, -128]
    want = np.array([tflite_add(int(u), int(v), p) for u, v in zip(a, b)], np.int8)
    body = (f"    edgec_cm_add_s8(a, b, {count}, {p['a_zp']}, {p['b_zp']}, {1 << 20}, "
            f"{a_mult}, {a_shift}, {b_mult}, {b_shift}, {y_mult}, {y_shift}, {p['y_zp']}, "
            f"{p['lo']}, {p['hi']}, kcase_out);")
    got, _ = run_case(tmp_path, target, "edgec_cm_pool.h", {"a": a, "b": b}, count, body)
    np.testing.assert_array_equal(got, want)
