"""Elementwise ops: unary math and activations, binary and variadic arithmetic.

Each op is one row of a table (tinygrad's habit): its numpy semantics, dtypes and int8 facet.
Their C (one expression per op in a broadcasting loop nest) is a table of the kernel family
codegen/c/kernels/elementwise.py.
"""

from __future__ import annotations

from math import erf as _erf_scalar  # numpy has no erf

import numpy as np

from edgec.errors import UnsupportedError
from edgec.ir import DType, Node, TensorType
from edgec.ops.base import Attr, OpDef, PruneRule, QuantRule, broadcast_shapes, in_type
from edgec.ops.common import FLOATS, NUMERIC, require_dtypes
from edgec.ops.int8_elementwise import ADD_INT8, DIV_INT8, MUL_INT8, PRELU_INT8, RELU_INT8
from edgec.ops.intmath import cast_np, int_div, int_pow
from edgec.ops.registry import register_op
from edgec.ops.tflite_activations import TFLITE_ACTIVATION_LOOKUP


def _erf(x):
    return np.vectorize(_erf_scalar, otypes=[np.float64])(x).astype(x.dtype)


class ElementwiseOp(OpDef):
    """Common facets of elementwise ops; subclasses give `np_fn`."""

    prune = PruneRule.PASSTHROUGH
    dtypes = FLOATS
    arity = 1

    def np_fn(self, node: Node, *xs):
        """numpy form of the op on the present inputs (broadcast and cast by `reference`)."""
        raise NotImplementedError

    def import_onnx(self, node: Node, opset: int) -> None:
        require_dtypes(node, self.dtypes, range(len(node.inputs)))

    def out_dtype(self, node: Node) -> DType:
        return in_type(node, 0).dtype

    def infer(self, node: Node) -> list[TensorType]:
        shapes = [v.shape for v in node.inputs if v is not None]
        return [TensorType(broadcast_shapes(*shapes), self.out_dtype(node))]

    def reference(self, node: Node, *xs):
        out_t = self.infer(node)[0]
        with np.errstate(all="ignore"):
            y = self.np_fn(node, *[x for x in xs if x is not None])
        return (np.broadcast_to(np.asarray(y), out_t.shape).astype(out_t.dtype.np),)



# ------------------------------------------------------------------------------ unary ops
class UnaryOp(ElementwiseOp):
    """y = f(x) elementwise."""

    quant = QuantRule.LOOKUP


def _unary(name: str, np_fn, attrs=None, dtypes=FLOATS, quant=QuantRule.LOOKUP):
    """Register a unary op from a numpy function `np_fn(x, attrs)`."""
    attr_spec = dict(attrs or {})

    @register_op(name)
    class _Op(UnaryOp):
        __doc__ = f"ONNX {name}, elementwise."
        attrs = attr_spec

        def np_fn(self, node, x):
            return np_fn(x, node.attrs)

    _Op.dtypes = dtypes
    _Op.quant = quant
    _Op.__name__ = f"{name}Op"
    return _Op


_unary("Relu", lambda x, a: np.maximum(x, 0), dtypes=NUMERIC, quant=RELU_INT8)
_unary("Sigmoid", lambda x, a: 1.0 / (1.0 + np.exp(-x)), quant=TFLITE_ACTIVATION_LOOKUP)
_unary("Tanh", lambda x, a: np.tanh(x), quant=TFLITE_ACTIVATION_LOOKUP)
_unary("Exp", lambda x, a: np.exp(x))
_unary("Log", lambda x, a: np.log(x))
_unary("Sqrt", lambda x, a: np.sqrt(x))
_unary("Reciprocal", lambda x, a: 1.0 / x)
_unary("Neg", lambda x, a: -x, dtypes=NUMERIC, quant=QuantRule.REQUANTIZE)
_unary("Abs", lambda x, a: np.abs(x), dtypes=NUMERIC, quant=QuantRule.REQUANTIZE)
_unary("Erf", lambda x, a: _erf(x))
_unary("Floor", lambda x, a: np.floor(x))
_unary("Ceil", lambda x, a: np.ceil(x))
_unary("Sin", lambda x, a: np.sin(x))
_unary("Cos", lambda x, a: np.cos(x))
_unary("Softplus", lambda x, a: np.log1p(np.exp(x)))
_unary("Softsign", lambda x, a: x / (1 + np.abs(x)))
_unary(
    "LeakyRelu",
    lambda x, a: np.where(x >= 0, x, x * np.float32(a["alpha"])),
    {"alpha": Attr("float", 0.01)},
)
_unary(
    "Elu",
    lambda x, a: np.where(x >= 0, x, np.float32(a["alpha"]) * (np.exp(x) - 1)),
    {"alpha": Attr("float", 1.0)},
)
_unary(
    "Selu",
    lambda x, a: np.where(
        x > 0, np.float32(a["gamma"]) * x,
        np.float32(a["gamma"]) * (np.float32(a["alpha"]) * np.exp(x) - np.float32(a["alpha"]))),
    {"alpha": Attr("float", 1.67326319217681884765625),
     "gamma": Attr("float", 1.05070102214813232421875)},
)
_unary(
    "HardSigmoid",
    lambda x, a: np.clip(np.float32(a["alpha"]) * x + np.float32(a["beta"]), 0, 1),
    {"alpha": Attr("float", 0.2), "beta": Attr("float", 0.5)},
)
_unary(
    "HardSwish",
    lambda x, a: x * np.clip(x * np.float32(1 / 6) + np.float32(0.5), 0, 1),
)
_unary(
    "ThresholdedRelu",
    lambda x, a: np.where(x > np.float32(a["alpha"]), x, 0),
    {"alpha": Attr("float", 1.0)},
)


