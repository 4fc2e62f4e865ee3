"""fuse-input-transpose: the first convolution reads the model's channels-first input itself.

Only a Transpose of a graph input qualifies: inside the network a strided channel walk would
cost more than the transpose it saves (and rules out kernels such as Winograd).

After layout-nhwc, a model with an NCHW input starts with Transpose(input) -> Conv(NHWC). When
that Transpose feeds only a (non-depthwise) Conv, the Conv takes the NCHW tensor directly
(`input_layout="NCHW"`: its kernel steps H*W elements between channels), and the separate
transpose kernel disappears. It matters most for the stem conv (3 input channels), whose
strided reads are cheap.
"""

from __future__ import annotations

from edgec.ir import Graph, Node
from edgec.ops import get_op
from edgec.passes._rewrite import apply_rules
from edgec.passes.registry import register_pass


def fuse(g: Graph, node: Node) -> bool:
    """Transpose(x, [0,2,3,1]) -> Conv(NHWC)  ==>  Conv(x, input_layout=NCHW)."""
    if node.op != "Transpose":
        return False
    x = node.input(0)
    if x not in g.inputs or len(x.shape) != 4 or get_op("Transpose").perm(node) != [0, 2, 3, 1]:
        return False  # only the model's own input: deeper layers keep contiguous channels
    y = node.output
    if len(y.uses) != 1 or y in g.outputs:
        return False
    conv, index = y.uses[0]
    if conv.op != "Conv" or index != 0 or conv.attrs.get("layout") != "NHWC":
        return False
    if conv.attrs.get("input_layout") or get_op("Conv").is_depthwise(conv):
        return False
    new = g.add_node("Conv", [x, *conv.inputs[1:]],
                     attrs=dict(conv.attrs, input_layout="NCHW"), name=conv.name, before=conv)
    g.replace_all_uses(conv.output, new.output)
    return True


@register_pass("fuse-input-transpose")
def fuse_input_transpose(g: Graph) -> bool:
    """Let convolutions consume a channels-first tensor without a transpose kernel."""
    return apply_rules(g, [fuse])
