"""Softmax, LogSoftmax and Hardmax.

IR canonical form: `axes`, the sorted non-negative axes normalised over. Opset 13+ normalises
over one axis; before opset 13 the input is coerced to 2-D at `axis` and normalised over the
flattened trailing block, i.e. over axes [axis, ..., rank-1]. Keeping the axis *set* makes
both forms one op, and lets a Transpose sink through (axes are remapped by the permutation).

Numerically stable: the max over the normalised axes is subtracted before exp. The C kernel
uses the reduction plan of edgec/ops/reduce.py (kept dims outside, normalised dims inside).
"""

from __future__ import annotations

import numpy as np

from edgec.errors import ShapeError
from edgec.ir import Node, TensorType
from edgec.ops import prune_facet
from edgec.ops.base import Attr, OpDef, QuantRule, in_type
from edgec.ops.common import FLOATS, require_dtypes
from edgec.ops.quantized_softmax import SOFTMAX_INT8
from edgec.ops.reduce import canonical_axes
from edgec.ops.registry import register_op


class SoftmaxFamily(OpDef):
    """Common facets: axes canonicalisation, shape inference, layout facet, C plan."""

    attrs = {"axes": Attr("ints")}
    dtypes = FLOATS
    quant = QuantRule.FLOAT_ONLY  # Softmax itself: int8 with --int8-softmax (QSoftmax)

    def prune_flow(self, node: Node, in_axes):
        """Prune facet: normalising over other axes keeps channels; over the channel axis
        it blocks (the result of every channel depends on all of them)."""
        a = in_axes[0]
        if a is None or a in node.attrs["axes"]:
            return None
        pf = prune_facet
        return pf.passthrough_flow(in_type(node).shape[a], a)

    def np_fn(self, x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
        raise NotImplementedError

    def import_onnx(self, node: Node, opset: int) -> None:
        require_dtypes(node, self.dtypes)
        rank = in_type(node, 0).rank
        if rank == 0:
            raise ShapeError(f"{node.op} node '{node.name}': input must have rank >= 1")
        axis = node.attrs.pop("axis", 1 if opset < 13 else -1)
        axis = canonical_axes(node, [axis], rank)[0]
        node.attrs["axes"] = list(range(axis, rank)) if opset < 13 else [axis]

    def infer(self, node: Node) -> list[TensorType]:
        x = in_type(node, 0)
        if any(not 0 <= a < x.rank for a in node.attrs["axes"]):
            raise ShapeError(f"{node.op} node '{node.name}': axes {node.attrs['axes']} out of "
                             f"range for rank {x.rank}")
        return [x]

    def reference(self, node: Node, x):
        with np.errstate(all="ignore"):
            y = self.np_fn(x.astype(np.float64), tuple(node.attrs["axes"]))
        return (y.astype(x.dtype),)

    def sink_transpose(self, node: Node, perm: list[int]) -> dict | None:
        return {"axes": sorted(perm[a] for a in node.attrs["axes"])}

    def macs(self, node: Node) -> int:
        return 2 * in_type(node, 0).numel


@register_op("Softmax")
class Softmax(SoftmaxFamily):
    """ONNX Softmax: exp(x - max) / sum(exp(x - max)) over `axes`."""

    quant = SOFTMAX_INT8  # float32 unless QuantOptions.int8_softmax (quantized_softmax.py)

    def np_fn(self, x, axes):
        e = np.exp(x - np.max(x, axis=axes, keepdims=True))
        return e / np.sum(e, axis=axes, keepdims=True)


@register_op("LogSoftmax")
class LogSoftmax(SoftmaxFamily):
    """ONNX LogSoftmax: (x - max) - log(sum(exp(x - max))) over `axes`."""

    def np_fn(self, x, axes):
        shifted = x - np.max(x, axis=axes, keepdims=True)
        return shifted - np.log(np.sum(np.exp(shifted), axis=axes, keepdims=True))


@register_op("Hardmax")
class Hardmax(SoftmaxFamily):
    """ONNX Hardmax: 1 at the first maximum over `axes` (row-major order), 0 elsewhere."""

    def np_fn(self, x, axes):
        rest = [d for d in range(x.ndim) if d not in axes]
        moved = np.transpose(x, rest + list(axes))
        flat = moved.reshape(*moved.shape[: len(rest)], -1)
        hot = np.zeros_like(flat)
        np.put_along_axis(hot, np.argmax(flat, axis=-1)[..., None], 1.0, axis=-1)
        return np.transpose(hot.reshape(moved.shape), np.argsort(rest + list(axes)))

    def sink_transpose(self, node: Node, perm: list[int]) -> dict | None:
        # Ties go to the first maximum in row-major order over several axes, an order a
        # permutation would change; one axis keeps its order.
        return super().sink_transpose(node, perm) if len(node.attrs["axes"]) == 1 else None
