"""Fused epilogues in C: the statement applying a Conv/Gemm/MatMul node's activation to one
float accumulator. The numpy definition (and the attribute schema) is edgec/ops/epilogue.py;
the two must agree bit for bit, NaN included."""

from __future__ import annotations

import numpy as np


def _lit(x: float) -> str:
    return f"{float(np.float32(x))!r}f"


def epilogue_c(node, var: str, channel: str = "m", slope_name: str | None = None) -> str:
    """A C statement applying the node's activation to float variable `var` (may be empty)."""
    a = node.attrs
    act = a.get("activation", "none")
    if act == "none":
        return ""
    if act == "relu":  # NaN stays NaN (`NaN <= 0` is false); -0.0 becomes +0.0
        return f"{var} = {var} <= 0.0f ? 0.0f : {var};"
    if act == "clip":
        lo, hi = _lit(a["act_alpha"]), _lit(a["act_beta"])
        return f"{var} = {var} < {lo} ? {lo} : ({var} > {hi} ? {hi} : {var});"
    if act == "leaky_relu":
        return f"{var} = {var} >= 0.0f ? {var} : {var} * {_lit(a['act_alpha'])};"
    if act == "prelu":
        if slope_name is None:
            raise ValueError("prelu epilogue needs the slope array name")
        return f"{var} = {var} >= 0.0f ? {var} : {var} * {slope_name}[{channel}];"
    if act == "hardswish":
        return (f"{{ float h_ = {var} * 0.166666672f + 0.5f; h_ = h_ < 0.0f ? 0.0f : "
                f"(h_ > 1.0f ? 1.0f : h_); {var} = {var} * h_; }}")
    if act == "hardsigmoid":
        return (f"{var} = {_lit(a['act_alpha'])} * {var} + {_lit(a['act_beta'])}; "
                f"{var} = {var} < 0.0f ? 0.0f : ({var} > 1.0f ? 1.0f : {var});")
    if act == "sigmoid":
        return f"{var} = 1.0f / (1.0f + expf(-{var}));"
    if act == "silu":
        return f"{var} = {var} / (1.0f + expf(-{var}));"
    if act == "tanh":
        return f"{var} = tanhf({var});"
    raise ValueError(f"unknown activation {act}")
