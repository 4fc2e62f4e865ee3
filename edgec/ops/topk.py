"""ONNX TopK: the k largest (or smallest) values along an axis, and their int64 indices.

K is an input since opset 10 (an attribute before). The output shapes depend on its value,
so it must fold to a compile-time constant (an initializer, a Constant, or arithmetic on
the fixed input shapes, which the frontend folds); a K computed from input data is refused
with the input it comes from named. Outputs are always sorted (best first; `sorted=0`
leaves the order to the implementation, and sorted order is one), and equal values keep
their input order, lower index first, as the spec asks. NaN inputs are not supported (their
place is unspecified). The C (codegen/c/kernels/topk.py) keeps the k best of each slice in
order by insertion, O(n * k).
"""

from __future__ import annotations

import numpy as np

from edgec.errors import ConstantInputRequired, ShapeError, UnsupportedError
from edgec.ir import DType, Node, TensorType
from edgec.ops.base import Attr, OpDef, QuantRule, in_type, normalize_axis
from edgec.ops.common import NUMERIC, require_dtypes
from edgec.ops.registry import register_op


@register_op("TopK")
class TopK(OpDef):
    """ONNX TopK (K folded to a constant; sorted outputs, ties in input order)."""

    attrs = {"k": Attr("int"), "axis": Attr("int", -1), "largest": Attr("int", 1, (0, 1)),
             "sorted": Attr("int", 1, (0, 1))}
    dtypes = NUMERIC
    quant = QuantRule.FLOAT_ONLY  # the Indices output is not a quantisable value

    def import_onnx(self, node: Node, opset: int) -> None:
        require_dtypes(node, self.dtypes, [0])
        if opset >= 10 or node.input(1) is not None:
            k_value = node.input(1)
            try:
                data = self.const_input(node, 1, "K")
            except ConstantInputRequired as e:
                reason = f"it is graph input '{k_value.name}', known only at run time" \
                    if k_value.producer is None else \
                    str(e).split("but ", 1)[-1].split("; edgec", 1)[0]
                raise ConstantInputRequired(
                    f"TopK node '{node.name}': K decides the shape of its outputs, so it must "
                    f"fold to a compile-time constant, but {reason}",
                    value_name=k_value.name) from None
            if data is None or np.asarray(data).size != 1:
                raise ShapeError(f"TopK node '{node.name}': K must hold one value")
            node.attrs["k"] = int(np.asarray(data).reshape(-1)[0])
            node.inputs = [node.input(0)]
        x = in_type(node, 0)
        node.attrs["axis"] = normalize_axis(int(node.attrs.get("axis", -1)), x.rank, node)

    def infer(self, node: Node) -> list[TensorType]:
        x = in_type(node, 0)
        axis, k = node.attrs["axis"], node.attrs["k"]
        if not 0 < k <= x.shape[axis]:
            if k == 0:
                raise UnsupportedError(f"TopK node '{node.name}': K=0 (empty outputs) is not "
                                       "supported")
            raise ShapeError(f"TopK node '{node.name}': K={k} is outside 1..{x.shape[axis]} "
                             f"(the size of axis {axis})")
        shape = x.shape[:axis] + (k,) + x.shape[axis + 1:]
        return [TensorType(shape, x.dtype), TensorType(shape, DType.INT64)]

    def reference(self, node: Node, x):
        axis, k = node.attrs["axis"], node.attrs["k"]
        x = np.asarray(x)
        if node.attrs["largest"]:  # an order-reversing key that cannot overflow
            key = -x.astype(np.float64) if x.dtype.kind == "f" else ~x
        else:
            key = x
        order = np.argsort(key, axis=axis, kind="stable")
        index = np.take(order, np.arange(k), axis=axis)
        return np.take_along_axis(x, index, axis=axis), index.astype(np.int64)

    def macs(self, node: Node) -> int:
        return in_type(node, 0).numel * node.attrs["k"]
