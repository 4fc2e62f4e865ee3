"""Ops that only ever produce compile-time constants: Constant, Shape, Size, ConstantOfShape,
Range. They fold at import; a model where they depend on runtime data is unsupported.
"""

from __future__ import annotations

import numpy as np

from edgec.errors import ShapeError, UnsupportedError
from edgec.ir import DType, Node, TensorType
from edgec.ops.base import Attr, OpDef, in_type
from edgec.ops.registry import register_op


class FoldOnly(OpDef):
    """Common facet: no C kernel, the frontend folds the op to a constant."""

    fold_only = True
    dtypes = set(DType)  # folded in numpy: any element type edgec can store


@register_op("Constant")
class Constant(FoldOnly):
    """ONNX Constant (value, value_float(s), value_int(s))."""

    attrs = {
        "value": Attr("tensor", None),
        "value_float": Attr("float", None),
        "value_floats": Attr("floats", None),
        "value_int": Attr("int", None),
        "value_ints": Attr("ints", None),
    }

    def import_onnx(self, node: Node, opset: int) -> None:
        for key in ("sparse_value", "value_string", "value_strings"):
            if key in node.attrs:
                raise UnsupportedError(f"Constant node '{node.name}': {key} is not supported")

    def _value(self, node: Node) -> np.ndarray:
        a = node.attrs
        if a.get("value") is not None:
            return np.asarray(a["value"])
        if a.get("value_float") is not None:
            return np.array(a["value_float"], np.float32)
        if a.get("value_floats") is not None:
            return np.array(a["value_floats"], np.float32)
        if a.get("value_int") is not None:
            return np.array(a["value_int"], np.int64)
        if a.get("value_ints") is not None:
            return np.array(a["value_ints"], np.int64)
        raise UnsupportedError(f"Constant node '{node.name}' has no value")

    def infer(self, node: Node) -> list[TensorType]:
        v = self._value(node)
        return [TensorType(v.shape, DType.from_numpy(v.dtype))]

    def reference(self, node: Node, *inputs):
        return (self._value(node),)


@register_op("Shape")
class Shape(FoldOnly):
    """ONNX Shape (with start/end): the static shape as int64."""

    attrs = {"start": Attr("int", 0), "end": Attr("int", None)}

    def _dims(self, node: Node):
        shape = in_type(node, 0).shape
        start, end = node.attrs["start"], node.attrs["end"]
        return shape[start:end] if end is not None else shape[start:]

    def infer(self, node: Node) -> list[TensorType]:
        return [TensorType((len(self._dims(node)),), DType.INT64)]

    def reference(self, node: Node, *inputs):
        return (np.array(self._dims(node), dtype=np.int64),)


@register_op("Size")
class Size(FoldOnly):
    """ONNX Size: the element count as an int64 scalar."""

    def infer(self, node: Node) -> list[TensorType]:
        return [TensorType((), DType.INT64)]

    def reference(self, node: Node, *inputs):
        return (np.array(in_type(node, 0).numel, dtype=np.int64),)


@register_op("ConstantOfShape")
class ConstantOfShape(FoldOnly):
    """ONNX ConstantOfShape with a constant shape input."""

    attrs = {"value": Attr("tensor", None)}

    def _fill(self, node: Node) -> np.ndarray:
        v = node.attrs.get("value")
        if v is not None and np.asarray(v).size != 1:
            raise ShapeError(f"ConstantOfShape node '{node.name}': value must hold one element, "
                             f"not {np.asarray(v).size}")
        return np.zeros(1, np.float32) if v is None else np.asarray(v).reshape(-1)[:1]

    def infer(self, node: Node) -> list[TensorType]:
        shape = self.const_input(node, 0, "input")
        if shape.ndim != 1 or shape.dtype != np.int64 or (shape < 0).any():
            raise ShapeError(f"ConstantOfShape node '{node.name}': the shape input must be a "
                             f"1-D int64 tensor of sizes >= 0, not {shape.dtype}{list(shape.shape)}"
                             f" {shape.reshape(-1)[:8].tolist()}")
        return [TensorType(tuple(int(d) for d in shape.reshape(-1)),
                           DType.from_numpy(self._fill(node).dtype))]

    def reference(self, node: Node, shape):
        fill = self._fill(node)
        return (np.full(tuple(int(d) for d in shape.reshape(-1)), fill[0], dtype=fill.dtype),)


@register_op("Range")
class Range(FoldOnly):
    """ONNX Range with constant start, limit, delta."""

    def _count(self, node: Node, start, limit, delta) -> int:
        """Number of elements, computed without making them (the size is checked against
        the limits before `reference` allocates)."""
        for what, v in (("start", start), ("limit", limit), ("delta", delta)):
            if np.asarray(v).size != 1:
                raise ShapeError(f"Range node '{node.name}': {what} must be a scalar, not of "
                                 f"shape {list(np.asarray(v).shape)}")
        with np.errstate(all="ignore"):
            steps = np.ceil((limit - start) / delta)
        if not np.all(np.isfinite(steps)):
            raise ShapeError(f"Range node '{node.name}': start {start}, limit {limit} and delta "
                             f"{delta} do not give a finite number of elements")
        return max(int(np.asarray(steps).reshape(())), 0)

    def _values(self, node: Node, start=None, limit=None, delta=None):
        if start is None:
            start, limit, delta = (self.const_input(node, i, n)
                                   for i, n in enumerate(("start", "limit", "delta")))
        n = self._count(node, start, limit, delta)
        return (start + np.arange(n) * delta).astype(np.asarray(start).dtype)

    def infer(self, node: Node) -> list[TensorType]:
        start, limit, delta = (self.const_input(node, i, n)
                               for i, n in enumerate(("start", "limit", "delta")))
        return [TensorType((self._count(node, start, limit, delta),), in_type(node, 0).dtype)]

    def reference(self, node: Node, start, limit, delta):
        return (self._values(node, start, limit, delta),)
