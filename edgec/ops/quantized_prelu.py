"""QPRelu: PRelu (and LeakyRelu) on int8 data, TFLite's integer PRELU scheme.

Why: a PRelu kept in float inside an int8 graph is a float island (dequantise, float PRelu,
quantise), and float islands are where bits can differ between ISAs. With this op such
models stay integer end to end.

Arithmetic (all integers; edgec/qmath.py defines the rounding), channel c on the last axis:

    d = x - x_zero_point
    acc = MBQM(d, multiplier, shift)                          if d >= 0   (identity path)
    acc = MBQM(d * alpha_sign[c], alpha_multiplier[c],
               alpha_shift[c])                                 otherwise  (alpha path)
    y = clamp(acc + y_zero_point, act_min, act_max)

with multiplier = x_scale / y_scale and alpha_multiplier[c] = x_scale * |alpha[c]| / y_scale
(the two requantisation multipliers of TFLite's PRELU). TFLite quantises alpha to an int8
tensor and multiplies by it; here alpha's magnitude goes into a per-channel multiplier and
only its sign into the product, which is TFLite's scheme with alpha quantised per channel
exactly (alpha_q = +-1, alpha_scale[c] = |alpha[c]|): one rounding, no alpha error.
"""

from __future__ import annotations

import numpy as np

from edgec import qmath
from edgec.errors import ShapeError
from edgec.ir import DType, Node, TensorType
from edgec.ops.base import Attr, OpDef, PruneRule, in_type
from edgec.ops.int8_export import QPRELU_EXPORT
from edgec.ops.int8_scheme import QMAX, QMIN
from edgec.ops.quant_common import internal_op_import, require_int8
from edgec.ops.registry import register_op


@register_op("QPRelu")
class QPRelu(OpDef):
    """int8 PRelu (TFLite PRELU): identity and per-channel alpha requantisations."""

    attrs = {"x_zero_point": Attr("int", 0), "y_zero_point": Attr("int", 0),
             "multiplier": Attr("ints"), "shift": Attr("ints"),
             "alpha_sign": Attr("ints"), "alpha_multiplier": Attr("ints"),
             "alpha_shift": Attr("ints"), "act_min": Attr("int", QMIN),
             "act_max": Attr("int", QMAX), "x_scale": Attr("float", 0.0),
             "y_scale": Attr("float", 0.0), "alpha": Attr("floats", ())}
    quant = QPRELU_EXPORT
    prune = PruneRule.BLOCK
    dtypes = (DType.INT8,)

    def import_onnx(self, node: Node, opset: int) -> None:
        internal_op_import(node)

    def _channels(self, node: Node) -> int:
        a = node.attrs
        n = len(a["alpha_sign"])
        if not (len(a["alpha_multiplier"]) == len(a["alpha_shift"]) == n >= 1) or \
                len(a["multiplier"]) != 1 or len(a["shift"]) != 1:
            raise ShapeError(f"QPRelu node '{node.name}': alpha lists differ in length")
        shape = in_type(node, 0).shape
        if n > 1 and (not shape or shape[-1] != n):
            raise ShapeError(f"QPRelu node '{node.name}': {n} slopes for a last axis of "
                             f"{shape[-1] if shape else 0}")
        return n

    def infer(self, node: Node) -> list[TensorType]:
        require_int8(node)
        self._channels(node)
        return [TensorType(in_type(node, 0).shape, DType.INT8)]

    def in_place_inputs(self, node: Node) -> list[int]:
        """The output may overwrite the input (each element is read before it is written)."""
        return [0]

    def reference(self, node: Node, x):
        a = node.attrs
        n = self._channels(node)
        d = x.astype(np.int64) - a["x_zero_point"]
        sign = np.asarray(a["alpha_sign"], np.int64).reshape((1,) * (d.ndim - 1) + (n,)) \
            if d.ndim else np.int64(a["alpha_sign"][0])
        am = np.asarray(a["alpha_multiplier"], np.int64)
        ash = np.asarray(a["alpha_shift"], np.int64)
        if d.ndim:
            am, ash = am.reshape(sign.shape), ash.reshape(sign.shape)
        pos = qmath.multiply_by_quantized_multiplier(d, a["multiplier"][0], a["shift"][0])
        neg = qmath.multiply_by_quantized_multiplier(d * sign, am, ash)
        y = np.where(d >= 0, pos, neg) + a["y_zero_point"]
        return (np.clip(y, a["act_min"], a["act_max"]).astype(np.int8),)

    def macs(self, node: Node) -> int:
        return in_type(node, 0).numel

