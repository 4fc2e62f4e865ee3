"""fold-pad: an explicit zero Pad before a Conv (or a count-including AveragePool) becomes the
layer's own padding, so no separate padding pass over memory runs.

Legal when the Pad is constant-mode with fill 0 (or -inf before a MaxPool), pads only the
spatial axes of the consumer's layout, never crops, and its output is read only by that
consumer. TFLite-to-ONNX converted models write padding this way.
"""

from __future__ import annotations

import math

from edgec.ir import Graph, Node
from edgec.passes._rewrite import apply_rules
from edgec.passes.registry import register_pass


def _spatial_axes(node: Node, rank: int) -> list[int]:
    if node.attrs.get("layout", "NCHW") == "NCHW":
        return list(range(2, rank))
    return list(range(1, rank - 1))


def _fill_ok(consumer: Node, value: float) -> bool:
    if consumer.op == "Conv":
        return value == 0.0
    if consumer.op == "AveragePool":
        return value == 0.0 and consumer.attrs.get("count_include_pad", 0) == 1
    if consumer.op == "MaxPool":
        return value == -math.inf
    return False


def fold(g: Graph, pad: Node) -> bool:
    """Pad -> Conv/AveragePool/MaxPool  ==>  the consumer with larger pads."""
    if pad.op != "Pad" or pad.attrs.get("mode") != "constant":
        return False
    y = pad.output
    if len(y.uses) != 1 or y in g.outputs:
        return False
    consumer, index = y.uses[0]
    if index != 0 or consumer.op not in ("Conv", "AveragePool", "MaxPool"):
        return False
    if not _fill_ok(consumer, float(pad.attrs.get("value", 0.0))):
        return False
    if consumer.attrs.get("auto_pad", "NOTSET") not in ("NOTSET", ""):
        return False
    rank = len(y.shape)
    pads = list(pad.attrs["pads"])
    if any(p < 0 for p in pads):
        return False
    spatial = _spatial_axes(consumer, rank)
    if any(pads[a] or pads[a + rank] for a in range(rank) if a not in spatial):
        return False
    nsp = len(spatial)
    old = list(consumer.attrs.get("pads") or [0] * (2 * nsp))
    new_pads = [old[i] + pads[spatial[i]] for i in range(nsp)] + \
               [old[nsp + i] + pads[spatial[i] + rank] for i in range(nsp)]
    attrs = dict(consumer.attrs, pads=new_pads)
    new = g.add_node(consumer.op, [pad.input(0), *consumer.inputs[1:]], attrs=attrs,
                     name=consumer.name, before=consumer)
    for old_v, new_v in zip(consumer.outputs, new.outputs):
        g.replace_all_uses(old_v, new_v)
    return True


@register_pass("fold-pad")
def fold_pad(g: Graph) -> bool:
    """Fold explicit padding into the consuming convolution or pool."""
    return apply_rules(g, [fold])
