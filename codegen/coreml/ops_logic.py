"""MIL lowerings of comparisons, Where, variadic Sum/Mean/Max/Min and RuntimeClip."""

from __future__ import annotations

import numpy as np

from edgec.codegen.coreml.registry import Ctx, lowers
from edgec.ir import Node

COMPARE = {"Less": "less", "LessOrEqual": "less_equal", "Greater": "greater",
           "GreaterOrEqual": "greater_equal", "Equal": "equal"}
VARIADIC = {"Sum": "add", "Mean": "add", "Max": "maximum", "Min": "minimum"}


def _x(ctx: Ctx, node: Node, i: int):
    v = ctx.x(node.input(i))
    return v.astype(np.float32) if isinstance(v, np.ndarray) and v.dtype.kind == "f" else v


@lowers(*COMPARE)
def compare(ctx: Ctx, node: Node):
    """Comparisons -> less, less_equal, greater, greater_equal, equal (bool tensors)."""
    fn = getattr(ctx.mb, COMPARE[node.op])
    return fn(x=_x(ctx, node, 0), y=_x(ctx, node, 1), name=ctx.name(node.outputs[0]))


@lowers("Where")
def where(ctx: Ctx, node: Node):
    """Where(cond, a, b) -> select."""
    return ctx.mb.select(cond=_x(ctx, node, 0), a=_x(ctx, node, 1), b=_x(ctx, node, 2),
                         name=ctx.name(node.outputs[0]))


@lowers(*VARIADIC)
def variadic(ctx: Ctx, node: Node):
    """Sum/Mean/Max/Min of any number of inputs: a chain of binary ops (Mean then divides)."""
    fn = getattr(ctx.mb, VARIADIC[node.op])
    out = ctx.name(node.outputs[0])
    args = [_x(ctx, node, i) for i in range(len(node.inputs))]
    last = out if node.op != "Mean" else out + "_sum"
    if len(args) == 1:
        acc = ctx.mb.identity(x=args[0], name=last)
    else:
        acc = args[0]
        for k, a in enumerate(args[1:], 1):
            acc = fn(x=acc, y=a, name=last if k == len(args) - 1 else f"{out}_{k}")
    if node.op == "Mean":
        acc = ctx.mb.real_div(x=acc, y=np.float32(len(args)), name=out)
    return acc


@lowers("RuntimeClip")
def runtime_clip(ctx: Ctx, node: Node):
    """Clip with a bound computed at run time: maximum with min, then minimum with max."""
    out = ctx.name(node.outputs[0])
    y = _x(ctx, node, 0)
    lo, hi = node.input(1), node.input(2)
    attrs = node.attrs
    lo_v = _x(ctx, node, 1) if lo is not None else np.float32(attrs["min"])
    hi_v = _x(ctx, node, 2) if hi is not None else np.float32(attrs["max"])
    y = ctx.mb.maximum(x=y, y=lo_v, name=out + "_lo")
    return ctx.mb.minimum(x=y, y=hi_v, name=out)
