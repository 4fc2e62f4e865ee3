"""C kernels of the reductions, ArgMax/ArgMin and the Softmax family (edgec/ops/reduce.py,
softmax.py), portable only: one loop nest over kept and reduced axes (reduction_plan), the
recipe of each reduction giving its start value, per-element step and finish.
"""

from __future__ import annotations

import numpy as np

from edgec.ir import Node
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
    acc = op.acc_ctype(x.dtype)
    count = int(np.prod([x.shape[a] for a in node.attrs["axes"]], dtype=np.int64))
    lo, hi = C_LIMITS.get(ctype, ("0", "1"))
    r = op.recipe
    step = r.float_step if r.float_step and x.dtype.is_float else r.step
    init = {"lo": lo, "hi": hi}.get(r.init, r.init)
    if init in ("0", "1") and acc in ("float", "double"):
        init += ".0f" if acc == "float" else ".0"
    finish = r.finish.format(n=f"{count}.0f" if acc == "float" else str(count))
    last_kept = bool(plan["kept"]) and plan["kept"][-1]["s"] == 1 and plan["kept"][-1]["n"] > 1
    vector = (op.vector_ok and acc == ctype and bool(plan["red"]) and last_kept
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
register_candidates(("ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax",
    "ReduceMean", "ReduceMin", "ReduceProd", "ReduceSum", "ReduceSumSquare"), PORTABLE,
                    [op_lowering('ops/reduce.c.j2', reduce_op_params)])
