"""int8 average pools: QAveragePool and QGlobalAveragePool (internal ops of the int8 scheme).

Window geometry is AveragePool's (edgec/ops/pool.py): a window of output o along an axis
covers o*s - pb + j*d; taps outside [0, L) read real zero (x_zero_point); the divisor
`count` is the number of taps inside [0, L) (count_include_pad=0) or inside [-pb, L + pe)
(count_include_pad=1). With S = sum over in-range taps of (x - x_zero_point):

- mode "requantize" (any scales): y = clamp(MBQM(S, multiplier[count-1], shift[count-1])
  + y_zero_point, act_min, act_max); `average_pool_attrs` (quantized.py) fills the table with
  x_scale / (y_scale * count) for every count a window can have.
- mode "divide" (TFLite AVERAGE_POOL_2D, input and output share scale and zero point):
  R = S + count * x_zero_point (the raw sum, padded taps counting as the zero point);
  y = clamp(R / count rounded half away from zero, act_min, act_max).

QGlobalAveragePool averages all spatial positions (count = their number); its table may hold
one entry (for that count) or one per count.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from edgec import qmath
from edgec.errors import ShapeError
from edgec.ir import DType, Node, TensorType
from edgec.ops.base import Attr, PruneRule, in_type
from edgec.ops.conv import LAYOUTS, channels, from_nchw, make_shape, spatial_shape, to_nchw
from edgec.ops.int8_export import QAVERAGE_POOL_EXPORT, QGLOBAL_AVERAGE_POOL_EXPORT
from edgec.ops.pool import pool_out_size, window_counts
from edgec.ops.quant_common import require_int8
from edgec.ops.quantized import QMAX, QMIN, QuantizedOp
from edgec.ops.registry import register_op

MODES = ("requantize", "divide")
POOL_QUANT_ATTRS = {
    "x_zero_point": Attr("int", 0),
    "y_zero_point": Attr("int", 0),
    "mode": Attr("str", "requantize", MODES),
    "multiplier": Attr("ints", ()),  # entry count-1 requantises a window of `count` taps
    "shift": Attr("ints", ()),
    "act_min": Attr("int", QMIN),
    "act_max": Attr("int", QMAX),
    "x_scale": Attr("float", 0.0),
    "y_scale": Attr("float", 0.0),
}


def rounding_divide(acc: np.ndarray, count: np.ndarray) -> np.ndarray:
    """acc / count rounded half away from zero (TFLite's average pool division)."""
    acc = np.asarray(acc, np.int64)
    count = np.asarray(count, np.int64)
    q = (np.abs(acc) + count // 2) // count
    return np.where(acc >= 0, q, -q)


def finish_average(node: Node, sums: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Turn zero-point-free window sums and their divisors into int8 (see the module doc)."""
    a = node.attrs
    if count.size and int(np.min(count)) <= 0:
        raise ShapeError(f"{node.op} node '{node.name}': a window covers no input")
    if a["mode"] == "divide":
        if a["x_zero_point"] != a["y_zero_point"]:
            raise ShapeError(f"{node.op} node '{node.name}': mode 'divide' needs equal input "
                             "and output zero points")
        y = rounding_divide(sums + count * a["x_zero_point"], count)
        return np.clip(y, a["act_min"], a["act_max"]).astype(np.int8)
    mult, shift = table_for(node, int(np.max(count)))
    y = qmath.requantize(sums, mult[count - 1], shift[count - 1], a["y_zero_point"],
                         a["act_min"], a["act_max"])
    return y.astype(np.int8)


def table_for(node: Node, max_count: int, single_count: int | None = None):
    """(multipliers, shifts) as int64 arrays indexed by count-1, checked to cover max_count."""
    mult = np.asarray(node.attrs["multiplier"], np.int64)
    shift = np.asarray(node.attrs["shift"], np.int64)
    if mult.size != shift.size:
        raise ShapeError(f"{node.op} node '{node.name}': multiplier and shift differ in length")
    if single_count is not None and mult.size == 1:
        full_m = np.zeros(single_count, np.int64)
        full_s = np.zeros(single_count, np.int64)
        full_m[-1], full_s[-1] = mult[0], shift[0]
        return full_m, full_s
    if mult.size < max_count:
        raise ShapeError(f"{node.op} node '{node.name}': mode 'requantize' needs {max_count} "
                         f"multipliers (one per window count), got {mult.size}")
    return mult, shift


@register_op("QAveragePool")
class QAveragePool(QuantizedOp):
    """int8 AveragePool; AveragePool's attributes plus the int8 ones (see the module doc)."""

    quant = QAVERAGE_POOL_EXPORT

    attrs = {
        "auto_pad": Attr("str", "NOTSET", ("NOTSET",)),
        "ceil_mode": Attr("int", 0, (0, 1)),
        "count_include_pad": Attr("int", 0, (0, 1)),
        "dilations": Attr("ints", ()),
        "kernel_shape": Attr("ints"),
        "pads": Attr("ints", ()),
        "strides": Attr("ints", ()),
        "layout": Attr("str", "NCHW", LAYOUTS),
        **POOL_QUANT_ATTRS,
    }
    prune = PruneRule.PASSTHROUGH
    spatial = True

    def geometry(self, node: Node) -> list[tuple[int, ...]]:
        """Per spatial axis: (size, kernel, stride, dilation, pad begin, pad end, out)."""
        a = node.attrs
        x = in_type(node, 0)
        sp = spatial_shape(x.shape, a["layout"])
        nsp = len(sp)
        k = a["kernel_shape"]
        if len(k) != nsp:
            raise ShapeError(f"QAveragePool node '{node.name}': kernel_shape {k} does not fit "
                             f"{nsp} spatial dims")
        s = a["strides"] or [1] * nsp
        d = a["dilations"] or [1] * nsp
        pads = a["pads"] or [0] * (2 * nsp)
        axes = []
        for i in range(nsp):
            out = pool_out_size(sp[i], k[i], s[i], d[i], pads[i], pads[i + nsp], a["ceil_mode"])
            if out <= 0:
                raise ShapeError(f"QAveragePool node '{node.name}': output would be empty")
            axes.append((sp[i], k[i], s[i], d[i], pads[i], pads[i + nsp], out))
        return axes

    def counts(self, node: Node) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Per axis: divisors and in-range tap counts of every output position."""
        include = bool(node.attrs["count_include_pad"])
        div = [window_counts(*g, include) for g in self.geometry(node)]
        valid = [window_counts(*g, False) for g in self.geometry(node)]
        return div, valid

    def infer(self, node: Node) -> list[TensorType]:
        require_int8(node)
        x = in_type(node, 0)
        out = [g[-1] for g in self.geometry(node)]
        return [TensorType(make_shape(x.shape[0], channels(x.shape, node.attrs["layout"]), out,
                                      node.attrs["layout"]), DType.INT8)]

    def reference(self, node: Node, x):
        layout = node.attrs["layout"]
        xs = to_nchw(x, layout).astype(np.int64) - node.attrs["x_zero_point"]
        geo = self.geometry(node)
        pad_width = [(0, 0), (0, 0)]
        for i, (size, k, s, d, pb, _, out) in enumerate(geo):
            needed = (out - 1) * s + d * (k - 1) + 1
            keep = max(min(size, needed - pb), 0)
            xs = np.take(xs, np.arange(keep), axis=2 + i)
            pad_width.append((pb, needed - pb - keep))
        xp = np.pad(xs, pad_width)
        nsp = len(geo)
        win = [d * (k - 1) + 1 for (_, k, _, d, _, _, _) in geo]
        views = sliding_window_view(xp, win, axis=tuple(range(2, 2 + nsp)))
        index = (slice(None), slice(None)) + tuple(slice(None, None, g[2]) for g in geo)
        index += tuple(slice(None, None, g[3]) for g in geo)
        sums = views[index].sum(axis=tuple(range(2 + nsp, 2 + 2 * nsp)))
        div, _ = self.counts(node)
        count = div[0]
        for c in div[1:]:
            count = np.multiply.outer(count, c)
        return (from_nchw(finish_average(node, sums, count.astype(np.int64)), layout),)


@register_op("QGlobalAveragePool")
class QGlobalAveragePool(QuantizedOp):
    """int8 GlobalAveragePool: the average of every spatial position (see the module doc)."""

    attrs = {"layout": Attr("str", "NCHW", LAYOUTS), **POOL_QUANT_ATTRS}
    prune = PruneRule.PASSTHROUGH
    quant = QGLOBAL_AVERAGE_POOL_EXPORT
    spatial = True

    def infer(self, node: Node) -> list[TensorType]:
        require_int8(node)
        x = in_type(node, 0)
        layout = node.attrs["layout"]
        nsp = x.rank - 2
        if nsp < 1:
            raise ShapeError(f"QGlobalAveragePool node '{node.name}': input {x.shape} has no "
                             "spatial dims")
        return [TensorType(make_shape(x.shape[0], channels(x.shape, layout), [1] * nsp, layout),
                           DType.INT8)]

    def reference(self, node: Node, x):
        layout = node.attrs["layout"]
        xs = to_nchw(x, layout).astype(np.int64) - node.attrs["x_zero_point"]
        count = int(np.prod(xs.shape[2:]))
        sums = xs.sum(axis=tuple(range(2, xs.ndim)), keepdims=True)
        if node.attrs["mode"] == "requantize":
            table_for(node, count, single_count=count)
        return (from_nchw(self._finish(node, sums, count), layout),)

    def _finish(self, node: Node, sums: np.ndarray, count: int) -> np.ndarray:
        if node.attrs["mode"] == "divide":
            return finish_average(node, sums, np.int64(count))
        mult, shift = table_for(node, count, single_count=count)
        a = node.attrs
        return qmath.requantize(sums, mult[count - 1], shift[count - 1], a["y_zero_point"],
                                a["act_min"], a["act_max"]).astype(np.int8)

