"""QSoftmax: Softmax on int8 data, bit-exact with TFLite's int8 SOFTMAX (reference kernel).

Why: in int8 builds a Softmax stays a float island (DequantizeLinear, float Softmax), and in
a .tflite that island is an asymmetric int8 DEQUANTIZE plus a float SOFTMAX, which NNAPI 1.2
refuses. With `--int8-softmax` (QuantOptions.int8_softmax, the default) a Softmax over the
last axis becomes QSoftmax instead: int8 in, int8 out with TFLite's fixed output parameters (scale
1/256, zero point -128), computed in integers exactly as TFLite does
(edgec/ops/softmax_fixed_point.py has the algorithm). The TFLite back-end writes it as an
int8 SOFTMAX, the C back-end as ops/qsoftmax.c.j2 (codegen/c/runtime/edgec_qsoftmax.h).

Attributes: `multiplier`, `left_shift`, `diff_min` (TFLite's SOFTMAX Prepare, from `beta`
and `x_scale`), `beta`, `x_scale`, `x_zero_point` (the zero point cancels in x - max; kept
for export). `--no-int8-softmax` or `--keep-float Softmax` keeps a float Softmax (float
probabilities instead of multiples of 1/256).
Rows longer than MAX_ROW (511) stay float: TFLite's kernel aborts when a row's sum of exps
reaches 512.
"""

from __future__ import annotations

import numpy as np

from edgec.errors import ShapeError
from edgec.ir import DType, Node, QuantParams, TensorType, Value
from edgec.ops.base import Attr, OpDef, PruneRule, in_type
from edgec.ops.int8_export import QSOFTMAX_EXPORT
from edgec.ops.int8_facet import Int8Facet, scale_of, zero_point_of
from edgec.ops.quant_common import internal_op_import, require_int8
from edgec.ops.registry import register_op
from edgec.ops.softmax_fixed_point import (
    MAX_ROW,
    OUTPUT_SCALE,
    OUTPUT_ZERO_POINT,
    int8_softmax,
    softmax_params,
)

SOFTMAX_OUTPUT_PARAMS = QuantParams(np.float32(OUTPUT_SCALE), OUTPUT_ZERO_POINT, None, DType.INT8)


def qsoftmax_attrs(beta: float, x_scale: float, x_zero_point: int) -> dict | None:
    """QSoftmax's attributes for this beta and input quantisation (None: TFLite would refuse
    the scale, beta * x_scale * 2^26 <= 1)."""
    params = softmax_params(beta, x_scale)
    if params is None:
        return None
    multiplier, left_shift, diff_min = params
    return {"multiplier": multiplier, "left_shift": left_shift, "diff_min": diff_min,
            "beta": float(beta), "x_scale": float(np.float32(x_scale)),
            "x_zero_point": int(x_zero_point)}


@register_op("QSoftmax")
class QSoftmax(OpDef):
    """int8 Softmax over the last axis (TFLite SOFTMAX: output scale 1/256, zero point -128)."""

    attrs = {"multiplier": Attr("int"), "left_shift": Attr("int"), "diff_min": Attr("int"),
             "beta": Attr("float", 1.0), "x_scale": Attr("float", 0.0),
             "x_zero_point": Attr("int", 0)}
    quant = QSOFTMAX_EXPORT
    prune = PruneRule.BLOCK
    dtypes = (DType.INT8,)

    def import_onnx(self, node: Node, opset: int) -> None:
        internal_op_import(node)

    def infer(self, node: Node) -> list[TensorType]:
        require_int8(node)
        x = in_type(node, 0)
        a = node.attrs
        if x.rank < 1 or not 1 <= x.shape[-1] <= MAX_ROW:
            raise ShapeError(f"QSoftmax node '{node.name}': rows of 1 to {MAX_ROW} elements "
                             f"(the last axis), not shape {list(x.shape)}")
        if not (0 < a["multiplier"] < 2**31 and 1 <= a["left_shift"] <= 31
                and a["diff_min"] <= 0):
            raise ShapeError(f"QSoftmax node '{node.name}': multiplier/left_shift/diff_min out "
                             "of TFLite's range")
        return [TensorType(x.shape, DType.INT8)]

    def in_place_inputs(self, node: Node) -> list[int]:
        """The output may overwrite the input: a row's max and sum are read first, then each
        element is read before it is written."""
        return [0]

    def reference(self, node: Node, x):
        a = node.attrs
        return (int8_softmax(x, a["multiplier"], a["left_shift"], a["diff_min"]),)

    def macs(self, node: Node) -> int:
        return 2 * in_type(node, 0).numel


