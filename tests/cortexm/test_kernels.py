"""The Cortex-M int8 kernels (codegen/c/runtime/edgec_cm_dsp.h for ARMv7E-M DSP,
edgec_cm_mve.h for Helium) run under qemu-system-arm, bit-exact with a numpy integer
reference of the same math: int8 x times int8 w accumulated in int64 on top of bias_eff,
then edgec/qmath.py's single-rounding requantisation, zero point and clamp. Shapes cover
the 2x2 blocks and every leftover path (odd rows and channels, K % 4 and K % 16 tails,
channel tails of the depthwise loop, padding), per-channel and per-tensor multipliers.
"""

from __future__ import annotations

import numpy as np
import pytest
from edgec.codegen.c.isa.cortexm import (
    pack_dsp_depthwise_weights,
    pack_dsp_gemm_weights,
    pack_mve_depthwise_weights,
    pack_mve_gemm_weights,
)
from kernel_case import run_case

from edgec import qmath

DSP = ("edgec_cm_dsp.h", "edgec_cm", ("cortex-m4-int8", "cortex-m7-int8"))
MVE = ("edgec_cm_mve.h", "edgec_cm_mve", ("cortex-m55-int8",))
FAMILIES = [(DSP[0], DSP[1], t) for t in DSP[2]] + [(MVE[0], MVE[1], t) for t in MVE[2]]


def requant_params(rng, n: int, per_channel: bool):
    """Fixed-point multipliers of real multipliers in a typical range (edgec_cm_mbqm's short
    path) or, one case in three, around 1 (its edgec_mbqm path), zero point, clamp."""
    low, high = (0.2, 1.5) if rng.random() < 1 / 3 else (2e-4, 3e-2)
    reals = rng.uniform(low, high, n if per_channel else 1)
    mult, shift = qmath.quantize_multipliers(reals)
    y_zp = int(rng.integers(-20, 20))
    lo, hi = (y_zp, 127) if rng.random() < 0.5 else (-128, 127)
    return mult, shift, y_zp, lo, hi


def reference_out(acc, mult, shift, y_zp, lo, hi):
    """edgec's requantisation of int64 accumulators [..., n]."""
    return qmath.requantize(acc, mult, shift, y_zp, lo, hi).astype(np.int8)


def weights(rng, shape):
    """Per-channel symmetric int8 weights: [-127, 127]."""
    return rng.integers(-127, 128, shape).astype(np.int8)


def c_requant_args(per_channel: bool, y_zp: int, lo: int, hi: int, acc30: bool = False) -> str:
    """The requantisation arguments; `acc30`: the DSP kernels' EDGEC_CM_ACC30 flag (the
    cases' accumulators stay far below 2^30)."""
    return f"mult, shift, {int(per_channel) | (2 if acc30 else 0)}, {y_zp}, {lo}, {hi}"


@pytest.mark.parametrize("target", ["cortex-m4-int8", "cortex-m55-int8"])
def test_requantisation_short_path_is_exact(tmp_path, target):
    """edgec_cm_mbqm against qmath.multiply_by_quantized_multiplier over every shift in
    [-31, 30], extreme and random accumulators and multipliers."""
    rng = np.random.default_rng(11)
    shifts = np.repeat(np.arange(-31, 31), 40).astype(np.int32)
    mults = rng.integers(1 << 30, (1 << 31) - 1, shifts.size, dtype=np.int64).astype(np.int32)
    accs = rng.integers(-(1 << 31), (1 << 31) - 1, shifts.size, dtype=np.int64)
    accs[::7] = rng.integers(-5000, 5000, accs[::7].size)
    accs[::11] = -(1 << 31)
    accs[::13] = (1 << 31) - 1
    accs = accs.astype(np.int32)
    want = qmath.multiply_by_quantized_multiplier(accs, mults, shifts).astype(np.int32)
    body = "\n".join([
        f"    for (int i = 0; i < {accs.size}; ++i) {{",
        "        const int32_t r = edgec_cm_mbqm(acc[i], mult[i], (int)shift[i]);",
        "        memcpy(kcase_out + 4 * i, &r, 4);",
        "    }"])
    got, _ = run_case(tmp_path, target, "edgec_cm_requant.h",
                      {"acc": accs, "mult": mults, "shift": shifts}, 4 * accs.size, body)
    np.testing.assert_array_equal(got.view(np.int32), want)


GEMM_SHAPES = [(2, 4, 2), (5, 19, 7), (8, 64, 12), (1, 33, 3), (6, 100, 10), (3, 24, 37), (3, 40, 70)]


