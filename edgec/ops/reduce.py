"""Reductions: ReduceMean/Max/Min/Sum/Prod/SumSquare/L1/L2/LogSum/LogSumExp, ArgMax, ArgMin.

IR canonical form: `axes` lists the reduced axes (sorted, non-negative) and `keepdims` says
whether they stay as size-1 dims. Opset differences (axes as attribute or as constant input,
`noop_with_empty_axes`, empty axes meaning "all") are resolved at import. `axes == []` means
"reduce over no axis": every output element reduces the one-element set {x}, which is exactly
ONNX's noop_with_empty_axes behaviour (ReduceSumSquare gives x*x, ReduceL1 gives |x|...).
Integer ReduceSum and ReduceProd wrap around like numpy. Their C (a loop nest over a
reduction plan, one recipe per op) is in codegen/c/kernels/reduce.py.
"""

from __future__ import annotations

import numpy as np

from edgec.errors import ShapeError
from edgec.ir import DType, Node, TensorType
from edgec.ops import prune_facet
from edgec.ops.base import Attr, OpDef, QuantRule, in_type, normalize_axis
from edgec.ops.common import FLOATS, NUMERIC, require_dtypes
from edgec.ops.int8_reduce_norm import REDUCE_MEAN_INT8
from edgec.ops.registry import register_op

# ------------------------------------------------------------------------------ loop plans

def reduced_shape(shape: tuple[int, ...], axes, keepdims: int) -> tuple[int, ...]:
    """The output shape of reducing `shape` over `axes`."""
    if keepdims:
        return tuple(1 if d in axes else n for d, n in enumerate(shape))
    return tuple(n for d, n in enumerate(shape) if d not in axes)


def canonical_axes(node: Node, axes, rank: int) -> list[int]:
    """Sorted, de-duplicated, non-negative axes; ShapeError naming the node when out of range."""
    return sorted({normalize_axis(int(a), rank, node) for a in axes})


