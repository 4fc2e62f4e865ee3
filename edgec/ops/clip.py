"""Clip: constant bounds (attributes) and bounds computed at run time (RuntimeClip).

Both forms compute min(max(x, lo), hi) with the same comparisons, so for equal bounds they
give the same bits and NaN in x propagates the same way. Their C is in
codegen/c/kernels/clip.py.
"""

from __future__ import annotations

import numpy as np

from edgec.errors import ShapeError, UnsupportedError
from edgec.ops.base import Attr, PruneRule, QuantRule, in_type
from edgec.ops.common import NUMERIC
from edgec.ops.elementwise import UnaryOp
from edgec.ops.int8_elementwise import CLIP_INT8
from edgec.ops.registry import register_op


@register_op("Clip")
class Clip(UnaryOp):
    """ONNX Clip: y = min(max(x, min), max).

    Constant bounds become the attributes `min` / `max`. A bound computed at run time (the
    log-mel top-dB clamp `Clip(x, ReduceMax(x) - 80)`) stays an input, and the node becomes
    a `RuntimeClip` (below), so that passes reading the constant bounds never see it.
    """

    attrs = {"min": Attr("float", float("-inf")), "max": Attr("float", float("inf"))}
    quant = CLIP_INT8
    dtypes = NUMERIC

    def import_onnx(self, node, opset):
        super().import_onnx(node, opset)
        ins = [node.input(0)]
        for index, key in ((1, "min"), (2, "max")):
            v = node.input(index)
            if v is not None and v.type.numel != 1:
                raise ShapeError(f"Clip node '{node.name}': {key} must be a scalar, not of "
                                 f"shape {list(v.shape)}")
            if v is not None and v.dtype != node.input(0).dtype:
                raise ShapeError(f"Clip node '{node.name}': {key} is {v.dtype.value} but the "
                                 f"input is {node.input(0).dtype.value}; they must match")
            if v is not None and v.is_const:
                node.attrs[key] = float(np.asarray(v.data).reshape(-1)[0])
                v = None
            ins.append(v)
        while len(ins) > 1 and ins[-1] is None:
            ins.pop()
        node.inputs = ins
        if len(ins) > 1:
            node.op = "RuntimeClip"

    def infer(self, node):
        return [in_type(node, 0)]

    def reference(self, node, x, lo=None, hi=None):
        with np.errstate(all="ignore"):
            y = self.np_fn(node, x, lo, hi)
        return (np.asarray(y).astype(x.dtype).reshape(x.shape),)

    def np_fn(self, node, x, lo_in=None, hi_in=None):
        lo, hi = node.attrs["min"], node.attrs["max"]
        if x.dtype.kind in "iu":
            info = np.iinfo(x.dtype)
            lo = min(max(lo, info.min), info.max)
            hi = min(max(hi, info.min), info.max)
        lo = x.dtype.type(lo) if lo_in is None else np.asarray(lo_in).reshape(-1)[0]
        hi = x.dtype.type(hi) if hi_in is None else np.asarray(hi_in).reshape(-1)[0]
        # The C's comparisons, not np.maximum/np.minimum: NaN in x propagates, a NaN bound
        # is no bound (as in onnxruntime), and -0.0 against a 0 bound is kept (numpy's
        # choice between -0.0 and +0.0 depends on its SIMD dispatch).
        y = np.where(x < lo, lo, x)
        return np.where(y > hi, hi, y)


@register_op("RuntimeClip")
class RuntimeClip(Clip):
    """Clip with a bound computed at run time: inputs (x, min or None, max or None).

    Produced by importing an ONNX Clip whose min or max input is not a constant; the other
    bound, when constant, stays an attribute. Stays float in int8 builds (its bound is
    float data) and is never fused into a producer's epilogue.
    """

    quant = QuantRule.FLOAT_ONLY
    prune = PruneRule.PASSTHROUGH

    def import_onnx(self, node, opset):
        """RuntimeClip is an IR form, not an ONNX op: a model naming it is refused."""
        raise UnsupportedError(f"RuntimeClip node '{node.name}': RuntimeClip is edgec's "
                               "internal form of Clip, not an ONNX operator")