# Clip lives in edgec/ops/clip.py (constant and runtime bounds).


@register_op("Identity")
class Identity(UnaryOp):
    """ONNX Identity (also the copy that writes a constant or an input to a graph output)."""

    quant = QuantRule.SAME_AS_INPUT
    dtypes = set(DType)

    def np_fn(self, node, x):
        return x


@register_op("Dropout")
class Dropout(Identity):
    """ONNX Dropout at inference: the identity; the optional mask output is all true.

    Training mode is accepted only with ratio 0, where it is the identity too (with a positive
    ratio the output is random). `with_mask` records whether the node has the mask output.
    """

    attrs = {"seed": Attr("int", 0), "ratio": Attr("float", 0.5),
             "with_mask": Attr("int", 0, (0, 1))}

    def import_onnx(self, node, opset):
        training = self.const_input(node, 2, "training_mode")
        if training is not None and bool(np.asarray(training).reshape(-1)[0]):
            ratio = self.const_input(node, 1, "ratio")
            ratio = node.attrs.get("ratio", 0.5) if ratio is None else ratio.reshape(-1)[0]
            if float(ratio) != 0.0:
                raise UnsupportedError(f"Dropout node '{node.name}': training mode with a "
                                       "non-zero ratio is random and not supported")
        node.attrs["with_mask"] = int(node.meta.get("onnx_num_outputs", 1) > 1)
        node.inputs = node.inputs[:1]

    def infer(self, node):
        x = in_type(node, 0)
        mask = [TensorType(x.shape, DType.BOOL)] if node.attrs["with_mask"] else []
        return [x, *mask]

    def reference(self, node, x):
        mask = (np.ones(x.shape, np.bool_),) if node.attrs["with_mask"] else ()
        return (x, *mask)


# ------------------------------------------------------------------------------ binary ops
class BinaryOp(ElementwiseOp):
    """y = f(a, b) with multidirectional broadcasting."""

    arity = 2
    quant = QuantRule.REQUANTIZE


def _binary(name, np_fn, dtypes=NUMERIC, quant=QuantRule.REQUANTIZE, out=None):
    """Register a binary op from a numpy function `np_fn(a, b)`; `out`: a fixed output dtype."""

    @register_op(name)
    class _Op(BinaryOp):
        __doc__ = f"ONNX {name} with broadcasting."

        def np_fn(self, node, a, b):
            return np_fn(a, b)

        def out_dtype(self, node):
            return out if out is not None else in_type(node, 0).dtype

    _Op.dtypes = dtypes
    _Op.quant = quant
    _Op.__name__ = f"{name}Op"
    return _Op


def _div(a, b):
    return int_div(a, b) if a.dtype.kind in "iu" else a / b


_binary("Add", lambda a, b: a + b, quant=ADD_INT8)
_binary("Sub", lambda a, b: a - b)
_binary("Mul", lambda a, b: a * b, quant=MUL_INT8)
_binary("Div", _div, quant=DIV_INT8)


@register_op("Pow")
class Pow(BinaryOp):
    """ONNX Pow: y = a ** b; the exponent may have another numeric type, y has a's type.

    float base: pow in the base type. Integer base and exponent: exact, wrapping. Integer
    base, float exponent: pow in double, converted as Cast does.
    """

    dtypes = NUMERIC
    quant = QuantRule.FLOAT_ONLY

    def np_fn(self, node, a, b):
        if a.dtype.kind == "f":
            return np.power(a, b.astype(a.dtype))
        if b.dtype.kind in "iu":
            return int_pow(a, b)
        return cast_np(np.power(a.astype(np.float64), b.astype(np.float64)), a.dtype)


_binary("PRelu", lambda a, b: np.where(a < 0, a * b, a), dtypes=FLOATS, quant=PRELU_INT8)
_binary("Equal", lambda a, b: a == b, dtypes=NUMERIC | {DType.BOOL},
        quant=QuantRule.FLOAT_ONLY, out=DType.BOOL)
_binary("Less", lambda a, b: a < b, quant=QuantRule.FLOAT_ONLY, out=DType.BOOL)
_binary("Greater", lambda a, b: a > b, quant=QuantRule.FLOAT_ONLY, out=DType.BOOL)


# ------------------------------------------------------------------------------ variadic ops
class VariadicOp(ElementwiseOp):
    """Max/Min/Sum/Mean over any number of broadcast inputs."""

    dtypes = NUMERIC
    quant = QuantRule.REQUANTIZE
    fold = None

    def np_fn(self, node, *xs):
        acc = xs[0]
        for x in xs[1:]:
            acc = self.fold(acc, x)
        if self.name == "Mean":
            acc = acc / len(xs)
        return acc


for _name, _fold in (("Max", np.maximum), ("Min", np.minimum), ("Sum", np.add),
                     ("Mean", np.add)):
    register_op(_name)(type(f"{_name}Op", (VariadicOp,), {
        "__doc__": f"ONNX {_name} over broadcast inputs.", "fold": staticmethod(_fold)}))


@register_op("Where")
class Where(ElementwiseOp):
    """ONNX Where: y = cond ? a : b, with broadcasting."""

    arity = 3
    dtypes = set(DType)

    def import_onnx(self, node, opset):
        require_dtypes(node, {DType.BOOL}, (0,))

    def out_dtype(self, node):
        return in_type(node, 1).dtype

    def np_fn(self, node, c, a, b):
        return np.where(c, a, b)
