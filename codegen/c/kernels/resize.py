"""C kernel of Resize and Upsample (edgec/ops/resize.py), portable only: per-axis source
index and weight tables computed at compile time (nearest, linear, cubic).
"""

from __future__ import annotations

import numpy as np

from edgec.errors import UnsupportedError
from edgec.ir import Node
from edgec.ops.base import in_type
from edgec.ops.common import row_major_strides
from edgec.codegen.c.kernel import PORTABLE, ConstArray, op_lowering, register_candidates


def resize_params(op, node: Node, target) -> dict:
    """C template parameters of a Resize node (`op`: its registry entry)."""
    x = in_type(node, 0)
    y = node.output.type
    if max(x.numel, y.numel) >= 2**31:
        raise UnsupportedError(f"{node.op} node '{node.name}': tensors of 2^31 elements "
                               "or more are not supported")
    strides = row_major_strides(x.shape)
    loops: list[dict] = []  # outermost first; a trailing copy block becomes the row
    params: dict = {}
    for axis, t in enumerate(op.tables(node)):
        n = y.shape[axis]
        if t is None:
            if n == 1:
                continue
            if loops and loops[-1]["kind"] == "copy":
                loops[-1]["n"] *= n
                loops[-1]["s"] = strides[axis]
            else:
                loops.append({"kind": "copy", "n": n, "s": strides[axis]})
            continue
        key = f"a{axis}"
        params[f"{key}_off"] = ConstArray((t.index * strides[axis]).astype(np.int32),
                                          f"{key}_offsets")
        if t.weight is not None:
            params[f"{key}_w"] = ConstArray(t.weight.astype(np.float32), f"{key}_weights")
        if t.valid is not None:
            params[f"{key}_valid"] = ConstArray(t.valid.astype(np.uint8), f"{key}_inside")
        loops.append({"kind": "resize", "n": n, "taps": t.taps, "key": key,
                      "weighted": t.weight is not None, "checked": t.valid is not None})
    row = 1
    if loops and loops[-1]["kind"] == "copy" and loops[-1]["s"] == 1:
        row = loops.pop()["n"]
    out_strides = [s * row for s in row_major_strides(tuple(lp["n"] for lp in loops))]
    extrap = node.attrs["extrapolation_value"]
    ctype = x.dtype.ctype
    fill = (f"{float(np.float32(extrap))!r}f" if ctype == "float"
            else f"({ctype}){int(extrap)}")
    return {**params, "loops": loops, "row": row, "out_strides": out_strides,
            "fill": fill, "weighted": any(lp.get("weighted") for lp in loops)}


register_candidates(("Resize", "Upsample"), PORTABLE,
                    [op_lowering('ops/resize.c.j2', resize_params)])
