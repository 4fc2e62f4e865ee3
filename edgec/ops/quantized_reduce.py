"""QReduceMean: int8 ReduceMean with TFLite's int8 MEAN arithmetic (an internal op of the
int8 scheme, made by the quantize pass from ReduceMean; see int8_reduce_norm.py).

With count = the number of reduced elements per output and S = the sum over them of
(x - x_zero_point), exact in int32 (the facet refuses counts where 255 * count could
overflow): y = clamp(MBQM(S, multiplier, shift) + y_zero_point, act_min, act_max), where
(multiplier, shift) is x_scale / y_scale with 1 / count folded into the mantissa
(int8_scheme.mean_requant_attrs, TFLite reference_ops::QuantizedMeanOrSum). `axes` and
`keepdims` are ReduceMean's canonical ones (sorted, non-negative; never empty here).
"""

from __future__ import annotations

import numpy as np

from edgec import qmath
from edgec.errors import ShapeError
from edgec.ir import DType, Node, TensorType
from edgec.ops.base import Attr, PruneRule, in_type
from edgec.ops.int8_export import QREDUCE_MEAN_EXPORT
from edgec.ops.int8_reduce_norm import MAX_MEAN_COUNT
from edgec.ops.quant_common import require_int8
from edgec.ops.quantized import REQUANT_ATTRS, SCALE_ATTRS, QuantizedOp
from edgec.ops.reduce import ReduceOp, reduced_shape
from edgec.ops.registry import register_op


def reduce_count(node: Node) -> int:
    """The number of input elements averaged into each output element."""
    shape = in_type(node, 0).shape
    return int(np.prod([shape[a] for a in node.attrs["axes"]], dtype=np.int64))


@register_op("QReduceMean")
class QReduceMean(QuantizedOp):
    """int8 ReduceMean over constant `axes` (see the module docstring)."""

    attrs = {"axes": Attr("ints"), "keepdims": Attr("int", 1, (0, 1)),
             "x_zero_point": Attr("int", 0), **REQUANT_ATTRS, **SCALE_ATTRS}
    quant = QREDUCE_MEAN_EXPORT
    prune = PruneRule.PASSTHROUGH
    prune_flow = ReduceOp.prune_flow

    def sink_transpose(self, node: Node, perm: list[int]) -> dict | None:
        """ReduceMean's rule (keepdims=1 only), keeping the int8 attributes."""
        moved = ReduceOp.sink_transpose(self, node, perm)
        return None if moved is None else {**node.attrs, **moved}

    def keep_reduced_dims(self, node: Node) -> dict | None:
        """keepdims=0 -> keepdims=1 (a Reshape follows), keeping the int8 attributes."""
        return None if node.attrs["keepdims"] else {**node.attrs, "keepdims": 1}

    def infer(self, node: Node) -> list[TensorType]:
        require_int8(node)
        x = in_type(node, 0)
        axes = node.attrs["axes"]
        if not axes or any(not 0 <= d < x.rank for d in axes) or sorted(set(axes)) != axes:
            raise ShapeError(f"QReduceMean node '{node.name}': axes {axes} must be sorted, "
                             f"distinct and in [0, {x.rank})")
        if len(node.attrs["multiplier"]) != 1 or len(node.attrs["shift"]) != 1:
            raise ShapeError(f"QReduceMean node '{node.name}': needs one multiplier and shift")
        if reduce_count(node) > MAX_MEAN_COUNT:
            raise ShapeError(f"QReduceMean node '{node.name}': a mean over "
                             f"{reduce_count(node)} elements could overflow its int32 sum")
        return [TensorType(reduced_shape(x.shape, axes, node.attrs["keepdims"]), DType.INT8)]

    def reference(self, node: Node, x):
        a = node.attrs
        sums = (x.astype(np.int64) - a["x_zero_point"]).sum(axis=tuple(a["axes"]))
        y = qmath.requantize(sums, a["multiplier"][0], a["shift"][0], a["y_zero_point"],
                             a["act_min"], a["act_max"]).astype(np.int8)
        return (y.reshape(self.infer(node)[0].shape),)

    def macs(self, node: Node) -> int:
        return in_type(node, 0).numel
