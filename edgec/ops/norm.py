"""Normalisations: BatchNormalization (inference), InstanceNormalization, LayerNormalization.

BatchNormalization and InstanceNormalization are spatial (per-channel parameters, a `layout`
attribute; C kernels for channels-last data, or any [N, C] input). BatchNormalization folds
its four per-channel constants at compile time into y = x * scale' + shift'.
InstanceNormalization computes each (image, channel)'s mean and variance over the spatial
positions in two passes. LayerNormalization normalises each row of the trailing axes
[axis, rank) and is layout-agnostic as long as a Transpose leaves those axes in place.
Statistics use the two-pass (mean, then mean squared deviation) formulation everywhere. Every
kernel reads an element before it writes the same index, so the output may overwrite the
input (`in_place_inputs`, see passes/memory_liveness.py).
"""

from __future__ import annotations

import numpy as np

from edgec.errors import ShapeError, UnsupportedError
from edgec.ir import Node, TensorType
from edgec.ops import prune_facet
from edgec.ops.base import Attr, OpDef, PruneRule, QuantRule, in_type, normalize_axis
from edgec.ops.common import FLOATS, require_dtypes
from edgec.ops.conv import LAYOUTS, channels
from edgec.ops.int8_reduce_norm import LAYER_NORM_INT8
from edgec.ops.registry import register_op


def _channel_axis(rank: int, layout: str) -> int:
    """Axis of the channels: 1 for channels-first data (and any [N, C]), else the last."""
    return 1 if layout == "NCHW" or rank == 2 else rank - 1


def _per_channel(v: np.ndarray, rank: int, axis: int) -> np.ndarray:
    """Reshape a [C] vector to broadcast along `axis` of a rank-`rank` tensor (float64)."""
    shape = [1] * rank
    shape[axis] = -1
    return np.asarray(v, dtype=np.float64).reshape(shape)


def _check_channel_vectors(node: Node, names: tuple[str, ...]) -> None:
    """ShapeError unless inputs 1.. hold one value per channel."""
    x = in_type(node, 0)
    c = channels(x.shape, node.attrs["layout"])
    for i, what in enumerate(names, start=1):
        v = node.input(i)
        if v is not None and v.type.numel != c:
            raise ShapeError(f"{node.op} node '{node.name}': {what} has {v.type.numel} values "
                             f"for {c} channels")


@register_op("BatchNormalization")
class BatchNormalization(OpDef):
    """ONNX BatchNormalization in inference mode (opsets 9-15): per-channel affine map."""

    attrs = {
        "epsilon": Attr("float", 1e-5),
        "momentum": Attr("float", 0.9),
        "training_mode": Attr("int", 0, (0,)),
        "layout": Attr("str", "NCHW", LAYOUTS),
    }
    quant = QuantRule.REQUANTIZE
    prune = PruneRule.PASSTHROUGH
    spatial = True
    dtypes = FLOATS
    PARAMS = ("scale", "B", "input_mean", "input_var")

    def prune_flow(self, node: Node, in_axes):
        """Prune facet: channel c in is channel c out; the per-channel vectors are sliced
        (gamma is what the `bn` criterion ranks)."""
        if in_axes[0] != _channel_axis(in_type(node).rank, node.attrs["layout"]):
            return None
        pf = prune_facet
        flow = pf.passthrough_flow(node.output.shape[in_axes[0]], in_axes[0])
        flow.params.append(pf.ParamSlice(1, 0, pf.OUT0, role="bn_scale"))
        flow.params += [pf.ParamSlice(i, 0, pf.OUT0) for i in range(2, len(node.inputs))]
        return flow

    def import_onnx(self, node: Node, opset: int) -> None:
        require_dtypes(node, self.dtypes, range(5))
        if int(node.attrs.get("training_mode", 0)):
            raise UnsupportedError(f"BatchNormalization node '{node.name}': training_mode=1 is "
                                   "not supported (export the model in eval mode)")
        if in_type(node, 0).rank < 2 or len(node.inputs) != 5:
            raise ShapeError(f"BatchNormalization node '{node.name}': needs X of rank >= 2 and "
                             "the four per-channel inputs")
        for i, what in enumerate(self.PARAMS, start=1):
            self.const_input(node, i, what)

    def infer(self, node: Node) -> list[TensorType]:
        _check_channel_vectors(node, self.PARAMS)
        return [in_type(node, 0)]

    def reference(self, node: Node, x, scale, b, mean, var):
        axis = _channel_axis(x.ndim, node.attrs["layout"])
        scale, b, mean, var = (_per_channel(v, x.ndim, axis) for v in (scale, b, mean, var))
        y = (x - mean) / np.sqrt(var + node.attrs["epsilon"]) * scale + b
        return (y.astype(x.dtype),)

    def folded(self, node: Node) -> tuple[np.ndarray, np.ndarray]:
        """(scale', shift') with y = x * scale' + shift', computed in float64."""
        scale, b, mean, var = (np.asarray(self.const_input(node, i, w), np.float64).reshape(-1)
                               for i, w in enumerate(self.PARAMS, start=1))
        factor = scale / np.sqrt(var + node.attrs["epsilon"])
        return factor.astype(np.float32), (b - mean * factor).astype(np.float32)

    def macs(self, node: Node) -> int:
        return in_type(node, 0).numel

    def in_place_inputs(self, node: Node) -> list[int]:
        """The kernel reads each element before writing the same index: y may overwrite x."""
        return [0]


