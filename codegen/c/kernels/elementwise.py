"""C kernels of the elementwise family (edgec/ops/elementwise.py; logic.py, clip.py and Cast
reuse the mechanism from kernels/logic.py and kernels/clip.py), portable only.

Every op renders through the shared template `ops/elementwise.c.j2`: a broadcasting loop nest
around one C expression. The expressions are a table from op name (tinygrad's renderer
habit) over the operands `a`, `b`, `c` (`a0`, `a1`... for variadic ops and Where) of element
type `T`; attribute values are substituted for `{name}` as exact literals. Expressions name
the double-precision math functions; for float32 they are rewritten to the `f`-suffixed C99
functions (no <tgmath.h>: newlib's cannot expand them for Cortex-M).

Integer forms that C leaves undefined (overflow, division by zero) call a helper of
runtime/edgec_int.h instead (`INT_HELPERS`): "add" means edgec_add_i32/_i64, for int32 and
int64 (narrower types compute in C's int and cannot overflow), or for every integer type when
the helper is marked narrow (division, remainder, power).
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np

from edgec.ir import DType, Node
from edgec.ops.base import in_type
from edgec.ops.common import broadcast_plan, row_major_strides
from edgec.codegen.c.kernel import PORTABLE, Candidate, Kernel, NodeScratch, \
    register_candidates

TEMPLATE = "ops/elementwise.c.j2"
INT_RUNTIME = ("edgec_int.h",)

# Types whose + - * neg abs call a helper: narrower types compute in C's int, no overflow.
WRAP_HELPER_DTYPES = ("int32", "int64")

_FLOAT_MATH = re.compile(
    r"\b(exp|log|log1p|sqrt|tanh|erf|floor|ceil|sin|cos|fabs|fmax|fmin|pow|round|nearbyint)\(")

# op -> (edgec_int.h helper, narrow: also for int8/16 and uint8).
INT_HELPERS = {
    "Neg": ("neg", False), "Abs": ("abs", False),
    "Add": ("add", False), "Sub": ("sub", False), "Mul": ("mul", False),
    "Div": ("div", True), "Pow": ("pow", True),
    "Mod": ("mod", True),  # edgec_mod_* or edgec_fmod_*: x % 0 = 0, INT_MIN % -1 = 0
    "Sum": ("add", False), "Mean": ("add", False),
}


def helper_suffix(dtype: np.dtype) -> str:
    """`i64` for 64-bit integers, else `i32` (narrower types are promoted to int32 in C)."""
    return "i64" if np.dtype(dtype).itemsize == 8 else "i32"


def c_float_literal(x: float) -> str:
    """An exact float literal of the element type T."""
    x = float(x)
    if np.isinf(x):
        return "INFINITY" if x > 0 else "(-INFINITY)"
    return f"(T){float(np.float32(x))!r}"


def compute_dtype(node: Node) -> DType:
    """The element type the expression computes in (the first data input's; Where's a)."""
    return in_type(node, 1 if node.op == "Where" else 0).dtype


def operand_names(node: Node) -> list[str]:
    """C names of the operands inside the expression."""
    count = len([v for v in node.inputs if v is not None])
    if node.op == "Where":
        return ["a0", "a1", "a2"]
    if node.op in VARIADIC:
        return [f"a{i}" for i in range(count)]
    return ["a", "b", "c"][:count]


def int_fn(node: Node) -> str | None:
    """The edgec_int.h function of this node's integer expression, or None."""
    helper, narrow = INT_HELPERS.get(node.op, ("", False))
    dtype = compute_dtype(node)
    if not helper or dtype.is_float or dtype == DType.BOOL:
        return None
    if node.op == "Pow" and in_type(node, 1).dtype.is_float:
        return None
    if dtype.value not in WRAP_HELPER_DTYPES and not narrow:
        return None
    return f"edgec_{helper}_{helper_suffix(dtype.np)}"


# ------------------------------------------------------------------------------ the tables
# NaN: the float forms below propagate NaN as onnxruntime and numpy do (docs/robustness.md):
# `a <= 0 ? 0 : a` is false for NaN and keeps a, where `a > 0 ? a : 0` would give 0; for every
# other input both give the same bits (-0.0 -> +0.0).
UNARY = {
    "Relu": "(a <= (T)0 ? (T)0 : a)",
    "Sigmoid": "((T)1 / ((T)1 + exp(-a)))",
    "Tanh": "tanh(a)",
    "Exp": "exp(a)",
    "Log": "log(a)",
    "Sqrt": "sqrt(a)",
    "Reciprocal": "((T)1 / a)",
    "Neg": "(-a)",
    "Abs": "(a < (T)0 ? -a : a)",
    "Erf": "erf(a)",
    "Floor": "floor(a)",
    "Ceil": "ceil(a)",
    "Sin": "sin(a)",
    "Cos": "cos(a)",
    "Softplus": "log1p(exp(a))",
    "Softsign": "(a / ((T)1 + fabs(a)))",
    "LeakyRelu": "(a >= (T)0 ? a : a * {alpha})",
    "Elu": "(a >= (T)0 ? a : {alpha} * (exp(a) - (T)1))",
    "Selu": "(a > (T)0 ? {gamma} * a : {gamma} * ({alpha} * exp(a) - {alpha}))",
    "HardSigmoid": "(a != a ? a : fmax((T)0, fmin((T)1, {alpha} * a + {beta})))",  # fmax/fmin
    # drop NaN
    "HardSwish": "(a * fmax((T)0, fmin((T)1, a * (T)0.16666667163372039795 + (T)0.5)))",
    "ThresholdedRelu": "(a > {alpha} ? a : (T)0)",
    "Identity": "a",
    "Dropout": "a",
}

