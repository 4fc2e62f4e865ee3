"""Ops that only change how a dense buffer is indexed: Reshape, Flatten, Squeeze, Unsqueeze.

In C they are a copy (or nothing, when the memory planner makes the output a view of the
input: see passes/memory_plan.py). Constant shape/axes inputs become attributes at import.
"""

from __future__ import annotations

import math

import numpy as np

from edgec.errors import ShapeError
from edgec.ir import DType, Node, TensorType
from edgec.ops import prune_facet
from edgec.ops.base import Attr, OpDef, PruneRule, QuantRule, in_type, normalize_axis
from edgec.ops.registry import register_op


class ViewOp(OpDef):
    """Common facets: same data, new shape."""

    quant = QuantRule.SAME_AS_INPUT
    prune = PruneRule.BLOCK
    is_view = True
    dtypes = set(DType)  # a byte copy works for every element type

    def prune_flow(self, node: Node, in_axes):
        """Prune facet: the channel axis survives the view alone or merged with the axes
        after it (channel -> feature block; see prune_facet.view_flow)."""
        return prune_facet.view_flow(node, in_axes)

    def out_shape(self, node: Node) -> tuple[int, ...]:
        raise NotImplementedError

    def infer(self, node: Node) -> list[TensorType]:
        x = in_type(node, 0)
        shape = self.out_shape(node)
        if math.prod(shape) != x.numel:
            raise ShapeError(f"{node.op} node '{node.name}': cannot view {x.shape} as {shape}")
        return [TensorType(shape, x.dtype)]

    def reference(self, node: Node, x, *rest):
        return (np.reshape(x, self.out_shape(node)),)


@register_op("Reshape")
class Reshape(ViewOp):
    """ONNX Reshape with a constant target shape (0 copies, -1 infers)."""

    attrs = {"shape": Attr("ints"), "allowzero": Attr("int", 0)}

    def prune_flow(self, node: Node, in_axes):
        """Prune facet: `view_flow`, and the target shape follows the kept channels."""
        flow = prune_facet.view_flow(node, in_axes)
        if flow is not None:
            flow.updates.append(prune_facet.reshape_update(flow.out_axes[0]))
        return flow

    def import_onnx(self, node: Node, opset: int) -> None:
        self.take_const_input(node, 1, "shape")

    def out_shape(self, node: Node) -> tuple[int, ...]:
        x = in_type(node, 0)
        want = list(node.attrs["shape"])
        if not node.attrs["allowzero"]:
            if any(d == 0 for d in want[x.rank:]):
                raise ShapeError(f"Reshape node '{node.name}': shape {want} copies dimension "
                                 f"{want.index(0, x.rank)} (0) of an input of rank {x.rank}")
            want = [x.shape[i] if d == 0 else d for i, d in enumerate(want)]
        if any(d < -1 for d in want):
            raise ShapeError(f"Reshape node '{node.name}': negative size in shape {want}")
        if want.count(-1) > 1:
            raise ShapeError(f"Reshape node '{node.name}': more than one -1 in {want}")
        if -1 in want:
            known = math.prod(d for d in want if d != -1)
            if known == 0 or x.numel % known:
                raise ShapeError(f"Reshape node '{node.name}': cannot reshape {x.shape} to {want}")
            want[want.index(-1)] = x.numel // known
        return tuple(want)


@register_op("Flatten")
class Flatten(ViewOp):
    """ONNX Flatten: 2-D view [prod(dims[:axis]), prod(dims[axis:])]."""

    attrs = {"axis": Attr("int", 1)}

    def out_shape(self, node: Node) -> tuple[int, ...]:
        x = in_type(node, 0)
        axis = node.attrs["axis"]
        axis = axis + x.rank if axis < 0 else axis
        if not 0 <= axis <= x.rank:
            raise ShapeError(f"Flatten node '{node.name}': axis {axis} out of range")
        return (int(np.prod(x.shape[:axis], dtype=np.int64)),
                int(np.prod(x.shape[axis:], dtype=np.int64)))


@register_op("Squeeze")
class Squeeze(ViewOp):
    """ONNX Squeeze (axes as attribute; all size-1 dims when absent)."""

    attrs = {"axes": Attr("ints", None)}

    def import_onnx(self, node: Node, opset: int) -> None:
        if len(node.inputs) > 1:
            self.take_const_input(node, 1, "axes")

    def out_shape(self, node: Node) -> tuple[int, ...]:
        x = in_type(node, 0)
        axes = node.attrs["axes"]
        if axes is None:
            return tuple(d for d in x.shape if d != 1)
        axes = {normalize_axis(a, x.rank, node) for a in axes}
        for a in axes:
            if x.shape[a] != 1:
                raise ShapeError(f"Squeeze node '{node.name}': dimension {a} is "
                                 f"{x.shape[a]}, not 1")
        return tuple(d for i, d in enumerate(x.shape) if i not in axes)


@register_op("Unsqueeze")
class Unsqueeze(ViewOp):
    """ONNX Unsqueeze (axes as attribute)."""

    attrs = {"axes": Attr("ints")}

    def import_onnx(self, node: Node, opset: int) -> None:
        if len(node.inputs) > 1:
            self.take_const_input(node, 1, "axes")

    def out_shape(self, node: Node) -> tuple[int, ...]:
        x = in_type(node, 0)
        rank = x.rank + len(node.attrs["axes"])
        axes = sorted(normalize_axis(a, rank, node) for a in node.attrs["axes"])
        shape = list(x.shape)
        for a in axes:
            shape.insert(a, 1)
        return tuple(shape)


@register_op("Transpose")
class Transpose(OpDef):
    """ONNX Transpose: a strided copy (rendered by the elementwise template)."""

    attrs = {"perm": Attr("ints", None)}
    quant = QuantRule.SAME_AS_INPUT
    dtypes = set(DType)

    def prune_flow(self, node: Node, in_axes):
        """Prune facet: the channel axis moves to where `perm` puts it."""
        if in_axes[0] is None:
            return None
        pf = prune_facet
        flow = pf.passthrough_flow(node.input(0).shape[in_axes[0]],
                                   self.perm(node).index(in_axes[0]))
        return flow

    def perm(self, node: Node) -> list[int]:
        """The permutation (reversal when the attribute is absent)."""
        rank = in_type(node, 0).rank
        perm = node.attrs["perm"]
        perm = list(range(rank))[::-1] if perm is None else [normalize_axis(p, rank) for p in perm]
        if sorted(perm) != list(range(rank)):
            raise ShapeError(f"Transpose node '{node.name}': {perm} is not a permutation")
        return perm

    def infer(self, node: Node) -> list[TensorType]:
        x = in_type(node, 0)
        return [TensorType(tuple(x.shape[p] for p in self.perm(node)), x.dtype)]

    def reference(self, node: Node, x):
        return (np.ascontiguousarray(np.transpose(x, self.perm(node))),)