@register_op("InstanceNormalization")
class InstanceNormalization(OpDef):
    """ONNX InstanceNormalization: per (image, channel) statistics over the spatial dims."""

    attrs = {"epsilon": Attr("float", 1e-5), "layout": Attr("str", "NCHW", LAYOUTS)}
    quant = QuantRule.FLOAT_ONLY
    prune = PruneRule.PASSTHROUGH
    spatial = True
    dtypes = FLOATS

    def prune_flow(self, node: Node, in_axes):
        """Prune facet: per-channel statistics, so channels pass through; scale and B are
        sliced."""
        if in_axes[0] != _channel_axis(in_type(node).rank, node.attrs["layout"]):
            return None
        pf = prune_facet
        flow = pf.passthrough_flow(node.output.shape[in_axes[0]], in_axes[0])
        flow.params += [pf.ParamSlice(i, 0, pf.OUT0) for i in range(1, len(node.inputs))]
        return flow

    def import_onnx(self, node: Node, opset: int) -> None:
        require_dtypes(node, self.dtypes, range(3))
        if in_type(node, 0).rank < 3 or len(node.inputs) != 3:
            raise ShapeError(f"InstanceNormalization node '{node.name}': needs X with spatial "
                             "dimensions, scale and B")

    def infer(self, node: Node) -> list[TensorType]:
        _check_channel_vectors(node, ("scale", "B"))
        return [in_type(node, 0)]

    def reference(self, node: Node, x, scale, b):
        axis = _channel_axis(x.ndim, node.attrs["layout"])
        axes = tuple(i for i in range(1, x.ndim) if i != axis)
        x64 = x.astype(np.float64)
        mean = x64.mean(axis=axes, keepdims=True)
        var = ((x64 - mean) ** 2).mean(axis=axes, keepdims=True)
        y = (x64 - mean) / np.sqrt(var + node.attrs["epsilon"])
        y = y * _per_channel(scale, x.ndim, axis) + _per_channel(b, x.ndim, axis)
        return (y.astype(x.dtype),)

    def macs(self, node: Node) -> int:
        return 3 * in_type(node, 0).numel  # mean, variance, affine

    def in_place_inputs(self, node: Node) -> list[int]:
        """The kernel reads each element before writing the same index: y may overwrite x."""
        return [0]


@register_op("LayerNormalization")
class LayerNormalization(OpDef):
    """ONNX LayerNormalization (opset 17): normalise over axes [axis, rank), then Scale and B.

    `num_outputs` (2 or 3 when the ONNX node declares them) adds the Mean and InvStdDev
    outputs, shaped like X with the normalised axes reduced to 1.
    """

    attrs = {
        "axis": Attr("int", -1),
        "epsilon": Attr("float", 1e-5),
        "stash_type": Attr("int", 1, (1,)),
        "num_outputs": Attr("int", 1, (1, 2, 3)),
    }
    quant = LAYER_NORM_INT8
    prune = PruneRule.BLOCK
    dtypes = FLOATS

    def import_onnx(self, node: Node, opset: int) -> None:
        require_dtypes(node, self.dtypes, range(3))
        if int(node.attrs.get("stash_type", 1)) != 1:
            raise UnsupportedError(f"LayerNormalization node '{node.name}': stash_type "
                                   f"{node.attrs['stash_type']} is not supported (only 1, float)")
        node.attrs["num_outputs"] = min(max(int(node.meta.get("onnx_num_outputs", 1)), 1), 3)

    def split(self, node: Node) -> tuple[int, int, int]:
        """(axis, rows, D): the tensor is `rows` rows of D normalised elements."""
        x = in_type(node, 0)
        axis = normalize_axis(node.attrs["axis"], x.rank, node)
        d = int(np.prod(x.shape[axis:]))
        return axis, x.numel // max(d, 1), d

    def infer(self, node: Node) -> list[TensorType]:
        x = in_type(node, 0)
        axis, _, _ = self.split(node)
        norm_shape = x.shape[axis:]
        for i, what in ((1, "Scale"), (2, "B")):
            v = node.input(i)
            if v is None:
                continue
            ok = v.type.rank <= len(norm_shape) and all(
                a in (1, b) for a, b in zip(v.shape[::-1], norm_shape[::-1]))
            if not ok:
                raise ShapeError(f"LayerNormalization node '{node.name}': {what} {v.shape} does "
                                 f"not broadcast to the normalised shape {norm_shape}")
        stats = TensorType(x.shape[:axis] + (1,) * (x.rank - axis), x.dtype)
        return [x, stats, stats][: node.attrs["num_outputs"]]

    def reference(self, node: Node, x, scale, b=None):
        axis, _, _ = self.split(node)
        axes = tuple(range(axis, x.ndim))
        x64 = x.astype(np.float64)
        mean = x64.mean(axis=axes, keepdims=True)
        var = ((x64 - mean) ** 2).mean(axis=axes, keepdims=True)
        inv_std = 1.0 / np.sqrt(var + node.attrs["epsilon"])
        y = (x64 - mean) * inv_std * scale.astype(np.float64)
        if b is not None:
            y = y + b.astype(np.float64)
        outs = (y, mean, inv_std)[: node.attrs["num_outputs"]]
        return tuple(o.astype(x.dtype) for o in outs)

    def sink_transpose(self, node: Node, perm: list[int]) -> dict | None:
        axis, _, _ = self.split(node)
        if all(perm[i] == i for i in range(axis, len(perm))):
            return dict(node.attrs)
        return None

    def macs(self, node: Node) -> int:
        return 3 * in_type(node, 0).numel  # mean, variance, affine

    def in_place_inputs(self, node: Node) -> list[int]:
        """The kernel reads each element before writing the same index: y may overwrite x."""
        return [0]
