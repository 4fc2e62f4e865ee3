"""fuse-pool-gemm: global average pooling folds into the classifier Gemm that follows it.

GlobalAveragePool (channels-last) or ReduceMean over the spatial axes, then only views
(Reshape/Flatten/Squeeze), then Gemm(A, W, b): the Gemm reads the feature map and averages
each channel as it loads A (`input_pool="mean"`). The network head becomes one kernel and
the pooled vector never needs its own buffer.
"""

from __future__ import annotations

from edgec.ir import Graph, Node, Value
from edgec.passes._rewrite import apply_rules
from edgec.passes.registry import register_pass

VIEWS = {"Reshape", "Flatten", "Squeeze", "Unsqueeze"}


def _pooled_source(g: Graph, v: Value) -> Value | None:
    """x when v = views(GlobalAveragePool(x)) with channels-last x, every step single-use."""
    while v.producer is not None and v.producer.op in VIEWS:
        if len(v.uses) != 1 or v in g.outputs:
            return None
        v = v.producer.input(0)
    node = v.producer
    if node is None or len(v.uses) != 1 or v in g.outputs:
        return None
    x = node.input(0)
    rank = len(x.shape)
    if rank < 3:
        return None
    if node.op == "GlobalAveragePool" and node.attrs.get("layout") == "NHWC":
        return x
    if node.op == "ReduceMean" and sorted(node.attrs.get("axes") or []) == \
            list(range(1, rank - 1)):
        return x
    return None


def fuse(g: Graph, node: Node) -> bool:
    """Gemm(views(GAP(x)), W, b) -> Gemm(x, W, b, input_pool="mean")."""
    if node.op != "Gemm" or node.attrs.get("transA") or node.attrs.get("input_pool") != "none":
        return False
    a = node.input(0)
    if len(a.shape) != 2:
        return False
    x = _pooled_source(g, a)
    if x is None or x.shape[0] != a.shape[0] or x.shape[-1] != a.shape[1]:
        return False
    new = g.add_node("Gemm", [x, *node.inputs[1:]], attrs=dict(node.attrs, input_pool="mean"),
                     name=node.name, before=node)
    g.replace_all_uses(node.output, new.output)
    return True


@register_pass("fuse-pool-gemm")
def fuse_pool_gemm(g: Graph) -> bool:
    """Fold a global average pool into the following classifier Gemm."""
    return apply_rules(g, [fuse])
