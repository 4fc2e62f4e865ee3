"""C kernels of the reductions, ArgMax/ArgMin and the Softmax family (edgec/ops/reduce.py,
softmax.py), portable only.

The kernels see the input through a *reduction plan* (`reduction_plan`): size-1 dims are
dropped and adjacent dims that are both kept or both reduced are merged, leaving a loop nest
over kept dims (the output, dense and in order) and one over reduced dims. Each reduction is
a row of `RECIPES`: accumulator start value, update statement and final expression. The math
functions are the explicit float ones (expf, logf...): these ops are float32-only, and
newlib's <tgmath.h> cannot expand exp() for arm-none-eabi.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgec.ir import DType, Node
from edgec.ops.base import in_type
from edgec.ops.common import row_major_strides
from edgec.codegen.c.kernel import PORTABLE, op_lowering, register_candidates


C_LIMITS = {
    "float": ("(-INFINITY)", "INFINITY"),
    "double": ("(-INFINITY)", "INFINITY"),
    "int8_t": ("INT8_MIN", "INT8_MAX"),
    "uint8_t": ("0", "UINT8_MAX"),
    "int16_t": ("INT16_MIN", "INT16_MAX"),
    "int32_t": ("INT32_MIN", "INT32_MAX"),
    "int64_t": ("INT64_MIN", "INT64_MAX"),
}


@dataclass(frozen=True)
class Recipe:
    """How one reduction is computed in C: `acc` starts at `init` ("lo"/"hi" = type limits),
    `step` folds element `v` into it (`float_step` instead for float data when given),
    `finish` turns it into the output ({n} = count)."""

    init: str
    step: str
    finish: str = "acc"
    float_step: str = ""


# Float max/min propagate NaN (numpy, onnxruntime): a NaN v is taken, and a NaN acc then loses
# every comparison and stays; for other values the same bits as the plain comparison.
RECIPES = {
    "ReduceMax": Recipe("lo", "acc = v > acc ? v : acc;",
                        float_step="acc = v > acc || v != v ? v : acc;"),
    "ReduceMin": Recipe("hi", "acc = v < acc ? v : acc;",
                        float_step="acc = v < acc || v != v ? v : acc;"),
    "ReduceSum": Recipe("0", "acc += v;"),
    "ReduceMean": Recipe("0", "acc += v;", "acc / {n}"),
    "ReduceProd": Recipe("1", "acc *= v;"),
    "ReduceSumSquare": Recipe("0", "acc += v * v;"),
    "ReduceL1": Recipe("0", "acc += fabsf(v);"),
    "ReduceL2": Recipe("0", "acc += v * v;", "sqrtf(acc)"),
    "ReduceLogSum": Recipe("0", "acc += v;", "logf(acc)"),
    "ReduceLogSumExp": Recipe("0", "acc += expf(v - mx);"),
}
# Integer inputs accumulate in uint64_t (wrap-around like numpy, never undefined).
INT_WRAPS = ("ReduceSum", "ReduceProd")
# No row-vector kernel (accumulators in the output row, one of the element type per output
# element): LogSumExp takes two passes (max, then sum of exp(v - max)).
NO_VECTOR = ("ReduceLogSumExp",)


def acc_ctype(op_name: str, dtype: DType) -> str:
    """C type of the accumulator (integer sums and products wrap in uint64_t)."""
    return "uint64_t" if op_name in INT_WRAPS and not dtype.is_float else dtype.ctype


def reduction_plan(shape: tuple[int, ...], axes) -> dict:
    """Loop nests for reducing `shape` over `axes` (see the module docstring).

    Returns {"kept": [{"n", "s"}...], "red": [{"n", "s"}...], "kept_out": [strides]}: loop
    sizes and input element strides of the kept and reduced nests (outermost first), and the
    output strides of the kept nest (the output is dense over the kept dims, in order).
    """
    axes = set(axes)
    strides = row_major_strides(tuple(shape))
    groups: list[list] = []  # [reduced?, size, innermost stride]
    for d, n in enumerate(shape):
        if n == 1:
            continue
        red = d in axes
        if groups and groups[-1][0] == red and groups[-1][2] == n * strides[d]:
            groups[-1][1] *= n
            groups[-1][2] = strides[d]
        else:
            groups.append([red, n, strides[d]])
    kept = [{"n": n, "s": s} for red, n, s in groups if not red]
    red = [{"n": n, "s": s} for red, n, s in groups if red]
    if not kept:
        kept = [{"n": 1, "s": 0}]
    kept_out = row_major_strides(tuple(k["n"] for k in kept))
    return {"kept": kept, "red": red, "kept_out": kept_out}


def reduce_op_params(op, node: Node, target) -> dict:
    """C template parameters of a ReduceOp node (`op`: its registry entry)."""
    x = in_type(node, 0)
    plan = reduction_plan(x.shape, node.attrs["axes"])
    ctype = x.dtype.ctype
    acc = acc_ctype(op.name, x.dtype)
    count = int(np.prod([x.shape[a] for a in node.attrs["axes"]], dtype=np.int64))
    lo, hi = C_LIMITS.get(ctype, ("0", "1"))
    r = RECIPES[op.name]
    step = r.float_step if r.float_step and x.dtype.is_float else r.step
    init = {"lo": lo, "hi": hi}.get(r.init, r.init)
    if init in ("0", "1") and acc in ("float", "double"):
        init += ".0f" if acc == "float" else ".0"
    finish = r.finish.format(n=f"{count}.0f" if acc == "float" else str(count))
    last_kept = bool(plan["kept"]) and plan["kept"][-1]["s"] == 1 and plan["kept"][-1]["n"] > 1
    vector = (op.name not in NO_VECTOR and acc == ctype and bool(plan["red"]) and last_kept
              and count > 0)
    if count == 0:  # an empty reduced dim: every output is the value of the empty set
        empty_value = "(-INFINITY)" if op.name == "ReduceLogSumExp" else finish
        return {**plan, "acc": acc, "init": init, "empty_value": empty_value,
                "vector": False, "count": 0, "out_empty": node.output.type.numel == 0}
    return {**plan, "acc": acc, "init": init, "step": step, "finish": finish,
            "vector": vector, "count": count, "out_empty": node.output.type.numel == 0}


def arg_op_params(op, node: Node, target) -> dict:
    """C template parameters of a ArgOp node (`op`: its registry entry)."""
    x = in_type(node, 0)
    axis = node.attrs["axis"]
    outer = int(np.prod(x.shape[:axis], dtype=np.int64))
    inner = int(np.prod(x.shape[axis + 1:], dtype=np.int64))
    op = op.better + ("=" if node.attrs["select_last_index"] else "")
    return {"outer": outer, "inner": inner, "n": x.shape[axis], "cmp": op,
            "out_empty": node.output.type.numel == 0}


def softmax_family_params(op, node: Node, target) -> dict:
    """C template parameters of a SoftmaxFamily node (`op`: its registry entry)."""
    x = in_type(node, 0)
    plan = reduction_plan(x.shape, node.attrs["axes"])
    return {**plan, "kind": op.name, "empty": x.numel == 0}


register_candidates(("ArgMax", "ArgMin"), PORTABLE,
                    [op_lowering('ops/argmax.c.j2', arg_op_params)])
register_candidates(("Hardmax", "LogSoftmax", "Softmax"), PORTABLE,
                    [op_lowering('ops/softmax.c.j2', softmax_family_params)])
register_candidates(tuple(RECIPES), PORTABLE, [op_lowering('ops/reduce.c.j2', reduce_op_params)])
