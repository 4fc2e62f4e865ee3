"""Comparison, logical and small math ops, as rows of the elementwise table (see
elementwise.py): LessOrEqual, GreaterOrEqual, And, Or, Xor, Not, Sign, Round, IsNaN, IsInf,
Mod, Gelu, Mish, Celu, Shrink, and CastLike (a Cast whose target type is its second input's).
"""

from __future__ import annotations

import math

import numpy as np

from ..ir import DType, Node
from .base import Attr, QuantRule
from .common import FLOATS, NUMERIC
from .elementwise import BinaryOp, UnaryOp, _binary, _unary
from .int8_facet import UNPLANNED_LOOKUP
from .intmath import int_mod
from .registry import register_op
from .shape_ops import Cast

BOOLS = {DType.BOOL}
INTS = NUMERIC - FLOATS

_binary("LessOrEqual", lambda a, b: a <= b, "(a <= b)", quant=QuantRule.FLOAT_ONLY,
        out=DType.BOOL)
_binary("GreaterOrEqual", lambda a, b: a >= b, "(a >= b)", quant=QuantRule.FLOAT_ONLY,
        out=DType.BOOL)
_binary("And", lambda a, b: np.logical_and(a, b), "(a && b)", dtypes=BOOLS,
        quant=QuantRule.FLOAT_ONLY)
_binary("Or", lambda a, b: np.logical_or(a, b), "(a || b)", dtypes=BOOLS,
        quant=QuantRule.FLOAT_ONLY)
_binary("Xor", lambda a, b: np.logical_xor(a, b), "((a != 0) != (b != 0))", dtypes=BOOLS,
        quant=QuantRule.FLOAT_ONLY)
_unary("Not", lambda x, a: np.logical_not(x), "(!a)", dtypes=BOOLS, quant=QuantRule.FLOAT_ONLY)


@register_op("Sign")
class Sign(UnaryOp):
    """ONNX Sign: -1, 0 or 1 in x's type; NaN stays NaN (numpy, onnxruntime)."""

    quant = UNPLANNED_LOOKUP

    dtypes = NUMERIC

    def np_fn(self, node, x):
        return np.sign(x)

    def c_expr(self, node):
        expr = "((T)((a > (T)0) - (a < (T)0)))"
        return f"(a != a ? a : {expr})" if node.input(0).dtype.is_float else expr


_unary("Round", lambda x, a: np.round(x), "nearbyint(a)")
_unary("Mish", lambda x, a: x * np.tanh(np.log1p(np.exp(x))), "(a * tanh(log1p(exp(a))))")
_unary("Celu", lambda x, a: np.maximum(x, 0) + np.minimum(
    0, np.float32(a["alpha"]) * (np.exp(x / np.float32(a["alpha"])) - 1)),
    "(a != a ? a : fmax(a, (T)0) + fmin((T)0, {alpha} * (exp(a / {alpha}) - (T)1)))",
    {"alpha": Attr("float", 1.0)})
_unary("Shrink", lambda x, a: np.where(
    x < -np.float32(a["lambd"]), x + np.float32(a["bias"]),
    np.where(x > np.float32(a["lambd"]), x - np.float32(a["bias"]), 0)),
    "(a < -{lambd} ? a + {bias} : (a > {lambd} ? a - {bias} : (T)0))",
    {"lambd": Attr("float", 0.5), "bias": Attr("float", 0.0)})


def _gelu(x, attrs):
    if attrs["approximate"] == "tanh":
        c = np.float32(math.sqrt(2.0 / math.pi))
        return 0.5 * x * (1 + np.tanh(c * (x + np.float32(0.044715) * x ** 3)))
    from .elementwise import _erf
    return 0.5 * x * (1 + _erf(x / np.float32(math.sqrt(2.0))))


_GELU_C = {
    "none": "((T)0.5 * a * ((T)1 + erf(a * (T)0.70710678118654752440)))",
    "tanh": "((T)0.5 * a * ((T)1 + tanh((T)0.79788456080286535588 * "
            "(a + (T)0.044715 * a * a * a))))",
}


@register_op("Gelu")
class Gelu(UnaryOp):
    """ONNX Gelu (opset 20): exact (erf) or tanh approximation."""

    quant = UNPLANNED_LOOKUP

    attrs = {"approximate": Attr("str", "none", ("none", "tanh"))}
    dtypes = FLOATS

    def np_fn(self, node, x):
        return _gelu(x, node.attrs)

    def c_expr(self, node):
        return _GELU_C[node.attrs["approximate"]]


@register_op("IsNaN")
class IsNaN(UnaryOp):
    """ONNX IsNaN: true where x is NaN."""

    quant = QuantRule.FLOAT_ONLY
    dtypes = FLOATS

    def out_dtype(self, node: Node) -> DType:
        return DType.BOOL

    def np_fn(self, node, x):
        return np.isnan(x)

    def c_expr(self, node):
        return "(a != a)"


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

    def c_expr(self, node):
        a = node.attrs
        terms = []
        if a["detect_positive"]:
            terms.append("(a == INFINITY)")
        if a["detect_negative"]:
            terms.append("(a == -INFINITY)")
        return "(" + (" || ".join(terms) or "0") + ")"


@register_op("Mod")
class Mod(BinaryOp):
    """ONNX Mod: integer mod takes the divisor's sign (Python), fmod=1 the dividend's (C)."""

    attrs = {"fmod": Attr("int", 0, (0, 1))}
    dtypes = NUMERIC
    quant = QuantRule.FLOAT_ONLY
    int_helper = "mod"  # edgec_mod_* or edgec_fmod_*: x % 0 = 0, INT_MIN % -1 = 0
    int_helper_narrow = True

    def np_fn(self, node, a, b):
        if a.dtype.kind in "iu":
            return int_mod(a, b, bool(node.attrs["fmod"]))
        if node.attrs["fmod"]:
            return np.fmod(a, b)
        with np.errstate(all="ignore"):
            return np.mod(a, b)

    def c_expr(self, node):
        dtype = node.input(0).dtype
        if dtype.is_float:
            if node.attrs["fmod"]:
                return "fmod(a, b)"
            # Python-style remainder: the result takes the divisor's sign.
            return ("(fmod(a, b) != (T)0 && (fmod(a, b) < (T)0) != (b < (T)0) ? "
                    "fmod(a, b) + b : fmod(a, b))")
        fn = self.int_fn(node)
        return (fn.replace("_mod_", "_fmod_") if node.attrs["fmod"] else fn) + "(a, b)"


@register_op("CastLike")
class CastLike(Cast):
    """ONNX CastLike: Cast to the element type of the second input (dropped at import)."""

    def import_onnx(self, node: Node, opset: int) -> None:
        target = node.input(1)
        node.attrs["to"] = target.dtype.value
        node.inputs = node.inputs[:1]
        super().import_onnx(node, opset)
