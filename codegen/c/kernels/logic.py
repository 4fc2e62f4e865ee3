"""C kernels of the comparison, logical and small math ops (edgec/ops/logic.py) and of Cast
and CastLike (edgec/ops/shape_ops.py, logic.py): rows of the elementwise table, rendered by
the shared elementwise template (see kernels/elementwise.py).
"""

from __future__ import annotations

from edgec.ir import DType, Node
from edgec.ops.base import in_type
from edgec.codegen.c.kernel import PORTABLE, register_candidates
from edgec.codegen.c.kernels.elementwise import binary_rows, elementwise_candidate, int_fn, \
    unary_rows

LOGIC_BINARY = {
    "LessOrEqual": "(a <= b)",
    "GreaterOrEqual": "(a >= b)",
    "And": "(a && b)",
    "Or": "(a || b)",
    "Xor": "((a != 0) != (b != 0))",
}

LOGIC_UNARY = {
    "Not": "(!a)",
    "Round": "nearbyint(a)",
    "Mish": "(a * tanh(log1p(exp(a))))",
    "Celu": "(a != a ? a : fmax(a, (T)0) + fmin((T)0, {alpha} * (exp(a / {alpha}) - (T)1)))",
    "Shrink": "(a < -{lambd} ? a + {bias} : (a > {lambd} ? a - {bias} : (T)0))",
}

GELU = {
    "none": "((T)0.5 * a * ((T)1 + erf(a * (T)0.70710678118654752440)))",
    "tanh": "((T)0.5 * a * ((T)1 + tanh((T)0.79788456080286535588 * "
            "(a + (T)0.044715 * a * a * a))))",
}


def sign_expr(node: Node) -> str:
    """Sign: -1, 0 or 1 in x's type; NaN stays NaN."""
    expr = "((T)((a > (T)0) - (a < (T)0)))"
    return f"(a != a ? a : {expr})" if node.input(0).dtype.is_float else expr


def gelu_expr(node: Node) -> str:
    """Gelu: exact (erf) or tanh approximation."""
    return GELU[node.attrs["approximate"]]


def isnan_expr(node: Node) -> str:
    """IsNaN: x != x."""
    return "(a != a)"


def isinf_expr(node: Node) -> str:
    """IsInf with detect_negative / detect_positive."""
    a = node.attrs
    terms = []
    if a["detect_positive"]:
        terms.append("(a == INFINITY)")
    if a["detect_negative"]:
        terms.append("(a == -INFINITY)")
    return "(" + (" || ".join(terms) or "0") + ")"


def mod_expr(node: Node) -> str:
    """Mod: integer mod takes the divisor's sign (Python), fmod=1 the dividend's (C)."""
    dtype = node.input(0).dtype
    if dtype.is_float:
        if node.attrs["fmod"]:
            return "fmod(a, b)"
        # Python-style remainder: the result takes the divisor's sign.
        return ("(fmod(a, b) != (T)0 && (fmod(a, b) < (T)0) != (b < (T)0) ? "
                "fmod(a, b) + b : fmod(a, b))")
    fn = int_fn(node)
    return (fn.replace("_mod_", "_fmod_") if node.attrs["fmod"] else fn) + "(a, b)"


def cast_expr(node: Node) -> str:
    """Cast: float->int truncates toward zero (NaN -> 0; beyond int64 saturates);
    anything->bool is "nonzero"."""
    src, dst = in_type(node, 0).dtype, DType(node.attrs["to"])
    if dst == DType.BOOL:
        return "(a != 0.0f)" if src.is_float else "(a != 0)"
    if src.is_float and not dst.is_float:
        # (int64_t) of NaN or of a value beyond int64 is undefined in C: handle them first.
        return ("(a != a ? (int64_t)0 : a >= 9223372036854775808.0f ? INT64_MAX : "
                "a < -9223372036854775808.0f ? INT64_MIN : (int64_t)a)")
    return "a"


register_candidates(tuple(LOGIC_BINARY), PORTABLE,
                    [elementwise_candidate(binary_rows(LOGIC_BINARY))])
register_candidates(tuple(LOGIC_UNARY), PORTABLE, [elementwise_candidate(unary_rows(LOGIC_UNARY))])
register_candidates("Sign", PORTABLE, [elementwise_candidate(sign_expr)])
register_candidates("Gelu", PORTABLE, [elementwise_candidate(gelu_expr)])
register_candidates("IsNaN", PORTABLE, [elementwise_candidate(isnan_expr)])
register_candidates("IsInf", PORTABLE, [elementwise_candidate(isinf_expr)])
register_candidates("Mod", PORTABLE, [elementwise_candidate(mod_expr)])
register_candidates(("Cast", "CastLike"), PORTABLE, [elementwise_candidate(cast_expr)])
