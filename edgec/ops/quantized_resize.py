"""QResize: Resize mode linear on int8 data, edgec's integer scheme (the quantize pass makes it
from a linear Resize; docs/int8.md).

The per-axis read tables are the float Resize's (edgec/ops/resize.py: the same coordinate
transforms, taps and clamped indices). Each row of weights (one output position of a
resized axis) becomes Q10 integers: w_q = round(1024 * w) (ties away from zero), then the
difference to 1024 is added to the row's largest weight so that every row sums to exactly
1024 (a constant input stays that constant). With R weighted axes (at most 2):

    acc = sum over the tap combinations of x * w_q[axis 0] * ... * w_q[axis R-1]   (int32:
          |acc| <= 128 * 2^(10 R) <= 2^27)
    y   = floor((acc + 2^(10 R - 1)) / 2^(10 R))     (round half up), clamped to int8

The output keeps the input's scale and zero point (the weights are a convex combination, as
TFLite's int8 RESIZE_BILINEAR): y's codes approximate the interpolated codes, so the zero
point passes through unchanged. tf_crop_and_resize (positions outside the input take the
extrapolation value) and cubic (negative weights) are not handled: those stay float.
"""

from __future__ import annotations

import numpy as np

from edgec.ir import DType, Node
from edgec.ops.int8_elementwise import WEIGHT_BITS, int8_linear_tables
from edgec.ops.int8_facet import Int8Facet
from edgec.ops.registry import register_op
from edgec.ops.resize import Resize


@register_op("QResize")
class QResize(Resize):
    """int8 Resize mode linear with Q10 fixed-point weights (see the module docstring)."""

    dtypes = frozenset({DType.INT8})
    quant = Int8Facet("qresize", "requantize")

    def reference(self, node: Node, x, *rest):
        tables = int8_linear_tables(self, node)
        y = x.astype(np.int64)
        shift = 0
        for axis, t in enumerate(tables):
            if t is None:
                continue
            index, w = t
            gathered = np.take(y, index, axis=axis)  # [..., out, taps, ...]
            y = np.sum(gathered * w.reshape(w.shape + (1,) * (y.ndim - axis - 1)),
                       axis=axis + 1)
            shift += WEIGHT_BITS
        if shift:
            y = (y + (1 << (shift - 1))) >> shift  # floor division: round half up
        return (np.clip(y, -128, 127).astype(np.int8),)
