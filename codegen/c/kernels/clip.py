"""C kernels of Clip and RuntimeClip (edgec/ops/clip.py): one elementwise expression (see
kernels/elementwise.py). A runtime bound is a one-element tensor of x's type, loaded once per
element by the shared template (stride 0) and compared exactly as the literal of the
constant form: for equal values both forms give the same bits, and NaN in x propagates the
same way (`a < lo ? lo : a` keeps a NaN `a`).
"""

from __future__ import annotations

import numpy as np

from edgec.ir import Node
from edgec.codegen.c.kernel import PORTABLE, register_candidates
from edgec.codegen.c.kernels.elementwise import c_float_literal, elementwise_candidate


def clip_expr(node: Node) -> str:
    """min(max(a, lo), hi) with the constant bounds as literals, runtime bounds as b, c."""
    t = node.input(0).dtype
    lo, hi = node.attrs["min"], node.attrs["max"]
    if t.is_float:
        lit = c_float_literal
        has_lo, has_hi = bool(np.isfinite(lo)), bool(np.isfinite(hi))
    else:
        # A bound at or beyond the type's range is no bound (and comparing against it
        # would draw -Wtype-limits).
        info = np.iinfo(t.np)
        has_lo, has_hi = lo > info.min, hi < info.max
        lo = min(max(lo, info.min), info.max)
        hi = min(max(hi, info.min), info.max)
        lit = lambda v: f"(T){int(v)}"
    lo_c, hi_c = (lit(lo) if has_lo else None), (lit(hi) if has_hi else None)
    operands = iter(["b", "c"])  # runtime bounds, in input order (see operand_names)
    if node.input(1) is not None:
        lo_c = next(operands)
    if node.input(2) is not None:
        hi_c = next(operands)
    lo_txt = f"(a < {lo_c} ? {lo_c} : a)" if lo_c else "a"
    if hi_c:  # min(max(a, lo), hi), exactly as ONNX composes them
        return f"({lo_txt} > {hi_c} ? {hi_c} : {lo_txt})"
    return lo_txt


register_candidates(("Clip", "RuntimeClip"), PORTABLE, [elementwise_candidate(clip_expr)])
