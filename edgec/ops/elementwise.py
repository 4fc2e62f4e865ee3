"""Elementwise ops: unary math and activations, binary and variadic arithmetic.

Each op is one row of a table (tinygrad's habit): numpy semantics plus one C expression over
the operands `a`, `b`, `c` (element type `T`), rendered by the shared template
`ops/elementwise.c.j2` with a broadcasting loop nest. Attribute values are substituted into the
expression as exact literals. Expressions name the double-precision math functions; for
float32 they are rewritten to the `f`-suffixed C99 functions (no <tgmath.h>: newlib's cannot
expand them for Cortex-M).
"""

from __future__ import annotations

import re

import numpy as np

from ..errors import UnsupportedError
from ..ir import DType, Node, TensorType
from .base import Attr, OpDef, PruneRule, QuantRule, broadcast_shapes, in_type
from .common import FLOATS, NUMERIC, broadcast_plan, require_dtypes, row_major_strides
from .int8_elementwise import ADD_INT8, MUL_INT8, PRELU_INT8, RELU_INT8
from .intmath import WRAP_HELPER_DTYPES, cast_np, helper_suffix, int_div, int_pow
from .registry import register_op

from math import erf as _erf_scalar  # numpy has no erf


def _erf(x):
    return np.vectorize(_erf_scalar, otypes=[np.float64])(x).astype(x.dtype)


def _flit(x: float) -> str:
    """An exact float literal of the element type T."""
    x = float(x)
    if np.isinf(x):
        return "INFINITY" if x > 0 else "(-INFINITY)"
    return f"(T){float(np.float32(x))!r}"


_FLOAT_MATH = re.compile(
    r"\b(exp|log|log1p|sqrt|tanh|erf|floor|ceil|sin|cos|fabs|fmax|fmin|pow|round|nearbyint)\(")


class ElementwiseOp(OpDef):
    """Common facets of elementwise ops; subclasses give `np_fn` and `c_expr`."""

    c_template = "ops/elementwise.c.j2"
    prune = PruneRule.PASSTHROUGH
    dtypes = FLOATS
    arity = 1
    # Integer forms that C leaves undefined (overflow, division by zero) call a helper of
    # codegen/c/runtime/edgec_int.h: `int_helper` "add" means edgec_add_i32/_i64, for int32
    # and int64 (narrower types compute in C's int and cannot overflow), or for every
    # integer type when `int_helper_narrow` (division, remainder, power).
    int_helper = ""
    int_helper_narrow = False

    def np_fn(self, node: Node, *xs):
        raise NotImplementedError

    def c_expr(self, node: Node) -> str:
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

    def c_params(self, node: Node, target) -> dict:
        ins = [v for v in node.inputs if v is not None]
        dims, strides = broadcast_plan(node.outputs[0].shape, [v.shape for v in ins])
        ctype = self.compute_dtype(node).ctype
        expr = self.c_expr(node).replace("(T)", f"({ctype})")
        if ctype == "float":
            expr = _FLOAT_MATH.sub(lambda m: m.group(1) + "f(", expr)
        return {
            "dims": dims,
            "in_strides": strides,
            "out_strides": row_major_strides(tuple(dims)),
            "operands": self.operand_names(node),
            "expr": expr,
        }

    def compute_dtype(self, node: Node) -> DType:
        """The element type the expression computes in (the first data input's)."""
        return in_type(node, 0).dtype

    def int_fn(self, node: Node) -> str | None:
        """The edgec_int.h function of this node's integer expression, or None."""
        dtype = self.compute_dtype(node)
        if not self.int_helper or dtype.is_float or dtype == DType.BOOL:
            return None
        if dtype.value not in WRAP_HELPER_DTYPES and not self.int_helper_narrow:
            return None
        return f"edgec_{self.int_helper}_{helper_suffix(dtype.np)}"

    def c_runtime_for(self, node: Node, target) -> tuple[str, ...]:
        """edgec_int.h when the expression calls one of its helpers."""
        extra = ("edgec_int.h",) if self.int_fn(node) else ()
        return super().c_runtime_for(node, target) + extra

    def operand_names(self, node: Node) -> list[str]:
        """C names of the operands inside the expression."""
        return ["a", "b", "c"][: len([v for v in node.inputs if v is not None])]


