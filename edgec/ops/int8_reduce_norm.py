"""The int8 facet of ReduceMean: ReduceMean -> QReduceMean (edgec/ops/quantized_reduce.py),
TFLite's int8 MEAN arithmetic (int32 sum, x_scale / y_scale with 1 / count folded into the
multiplier by int8_scheme.mean_requant_attrs), so the tflite back-end writes it as MEAN."""

from __future__ import annotations

import numpy as np

from edgec.ir import Node, Value
from edgec.ops.int8_facet import Int8Facet, QdqOutput, scale_of, zero_point_of
from edgec.ops.int8_scheme import mean_requant_attrs

MAX_MEAN_COUNT = (2**31 - 1) // 255  # 255 * count stays inside QReduceMean's int32 sum


def _count(node: Node, shape) -> int:
    return int(np.prod([shape[a] for a in node.attrs["axes"]], dtype=np.int64))


class ReduceMeanInt8(Int8Facet):
    """ReduceMean -> QReduceMean over the same axes (static shape, at least one axis)."""

    role = "compute"
    category = "requantize"
    clamp_epilogue = True

    def _fits(self, node: Node) -> bool:
        shape = node.input(0).shape
        return bool(node.attrs["axes"]) and shape is not None and \
            all(isinstance(d, int) for d in shape) and 1 <= _count(node, shape) <= MAX_MEAN_COUNT

    def plan(self, op, node: Node, quantizer) -> str | None:
        """QReduceMean when the axes reduce at least one element and at most MAX_MEAN_COUNT."""
        return "reduce-mean" if self._fits(node) else None

    def float_reason(self, op, node: Node, quantizer) -> str:
        """Why a ReduceMean stays float32."""
        if not node.attrs["axes"]:
            return "ReduceMean over no axis (noop_with_empty_axes) stays float"
        return (f"ReduceMean's int8 form needs a static shape and at most {MAX_MEAN_COUNT} "
                "elements per mean")

    def _attrs(self, node: Node, count: int, xs: float, xzp: int, ys: float) -> dict:
        return {"axes": list(node.attrs["axes"]), "keepdims": node.attrs["keepdims"],
                "x_zero_point": xzp, **mean_requant_attrs(xs, ys, count),
                "x_scale": xs, "y_scale": ys}

    def quantize(self, op, node: Node, quantizer) -> Value:
        """QReduceMean between the calibrated scales."""
        xq = quantizer.int8_of(node.input(0), node)
        xp, yp = xq.quant, quantizer.params_of(node.output)
        attrs = self._attrs(node, _count(node, node.input(0).shape), scale_of(xp),
                            zero_point_of(xp), scale_of(yp))
        attrs["y_zero_point"] = zero_point_of(yp)
        quantizer.record(node, "QReduceMean", xp, yp)
        return quantizer.emit(node, "QReduceMean", [xq], attrs, yp)

    def from_qdq(self, op, node: Node, inputs, out: QdqOutput) -> Value | None:
        """QReduceMean between the model's scales."""
        x = inputs.act(0)
        if x is None or not self._fits(node):
            return None
        xv, xs, xzp = x
        attrs = self._attrs(node, _count(node, xv.shape), xs, xzp, out.scale)
        attrs.update(out.requant_attrs())
        return out.graph.add_node("QReduceMean", [xv], attrs=attrs, name=node.name,
                                  before=out.before).output


REDUCE_MEAN_INT8 = ReduceMeanInt8("reduce-mean")


MAX_NORM_ROW = 1 << 20  # D: D * (2 * 255 * D) and D^2 * 65025 stay inside int32 / int64


class LayerNormInt8(Int8Facet):
    """LayerNormalization -> QLayerNorm (edgec/ops/quantized_norm.py): constant Scale and B,
    one output, a static row of at most MAX_NORM_ROW elements."""

    role = "compute"
    category = "requantize"
    clamp_epilogue = True

    def _row(self, op, node: Node) -> int | None:
        shape = node.input(0).shape
        if node.attrs.get("num_outputs", 1) != 1 or shape is None or \
                not all(isinstance(d, int) for d in shape):
            return None
        if not node.input(1).is_const or (node.input(2) is not None and
                                          not node.input(2).is_const):
            return None
        _, _, row = op.split(node)
        return row if 1 <= row <= MAX_NORM_ROW else None

    def plan(self, op, node: Node, quantizer) -> str | None:
        """QLayerNorm when Scale and B are constants and only Y is used."""
        return "layer-norm" if self._row(op, node) else None

    def float_reason(self, op, node: Node, quantizer) -> str:
        """Why a LayerNormalization stays float32."""
        return ("LayerNormalization's int8 form needs constant Scale and B, one output and a "
                f"static row of at most {MAX_NORM_ROW} elements")

    def quantize(self, op, node: Node, quantizer) -> Value:
        """QLayerNorm between the calibrated scales (gain and offset folded in float32)."""
        xq = quantizer.int8_of(node.input(0), node)
        xp, yp = xq.quant, quantizer.params_of(node.output)
        xs, ys, yzp = scale_of(xp), scale_of(yp), zero_point_of(yp)
        axis, _, row = op.split(node)
        norm_shape = node.input(0).shape[axis:]
        gamma = np.broadcast_to(np.asarray(node.input(1).data, np.float64), norm_shape)
        beta = np.zeros(norm_shape) if node.input(2) is None else \
            np.broadcast_to(np.asarray(node.input(2).data, np.float64), norm_shape)
        eps = float(node.attrs["epsilon"]) * row * row / (xs * xs)
        attrs = {"axis": axis, "x_zero_point": zero_point_of(xp), "y_zero_point": yzp,
                 "eps_codes": int(min(max(round(eps), 1), 2**62)),
                 "gain": [float(v) for v in (gamma / ys).astype(np.float32).reshape(-1)],
                 "offset": [float(v) for v in (beta / ys + yzp).astype(np.float32).reshape(-1)],
                 "x_scale": xs, "y_scale": ys}
        quantizer.record(node, "QLayerNorm", xp, yp)
        return quantizer.emit(node, "QLayerNorm", [xq], attrs, yp)


LAYER_NORM_INT8 = LayerNormInt8("layer-norm")
