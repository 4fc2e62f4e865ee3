"""Evaluator kernels of the numpy MIL evaluator (codegen/coreml/evaluate.py) for the layers:
conv, pools, linear, matmul, int8 weight dequantisation, cast and identity. Written from the
MIL op definitions, independently of edgec's own op references."""

from __future__ import annotations

import math

import numpy as np

from edgec.codegen.coreml.mil_registry import F32, _f, evaluates


# ------------------------------------------------------------------------------ helpers
def _pads(get, x_shape, kernel, strides, dilations) -> list[tuple[int, int]]:
    """(begin, end) padding of every spatial axis from pad_type/pad."""
    pad_type = str(get("pad_type", "valid"))
    n = len(kernel)
    if pad_type == "custom":
        p = [int(v) for v in get("pad")]
        return [(p[2 * i], p[2 * i + 1]) for i in range(n)]
    if pad_type == "valid":
        return [(0, 0)] * n
    out = []
    for size, k, s, d in zip(x_shape[-n:], kernel, strides, dilations):
        eff = (k - 1) * d + 1
        total = max((math.ceil(size / s) - 1) * s + eff - size, 0)
        small, big = total // 2, total - total // 2
        out.append((small, big) if pad_type == "same" else (big, small))
    return out


def _windows(x: np.ndarray, kernel, strides, dilations) -> np.ndarray:
    """[N, C, *out, *kernel] strided windows of an already padded x."""
    n = len(kernel)
    eff = [(k - 1) * d + 1 for k, d in zip(kernel, dilations)]
    w = np.lib.stride_tricks.sliding_window_view(x, eff, axis=tuple(range(2, 2 + n)))
    index = (slice(None), slice(None)) + tuple(slice(None, None, s) for s in strides) + \
        tuple(slice(None, None, d) for d in dilations)
    return w[index]


