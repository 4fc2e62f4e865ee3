"""Host-independent float kernels that calibration uses instead of the registry references
for the products: Conv (both layouts, depthwise or grouped), Gemm and MatMul.

Calibration decides every int8 scale, zero point and multiplier, so its float activations
must be the same bits on every machine (edgec/detmath.py has the argument). BLAS and torch
sum in a CPU-dependent order, so here:

- depthwise convolution is a sum of kh*kw shifted, strided slices times per-channel weights,
  in float64 in a fixed tap order (each product of two float32 values is exact in float64;
  each addition is one correctly rounded ufunc call);
- every other convolution is im2col (a strided view) followed by `detmath.exact_matmul` per
  group and per sample: operands on a per-row / per-column integer grid, so the float64 BLAS
  product is exact whatever kernel runs it;
- Gemm and MatMul use `exact_matmul` too.

They compute the same function as the references within about 2^-20 of each row's largest
value (the grid), which is irrelevant for range statistics.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from edgec.detmath import exact_matmul
from edgec.ir import Node
from edgec.ops.epilogue import apply_epilogue_np


def _nhwc(x: np.ndarray, layout: str) -> np.ndarray:
    return x if layout == "NHWC" else np.moveaxis(x, 1, -1)


def conv_fast(node: Node, x, w, b=None, residual=None) -> np.ndarray:
    """Conv (2-D or 1-D, any layout) in float32; None for shapes this path does not handle."""
    a = node.attrs
    nsp = x.ndim - 2
    if nsp not in (1, 2):
        return None
    layout = a["layout"]
    xs = _nhwc(x.astype(np.float32, copy=False), a.get("input_layout") or layout)
    if nsp == 1:
        xs = xs[:, None]
        w = w[:, :, None]
    k = ([1] if nsp == 1 else []) + list(a["kernel_shape"])
    s = ([1] if nsp == 1 else []) + list(a["strides"])
    d = ([1] if nsp == 1 else []) + list(a["dilations"])
    pads = list(a["pads"])
    pb = ([0] if nsp == 1 else []) + pads[:nsp]
    pe = ([0] if nsp == 1 else []) + pads[nsp:]
    _, h, wd, _ = xs.shape
    group = a["group"]
    oh = (h + pb[0] + pe[0] - d[0] * (k[0] - 1) - 1) // s[0] + 1
    ow = (wd + pb[1] + pe[1] - d[1] * (k[1] - 1) - 1) // s[1] + 1
    y = _conv_exact(xs, w.astype(np.float32), k, s, d, pb, pe, group, oh, ow)
    if b is not None:
        y += b.astype(np.float32).astype(np.float64)
    y = y.astype(np.float32)
    if nsp == 1:
        y = y[:, 0]
    if layout == "NCHW":
        y = np.moveaxis(y, -1, 1)
    act = a.get("activation", "none")
    if residual is None and act in ("none", "relu", "clip"):  # in place: no copies
        if act == "relu":
            np.maximum(y, np.float32(0), out=y)
        elif act == "clip":
            np.clip(y, np.float32(a["act_alpha"]), np.float32(a["act_beta"]), out=y)
    else:
        y = apply_epilogue_np(y, node, residual, channel_axis=1 if layout == "NCHW" else -1)
    return np.ascontiguousarray(y, dtype=np.float32)


def _conv_exact(xs: np.ndarray, wf: np.ndarray, k, s, d, pb, pe, group: int, oh: int,
                ow: int) -> np.ndarray:
    """NHWC conv, float64 result: depthwise taps in a fixed order, otherwise exact products."""
    n, _, _, c = xs.shape
    m, cg = wf.shape[0], wf.shape[1]
    xp = np.pad(xs, ((0, 0), (pb[0], pe[0]), (pb[1], pe[1]), (0, 0))) if any(pb + pe) else xs
    if group == c and cg == 1 and m == c:  # depthwise
        y = np.zeros((n, oh, ow, c), np.float64)
        tmp = np.empty_like(y)
        w64 = wf.astype(np.float64)
        for i in range(k[0]):
            for j in range(k[1]):
                tap = xp[:, i * d[0]: i * d[0] + s[0] * (oh - 1) + 1: s[0],
                         j * d[1]: j * d[1] + s[1] * (ow - 1) + 1: s[1], :]
                np.multiply(tap, w64[:, 0, i, j], out=tmp)  # exact: float32 * float32
                np.add(y, tmp, out=y)
        return y
    mg = m // group
    if k == [1, 1] and s == [1, 1] and group == 1:  # pointwise: one matrix product
        return exact_matmul(xp.reshape(-1, c), wf.reshape(m, c).T).reshape(n, oh, ow, m)
    win = sliding_window_view(xp, (d[0] * (k[0] - 1) + 1, d[1] * (k[1] - 1) + 1), axis=(1, 2))
    win = win[:, ::s[0], ::s[1], :, ::d[0], ::d[1]][:, :oh, :ow]  # [n, oh, ow, c, kh, kw]
    y = np.empty((n, oh, ow, m), np.float64)
    for gi in range(group):
        wg = wf[gi * mg:(gi + 1) * mg].reshape(mg, cg * k[0] * k[1]).T
        for si in range(n):  # one sample at a time bounds the im2col copy
            cols = win[si, :, :, gi * cg:(gi + 1) * cg].reshape(oh * ow, cg * k[0] * k[1])
            y[si, :, :, gi * mg:(gi + 1) * mg] = exact_matmul(cols, wg).reshape(oh, ow, mg)
    return y


def gemm_fast(node: Node, a, b, c=None, residual=None) -> np.ndarray:
    """Gemm (alpha, beta, transposes, pooled input) with exact products."""
    at = node.attrs
    if at.get("input_pool", "none") == "mean":
        a = a.astype(np.float64).mean(axis=tuple(range(1, a.ndim - 1)))
    a64 = a.astype(np.float64).T if at["transA"] else a.astype(np.float64)
    b64 = b.astype(np.float64).T if at["transB"] else b.astype(np.float64)
    y = exact_matmul(a64, b64)
    if at["alpha"] != 1.0:
        y = at["alpha"] * y
    if c is not None:
        y = y + at["beta"] * c.astype(np.float64)
    return apply_epilogue_np(y, node, residual, channel_axis=-1).astype(a.dtype)


def matmul_fast(node: Node, a, b, residual=None) -> np.ndarray:
    """MatMul (numpy broadcasting) with exact products."""
    y = exact_matmul(a, b)
    return apply_epilogue_np(y, node, residual, channel_axis=-1).astype(a.dtype)


FAST_KERNELS = {"Conv": conv_fast, "Gemm": gemm_fast, "MatMul": matmul_fast}