BINARY = {
    "Add": "(a + b)",
    "Sub": "(a - b)",
    "Mul": "(a * b)",
    "Div": "(a / b)",
    "PRelu": "(a < (T)0 ? a * b : a)",
    "Equal": "(a == b)",
    "Less": "(a < b)",
    "Greater": "(a > b)",
}

# Float Max/Min propagate NaN (numpy, onnxruntime): Y (an operand) is taken when it wins, ties
# or is NaN, else X (the inputs folded so far, NaN or not) stays; the same bits as the integer
# form for non-NaN values, and X, which grows with the input count, appears once.
# op -> (integer combine, float combine) of the folded X and the next operand Y.
VARIADIC = {
    "Max": ("(X > Y ? X : Y)", "(Y >= X || Y != Y ? Y : X)"),
    "Min": ("(X < Y ? X : Y)", "(Y <= X || Y != Y ? Y : X)"),
    "Sum": ("(X + Y)", "(X + Y)"),
    "Mean": ("(X + Y)", "(X + Y)"),
}


def unary_rows(table: dict[str, str]) -> Callable[[Node], str]:
    """The expression of unary ops whose rows are in `table`: the helper call of an integer
    form C leaves undefined, else the op's row with its attributes filled in."""
    def unary_expr(node: Node) -> str:
        fn = int_fn(node)
        if fn:
            return f"{fn}(a)"
        expr = table[node.op]
        for key, value in node.attrs.items():
            if "{" + key + "}" in expr:
                expr = expr.replace("{" + key + "}", c_float_literal(value))
        return expr

    return unary_expr


def binary_rows(table: dict[str, str]) -> Callable[[Node], str]:
    """The expression of binary ops whose rows are in `table`: the helper call of an integer
    form C leaves undefined, else the op's row."""
    def binary_expr(node: Node) -> str:
        fn = int_fn(node)
        return f"{fn}(a, b)" if fn else table[node.op]

    return binary_expr


def variadic_expr(node: Node) -> str:
    """Max/Min/Sum/Mean: the combine folded over the operands (Mean divides at the end)."""
    names = operand_names(node)
    integer, floating = VARIADIC[node.op]
    combine = floating if in_type(node, 0).dtype.is_float else integer
    fn = int_fn(node)
    if fn:
        combine = f"{fn}(X, Y)"
    expr = names[0]
    for n in names[1:]:
        expr = combine.replace("X", expr).replace("Y", n)
    if node.op == "Mean":
        expr = f"({expr}) / (T){len(names)}"
    return expr


def pow_expr(node: Node) -> str:
    """Pow: pow in the float base's type; exact wrapping helpers for integer base and
    exponent; an integer base with a float exponent converts pow's double as Cast does."""
    if in_type(node, 0).dtype.is_float:
        return "pow(a, (T)b)"
    fn = int_fn(node)
    if fn:
        return f"{fn}(a, (int64_t)b)"
    # Cast's conversion (NaN -> 0, saturated beyond int64): never undefined.
    return "edgec_i64_of_f64(pow((double)a, (double)b))"


def where_expr(node: Node) -> str:
    """Where: cond ? a : b."""
    return "(a0 ? a1 : a2)"


# ------------------------------------------------------------------------------ the kernel
def elementwise_params(node: Node, expr: str) -> dict:
    """Template values of `ops/elementwise.c.j2` for `node` computing `expr` (with (T))."""
    ins = [v for v in node.inputs if v is not None]
    dims, strides = broadcast_plan(node.outputs[0].shape, [v.shape for v in ins])
    ctype = compute_dtype(node).ctype
    expr = expr.replace("(T)", f"({ctype})")
    if ctype == "float":
        expr = _FLOAT_MATH.sub(lambda m: m.group(1) + "f(", expr)
    return {
        "dims": dims,
        "in_strides": strides,
        "out_strides": row_major_strides(tuple(dims)),
        "operands": operand_names(node),
        "expr": expr,
    }


def elementwise_candidate(expr: Callable[[Node], str],
                          runtime: Callable[[Node], tuple[str, ...]] | None = None,
                          template: Callable[[Node], str] | None = None) -> Candidate:
    """The portable candidate of ops whose C is one expression (`expr(node)`, over (T)):
    edgec_int.h ships when the expression calls its helpers, unless `runtime` says; the
    template is the shared one unless `template` chooses."""
    def build(node: Node, target, scratch: NodeScratch) -> Kernel:
        name = template(node) if template else TEMPLATE
        files = runtime(node) if runtime else (INT_RUNTIME if int_fn(node) else ())
        return Kernel(name, elementwise_params(node, expr(node)), files)

    return Candidate(getattr(expr, "__name__", "elementwise"), build)


def _dropout_template(node: Node) -> str:
    return "ops/dropout.c.j2" if node.attrs["with_mask"] else TEMPLATE


def _pow_runtime(node: Node) -> tuple[str, ...]:
    return () if in_type(node, 0).dtype.is_float else INT_RUNTIME


register_candidates([op for op in UNARY if op != "Dropout"], PORTABLE,
                    [elementwise_candidate(unary_rows(UNARY))])
register_candidates("Dropout", PORTABLE,
                    [elementwise_candidate(unary_rows(UNARY), template=_dropout_template)])
register_candidates(tuple(BINARY), PORTABLE, [elementwise_candidate(binary_rows(BINARY))])
register_candidates(tuple(VARIADIC), PORTABLE, [elementwise_candidate(variadic_expr)])
register_candidates("Pow", PORTABLE, [elementwise_candidate(pow_expr, runtime=_pow_runtime)])
register_candidates("Where", PORTABLE, [elementwise_candidate(where_expr)])