@evaluates("conv")
def conv(get, op):
    """conv: cross-correlation with groups, strides, dilations, padding, optional bias."""
    x, w = _f(get("x")), _f(get("weight"))
    n = w.ndim - 2
    strides = [int(s) for s in get("strides", [1] * n)]
    dilations = [int(d) for d in get("dilations", [1] * n)]
    groups = int(get("groups", 1))
    pads = _pads(get, x.shape, w.shape[2:], strides, dilations)
    x = np.pad(x, [(0, 0), (0, 0), *pads])
    win = _windows(x, w.shape[2:], strides, dilations)  # N, C, *out, *k
    nb, c = win.shape[:2]
    out_sp = win.shape[2:2 + n]
    m = w.shape[0]
    win = win.reshape(nb, groups, c // groups, *out_sp, *w.shape[2:])
    wg = w.reshape(groups, m // groups, c // groups, *w.shape[2:])
    letters = "hijk"[:n]
    ks = "pqrs"[:n]
    y = np.einsum(f"ngc{letters}{ks},gmc{ks}->ngm{letters}", win, wg, optimize=True)
    y = y.reshape(nb, m, *out_sp)
    b = get("bias")
    if b is not None:
        y = y + _f(b).reshape((1, m) + (1,) * n)
    return y


def _pool(get, op, kind: str):
    x = _f(get("x"))
    kernel = [int(k) for k in get("kernel_sizes")]
    n = len(kernel)
    strides = [int(s) for s in get("strides", [1] * n)]
    pads = _pads(get, x.shape, kernel, strides, [1] * n)
    ceil = bool(get("ceil_mode", False))
    extra = []
    for size, k, s, (pb, pe) in zip(x.shape[2:], kernel, strides, pads):
        span = size + pb + pe - k
        outs = (math.ceil(span / s) if ceil else span // s) + 1
        if ceil and (outs - 1) * s >= size + pb:  # the last window must start inside
            outs -= 1
        extra.append(max((outs - 1) * s + k - (size + pb + pe), 0))
    full = [(0, 0), (0, 0)] + [(pb, pe + e) for (pb, pe), e in zip(pads, extra)]
    ones = np.ones((1, 1) + x.shape[2:], F32)
    if kind == "max":
        xp = np.pad(x, full, constant_values=-np.inf)
        return _windows(xp, kernel, strides, [1] * n).max(axis=tuple(range(-n, 0)))
    total = _windows(np.pad(x, full), kernel, strides, [1] * n).sum(axis=tuple(range(-n, 0)),
                                                                       dtype=np.float64)
    if bool(get("exclude_padding_from_average", False)):
        mask = np.pad(ones, full)
    else:  # explicit padding counts, the ceil-mode overhang does not
        mask = np.pad(np.pad(ones, [(0, 0), (0, 0), *pads], constant_values=1),
                      [(0, 0), (0, 0)] + [(0, e) for e in extra])
    count = _windows(mask, kernel, strides, [1] * n).sum(axis=tuple(range(-n, 0)))
    return total / count


@evaluates("max_pool")
def max_pool(get, op):
    """max_pool: -inf padding."""
    return _pool(get, op, "max")


@evaluates("avg_pool")
def avg_pool(get, op):
    """avg_pool: exclude_padding_from_average decides whether padding counts."""
    return _pool(get, op, "avg")


@evaluates("linear")
def linear(get, op):
    """linear: x @ weight.T + bias."""
    y = _f(get("x")) @ _f(get("weight")).T
    b = get("bias")
    return y if b is None else y + _f(b)


@evaluates("matmul")
def matmul(get, op):
    """matmul with optional transposes of the last two axes."""
    x, y = _f(get("x")), _f(get("y"))
    if get("transpose_x", False):
        x = np.swapaxes(x, -1, -2)
    if get("transpose_y", False):
        y = np.swapaxes(y, -1, -2)
    return np.matmul(x, y)


@evaluates("constexpr_affine_dequantize")
def affine_dequantize(get, op):
    """scale * (quantized_data - zero_point), scale and zero point broadcast on `axis`."""
    q = np.asarray(get("quantized_data")).astype(F32)
    axis = int(get("axis"))
    shape = [1] * q.ndim
    scale, zp = np.asarray(get("scale"), F32), np.asarray(get("zero_point")).astype(F32)
    if scale.ndim:
        shape[axis] = scale.size
    zshape = list(shape) if zp.ndim else []
    if zp.ndim:
        zshape[axis] = zp.size
    return scale.reshape(shape) * (q - zp.reshape(zshape))


@evaluates("cast")
def cast(get, op):
    """cast: the output dtype does the rounding (evaluate's astype)."""
    return np.asarray(get("x"))


@evaluates("identity")
def identity(get, op):
    """identity."""
    return np.asarray(get("x"))


@evaluates("quantize")
def quantize(get, op):
    """quantize (iOS17): clip(round_half_even(input / scale) + zero_point) to the int8 or
    uint8 range; per-tensor or per-`axis` scale and zero point."""
    x = _f(get("input"))
    scale, zp = _axis_params(get, x.ndim)
    lo, hi = (0, 255) if str(get("output_dtype")) == "uint8" else (-128, 127)
    return np.clip(np.rint(x / scale) + zp, lo, hi)


@evaluates("dequantize")
def dequantize(get, op):
    """dequantize (iOS17): (input - zero_point) * scale."""
    q = np.asarray(get("input")).astype(F32)
    scale, zp = _axis_params(get, q.ndim)
    return (q - zp) * scale


def _axis_params(get, ndim: int) -> tuple[np.ndarray, np.ndarray]:
    scale = np.asarray(get("scale"), F32)
    zp = np.asarray(get("zero_point", 0)).astype(F32)
    axis = get("axis")
    if axis is not None and scale.ndim:
        shape = [1] * ndim
        shape[int(axis)] = scale.size
        scale = scale.reshape(shape)
        zp = zp.reshape(shape) if zp.ndim else zp
    return scale, zp
