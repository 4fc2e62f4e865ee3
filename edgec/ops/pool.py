"""Pooling: MaxPool, AveragePool, LpPool and their global forms.

IR canonical form: auto_pad is resolved at import into explicit `pads` (auto_pad becomes
NOTSET, ceil_mode 0: with SAME/VALID padding both rounding modes give the same size), and
`kernel_shape`, `strides`, `dilations`, `pads` are always present.

Window geometry along one axis (size L, kernel k, stride s, dilation d, pads pb/pe): the
window of output o covers input positions o*s - pb + j*d for j < k. Out-of-range taps are
skipped; an average divides by the taps inside [0, L) (count_include_pad=0) or inside
[-pb, L + pe) (count_include_pad=1): explicit pads count, the ceil_mode overhang never does.
With ceil_mode the last window must start inside the input or the left padding
((out - 1) * s < L + pb), otherwise it is dropped. `window_counts` gives those divisors per
axis; an N-d window's divisor is their product.

C kernels exist for channels-last data with 1 to 3 spatial dims; they loop over output
pixels and window taps with the channel loop innermost. Global pools flatten the spatial
dims, so they have a kernel for any rank.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from edgec.errors import ShapeError, UnsupportedError
from edgec.ir import DType, Node, TensorType
from edgec.ops.base import Attr, OpDef, PruneRule, QuantRule, in_type
from edgec.ops.common import FLOATS, check_window, require_dtypes
from edgec.ops.conv import (
    LAYOUTS,
    channels,
    from_nchw,
    make_shape,
    resolve_auto_pad,
    spatial_shape,
    to_nchw,
)
from edgec.ops.int8_elementwise import AVERAGE_POOL_INT8, GLOBAL_AVERAGE_POOL_INT8
from edgec.ops.registry import register_op

AUTO_PADS = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")


def pool_out_size(size: int, k: int, s: int, d: int, pb: int, pe: int, ceil_mode: int) -> int:
    """Output length along one axis, with ONNX's ceil_mode rule for the last window."""
    span = size + pb + pe - d * (k - 1) - 1
    if span < 0:
        return 0
    out = -(-span // s) + 1 if ceil_mode else span // s + 1
    if ceil_mode and (out - 1) * s >= size + pb:
        out -= 1
    return out


def window_counts(size: int, k: int, s: int, d: int, pb: int, pe: int, out: int,
                  include_pad: bool) -> np.ndarray:
    """Per output position: how many taps an average divides by along this axis."""
    lo, hi = (-pb, size + pe) if include_pad else (0, size)
    pos = np.arange(out)[:, None] * s - pb + np.arange(k)[None, :] * d
    return np.count_nonzero((pos >= lo) & (pos < hi), axis=1)


def lowest_value(dtype: np.dtype):
    """The smallest finite value of `dtype` (the start of a running maximum)."""
    dtype = np.dtype(dtype)
    return np.finfo(dtype).min if dtype.kind == "f" else np.iinfo(dtype).min


def pool_nchw(x: np.ndarray, kind: str, attrs: dict) -> np.ndarray:
    """Reference pooling on channels-first data; kind is 'max', 'avg' or 'lp'."""
    nsp = x.ndim - 2
    kernel, strides, dilations = attrs["kernel_shape"], attrs["strides"], attrs["dilations"]
    pads = attrs["pads"]
    include_pad = bool(attrs.get("count_include_pad", 0))
    pad_value = lowest_value(x.dtype) if kind == "max" else 0
    xw = x.astype(np.float64) if kind != "max" else x
    pad_width, counts = [(0, 0), (0, 0)], []
    for i in range(nsp):
        size, k, s, d = x.shape[2 + i], kernel[i], strides[i], dilations[i]
        pb, pe = pads[i], pads[i + nsp]
        out = pool_out_size(size, k, s, d, pb, pe, attrs["ceil_mode"])
        needed = (out - 1) * s + d * (k - 1) + 1  # padded length the windows read
        keep = max(min(size, needed - pb), 0)  # floor mode may leave trailing input unread
        xw = np.take(xw, np.arange(keep), axis=2 + i)
        pad_width.append((pb, needed - pb - keep))
        counts.append(window_counts(size, k, s, d, pb, pe, out, include_pad))
    xp = np.pad(xw, pad_width, constant_values=pad_value)
    win = [d * (k - 1) + 1 for k, d in zip(kernel, dilations)]
    views = sliding_window_view(xp, win, axis=tuple(range(2, 2 + nsp)))
    index = (slice(None), slice(None)) + tuple(slice(None, None, s) for s in strides)
    views = views[index + tuple(slice(None, None, d) for d in dilations)]
    taps = tuple(range(2 + nsp, 2 + 2 * nsp))
    if kind == "max":
        return views.max(axis=taps)
    if kind == "lp":
        p = attrs["p"]
        return (np.abs(views) ** p).sum(axis=taps) ** (1.0 / p)
    divisor = counts[0].astype(np.float64)
    for c in counts[1:]:
        divisor = np.multiply.outer(divisor, c)
    return views.sum(axis=taps) / np.maximum(divisor, 1)


class PoolOp(OpDef):
    """Common facets of windowed pools (MaxPool, AveragePool, LpPool)."""

    kind = "max"
    prune = PruneRule.PASSTHROUGH
    spatial = True
    dtypes = FLOATS
    base_attrs = {
        "auto_pad": Attr("str", "NOTSET", AUTO_PADS),
        "ceil_mode": Attr("int", 0, (0, 1)),
        "dilations": Attr("ints", ()),
        "kernel_shape": Attr("ints"),
        "pads": Attr("ints", ()),
        "strides": Attr("ints", ()),
        "layout": Attr("str", "NCHW", LAYOUTS),
    }

    def import_onnx(self, node: Node, opset: int) -> None:
        require_dtypes(node, self.dtypes)
        x, a = in_type(node, 0), node.attrs
        nsp = x.rank - 2
        kernel = list(a.get("kernel_shape") or [])
        if nsp < 1 or len(kernel) != nsp:
            raise ShapeError(f"{node.op} node '{node.name}': kernel_shape {kernel} does not fit "
                             f"input rank {x.rank}")
        a["strides"] = list(a.get("strides") or [1] * nsp)
        a["dilations"] = list(a.get("dilations") or [1] * nsp)
        check_window(node, nsp, kernel, a["strides"], a["dilations"])
        auto_pad = a.get("auto_pad", "NOTSET") or "NOTSET"
        if auto_pad != "NOTSET":
            a["pads"] = resolve_auto_pad(auto_pad, x.shape[2:], kernel, a["strides"],
                                         a["dilations"])
            a["ceil_mode"] = 0
        a["auto_pad"] = "NOTSET"
        a["pads"] = list(a.get("pads") or [0] * (2 * nsp))

    def out_spatial(self, node: Node) -> list[int]:
        """Output spatial sizes."""
        x, a = in_type(node, 0), node.attrs
        sp = spatial_shape(x.shape, a["layout"])
        nsp = len(sp)
        if any(len(a[k]) != nsp for k in ("kernel_shape", "strides", "dilations")) \
                or len(a["pads"]) != 2 * nsp:
            raise ShapeError(f"{node.op} node '{node.name}': attributes do not fit {nsp} "
                             "spatial dims")
        check_window(node, nsp, a["kernel_shape"], a["strides"], a["dilations"], a["pads"])
        return [pool_out_size(sp[i], a["kernel_shape"][i], a["strides"][i], a["dilations"][i],
                              a["pads"][i], a["pads"][i + nsp], a["ceil_mode"])
                for i in range(nsp)]

    def infer(self, node: Node) -> list[TensorType]:
        x = in_type(node, 0)
        layout = node.attrs["layout"]
        out_sp = self.out_spatial(node)
        if any(o <= 0 for o in out_sp):
            raise ShapeError(f"{node.op} node '{node.name}': output would be empty ({out_sp})")
        return [TensorType(make_shape(x.shape[0], channels(x.shape, layout), out_sp, layout),
                           x.dtype)]

    def reference(self, node: Node, x):
        layout = node.attrs["layout"]
        y = pool_nchw(to_nchw(x, layout), self.kind, node.attrs)
        return (from_nchw(y, layout).astype(x.dtype),)


@register_op("MaxPool")
class MaxPool(PoolOp):
    """ONNX MaxPool (every auto_pad, dilations, ceil_mode); the Indices output is unsupported."""

    attrs = {**PoolOp.base_attrs, "storage_order": Attr("int", 0, (0, 1))}
    quant = QuantRule.SAME_AS_INPUT
    kind = "max"
    dtypes = FLOATS | {DType.INT8, DType.UINT8}


@register_op("AveragePool")
class AveragePool(PoolOp):
    """ONNX AveragePool (count_include_pad, ceil_mode, dilations, every auto_pad)."""

    attrs = {**PoolOp.base_attrs, "count_include_pad": Attr("int", 0, (0, 1))}
    quant = AVERAGE_POOL_INT8
    kind = "avg"

    def macs(self, node: Node) -> int:
        return node.output.type.numel * int(np.prod(node.attrs["kernel_shape"]))


@register_op("LpPool")
class LpPool(PoolOp):
    """ONNX LpPool: (sum over the window of |x|^p)^(1/p); padding contributes zeros."""

    attrs = {**PoolOp.base_attrs, "p": Attr("int", 2)}
    quant = QuantRule.FLOAT_ONLY
    kind = "lp"

    def import_onnx(self, node: Node, opset: int) -> None:
        super().import_onnx(node, opset)
        if int(node.attrs.get("p", 2)) < 1:
            raise UnsupportedError(f"LpPool node '{node.name}': p must be at least 1")

    def macs(self, node: Node) -> int:
        return node.output.type.numel * int(np.prod(node.attrs["kernel_shape"]))


# ------------------------------------------------------------------------------ global pools
class GlobalPoolOp(OpDef):
    """Common facets of global pools: one value per (n, c) over all spatial positions."""

    kind = "max"
    prune = PruneRule.PASSTHROUGH
    spatial = True
    dtypes = FLOATS
    attrs = {"layout": Attr("str", "NCHW", LAYOUTS)}

    def import_onnx(self, node: Node, opset: int) -> None:
        require_dtypes(node, self.dtypes)
        if in_type(node, 0).rank < 3:
            raise ShapeError(f"{node.op} node '{node.name}': input needs spatial dimensions")

    def infer(self, node: Node) -> list[TensorType]:
        x, layout = in_type(node, 0), node.attrs["layout"]
        sp = spatial_shape(x.shape, layout)
        nsp = len(sp)
        if 0 in sp:
            raise ShapeError(f"{node.op} node '{node.name}': pools over an empty spatial extent "
                             f"({list(sp)}); the model is invalid")
        return [TensorType(make_shape(x.shape[0], channels(x.shape, layout), [1] * nsp, layout),
                           x.dtype)]

    def reference(self, node: Node, x):
        layout = node.attrs["layout"]
        xc = to_nchw(x, layout)
        axes = tuple(range(2, x.ndim))
        if self.kind == "max":
            y = xc.max(axis=axes, keepdims=True)
        elif self.kind == "avg":
            y = xc.astype(np.float64).mean(axis=axes, keepdims=True)
        else:
            p = node.attrs["p"]
            y = (np.abs(xc.astype(np.float64)) ** p).sum(axis=axes, keepdims=True) ** (1.0 / p)
        return (from_nchw(y, layout).astype(x.dtype),)

    def macs(self, node: Node) -> int:
        return 0 if self.kind == "max" else in_type(node, 0).numel


@register_op("GlobalMaxPool")
class GlobalMaxPool(GlobalPoolOp):
    """ONNX GlobalMaxPool: the maximum over every spatial position (also on int8 data)."""

    quant = QuantRule.SAME_AS_INPUT
    kind = "max"
    dtypes = FLOATS | {DType.INT8, DType.UINT8}


@register_op("GlobalAveragePool")
class GlobalAveragePool(GlobalPoolOp):
    """ONNX GlobalAveragePool: the mean over every spatial position."""

    quant = GLOBAL_AVERAGE_POOL_INT8
    kind = "avg"
    dtypes = FLOATS


@register_op("GlobalLpPool")
class GlobalLpPool(GlobalPoolOp):
    """ONNX GlobalLpPool: the Lp norm over every spatial position."""

    attrs = {**GlobalPoolOp.attrs, "p": Attr("int", 2)}
    quant = QuantRule.FLOAT_ONLY
    kind = "lp"
    dtypes = FLOATS

    def import_onnx(self, node: Node, opset: int) -> None:
        super().import_onnx(node, opset)
        if int(node.attrs.get("p", 2)) < 1:
            raise UnsupportedError(f"GlobalLpPool node '{node.name}': p must be at least 1")