@pytest.mark.parametrize("header,fn,target", FAMILIES)
@pytest.mark.parametrize("rows,k,n", GEMM_SHAPES)
def test_gemm_bit_exact(tmp_path, header, fn, target, rows, k, n):
    rng = np.random.default_rng(rows * 1000 + k * 10 + n)
    per_channel = (rows + n) % 2 == 0
    x = rng.integers(-128, 128, (rows, k)).astype(np.int8)
    w = weights(rng, (n, k))
    bias = rng.integers(-30000, 30000, n).astype(np.int32)
    mult, shift, y_zp, lo, hi = requant_params(rng, n, per_channel)
    acc = x.astype(np.int64) @ w.astype(np.int64).T + bias
    want = reference_out(acc, mult, shift, y_zp, lo, hi)
    dsp = fn == "edgec_cm"  # DSP: int16-pair weights packed at compile time, scratch
    scratch = ", (int32_t *)(void *)kcase_scratch" if dsp else ""
    body = (f"    {fn}_gemm_s8(x, {rows}, {k}, w, {n}, bias, "
            f"{c_requant_args(per_channel, y_zp, lo, hi, dsp and rows % 2 == 1)}, "
            f"kcase_out{scratch});")
    got, _ = run_case(tmp_path, target, header,
                      {"x": x, "w": (pack_dsp_gemm_weights if dsp else pack_mve_gemm_weights)(w),
                       "bias": bias,
                       "mult": mult, "shift": shift}, rows * n, body,
                      scratch=4 * dsp_scratch_words(k, n))
    np.testing.assert_array_equal(got.reshape(rows, n), want)


@pytest.mark.parametrize("target", DSP[2])
@pytest.mark.parametrize("per_channel", [True, False])
def test_dsp_gemm_requantised_from_registers(tmp_path, target, per_channel):
    """edgec_cm_gemm_s8's common case (both rows, channels in fours, shifts in [-31, -2],
    the full int8 range, EDGEC_CM_ACC30): requantised straight from the block's registers;
    5 rows (two pairs and a single row, which takes the other path), 36 channels (a chunk of
    32 and one of 4)."""
    rng = np.random.default_rng(36 + per_channel)
    rows, k, n = 5, 64, 36
    x = rng.integers(-128, 128, (rows, k)).astype(np.int8)
    w = weights(rng, (n, k))
    bias = rng.integers(-30000, 30000, n).astype(np.int32)
    mult, shift = qmath.quantize_multipliers(rng.uniform(2e-4, 3e-2, n if per_channel else 1))
    assert np.all((shift >= -31) & (shift <= -2))
    y_zp = int(rng.integers(-20, 20))
    acc = x.astype(np.int64) @ w.astype(np.int64).T + bias
    want = reference_out(acc, mult, shift, y_zp, -128, 127)
    body = (f"    edgec_cm_gemm_s8(x, {rows}, {k}, w, {n}, bias, mult, shift, "
            f"{int(per_channel)} | EDGEC_CM_ACC30 | EDGEC_CM_FAST_SHIFTS, {y_zp}, -128, 127, "
            "kcase_out, (int32_t *)(void *)kcase_scratch);")
    got, _ = run_case(tmp_path, target, "edgec_cm_dsp.h",
                      {"x": x, "w": pack_dsp_gemm_weights(w), "bias": bias, "mult": mult,
                       "shift": shift}, rows * n, body, scratch=4 * dsp_scratch_words(k, n))
    np.testing.assert_array_equal(got.reshape(rows, n), want)