# ------------------------------------------------------------------------------ Reduce*
class ReduceOp(OpDef):
    """Common facets of the Reduce* ops; subclasses give `np_reduce`."""

    attrs = {"axes": Attr("ints"), "keepdims": Attr("int", 1, (0, 1))}
    dtypes = FLOATS
    # Opset from which `axes` is an input instead of an attribute.
    axes_input_since = 18

    def prune_flow(self, node: Node, in_axes):
        """Prune facet: a reduction over other axes keeps channels (the axis shifts when
        reduced axes before it are dropped); over the channel axis it blocks."""
        a = in_axes[0]
        axes = canonical_axes(node, node.attrs["axes"], in_type(node).rank)
        if a is None or a in axes:
            return None
        pf = prune_facet
        out_axis = a if node.attrs["keepdims"] else a - sum(1 for x in axes if x < a)
        return pf.passthrough_flow(in_type(node).shape[a], out_axis)

    def np_reduce(self, x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
        raise NotImplementedError

    def import_onnx(self, node: Node, opset: int) -> None:
        require_dtypes(node, self.dtypes)
        rank = in_type(node, 0).rank
        a = node.attrs
        noop = int(a.pop("noop_with_empty_axes", 0))
        axes = a.pop("axes", None)
        if opset >= self.axes_input_since or len(node.inputs) > 1:
            data = self.const_input(node, 1, "axes")
            if data is not None:
                axes = data.reshape(-1).tolist()
        node.inputs = node.inputs[:1]
        if axes is None or len(axes) == 0:
            axes = [] if noop else list(range(rank))
        a["axes"] = canonical_axes(node, axes, rank)
        a["keepdims"] = int(a.get("keepdims", 1))

    def infer(self, node: Node) -> list[TensorType]:
        x = in_type(node, 0)
        axes = node.attrs["axes"]
        if any(not 0 <= d < max(x.rank, 1) for d in axes):
            raise ShapeError(f"{node.op} node '{node.name}': axes {axes} out of range for "
                             f"rank {x.rank}")
        return [TensorType(reduced_shape(x.shape, axes, node.attrs["keepdims"]), x.dtype)]

    def reference(self, node: Node, x, *rest):
        axes = tuple(node.attrs["axes"])
        wide = x.astype(np.float64) if x.dtype.kind == "f" else x
        with np.errstate(all="ignore"):
            y = self.np_reduce(wide, axes)
        y = np.asarray(y).astype(x.dtype)
        return (y.reshape(self.infer(node)[0].shape),)

    def macs(self, node: Node) -> int:
        return in_type(node, 0).numel

    def sink_transpose(self, node: Node, perm: list[int]) -> dict | None:
        if not node.attrs["keepdims"]:
            return None
        return {"axes": sorted(perm[a] for a in node.attrs["axes"]), "keepdims": 1}

    def keep_reduced_dims(self, node: Node) -> dict | None:
        return None if node.attrs["keepdims"] else {**node.attrs, "keepdims": 1}


def _reduce_op(name: str, np_reduce, dtypes=FLOATS, quant: QuantRule = QuantRule.FLOAT_ONLY,
               axes_input_since: int = 18):
    """Register a Reduce* op from its numpy form `np_reduce(x, axes)`."""

    @register_op(name)
    class _Op(ReduceOp):
        __doc__ = (f"ONNX {name} over `axes` (canonical: sorted non-negative axes, keepdims; "
                   "axes=[] reduces over no axis).")

        def np_reduce(self, x, axes):
            return np_reduce(x, axes)

    _Op.dtypes = dtypes
    _Op.quant = quant
    _Op.axes_input_since = axes_input_since
    _Op.__name__ = f"{name}Op"
    return _Op


def _int_wrap_sum(x, axes):
    return np.sum(x, axis=axes, dtype=x.dtype) if x.dtype.kind in "iu" else np.sum(x, axis=axes)


def _int_wrap_prod(x, axes):
    return np.prod(x, axis=axes, dtype=x.dtype) if x.dtype.kind in "iu" else np.prod(x, axis=axes)


def _reduce_max(x, axes):
    if x.size == 0:
        low = -np.inf if x.dtype.kind == "f" else (0 if x.dtype == bool else np.iinfo(x.dtype).min)
        return np.full(reduced_shape(x.shape, axes, 1), low, dtype=x.dtype)
    return np.max(x, axis=axes, keepdims=True)


def _reduce_min(x, axes):
    if x.size == 0:
        high = np.inf if x.dtype.kind == "f" else (1 if x.dtype == bool else np.iinfo(x.dtype).max)
        return np.full(reduced_shape(x.shape, axes, 1), high, dtype=x.dtype)
    return np.min(x, axis=axes, keepdims=True)


def _log_sum_exp(x, axes):
    if x.size == 0:
        return np.full(reduced_shape(x.shape, axes, 1), -np.inf)
    m = np.max(x, axis=axes, keepdims=True)
    safe_m = np.where(np.isfinite(m), m, 0.0)
    return np.log(np.sum(np.exp(x - safe_m), axis=axes, keepdims=True)) + safe_m


MINMAX_DTYPES = NUMERIC | {DType.BOOL}
INT_SUM_DTYPES = {DType.FLOAT32, DType.INT32, DType.INT64}

_reduce_op("ReduceMax", _reduce_max, MINMAX_DTYPES, QuantRule.SAME_AS_INPUT)
_reduce_op("ReduceMin", _reduce_min, MINMAX_DTYPES, QuantRule.SAME_AS_INPUT)
_reduce_op("ReduceSum", _int_wrap_sum, INT_SUM_DTYPES, axes_input_since=13)
_reduce_op("ReduceMean", lambda x, a: np.mean(x, axis=a), quant=REDUCE_MEAN_INT8)
_reduce_op("ReduceProd", _int_wrap_prod, INT_SUM_DTYPES)
_reduce_op("ReduceSumSquare", lambda x, a: np.sum(x * x, axis=a))
_reduce_op("ReduceL1", lambda x, a: np.sum(np.abs(x), axis=a))
_reduce_op("ReduceL2", lambda x, a: np.sqrt(np.sum(x * x, axis=a)))
_reduce_op("ReduceLogSum", lambda x, a: np.log(np.sum(x, axis=a)))
_reduce_op("ReduceLogSumExp", _log_sum_exp)


# ------------------------------------------------------------------------------ ArgMax/ArgMin
class ArgOp(OpDef):
    """Common facets of ArgMax/ArgMin: int64 index of the extreme value along `axis`."""

    attrs = {
        "axis": Attr("int", 0),
        "keepdims": Attr("int", 1, (0, 1)),
        "select_last_index": Attr("int", 0, (0, 1)),
    }
    dtypes = NUMERIC
    quant = QuantRule.FLOAT_ONLY  # the output is an index, not a quantisable value
    better = ">"

    def import_onnx(self, node: Node, opset: int) -> None:
        require_dtypes(node, self.dtypes)
        x = in_type(node, 0)
        node.attrs["axis"] = normalize_axis(int(node.attrs.get("axis", 0)), x.rank, node)

    def infer(self, node: Node) -> list[TensorType]:
        x = in_type(node, 0)
        axis = node.attrs["axis"]
        if not 0 <= axis < x.rank:
            raise ShapeError(f"{node.op} node '{node.name}': axis {axis} out of range")
        if x.shape[axis] == 0:
            raise ShapeError(f"{node.op} node '{node.name}': axis {axis} is empty")
        return [TensorType(reduced_shape(x.shape, [axis], node.attrs["keepdims"]), DType.INT64)]

    def reference(self, node: Node, x):
        axis = node.attrs["axis"]
        first_nan = None
        if x.dtype.kind == "f":
            # The C (and onnxruntime) scan keeps the first value and takes a later one only
            # when it compares better: NaN never wins, and a NaN first value is never beaten
            # (numpy's argmax would pick the first NaN). So: mark the extreme non-NaN values
            # with 1 and pick the first (or last) mark; a NaN first value gives index 0.
            nan = np.isnan(x)
            fill = -np.inf if self.better == ">" else np.inf
            vals = np.where(nan, fill, x)
            fold = np.max if self.better == ">" else np.min
            extreme = fold(vals, axis=axis, keepdims=True)
            x = (~nan & (vals == extreme)).astype(np.int8)
            first_nan = np.take(nan, 0, axis=axis)
            pick = np.argmax
        else:
            pick = np.argmax if self.better == ">" else np.argmin
        if node.attrs["select_last_index"]:
            n = x.shape[axis]
            idx = n - 1 - pick(np.flip(x, axis), axis=axis)
        else:
            idx = pick(x, axis=axis)
        if first_nan is not None:
            idx = np.where(first_nan, 0, idx)
        return (np.asarray(idx, np.int64).reshape(self.infer(node)[0].shape),)

    def sink_transpose(self, node: Node, perm: list[int]) -> dict | None:
        if not node.attrs["keepdims"]:
            return None
        return {**node.attrs, "axis": perm[node.attrs["axis"]]}

    def keep_reduced_dims(self, node: Node) -> dict | None:
        return None if node.attrs["keepdims"] else {**node.attrs, "keepdims": 1}

    def macs(self, node: Node) -> int:
        return in_type(node, 0).numel


@register_op("ArgMax")
class ArgMax(ArgOp):
    """ONNX ArgMax (first or last index of the maximum along `axis`)."""

    better = ">"


@register_op("ArgMin")
class ArgMin(ArgOp):
    """ONNX ArgMin (first or last index of the minimum along `axis`)."""

    better = "<"
