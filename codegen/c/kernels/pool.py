"""C kernels of the float pools (edgec/ops/pool.py), portable only: MaxPool, AveragePool and
LpPool over channels-last windows of 1 to 3 spatial dims (`ops/pool`, bounds checks only on
the axes where a tap can leave the input), and the global pools (`ops/global_pool`).
"""

from __future__ import annotations

import numpy as np

from edgec.errors import UnsupportedError
from edgec.ir import DType, Node
from edgec.ops.base import in_type
from edgec.ops.pool import window_counts, lowest_value
from edgec.codegen.c.kernel import PORTABLE, ConstArray, op_lowering, register_candidates


def _c_literal(value, dtype: DType) -> str:
    """An exact C literal of `value` in element type `dtype`."""
    if dtype.is_float:
        return f"{float(np.float32(value)):#.9g}f"  # 9 digits round-trip a float32
    return str(int(value)) if int(value) > -(2**31) else f"({int(value) + 1} - 1)"


def _lp_exprs(p: int) -> dict:
    """C expressions of an Lp pool: the per-tap term of `v` and the final root of `acc`."""
    # Explicit float functions: newlib's <tgmath.h> cannot expand a generic pow.
    if p == 1:
        return {"term": "fabsf(v)", "root": "acc"}
    if p == 2:
        return {"term": "v * v", "root": "sqrtf(acc)"}
    exponent, root = _c_literal(p, DType.FLOAT32), _c_literal(1.0 / p, DType.FLOAT32)
    return {"term": f"powf(fabsf(v), {exponent})", "root": f"powf(acc, {root})"}


def pool_op_template(op, node: Node, target) -> str:
    """The C template of a PoolOp node (`op`: its registry entry)."""
    if node.attrs["layout"] != "NHWC":
        raise UnsupportedError(f"{node.op} node '{node.name}': C kernels need channels-last "
                               "data")
    if len(node.attrs["kernel_shape"]) > 3:
        raise UnsupportedError(f"{node.op} node '{node.name}': pooling over more than 3 "
                               "spatial dims has no C kernel")
    return 'ops/pool.c.j2'


def pool_op_params(op, node: Node, target) -> dict:
    """C template parameters of a PoolOp node (`op`: its registry entry)."""
    a = node.attrs
    x, y = in_type(node, 0), node.output.type
    in_sp, out_sp = x.shape[1:-1], y.shape[1:-1]
    nsp = len(in_sp)
    include = bool(a.get("count_include_pad", 0))
    axes, counts = [], []
    out_pixel, in_pixel = "n", "n"
    for i, name in enumerate("dhw"[3 - nsp:]):
        k, s, d = a["kernel_shape"][i], a["strides"][i], a["dilations"][i]
        pb, pe = a["pads"][i], a["pads"][i + nsp]
        axes.append({
            "name": name, "size": in_sp[i], "out": out_sp[i], "k": k, "s": s, "d": d,
            "pad": pb,
            # Bounds checks only where some tap can leave the input: below (padding
            # before) needs a signed index, above (padding after, ceil_mode) does not.
            "check_below": pb > 0,
            "check_above": (out_sp[i] - 1) * s + (k - 1) * d - pb >= in_sp[i],
        })
        counts.append(np.maximum(window_counts(in_sp[i], k, s, d, pb, pe, out_sp[i],
                                               include), 1))
        out_pixel = f"({out_pixel} * {out_sp[i]}u + o{name})"
        index = f"(size_t)i{name}" if pb > 0 else f"i{name}"
        in_pixel = f"({in_pixel} * {in_sp[i]}u + {index})"
    p = {"kind": op.kind, "N": x.shape[0], "C": x.shape[-1], "axes": axes,
         "out_pixel": out_pixel, "in_pixel": in_pixel}
    if op.kind == "max":
        p["init"] = _c_literal(lowest_value(x.dtype.np), x.dtype)
        return p
    p["init"] = "0.0f"
    if op.kind == "lp":
        p["lp"] = _lp_exprs(a["p"])
    elif all(np.all(c == c[0]) for c in counts):
        p["uniform_inv"] = _c_literal(1.0 / int(np.prod([c[0] for c in counts])),
                                      DType.FLOAT32)
    else:
        for ax, c in zip(axes, counts):
            p[f"count_{ax['name']}"] = ConstArray(c.astype(np.int32), f"count_{ax['name']}")
    return p


def global_pool_op_template(op, node: Node, target) -> str:
    """The C template of a GlobalPoolOp node (`op`: its registry entry)."""
    if node.attrs["layout"] != "NHWC":
        raise UnsupportedError(f"{node.op} node '{node.name}': C kernels need channels-last "
                               "data")
    return 'ops/global_pool.c.j2'


def global_pool_op_params(op, node: Node, target) -> dict:
    """C template parameters of a GlobalPoolOp node (`op`: its registry entry)."""
    x = in_type(node, 0)
    hw = int(np.prod(x.shape[1:-1]))
    p = {"kind": op.kind, "N": x.shape[0], "HW": hw, "C": x.shape[-1]}
    if op.kind == "max":
        p["init"] = _c_literal(lowest_value(x.dtype.np), x.dtype)
    else:
        p["init"] = "0.0f"
        p["inv_hw"] = _c_literal(1.0 / hw, DType.FLOAT32)
    if op.kind == "lp":
        p["lp"] = _lp_exprs(node.attrs["p"])
    return p


register_candidates(("AveragePool", "LpPool", "MaxPool"), PORTABLE,
                    [op_lowering(pool_op_template, pool_op_params)])
register_candidates(("GlobalAveragePool", "GlobalLpPool", "GlobalMaxPool"), PORTABLE,
                    [op_lowering(global_pool_op_template, global_pool_op_params)])
