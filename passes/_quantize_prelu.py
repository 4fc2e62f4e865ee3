"""The quantize pass's PRelu rules (passes/quantize.py): PRelu stays integer as QPRelu.

- a Conv/Gemm/MatMul with a fused `prelu` epilogue becomes QConv/QGemm writing its
  pre-activation range (observed during calibration as NAME::pre) followed by a QPRelu;
- a standalone PRelu whose constant slope is one value or one per channel of the last axis
  (channels-last data) becomes a QPRelu.
Anything else (a slope that varies along another axis, a computed slope) stays float.
"""

from __future__ import annotations

import numpy as np

from edgec.ir import Node, QuantParams, Value
from edgec.ops.quantized_prelu import qprelu_attrs


def standalone_slopes(node: Node) -> np.ndarray | None:
    """The slopes of a standalone PRelu as a 1-D array along the last axis, or None."""
    if node.op != "PRelu" or len(node.inputs) != 2 or not node.input(1).is_const:
        return None
    slope = np.asarray(node.input(1).data, np.float32)
    shape = node.output.shape
    if slope.size == 1:
        return slope.reshape(1)
    if not shape or slope.ndim > len(shape) or slope.shape[-1] != shape[-1] or \
            slope.size != shape[-1]:
        return None
    return slope.reshape(-1)


def emit_qprelu(quantizer, node: Node, xq: Value, slopes, yp: QuantParams, suffix: str
                ) -> Value:
    """A QPRelu from int8 value `xq` to parameters `yp` (named after `node`)."""
    xp = xq.quant
    scale = float(xp.scale[0])
    zp = int(xp.zero_point[0]) if xp.zero_point is not None else 0
    y_scale = float(yp.scale[0])
    y_zp = int(yp.zero_point[0]) if yp.zero_point is not None else 0
    attrs = qprelu_attrs(slopes, scale, zp, y_scale, y_zp)
    quantizer._record(node, "QPRelu", xp, yp, activation="prelu")
    return quantizer._emit(node, "QPRelu", [xq], attrs, yp, suffix)
