"""QLayerNorm: int8 LayerNormalization, int8 in and int8 out (an internal op of the int8 scheme,
made by the quantize pass from LayerNormalization; see int8_reduce_norm.py).

Each row is the D = prod(shape[axis:]) trailing elements. Integer statistics, exact:
d = x - x_zero_point, S = sum d (int32), Q = sum d^2 (int64), V = D Q - S^2 (= D^2 times the
variance in input codes). The input scale cancels: (x - mean) / sqrt(var + eps) equals
c / sqrt(V + E) with c = D d - S and E = eps D^2 / x_scale^2 (`eps_codes`, rounded, at least
1). Then fixed-order float32, each operation correctly rounded (no FMA, no libm function
other than the correctly rounded sqrtf), so numpy and every C target give the same bits:

    inv = 1 / sqrtf((float)(V + E));  u = ((float)c * inv) * gain[i] + offset[i]
    y = rint(clamp(u, act_min, act_max))

where gain = Scale / y_scale and offset = B / y_scale + y_zero_point (float32, per element of
the row, `gain` and `offset` attributes).
"""

from __future__ import annotations

import numpy as np

from edgec.errors import ShapeError
from edgec.ir import DType, Node, TensorType
from edgec.ops.base import Attr, PruneRule, in_type
from edgec.ops.int8_export import QLAYER_NORM_EXPORT
from edgec.ops.quant_common import require_int8
from edgec.ops.quantized import QMAX, QMIN, SCALE_ATTRS, QuantizedOp
from edgec.ops.registry import register_op

F = np.float32


def layer_norm_int8(x: np.ndarray, x_zero_point: int, eps_codes: int, gain: np.ndarray,
                    offset: np.ndarray, act_min: int, act_max: int) -> np.ndarray:
    """The QLayerNorm arithmetic (module docstring) on rows x [R, D] of int8 codes."""
    d = x.astype(np.int64) - x_zero_point
    n = d.shape[-1]
    s = d.sum(axis=-1, keepdims=True)
    v = n * (d * d).sum(axis=-1, keepdims=True) - s * s
    inv = F(1.0) / np.sqrt((v + eps_codes).astype(F))
    c = (n * d - s).astype(np.int32).astype(F)
    u = (c * inv) * gain.astype(F) + offset.astype(F)
    return np.rint(np.clip(u, F(act_min), F(act_max))).astype(np.int8)


@register_op("QLayerNorm")
class QLayerNorm(QuantizedOp):
    """int8 LayerNormalization over axes [axis, rank) (see the module docstring)."""

    attrs = {"axis": Attr("int"), "x_zero_point": Attr("int", 0),
             "y_zero_point": Attr("int", 0), "eps_codes": Attr("int", 1),
             "gain": Attr("floats"), "offset": Attr("floats"),
             "act_min": Attr("int", QMIN), "act_max": Attr("int", QMAX), **SCALE_ATTRS}
    quant = QLAYER_NORM_EXPORT
    prune = PruneRule.BLOCK

    def row_size(self, node: Node) -> int:
        """D, the number of elements normalised together."""
        x = in_type(node, 0)
        return int(np.prod(x.shape[node.attrs["axis"]:], dtype=np.int64))

    def infer(self, node: Node) -> list[TensorType]:
        require_int8(node)
        x = in_type(node, 0)
        a = node.attrs
        if not 0 <= a["axis"] < x.rank:
            raise ShapeError(f"QLayerNorm node '{node.name}': axis {a['axis']} out of range "
                             f"for rank {x.rank}")
        n = self.row_size(node)
        if len(a["gain"]) != n or len(a["offset"]) != n:
            raise ShapeError(f"QLayerNorm node '{node.name}': gain and offset need {n} values")
        if a["eps_codes"] < 1:
            raise ShapeError(f"QLayerNorm node '{node.name}': eps_codes must be at least 1")
        return [TensorType(x.shape, DType.INT8)]

    def reference(self, node: Node, x):
        a = node.attrs
        n = self.row_size(node)
        y = layer_norm_int8(x.reshape(-1, n), a["x_zero_point"], a["eps_codes"],
                            np.asarray(a["gain"], F), np.asarray(a["offset"], F),
                            a["act_min"], a["act_max"])
        return (y.reshape(x.shape),)

    def sink_transpose(self, node: Node, perm: list[int]) -> dict | None:
        """Through a transpose that leaves the normalised axes in place."""
        axis = node.attrs["axis"]
        return dict(node.attrs) if all(perm[i] == i for i in range(axis, len(perm))) else None

    def macs(self, node: Node) -> int:
        return 3 * in_type(node, 0).numel

    def in_place_inputs(self, node: Node) -> list[int]:
        """The kernel reads a row fully before writing it: y may overwrite x."""
        return [0]