def dsp_scratch_words(k: int, n: int) -> int:
    """EDGEC_CM_GEMM_SCRATCH_WORDS of edgec_cm_dsp.h."""
    return -(-k // 8) * 8 + 2 * (-(-n // 4) * 4)


def conv_reference(x, x_zp, w_hwio, bias, stride, dilation, pads, depthwise):
    """int64 accumulators [oh, ow, m] of an NHWC convolution with zero-point padding.
    w_hwio: [kh, kw, cin, m] for a regular conv, [kh, kw, c] for depthwise."""
    kh, kw = w_hwio.shape[:2]
    h, wd, c = x.shape
    top, left, bottom, right = pads
    xp = np.full((h + top + bottom, wd + left + right, c), x_zp, np.int64)
    xp[top:top + h, left:left + wd] = x
    oh = (h + top + bottom - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (wd + left + right - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    m = c if depthwise else w_hwio.shape[3]
    acc = np.zeros((oh, ow, m), np.int64) + bias
    for ky in range(kh):
        for kx in range(kw):
            patch = xp[ky * dilation[0]:ky * dilation[0] + stride[0] * (oh - 1) + 1:stride[0],
                       kx * dilation[1]:kx * dilation[1] + stride[1] * (ow - 1) + 1:stride[1]]
            if depthwise:
                acc += patch * w_hwio[ky, kx].astype(np.int64)
            else:
                acc += patch @ w_hwio[ky, kx].astype(np.int64)
    return acc


def geometry_c(name, h, wd, c, oh, ow, m, kh, kw, stride, dilation, pads) -> str:
    return (f"    const {name} g = {{{h}, {wd}, {c}, {oh}, {ow}, {m}, {kh}, {kw}, "
            f"{stride[0]}, {stride[1]}, {dilation[0]}, {dilation[1]}, {pads[0]}, {pads[1]}}};")


def dw_ring_cells(oh, ow, k, stride, dilation) -> int:
    """Cells of the depthwise kernels' ring: lines along the longer output side."""
    if oh > ow:  # columns
        return ((k[1] - 1) * dilation[1] + 1) * ((oh - 1) * stride[0] + (k[0] - 1) * dilation[0] + 1)
    return ((k[0] - 1) * dilation[0] + 1) * ((ow - 1) * stride[1] + (k[1] - 1) * dilation[1] + 1)


DW_CASES = [  # h, w, c, k, stride, dilation, pads (top, left, bottom, right)
    (5, 5, 8, (3, 3), (1, 1), (1, 1), (1, 1, 1, 1)),
    (7, 6, 13, (3, 3), (2, 2), (1, 1), (0, 1, 1, 1)),
    (6, 5, 21, (5, 3), (1, 2), (1, 1), (2, 1, 2, 1)),
    (9, 9, 4, (3, 3), (1, 1), (2, 2), (2, 2, 2, 2)),
    (11, 4, 12, (3, 3), (1, 1), (1, 1), (1, 1, 1, 1)),  # taller than wide: lines are columns
    (9, 5, 19, (3, 3), (2, 1), (1, 1), (1, 1, 1, 1)),
    (10, 3, 8, (5, 3), (1, 1), (1, 2), (2, 2, 2, 2)),
]


@pytest.mark.parametrize("header,fn,target", FAMILIES)
@pytest.mark.parametrize("case", DW_CASES)
def test_depthwise_bit_exact(tmp_path, header, fn, target, case):
    h, wd, c, k, stride, dilation, pads = case
    rng = np.random.default_rng(h * 100 + c)
    per_channel = c % 2 == 1
    x = rng.integers(-128, 128, (h, wd, c)).astype(np.int8)
    x_zp = int(rng.integers(-128, 128))
    w = weights(rng, (k[0], k[1], c))
    bias = rng.integers(-30000, 30000, c).astype(np.int32)
    mult, shift, y_zp, lo, hi = requant_params(rng, c, per_channel)
    acc = conv_reference(x, x_zp, w, bias, stride, dilation, pads, depthwise=True)
    want = reference_out(acc, mult, shift, y_zp, lo, hi)
    oh, ow = acc.shape[:2]
    geo = "edgec_cm_conv_geometry"
    arrays = {"x": x, "w": w, "bias": bias, "mult": mult, "shift": shift}
    arrays["bias_raw"] = (bias.astype(np.int64) + x_zp * w.reshape(-1, c).astype(
        np.int64).sum(0)).astype(np.int32)  # the layer's own bias (border pixels)
    # weights packed per group of channels: int16 pairs (DSP), bytes (Helium)
    arrays["w"] = (pack_dsp_depthwise_weights if fn == "edgec_cm" else pack_mve_depthwise_weights)(w)
    body = "\n".join([
        geometry_c(geo, h, wd, c, oh, ow, c, k[0], k[1], stride, dilation, pads),
        (f"    {fn}_depthwise_s8(&g, x, {x_zp}, w, bias, bias_raw, "
         f"{c_requant_args(per_channel, y_zp, lo, hi, fn == 'edgec_cm' and h % 2 == 1)}, "
         "kcase_out);")])
    # the ring of input lines in kcase_scratch (edgec_cm_conv.h's EDGEC_CM_DW_CELLS), 8 bytes
    # per cell: 4 int16 channels (DSP) or 8 int8 channels (Helium)
    scratch = 8 * dw_ring_cells(oh, ow, k, stride, dilation)
    body = body.replace("kcase_out);", "kcase_out, (int32_t *)(void *)kcase_scratch);")
    if fn == "edgec_cm":
        header = "edgec_cm_dsp_dw.h"
    got, _ = run_case(tmp_path, target, header, arrays, acc.size, body, scratch=scratch)
    np.testing.assert_array_equal(got.reshape(want.shape), want)


CONV_CASES = [  # h, w, cin, m, k, stride, dilation, pads
    (10, 6, 1, 8, (5, 3), (2, 1), (1, 1), (2, 1, 2, 1)),  # DS-CNN's first layer, smaller
    (6, 6, 3, 5, (3, 3), (1, 1), (1, 1), (1, 1, 1, 1)),
    (7, 5, 6, 4, (3, 3), (2, 2), (1, 1), (0, 0, 1, 1)),
]


@pytest.mark.parametrize("header,fn,target", FAMILIES)
@pytest.mark.parametrize("case", CONV_CASES)
def test_general_conv_bit_exact(tmp_path, header, fn, target, case):
    h, wd, cin, m, k, stride, dilation, pads = case
    rng = np.random.default_rng(h * 10 + cin + m)
    per_channel = m % 2 == 0
    x = rng.integers(-128, 128, (h, wd, cin)).astype(np.int8)
    x_zp = int(rng.integers(-128, 128))
    w_hwio = weights(rng, (k[0], k[1], cin, m))
    bias = rng.integers(-30000, 30000, m).astype(np.int32)
    mult, shift, y_zp, lo, hi = requant_params(rng, m, per_channel)
    acc = conv_reference(x, x_zp, w_hwio, bias, stride, dilation, pads, depthwise=False)
    want = reference_out(acc, mult, shift, y_zp, lo, hi)
    oh, ow = acc.shape[:2]
    w_packed = np.ascontiguousarray(np.transpose(w_hwio, (3, 0, 1, 2)))  # [m][kh][kw][cin]
    kk = k[0] * k[1] * cin
    dsp = fn == "edgec_cm"
    w_packed = (pack_dsp_gemm_weights if dsp else pack_mve_gemm_weights)(w_packed.reshape(m, kk))
    geo = "edgec_cm_conv_geometry"
    scratch = "(int32_t *)(void *)kcase_scratch" if dsp else "kcase_scratch"
    body = "\n".join([
        geometry_c(geo, h, wd, cin, oh, ow, m, k[0], k[1], stride, dilation, pads),
        (f"    {fn}_conv_s8(&g, x, {x_zp}, w, bias, "
         f"{c_requant_args(per_channel, y_zp, lo, hi, dsp and h % 2 == 0)}, "
         f"kcase_out, {scratch});")])
    got, _ = run_case(tmp_path, target, header, {"x": x, "w": w_packed, "bias": bias, "mult": mult,
                                                     "shift": shift}, acc.size, body,
                      scratch=2 * kk + 4 + 4 * dsp_scratch_words(kk, m))
    np.testing.assert_array_equal(got.reshape(want.shape), want)


@pytest.mark.parametrize("full_range,acc30", [(True, False), (False, False), (True, True)])
def test_dsp_requantisation_fast_path_is_exact(tmp_path, full_range, acc30):
    """edgec_cm_dsp_rq (the DSP kernels' 32-bit requantisation for shifts in [-31, -2])
    against edgec/qmath.py's requantisation: every such shift, extreme and random
    accumulators and multipliers, a zero point, the full int8 range or a narrower clamp;
    `acc30`: the SMMULR form for accumulators below 2^30 (then within +-(2^30 - 1))."""
    rng = np.random.default_rng(5)
    shifts = np.repeat(np.arange(-31, -1), 60).astype(np.int32)
    mults = rng.integers(1 << 30, (1 << 31) - 1, shifts.size, dtype=np.int64).astype(np.int32)
    accs = rng.integers(-(1 << 31), (1 << 31) - 1, shifts.size, dtype=np.int64)
    accs[::3] = rng.integers(-(1 << 20), 1 << 20, accs[::3].size)
    accs[::7] = rng.integers(-5000, 5000, accs[::7].size)
    accs[::11] = -(1 << 31)
    accs[::13] = (1 << 31) - 1
    if acc30:
        accs = np.clip(accs, -(1 << 30) + 1, (1 << 30) - 1)
    accs = accs.astype(np.int32)
    y_zp, lo, hi = (-3, -128, 127) if full_range else (7, -20, 90)
    want = qmath.requantize(accs.astype(np.int64), mults, shifts, y_zp, lo, hi).astype(np.int8)
    body = "\n".join([
        f"    for (int i = 0; i < {accs.size}; ++i) {{",
        (f"        kcase_out[i] = edgec_cm_dsp_rq(acc[i], mult[i], shift[i], {y_zp}, {lo}, "
         f"{hi}, {int(full_range)}, {int(acc30)});"),
        "    }"])
    got, _ = run_case(tmp_path, "cortex-m4-int8", "edgec_cm_dsp.h",
                      {"acc": accs, "mult": mults, "shift": shifts}, accs.size, body)
    np.testing.assert_array_equal(got, want)
