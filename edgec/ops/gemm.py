"""Gemm and MatMul.

Gemm is canonicalised at import so that the C kernel sees y = A' * B' + C with alpha and
beta folded into constant B and C where possible. With a constant B the weights are packed
at compile time as [K, N] (row k holds every output column), so the inner loop of the
portable kernel runs over contiguous output columns. MatMul follows numpy's matmul
(batch broadcasting, 1-D promotion).
"""

from __future__ import annotations

import numpy as np

from edgec.errors import ShapeError
from edgec.ir import Node, TensorType
from edgec.ops import prune_facet
from edgec.ops.base import Attr, OpDef, PruneRule, broadcast_shapes, in_type
from edgec.ops.common import FLOATS, require_dtypes
from edgec.ops.epilogue import EPILOGUE_ATTRS, apply_epilogue_np
from edgec.ops.int8_layers import GEMM_INT8, MATMUL_INT8
from edgec.ops.registry import register_op


@register_op("Gemm")
class Gemm(OpDef):
    """ONNX Gemm: y = alpha * A' * B' + beta * C (+ fused residual and activation)."""

    attrs = {
        "alpha": Attr("float", 1.0),
        "beta": Attr("float", 1.0),
        "transA": Attr("int", 0, (0, 1)),
        "transB": Attr("int", 0, (0, 1)),
        # "mean": A is a channels-last feature map [N, spatial..., K] averaged over its
        # spatial dims on the fly (GlobalAveragePool fused into the classifier head).
        "input_pool": Attr("str", "none", ("none", "mean")),
        **EPILOGUE_ATTRS,
    }
    quant = GEMM_INT8
    prune = PruneRule.PRODUCER
    dtypes = FLOATS

    def prune_flow(self, node: Node, in_axes):
        """Prune facet: A's features (axis 1) slice B's K axis, output features slice B's N
        axis and C (a Flatten before it turns channels into feature blocks)."""
        a = node.attrs
        b, c = node.input(1), node.input(2)
        if a["transA"] or a.get("input_pool", "none") != "none" or len(node.inputs) > 3 \
                or not b.is_const or in_axes[0] != 1 or (c is not None and not c.is_const):
            return None
        pf = prune_facet
        k_axis, n_axis = (1, 0) if a["transB"] else (0, 1)
        flow = pf.PruneFlow(out_axes=[1], free_inputs={0})
        flow.params += [pf.ParamSlice(1, n_axis, pf.OUT0, role="filter"),
                        pf.ParamSlice(1, k_axis, pf.IN0, role="consumer")]
        n = node.output.shape[1]
        if c is not None and c.shape and c.shape[-1] == n and n > 1:
            flow.params.append(pf.ParamSlice(2, len(c.shape) - 1, pf.OUT0))
        elif c is not None and c.shape and c.shape[-1] != 1:
            return None
        return flow

    def import_onnx(self, node: Node, opset: int) -> None:
        require_dtypes(node, self.dtypes, range(len(node.inputs)))

    def _dims(self, node: Node):
        a, b = in_type(node, 0), in_type(node, 1)
        if node.attrs.get("input_pool", "none") == "mean":
            if a.rank < 3 or node.attrs["transA"]:
                raise ShapeError(f"Gemm node '{node.name}': a pooled input must be a "
                                 "channels-last feature map")
            a = TensorType((a.shape[0], a.shape[-1]), a.dtype)
        if a.rank != 2 or b.rank != 2:
            raise ShapeError(f"Gemm node '{node.name}': A and B must be 2-D, got {a} and {b}")
        m, k = a.shape[::-1] if node.attrs["transA"] else a.shape
        kb, n = b.shape[::-1] if node.attrs["transB"] else b.shape
        if k != kb:
            raise ShapeError(f"Gemm node '{node.name}': inner dimensions {k} and {kb} differ")
        return m, k, n

    def infer(self, node: Node) -> list[TensorType]:
        m, _, n = self._dims(node)
        c = node.input(2)
        if c is not None and broadcast_shapes((m, n), c.shape) != (m, n):
            raise ShapeError(f"Gemm node '{node.name}': C of shape {c.shape} does not broadcast "
                             f"to the output ({m}, {n})")
        return [TensorType((m, n), in_type(node, 0).dtype)]

    def reference(self, node: Node, a, b, c=None, residual=None):
        at = node.attrs
        if at.get("input_pool", "none") == "mean":
            a = a.astype(np.float64).mean(axis=tuple(range(1, a.ndim - 1)))
        a64 = a.astype(np.float64).T if at["transA"] else a.astype(np.float64)
        b64 = b.astype(np.float64).T if at["transB"] else b.astype(np.float64)
        y = at["alpha"] * (a64 @ b64)
        if c is not None:
            y = y + at["beta"] * c.astype(np.float64)
        y = apply_epilogue_np(y, node, residual, channel_axis=-1)
        return (y.astype(a.dtype),)

    def macs(self, node: Node) -> int:
        m, k, n = self._dims(node)
        pooled = in_type(node, 0).numel if node.attrs.get("input_pool", "none") == "mean" else 0
        return m * k * n + pooled


