"""matmul-to-gemm: MatMul by constant weights followed by Add of a bias becomes one Gemm.

MatMul(A[M, K], W[K, N]) + b (b broadcastable to [N] or [M, N], constant) -> Gemm(A, W, b).
For A with more than two dimensions, A is viewed as 2-D ([prod(leading), K], a free view),
the Gemm computes, and the result is viewed back; transformer-style blocks get a fused bias.
"""

from __future__ import annotations

import numpy as np

from edgec.ir import Graph, Node
from edgec.passes._rewrite import apply_rules
from edgec.passes.registry import register_pass


def fuse(g: Graph, node: Node) -> bool:
    """Add(MatMul(A, W), b) -> Gemm (with views around it for N-d A)."""
    if node.op != "Add" or len(node.inputs) != 2:
        return False
    a, b = node.inputs
    mm_out, bias = (a, b) if b.is_const else (b, a)
    if not bias.is_const:
        return False
    mm = mm_out.producer
    if mm is None or mm.op != "MatMul" or len(mm_out.uses) != 1 or mm_out in g.outputs:
        return False
    if mm.attrs.get("activation", "none") != "none" or len(mm.inputs) > 2:
        return False
    x, w = mm.inputs
    if not w.is_const or len(w.shape) != 2 or len(x.shape) < 2:
        return False
    k, n = w.shape
    out_shape = node.output.shape
    if out_shape != mm_out.shape:
        return False
    rows = int(np.prod(x.shape[:-1]))
    bdata = bias.data.astype(np.float32)
    if bdata.size not in (1, n) or (bdata.ndim and bdata.shape[-1] not in (1, n)):
        return False
    if bdata.size != n and bdata.size != 1:
        return False
    bvec = np.broadcast_to(bdata.reshape(-1), (n,)).copy()
    src = x
    if len(x.shape) != 2:
        src = g.add_node("Reshape", [x], attrs={"shape": [rows, k]}, name=mm.name + "_2d",
                         before=node).output
    gemm = g.add_node("Gemm", [src, w, g.const(bvec, bias.name + "_row")], name=mm.name,
                      before=node)
    out = gemm.output
    if len(x.shape) != 2:
        out = g.add_node("Reshape", [out], attrs={"shape": list(out_shape)},
                         name=mm.name + "_nd", before=node).output
    g.replace_all_uses(node.output, out)
    return True


@register_pass("matmul-to-gemm")
def matmul_to_gemm(g: Graph) -> bool:
    """Fuse MatMul + bias Add into Gemm."""
    return apply_rules(g, [fuse])
