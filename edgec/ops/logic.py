"""Comparison, logical and small math ops, as rows of the elementwise table (see
elementwise.py): LessOrEqual, GreaterOrEqual, And, Or, Xor, Not, Sign, Round, IsNaN, IsInf,
Mod, Gelu, Mish, Celu, Shrink, and CastLike (a Cast whose target type is its second input's).
Their C is in codegen/c/kernels/logic.py.
"""

from __future__ import annotations

import math

import numpy as np

from edgec.ir import DType, Node
from edgec.ops.base import Attr, QuantRule
from edgec.ops.common import FLOATS, NUMERIC
from edgec.ops.elementwise import BinaryOp, UnaryOp, _binary, _unary
from edgec.ops.int8_facet import UNPLANNED_LOOKUP
from edgec.ops.intmath import int_mod
from edgec.ops.registry import register_op
from edgec.ops.shape_ops import Cast

BOOLS = {DType.BOOL}
INTS = NUMERIC - FLOATS

_binary("LessOrEqual", lambda a, b: a <= b, quant=QuantRule.FLOAT_ONLY, out=DType.BOOL)
_binary("GreaterOrEqual", lambda a, b: a >= b, quant=QuantRule.FLOAT_ONLY, out=DType.BOOL)
_binary("And", lambda a, b: np.logical_and(a, b), dtypes=BOOLS, quant=QuantRule.FLOAT_ONLY)
_binary("Or", lambda a, b: np.logical_or(a, b), dtypes=BOOLS, quant=QuantRule.FLOAT_ONLY)
_binary("Xor", lambda a, b: np.logical_xor(a, b), dtypes=BOOLS, quant=QuantRule.FLOAT_ONLY)
_unary("Not", lambda x, a: np.logical_not(x), dtypes=BOOLS, quant=QuantRule.FLOAT_ONLY)


@register_op("Sign")
class Sign(UnaryOp):
    """ONNX Sign: -1, 0 or 1 in x's type; NaN stays NaN (numpy, onnxruntime)."""

    quant = UNPLANNED_LOOKUP

    dtypes = NUMERIC

    def np_fn(self, node, x):
        return np.sign(x)


_unary("Round", lambda x, a: np.round(x))
_unary("Mish", lambda x, a: x * np.tanh(np.log1p(np.exp(x))))
_unary("Celu", lambda x, a: np.maximum(x, 0) + np.minimum(
    0, np.float32(a["alpha"]) * (np.exp(x / np.float32(a["alpha"])) - 1)),
    {"alpha": Attr("float", 1.0)})
_unary("Shrink", lambda x, a: np.where(
    x < -np.float32(a["lambd"]), x + np.float32(a["bias"]),
    np.where(x > np.float32(a["lambd"]), x - np.float32(a["bias"]), 0)),
    {"lambd": Attr("float", 0.5), "bias": Attr("float", 0.0)})


def _gelu(x, attrs):
    if attrs["approximate"] == "tanh":
        c = np.float32(math.sqrt(2.0 / math.pi))
        return 0.5 * x * (1 + np.tanh(c * (x + np.float32(0.044715) * x ** 3)))
    from edgec.ops.elementwise import _erf
    return 0.5 * x * (1 + _erf(x / np.float32(math.sqrt(2.0))))


@register_op("Gelu")
class Gelu(UnaryOp):
    """ONNX Gelu (opset 20): exact (erf) or tanh approximation."""

    quant = QuantRule.LOOKUP

    attrs = {"approximate": Attr("str", "none", ("none", "tanh"))}
    dtypes = FLOATS

    def np_fn(self, node, x):
        return _gelu(x, node.attrs)


@register_op("IsNaN")
class IsNaN(UnaryOp):
    """ONNX IsNaN: true where x is NaN."""

    quant = QuantRule.FLOAT_ONLY
    dtypes = FLOATS

    def out_dtype(self, node: Node) -> DType:
        return DType.BOOL

    def np_fn(self, node, x):
        return np.isnan(x)


@register_op("IsInf")
class IsInf(UnaryOp):
    """ONNX IsInf with detect_negative / detect_positive."""

    attrs = {"detect_negative": Attr("int", 1), "detect_positive": Attr("int", 1)}
    quant = QuantRule.FLOAT_ONLY
    dtypes = FLOATS

    def out_dtype(self, node: Node) -> DType:
        return DType.BOOL

    def np_fn(self, node, x):
        a = node.attrs
        return (np.isposinf(x) & bool(a["detect_positive"])) | \
            (np.isneginf(x) & bool(a["detect_negative"]))


@register_op("Mod")
class Mod(BinaryOp):
    """ONNX Mod: integer mod takes the divisor's sign (Python), fmod=1 the dividend's (C)."""

    attrs = {"fmod": Attr("int", 0, (0, 1))}
    dtypes = NUMERIC
    quant = QuantRule.FLOAT_ONLY

    def np_fn(self, node, a, b):
        if a.dtype.kind in "iu":
            return int_mod(a, b, bool(node.attrs["fmod"]))
        if node.attrs["fmod"]:
            return np.fmod(a, b)
        with np.errstate(all="ignore"):
            return np.mod(a, b)


@register_op("CastLike")
class CastLike(Cast):
    """ONNX CastLike: Cast to the element type of the second input (dropped at import)."""

    def import_onnx(self, node: Node, opset: int) -> None:
        target = node.input(1)
        node.attrs["to"] = target.dtype.value
        node.inputs = node.inputs[:1]
        super().import_onnx(node, opset)
