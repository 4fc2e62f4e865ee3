"""TFLite lowerings of edgec's int8 ops that are TFLite builtins computing the same bits.

QSoftmax (edgec/ops/quantized_softmax.py) -> SOFTMAX (version 2) on int8 tensors: the input
carries edgec's scale and zero point, the output TFLite's fixed 1/256 and -128, and `beta`
the op's. LiteRT's reference kernel and TensorFlow Lite Micro derive the same multiplier,
shift and diff_min from those (edgec/ops/softmax_fixed_point.py), so the file computes
edgec's bits; NNAPI (from 1.2 for int8 models) and the GPU delegate take it.
"""

from __future__ import annotations

from edgec.errors import UnsupportedError
from edgec.ops.softmax_fixed_point import OUTPUT_SCALE, OUTPUT_ZERO_POINT


def lower_qsoftmax(lw, node) -> None:
    """QSoftmax (int8, last axis) -> SOFTMAX with the node's beta."""
    x, y = node.inputs[0], node.outputs[0]
    q = y.quant
    if q is None or q.per_axis or float(q.scale[0]) != OUTPUT_SCALE or \
            int(q.zero_point[0]) != OUTPUT_ZERO_POINT:
        raise UnsupportedError(f"QSoftmax node '{node.name}': TFLite's int8 SOFTMAX writes "
                               "scale 1/256, zero point -128")
    opt = lw.b.tfl.SoftmaxOptionsT()
    opt.beta = float(node.attrs["beta"])
    lw.b.add_operator("SOFTMAX", [lw.tensor(x)], [lw.output_tensor(y)], opt,
                      rank=len(x.shape))


LOWERINGS = {"QSoftmax": lower_qsoftmax}