# ------------------------------------------------------------------------------ unary ops
class UnaryOp(ElementwiseOp):
    """y = f(x) elementwise."""

    quant = QuantRule.LOOKUP


def _unary(name: str, np_fn, c_expr: str, attrs=None, dtypes=FLOATS, quant=QuantRule.LOOKUP,
           int_helper: str = ""):
    """Register a unary op from a numpy function and a C expression over `a` (and attrs)."""
    attr_spec = dict(attrs or {})

    @register_op(name)
    class _Op(UnaryOp):
        __doc__ = f"ONNX {name}, elementwise."
        attrs = attr_spec

        def np_fn(self, node, x):
            return np_fn(x, node.attrs)

        def c_expr(self, node):
            fn = self.int_fn(node)
            if fn:
                return f"{fn}(a)"
            expr = c_expr
            for key, value in node.attrs.items():
                expr = expr.replace("{" + key + "}", _flit(value))
            return expr

    _Op.dtypes = dtypes
    _Op.quant = quant
    _Op.int_helper = int_helper
    _Op.__name__ = f"{name}Op"
    return _Op


# NaN: the float forms below propagate NaN as onnxruntime and numpy do (docs/robustness.md):
# `a <= 0 ? 0 : a` is false for NaN and keeps a, where `a > 0 ? a : 0` would give 0; for every
# other input both give the same bits (-0.0 -> +0.0).
_unary("Relu", lambda x, a: np.maximum(x, 0), "(a <= (T)0 ? (T)0 : a)", dtypes=NUMERIC,
       quant=RELU_INT8)
_unary("Sigmoid", lambda x, a: 1.0 / (1.0 + np.exp(-x)), "((T)1 / ((T)1 + exp(-a)))")
_unary("Tanh", lambda x, a: np.tanh(x), "tanh(a)")
_unary("Exp", lambda x, a: np.exp(x), "exp(a)")
_unary("Log", lambda x, a: np.log(x), "log(a)")
_unary("Sqrt", lambda x, a: np.sqrt(x), "sqrt(a)")
_unary("Reciprocal", lambda x, a: 1.0 / x, "((T)1 / a)")
_unary("Neg", lambda x, a: -x, "(-a)", dtypes=NUMERIC, quant=QuantRule.REQUANTIZE,
       int_helper="neg")
_unary("Abs", lambda x, a: np.abs(x), "(a < (T)0 ? -a : a)", dtypes=NUMERIC,
       quant=QuantRule.REQUANTIZE, int_helper="abs")
