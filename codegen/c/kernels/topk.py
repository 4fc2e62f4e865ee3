"""C kernel of TopK (edgec/ops/topk.py), portable only: per slice, insertion into the sorted
outputs (a value moves ahead only when strictly better, so ties keep input order)."""

from __future__ import annotations

import numpy as np

from edgec.codegen.c.kernel import PORTABLE, op_lowering, register_candidates
from edgec.ir import Node
from edgec.ops.base import in_type


def topk_params(op, node: Node, target) -> dict:
    """C template parameters of a TopK node: x viewed as [outer, n, inner]."""
    x = in_type(node, 0)
    axis = node.attrs["axis"]
    return {"outer": int(np.prod(x.shape[:axis], dtype=np.int64)),
            "inner": int(np.prod(x.shape[axis + 1:], dtype=np.int64)),
            "n": x.shape[axis], "k": node.attrs["k"],
            "better": ">" if node.attrs["largest"] else "<"}


register_candidates("TopK", PORTABLE, [op_lowering("ops/topk.c.j2", topk_params)])