class SoftmaxInt8(Int8Facet):
    """Softmax -> QSoftmax when QuantOptions.int8_softmax is set (the default) (the last axis, rows of at
    most MAX_ROW); otherwise the Softmax stays float. The output's parameters are TFLite's
    fixed ones, registered with the quantizer (`forced`) when planned."""

    role = "compute"

    def plan(self, op, node: Node, quantizer) -> str | None:
        """"softmax" for an enabled last-axis Softmax with short enough rows."""
        if not getattr(quantizer.opts, "int8_softmax", False) or len(node.inputs) != 1:
            return None
        shape = node.input(0).shape
        if not shape or list(node.attrs["axes"]) != [len(shape) - 1] or \
                not 1 <= shape[-1] <= MAX_ROW:
            return None
        quantizer.forced[node.output.name] = SOFTMAX_OUTPUT_PARAMS
        return "softmax"

    def float_reason(self, op, node: Node, quantizer) -> str:
        """With --no-int8-softmax, or off the last axis / with longer rows."""
        if not getattr(quantizer.opts, "int8_softmax", False):
            return "Softmax stays float (--no-int8-softmax)"
        return f"int8 Softmax needs the last axis and rows of 1 to {MAX_ROW} elements"

    def quantize(self, op, node: Node, quantizer) -> Value:
        """QSoftmax on the int8 input; where TFLite would refuse the input scale (below
        2^-26), a float Softmax between DequantizeLinear and QuantizeLinear instead."""
        xq = quantizer.int8_of(node.input(0), node)
        xp, yp = xq.quant, SOFTMAX_OUTPUT_PARAMS
        attrs = qsoftmax_attrs(1.0, scale_of(xp), zero_point_of(xp))
        quantizer.record(node, "QSoftmax", xp, yp)
        if attrs is not None:
            return quantizer.emit(node, "QSoftmax", [xq], attrs, yp)
        return _float_softmax(quantizer, node, xq, yp)


def _float_softmax(quantizer, node: Node, xq: Value, yp: QuantParams) -> Value:
    """DequantizeLinear -> Softmax -> QuantizeLinear to `yp` (an int8 value)."""
    g = quantizer.g
    xs, xzp = scale_of(xq.quant), zero_point_of(xq.quant)
    name = quantizer.free_name(node)
    dq = g.add_node("DequantizeLinear", [xq, g.const(np.float32(xs), f"{name}_dq_scale"),
                                         g.const(np.int8(xzp), f"{name}_dq_zp")],
                    name=f"{name}_dequantize", before=node)
    sm = g.add_node("Softmax", [dq.output], attrs=dict(node.attrs), name=name, before=node)
    q = g.add_node("QuantizeLinear", [sm.output,
                                      g.const(np.float32(scale_of(yp)), f"{name}_q_scale"),
                                      g.const(np.int8(zero_point_of(yp)), f"{name}_q_zp")],
                   attrs={"output_dtype": 3}, name=f"{name}_quantize", before=node,
                   output_names=[node.output.name + "_int8"])
    q.output.quant = yp
    return q.output


SOFTMAX_INT8 = SoftmaxInt8("softmax", "float-only")  # float unless --int8-softmax
