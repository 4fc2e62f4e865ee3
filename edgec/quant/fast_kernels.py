"""float32 kernels that calibration uses instead of the (float64, definition-first) registry
references where those are slow: Conv in both layouts, depthwise or grouped.

When torch is installed (and EDGEC_NO_TORCH is unset), 2-D convolutions run through
torch.nn.functional.conv2d on channels-last views (several times faster on depthwise layers);
otherwise in numpy. They compute the same function as `edgec.ops.conv.Conv.reference` up to
float32 rounding, which is irrelevant for range statistics; every other op runs its registry
reference.
Depthwise convolution is a sum of kh*kw shifted, strided slices times per-channel weights;
other convolutions are im2col (a strided view) followed by one BLAS matrix product per group.
"""

from __future__ import annotations

import os

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..ir import Node
from ..ops.epilogue import apply_epilogue_np

_TORCH = []


def _torch():
    """The torch module, or None (not installed, or disabled by EDGEC_NO_TORCH)."""
    if not _TORCH:
        mod = None
        if not os.environ.get("EDGEC_NO_TORCH"):
            try:
                import torch as mod
            except ImportError:
                mod = None
        _TORCH.append(mod)
    return _TORCH[0]


def _conv_torch(torch, xs: np.ndarray, w: np.ndarray, k, s, d, pb, pe, group) -> np.ndarray:
    """NHWC float32 conv through torch (asymmetric pads applied with F.pad)."""
    xt = torch.from_numpy(np.ascontiguousarray(xs)).permute(0, 3, 1, 2)
    if pb != pe:
        xt = torch.nn.functional.pad(xt, (pb[1], pe[1], pb[0], pe[0]))
        pads = (0, 0)
    else:
        pads = tuple(pb)
    wt = torch.from_numpy(np.ascontiguousarray(w, dtype=np.float32).reshape(
        w.shape[0], w.shape[1], k[0], k[1]))
    with torch.no_grad():
        y = torch.nn.functional.conv2d(xt, wt, None, tuple(s), pads, tuple(d), group)
    return y.permute(0, 2, 3, 1).contiguous().numpy()


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
    torch = _torch()
    oh = (h + pb[0] + pe[0] - d[0] * (k[0] - 1) - 1) // s[0] + 1
    ow = (wd + pb[1] + pe[1] - d[1] * (k[1] - 1) - 1) // s[1] + 1
    wf = w.astype(np.float32)
    if torch is not None:
        y = _conv_torch(torch, xs, wf, k, s, d, pb, pe, group)
    else:
        y = _conv_numpy(xs, wf, k, s, d, pb, pe, group, oh, ow)
    if b is not None:
        y += b.astype(np.float32)
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


def _conv_numpy(xs: np.ndarray, wf: np.ndarray, k, s, d, pb, pe, group: int, oh: int,
                ow: int) -> np.ndarray:
    """NHWC float32 conv in numpy: depthwise taps, pointwise GEMM, or im2col per group."""
    n, _, _, c = xs.shape
    m, cg = wf.shape[0], wf.shape[1]
    xp = np.pad(xs, ((0, 0), (pb[0], pe[0]), (pb[1], pe[1]), (0, 0))) if any(pb + pe) else xs
    if group == c and cg == 1 and m == c:  # depthwise
        y = np.zeros((n, oh, ow, c), np.float32)
        tmp = np.empty_like(y)
        for i in range(k[0]):
            for j in range(k[1]):
                tap = xp[:, i * d[0]: i * d[0] + s[0] * (oh - 1) + 1: s[0],
                         j * d[1]: j * d[1] + s[1] * (ow - 1) + 1: s[1], :]
                np.multiply(tap, wf[:, 0, i, j], out=tmp)
                y += tmp
    elif k == [1, 1] and s == [1, 1] and group == 1:  # pointwise: one matrix product
        y = (xp.reshape(-1, c) @ wf.reshape(m, c).T).reshape(n, oh, ow, m)
    else:
        win = sliding_window_view(xp, (d[0] * (k[0] - 1) + 1, d[1] * (k[1] - 1) + 1), axis=(1, 2))
        win = win[:, ::s[0], ::s[1], :, ::d[0], ::d[1]][:, :oh, :ow]  # [n, oh, ow, c, kh, kw]
        mg = m // group
        outs = []
        for gi in range(group):
            cols = win[:, :, :, gi * cg:(gi + 1) * cg].reshape(n * oh * ow, cg * k[0] * k[1])
            wg = wf[gi * mg:(gi + 1) * mg].reshape(mg, cg * k[0] * k[1])
            outs.append(cols @ wg.T)
        y = np.concatenate(outs, axis=1).reshape(n, oh, ow, m)
    return y


FAST_KERNELS = {"Conv": conv_fast}