@register_op("MatMul")
class MatMul(OpDef):
    """ONNX MatMul (numpy matmul semantics)."""

    attrs = dict(EPILOGUE_ATTRS)
    quant = MATMUL_INT8
    prune = PruneRule.PRODUCER
    dtypes = FLOATS

    def prune_flow(self, node: Node, in_axes):
        """Prune facet (constant 2-D B): A's last axis slices B's rows, the output's last
        axis B's columns."""
        x, b = node.input(0), node.input(1)
        if not b.is_const or len(b.shape) != 2 or len(x.shape) < 2 or len(node.inputs) > 2 \
                or in_axes[0] != len(x.shape) - 1:
            return None
        pf = prune_facet
        flow = pf.PruneFlow(out_axes=[len(node.output.shape) - 1], free_inputs={0})
        flow.params += [pf.ParamSlice(1, 1, pf.OUT0, role="filter"),
                        pf.ParamSlice(1, 0, pf.IN0, role="consumer")]
        return flow

    def import_onnx(self, node: Node, opset: int) -> None:
        require_dtypes(node, self.dtypes, range(len(node.inputs)))

    @staticmethod
    def shapes(node: Node):
        """(batch shape, M, K, N, a batch shape, b batch shape) of the product."""
        a, b = in_type(node, 0).shape, in_type(node, 1).shape
        if not a or not b:
            raise ShapeError(f"MatMul node '{node.name}': scalars are not allowed")
        a2 = (1,) + a if len(a) == 1 else a
        b2 = b + (1,) if len(b) == 1 else b
        if a2[-1] != b2[-2]:
            raise ShapeError(f"MatMul node '{node.name}': inner dimensions {a2[-1]} and "
                             f"{b2[-2]} differ")
        batch = broadcast_shapes(a2[:-2], b2[:-2])
        return batch, a2[-2], a2[-1], b2[-1], a2[:-2], b2[:-2]

    def infer(self, node: Node) -> list[TensorType]:
        a, b = in_type(node, 0).shape, in_type(node, 1).shape
        batch, m, _, n, _, _ = self.shapes(node)
        out = list(batch) + ([m] if len(a) > 1 else []) + ([n] if len(b) > 1 else [])
        return [TensorType(tuple(out), in_type(node, 0).dtype)]

    def reference(self, node: Node, a, b, residual=None):
        y = np.matmul(a.astype(np.float64), b.astype(np.float64))
        y = apply_epilogue_np(y, node, residual, channel_axis=-1)
        return (y.astype(a.dtype),)

    def macs(self, node: Node) -> int:
        batch, m, k, n, _, _ = self.shapes(node)
        return int(np.prod(batch, dtype=np.int64)) * m * k * n