_unary("Erf", lambda x, a: _erf(x), "erf(a)")
_unary("Floor", lambda x, a: np.floor(x), "floor(a)")
_unary("Ceil", lambda x, a: np.ceil(x), "ceil(a)")
_unary("Sin", lambda x, a: np.sin(x), "sin(a)")
_unary("Cos", lambda x, a: np.cos(x), "cos(a)")
_unary("Softplus", lambda x, a: np.log1p(np.exp(x)), "log1p(exp(a))")
_unary("Softsign", lambda x, a: x / (1 + np.abs(x)), "(a / ((T)1 + fabs(a)))")
_unary(
    "LeakyRelu",
    lambda x, a: np.where(x >= 0, x, x * np.float32(a["alpha"])),
    "(a >= (T)0 ? a : a * {alpha})",
    {"alpha": Attr("float", 0.01)},
)
_unary(
    "Elu",
    lambda x, a: np.where(x >= 0, x, np.float32(a["alpha"]) * (np.exp(x) - 1)),
    "(a >= (T)0 ? a : {alpha} * (exp(a) - (T)1))",
    {"alpha": Attr("float", 1.0)},
)
_unary(
    "Selu",
    lambda x, a: np.where(
        x > 0, np.float32(a["gamma"]) * x,
        np.float32(a["gamma"]) * (np.float32(a["alpha"]) * np.exp(x) - np.float32(a["alpha"]))),
    "(a > (T)0 ? {gamma} * a : {gamma} * ({alpha} * exp(a) - {alpha}))",
    {"alpha": Attr("float", 1.67326319217681884765625),
     "gamma": Attr("float", 1.05070102214813232421875)},
)
_unary(
    "HardSigmoid",
    lambda x, a: np.clip(np.float32(a["alpha"]) * x + np.float32(a["beta"]), 0, 1),
    "(a != a ? a : fmax((T)0, fmin((T)1, {alpha} * a + {beta})))",  # fmax/fmin drop NaN
    {"alpha": Attr("float", 0.2), "beta": Attr("float", 0.5)},
)
_unary(
    "HardSwish",
    lambda x, a: x * np.clip(x * np.float32(1 / 6) + np.float32(0.5), 0, 1),
    "(a * fmax((T)0, fmin((T)1, a * (T)0.16666667163372039795 + (T)0.5)))",
)
_unary(
    "ThresholdedRelu",
    lambda x, a: np.where(x > np.float32(a["alpha"]), x, 0),
    "(a > {alpha} ? a : (T)0)",
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

    def c_expr(self, node):
        return "a"


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

    def c_template_for(self, node, target):
        return "ops/dropout.c.j2" if node.attrs["with_mask"] else self.c_template


# ------------------------------------------------------------------------------ binary ops
class BinaryOp(ElementwiseOp):
    """y = f(a, b) with multidirectional broadcasting."""

    arity = 2
    quant = QuantRule.REQUANTIZE


def _binary(name, np_fn, c_expr, dtypes=NUMERIC, quant=QuantRule.REQUANTIZE, out=None,
            int_helper: str = "", int_helper_narrow: bool = False):
    """Register a binary op from a numpy function and a C expression over `a` and `b`."""

    @register_op(name)
    class _Op(BinaryOp):
        __doc__ = f"ONNX {name} with broadcasting."

        def np_fn(self, node, a, b):
            return np_fn(a, b)

        def c_expr(self, node):
            fn = self.int_fn(node)
            return f"{fn}(a, b)" if fn else c_expr

        def out_dtype(self, node):
            return out if out is not None else in_type(node, 0).dtype

    _Op.dtypes = dtypes
    _Op.quant = quant
    _Op.int_helper = int_helper
    _Op.int_helper_narrow = int_helper_narrow
    _Op.__name__ = f"{name}Op"
    return _Op


def _div(a, b):
    return int_div(a, b) if a.dtype.kind in "iu" else a / b


_binary("Add", lambda a, b: a + b, "(a + b)", int_helper="add", quant=ADD_INT8)
_binary("Sub", lambda a, b: a - b, "(a - b)", int_helper="sub")
_binary("Mul", lambda a, b: a * b, "(a * b)", int_helper="mul", quant=MUL_INT8)
_binary("Div", _div, "(a / b)", int_helper="div", int_helper_narrow=True)


@register_op("Pow")
class Pow(BinaryOp):
    """ONNX Pow: y = a ** b; the exponent may have another numeric type, y has a's type.

    float base: pow in the base type. Integer base and exponent: exact, wrapping
    (edgec_pow_i32/_i64). Integer base, float exponent: pow in double, converted as Cast does.
    """

    dtypes = NUMERIC
    quant = QuantRule.FLOAT_ONLY
    int_helper = "pow"
    int_helper_narrow = True

    def np_fn(self, node, a, b):
        if a.dtype.kind == "f":
            return np.power(a, b.astype(a.dtype))
        if b.dtype.kind in "iu":
            return int_pow(a, b)
        return cast_np(np.power(a.astype(np.float64), b.astype(np.float64)), a.dtype)

    def int_fn(self, node):
        return None if in_type(node, 1).dtype.is_float else super().int_fn(node)

    def c_runtime_for(self, node, target):
        extra = () if in_type(node, 0).dtype.is_float else ("edgec_int.h",)
        return OpDef.c_runtime_for(self, node, target) + extra

    def c_expr(self, node):
        if in_type(node, 0).dtype.is_float:
            return "pow(a, (T)b)"
        fn = self.int_fn(node)
        if fn:
            return f"{fn}(a, (int64_t)b)"
        # Cast's conversion (NaN -> 0, saturated beyond int64): never undefined.
        return "edgec_i64_of_f64(pow((double)a, (double)b))"


_binary("PRelu", lambda a, b: np.where(a < 0, a * b, a), "(a < (T)0 ? a * b : a)", dtypes=FLOATS,
        quant=PRELU_INT8)
_binary("Equal", lambda a, b: a == b, "(a == b)", dtypes=NUMERIC | {DType.BOOL},
        quant=QuantRule.FLOAT_ONLY, out=DType.BOOL)
_binary("Less", lambda a, b: a < b, "(a < b)", quant=QuantRule.FLOAT_ONLY, out=DType.BOOL)
_binary("Greater", lambda a, b: a > b, "(a > b)", quant=QuantRule.FLOAT_ONLY, out=DType.BOOL)


# ------------------------------------------------------------------------------ variadic ops
class VariadicOp(ElementwiseOp):
    """Max/Min/Sum/Mean over any number of broadcast inputs."""

    dtypes = NUMERIC
    quant = QuantRule.REQUANTIZE
    fold = None
    combine = ""
    float_combine = ""

    def np_fn(self, node, *xs):
        acc = xs[0]
        for x in xs[1:]:
            acc = self.fold(acc, x)
        if self.name == "Mean":
            acc = acc / len(xs)
        return acc

    def operand_names(self, node):
        return [f"a{i}" for i in range(len([v for v in node.inputs if v is not None]))]

    def c_expr(self, node):
        names = self.operand_names(node)
        combine = self.float_combine if in_type(node, 0).dtype.is_float else self.combine
        fn = self.int_fn(node)
        if fn:
            combine = f"{fn}(X, Y)"
        expr = names[0]
        for n in names[1:]:
            expr = combine.replace("X", expr).replace("Y", n)
        if self.name == "Mean":
            expr = f"({expr}) / (T){len(names)}"
        return expr


# Float Max/Min propagate NaN (numpy, onnxruntime): Y (an operand) is taken when it wins, ties
# or is NaN, else X (the inputs folded so far, NaN or not) stays; the same bits as the integer
# form for non-NaN values, and X, which grows with the input count, appears once.
for _name, _fold, _combine, _float_combine in (
    ("Max", np.maximum, "(X > Y ? X : Y)", "(Y >= X || Y != Y ? Y : X)"),
    ("Min", np.minimum, "(X < Y ? X : Y)", "(Y <= X || Y != Y ? Y : X)"),
    ("Sum", np.add, "(X + Y)", "(X + Y)"),
    ("Mean", np.add, "(X + Y)", "(X + Y)"),
):
    register_op(_name)(type(f"{_name}Op", (VariadicOp,), {
        "__doc__": f"ONNX {_name} over broadcast inputs.",
        "fold": staticmethod(_fold), "combine": _combine, "float_combine": _float_combine,
        "int_helper": "add" if _fold is np.add else ""}))


@register_op("Where")
class Where(ElementwiseOp):
    """ONNX Where: y = cond ? a : b, with broadcasting."""

    arity = 3
    dtypes = set(DType)

    def import_onnx(self, node, opset):
        require_dtypes(node, {DType.BOOL}, (0,))

    def out_dtype(self, node):
        return in_type(node, 1).dtype

    def compute_dtype(self, node):
        return in_type(node, 1).dtype

    def operand_names(self, node):
        return ["a0", "a1", "a2"]

    def np_fn(self, node, c, a, b):
        return np.where(c, a, b)

    def c_expr(self, node):
        return "(a0 ? a1 : a2)"
