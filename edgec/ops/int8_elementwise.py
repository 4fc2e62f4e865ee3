"""int8 facets of the ops without weights: Add / Mul -> QAdd / QMul, AveragePool /
GlobalAveragePool -> QAveragePool / QGlobalAveragePool, PRelu -> QPRelu, Concat with
requantised inputs, and Relu / Clip as integer clamps (vocabulary in int8_facet.py).

Relu / Clip: after an int8 layer whose clamp epilogue they can tighten (their input is the
layer's only use), they fold into it; otherwise they become an integer Clip whose bounds are
the quantised float bounds (Relu's lower bound is the zero point, not 0).
PRelu: a constant slope that is one value or one per channel of the last axis (channels-last
data); anything else stays float.
Div by a constant divisor k (one value, or broadcast along the data): QMul by the codes
round(127 * min|k| / k) (+-127 for one divisor) whose scale 1 / (127 * min|k|) is folded into
the requantisation: the multiplier is x_scale / (127 * min|k| * y_scale), computed in float64
from the float32 scales and k, never from a rounded 1/k. With --tflite-activations it is
TFLite MUL's x_scale * b_scale / y_scale instead (the .tflite then carries a MUL).
"""

from __future__ import annotations

import numpy as np

from edgec.ir import DType, Node, QuantParams, Value
from edgec.ops.int8_facet import Int8Facet, QdqOutput, SameScale, scale_of, zero_point_of
from edgec.ops.int8_scheme import (
    QMAX,
    QMIN,
    activation_range,
    average_pool_attrs,
    mean_requant_attrs,
    qadd_attrs,
    qmul_attrs,
    qprelu_attrs,
    requant_attrs,
)

POOL_GEOMETRY = ("ceil_mode", "count_include_pad", "dilations", "kernel_shape", "pads",
                 "strides", "layout")


class BinaryInt8(Int8Facet):
    """Add / Mul of two values (not both constant) -> QAdd / QMul; constant operands are
    quantised per tensor."""

    role = "compute"
    category = "requantize"
    clamp_epilogue = True

    def __init__(self, name: str, int8_op: str, attrs_of):
        super().__init__(name)
        self.int8_op = int8_op
        self.attrs_of = attrs_of  # (a_scale, b_scale, y_scale) -> integer attributes

    def plan(self, op, node: Node, quantizer) -> str | None:
        """The op's rewrite for two float operands, not both constant."""
        if len(node.inputs) != 2 or not all(v.dtype == DType.FLOAT32 for v in node.inputs) \
                or all(v.is_const for v in node.inputs):
            return None
        return self.name

    def quantize(self, op, node: Node, quantizer) -> Value:
        """QAdd / QMul between the operands' and the output's parameters."""
        aq, bq = (quantizer.int8_of(v, node) for v in node.inputs)
        ap, bp, yp = aq.quant, bq.quant, quantizer.params_of(node.output)
        attrs = self.attrs_of(scale_of(ap), scale_of(bp), scale_of(yp))
        attrs.update({"a_zero_point": zero_point_of(ap), "b_zero_point": zero_point_of(bp),
                      "y_zero_point": zero_point_of(yp), "act_min": QMIN, "act_max": QMAX})
        quantizer.record(node, self.int8_op, ap, yp, b_scale=scale_of(bp),
                         b_zero_point=zero_point_of(bp))
        return quantizer.emit(node, self.int8_op, [aq, bq], attrs, yp)

    def from_qdq(self, op, node: Node, inputs, out: QdqOutput) -> Value | None:
        """QAdd / QMul of two DequantizeLinear'd activations."""
        if len(node.inputs) != 2:
            return None
        pa, pb = inputs.act(0), inputs.act(1)
        if pa is None or pb is None:
            return None
        attrs = self.attrs_of(pa[1], pb[1], out.scale)
        attrs.update({"a_zero_point": pa[2], "b_zero_point": pb[2], **out.requant_attrs()})
        return out.graph.add_node(self.int8_op, [pa[0], pb[0]], attrs=attrs, name=node.name,
                                  before=out.before).output


def divisor_of(node: Node) -> np.ndarray | None:
    """The constant divisor of Div(x, k) as float64 when it is finite, non-zero and
    broadcasts into x's shape (the output keeps x's shape), else None."""
    if len(node.inputs) != 2 or node.input(0).is_const or not node.input(1).is_const or \
            node.input(0).dtype != DType.FLOAT32 or node.input(1).dtype != DType.FLOAT32:
        return None
    k = np.asarray(node.input(1).data, np.float64)
    if k.size == 0 or not np.all(np.isfinite(k)) or np.any(k == 0) or \
            node.output.shape != node.input(0).shape:
        return None
    return k


class DivByConstantInt8(Int8Facet):
    """Div(x, constant k) -> QMul(x, codes of 1/k), the reciprocal in the multiplier."""

    role = "compute"
    category = "requantize"
    clamp_epilogue = True

    def plan(self, op, node: Node, quantizer) -> str | None:
        """QMul when the divisor is a finite, non-zero constant broadcasting into x."""
        return "div-const" if divisor_of(node) is not None else None

    def float_reason(self, op, node: Node, quantizer) -> str:
        """Only a constant divisor has an int8 form."""
        return (f"{node.op}'s int8 form needs a finite, non-zero constant divisor that "
                "broadcasts into the dividend")

    def quantize(self, op, node: Node, quantizer) -> Value:
        """QMul between x's and the output's parameters with the folded reciprocal."""
        k = divisor_of(node)
        kmin = float(np.min(np.abs(k)))
        codes = np.rint(QMAX * kmin / k).astype(np.int8)
        xq = quantizer.int8_of(node.input(0), node)
        xp, yp = xq.quant, quantizer.params_of(node.output)
        xs, ys = np.float64(scale_of(xp)), np.float64(scale_of(yp))
        b_scale = float(np.float32(1.0 / (QMAX * kmin)))
        if getattr(quantizer.opts, "tflite_activations", False):  # TFLite MUL's multiplier
            attrs = qmul_attrs(float(xs), b_scale, float(ys))
            attrs = {"multiplier": [attrs["multiplier"]], "shift": [attrs["shift"]]}
        else:
            attrs = requant_attrs([xs / (QMAX * np.float64(kmin) * ys)])
        attrs = {"multiplier": attrs["multiplier"][0], "shift": attrs["shift"][0],
                 "a_scale": float(xs), "b_scale": b_scale, "y_scale": float(ys),
                 "a_zero_point": zero_point_of(xp), "b_zero_point": 0,
                 "y_zero_point": zero_point_of(yp), "act_min": QMIN, "act_max": QMAX}
        bq = quantizer.g.const(codes, node.input(1).name + "_reciprocal_int8")
        bq.quant = QuantParams(np.float32(b_scale), 0, None, DType.INT8)
        exact = QMAX * kmin / k  # the reciprocals the int8 codes stand for
        quantizer.record(node, "QMul", xp, yp, b_scale=b_scale, b_zero_point=0,
                         divisor_code_error=float(np.max(np.abs(codes - exact) / np.abs(exact))))
        return quantizer.emit(node, "QMul", [xq, bq], attrs, yp)


WEIGHT_BITS = 10  # Q10 weights per axis
MAX_WEIGHTED_AXES = 2  # keeps the accumulator within int32


def q10_weights(weight: np.ndarray) -> np.ndarray:
    """Rows of float64 weights -> int32 Q10 rows that sum to exactly 2^WEIGHT_BITS."""
    one = 1 << WEIGHT_BITS
    scaled = weight * one
    q = (np.sign(scaled) * np.floor(np.abs(scaled) + 0.5)).astype(np.int64)
    rows = np.arange(q.shape[0])
    q[rows, np.argmax(weight, axis=1)] += one - q.sum(axis=1)
    return q.astype(np.int32)


def int8_linear_tables(op, node: Node):
    """The per-axis tables of a linear Resize with Q10 weights, or None when the integer
    scheme does not apply (cubic, crop-and-resize, more than 2 weighted axes)."""
    a = node.attrs
    if a["mode"] != "linear" or a["coordinate_transformation_mode"] == "tf_crop_and_resize":
        return None
    tables = op.tables(node)
    weighted = [t for t in tables if t is not None and t.weight is not None]
    if len(weighted) > MAX_WEIGHTED_AXES or any(t.valid is not None for t in tables
                                                if t is not None):
        return None
    return [None if t is None else (t.index, q10_weights(t.weight)) for t in tables]


class ResizeInt8(SameScale):
    """Resize: nearest runs on the int8 codes with the input's scale (pure data movement, so
    exact; a tf_crop_and_resize extrapolation value is quantised with the data's parameters).
    linear becomes QResize (Q10 weights, edgec/ops/quantized_resize.py) where that applies;
    cubic, crop-and-resize linear and linear over more than 2 axes stay float32."""

    category = "same-as-input (nearest), QResize (linear)"

    def plan(self, op, node: Node, quantizer) -> str | None:
        """Same-scale for mode nearest, QResize for linear where its scheme applies."""
        if node.attrs["mode"] == "nearest":
            return super().plan(op, node, quantizer)
        if int8_linear_tables(op, node) is not None and super().plan(op, node, quantizer):
            return "qresize"
        return None

    def quantize(self, op, node: Node, quantizer) -> list[Value]:
        """The op on int8 codes (nearest) or QResize (linear), the input's parameters kept."""
        if node.attrs["mode"] == "nearest":
            return super().quantize(op, node, quantizer)
        xq = quantizer.int8_of(node.input(0), node)
        quantizer.record(node, "QResize", xq.quant, xq.quant)
        return [quantizer.emit(node, "QResize", [xq] + list(node.inputs[1:]),
                               dict(node.attrs), xq.quant)]

    def float_reason(self, op, node: Node, quantizer) -> str:
        """Why a linear / cubic Resize stays float32."""
        if node.attrs["mode"] != "nearest":
            return (f"{node.op} mode '{node.attrs['mode']}' has no int8 form here (int8: "
                    "nearest, and linear over at most 2 axes without tf_crop_and_resize)")
        return super().float_reason(op, node, quantizer)


class AveragePoolInt8(Int8Facet):
    """AveragePool (channels-last, 1-D or 2-D) -> QAveragePool: a multiplier per count."""

    role = "compute"
    category = "requantize"
    clamp_epilogue = True

    def plan(self, op, node: Node, quantizer) -> str | None:
        """QAveragePool for NHWC data and a 1-D or 2-D window."""
        a = node.attrs
        return "avgpool" if a.get("layout") == "NHWC" and len(a["kernel_shape"]) <= 2 else None

    def quantize(self, op, node: Node, quantizer) -> Value:
        """QAveragePool with multipliers x_scale / (y_scale * count)."""
        xq = quantizer.int8_of(node.input(0), node)
        xp, yp = xq.quant, quantizer.params_of(node.output)
        max_count = int(np.prod(node.attrs["kernel_shape"]))
        attrs = {k: node.attrs[k] for k in POOL_GEOMETRY if k in node.attrs}
        attrs.update(average_pool_attrs(scale_of(xp), scale_of(yp), max_count))
        attrs.update({"x_zero_point": zero_point_of(xp), "y_zero_point": zero_point_of(yp)})
        quantizer.record(node, "QAveragePool", xp, yp)
        return quantizer.emit(node, "QAveragePool", [xq], attrs, yp)

    def from_qdq(self, op, node: Node, inputs, out: QdqOutput) -> Value | None:
        """QAveragePool between the model's scales."""
        x = inputs.act(0)
        if x is None:
            return None
        xv, xs, xzp = x
        a = node.attrs
        attrs = {k: a[k] for k in POOL_GEOMETRY if k in a}
        attrs.update(average_pool_attrs(xs, out.scale, int(np.prod(a["kernel_shape"]))))
        attrs.update({"x_zero_point": xzp, **out.requant_attrs()})
        return out.graph.add_node("QAveragePool", [xv], attrs=attrs, name=node.name,
                                  before=out.before).output


class GlobalAveragePoolInt8(Int8Facet):
    """GlobalAveragePool -> QGlobalAveragePool: one multiplier for the window size."""

    role = "compute"
    category = "requantize"
    clamp_epilogue = True

    def plan(self, op, node: Node, quantizer) -> str | None:
        """QGlobalAveragePool for NHWC data."""
        return "gap" if node.attrs.get("layout") == "NHWC" else None

    def quantize(self, op, node: Node, quantizer) -> Value:
        """QGlobalAveragePool requantising the sum to the mean (TFLite MEAN's multiplier)."""
        xq = quantizer.int8_of(node.input(0), node)
        xp, yp = xq.quant, quantizer.params_of(node.output)
        count = int(np.prod(node.input(0).shape[1:-1]))
        mult = mean_requant_attrs(scale_of(xp), scale_of(yp), count)
        attrs = {"layout": node.attrs["layout"], "mode": "requantize", **mult,
                 "x_zero_point": zero_point_of(xp), "y_zero_point": zero_point_of(yp),
                 "x_scale": scale_of(xp), "y_scale": scale_of(yp)}
        quantizer.record(node, "QGlobalAveragePool", xp, yp)
        return quantizer.emit(node, "QGlobalAveragePool", [xq], attrs, yp)

    def from_qdq(self, op, node: Node, inputs, out: QdqOutput) -> Value | None:
        """QGlobalAveragePool (NCHW or NHWC) between the model's scales."""
        x = inputs.act(0)
        if x is None:
            return None
        xv, xs, xzp = x
        layout = node.attrs.get("layout", "NCHW")
        shape = xv.shape
        count = int(np.prod(shape[2:] if layout == "NCHW" else shape[1:-1]))
        attrs = {"layout": layout, "mode": "requantize",
                 **mean_requant_attrs(xs, out.scale, count), "x_zero_point": xzp,
                 **out.requant_attrs(), "x_scale": xs, "y_scale": out.scale}
        return out.graph.add_node("QGlobalAveragePool", [xv], attrs=attrs, name=node.name,
                                  before=out.before).output


def standalone_slopes(node: Node) -> np.ndarray | None:
    """The slopes of a standalone PRelu as a 1-D array along the last axis, or None."""
    if len(node.inputs) != 2 or not node.input(1).is_const:
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
    quantizer.record(node, "QPRelu", xp, yp, activation="prelu")
    return quantizer.emit(node, "QPRelu", [xq], attrs, yp, suffix)


class PReluInt8(Int8Facet):
    """A standalone PRelu with scalar or per-channel (last axis) constant slopes -> QPRelu."""

    role = "compute"
    category = "requantize"

    def plan(self, op, node: Node, quantizer) -> str | None:
        """QPRelu when the slopes are one value or one per channel of the last axis."""
        return "prelu" if standalone_slopes(node) is not None else None

    def quantize(self, op, node: Node, quantizer) -> Value:
        """QPRelu between the input's and the output's parameters."""
        xq = quantizer.int8_of(node.input(0), node)
        return emit_qprelu(quantizer, node, xq, standalone_slopes(node),
                           quantizer.params_of(node.output), "")


class ConcatInt8(Int8Facet):
    """Concat on int8: inputs with other parameters than the output's get a QRequantize."""

    role = "concat"
    category = "requantize"

    def plan(self, op, node: Node, quantizer) -> str | None:
        """Concat of float activations (no constant input)."""
        return "concat" if all(v.dtype == DType.FLOAT32 and not v.is_const
                               for v in node.inputs) else None

    def quantize(self, op, node: Node, quantizer) -> Value:
        """Concat of the int8 inputs, requantised to the output's parameters where needed."""
        g = quantizer.g
        yp = quantizer.params_of(node.output)
        ys, yzp = scale_of(yp), zero_point_of(yp)
        inputs = []
        for v in node.inputs:
            q = quantizer.int8_of(v, node)
            xs, xzp = scale_of(q.quant), zero_point_of(q.quant)
            if not (xs == ys and xzp == yzp):
                attrs = {"x_zero_point": xzp, "y_zero_point": yzp,
                         **requant_attrs([xs / ys]), "x_scale": xs, "y_scale": ys}
                rq = g.add_node("QRequantize", [q], attrs=attrs, name=f"{v.name}_requant",
                                before=node, output_names=[v.name + "_requant"])
                rq.output.quant = yp
                q = rq.output
            inputs.append(q)
        return quantizer.emit(node, "Concat", inputs, dict(node.attrs), yp)


class ClampInt8(Int8Facet):
    """Relu / Clip on int8 data: folded into the producer's clamp, or an integer Clip.
    `bounds(node)` gives the clamp as a fused activation: (kind, alpha, beta)."""

    role = "clamp"
    category = "same-as-input"

    def __init__(self, name: str, bounds):
        super().__init__(name)
        self.bounds = bounds

    def int8_range(self, node: Node, scale: float, zero_point: int) -> tuple[int, int]:
        """(lo, hi) of the clamp in int8 codes of parameters (scale, zero_point)."""
        kind, alpha, beta = self.bounds(node)
        return activation_range(kind, scale, zero_point, alpha, beta)

    def plan(self, op, node: Node, quantizer) -> str | None:
        """Always a clamp (it runs in int8 when its neighbours do)."""
        return "clamp"

    def quantize(self, op, node: Node, quantizer) -> Value:
        """Tighten the producer's act_min/act_max when this is its only reader, else Clip."""
        x = node.input(0)
        xq = quantizer.int8_of(x, node)
        p = xq.quant
        lo, hi = self.int8_range(node, scale_of(p), zero_point_of(p))
        prod = xq.producer
        if prod is not None and "act_min" in prod.attrs and len(xq.uses) == 0 and \
                len(x.uses) == 1 and x not in quantizer.g.outputs and prod.op != "QLookup":
            quantizer.tighten_clamp(prod, lo, hi, x.name, node.output.name)
            return xq
        return quantizer.emit(node, "Clip", [xq], {"min": float(lo), "max": float(hi)}, p)


ADD_INT8 = BinaryInt8("add", "QAdd", qadd_attrs)
MUL_INT8 = BinaryInt8("mul", "QMul", qmul_attrs)
DIV_INT8 = DivByConstantInt8("div-by-constant")
RESIZE_INT8 = ResizeInt8("resize", fill_attr="extrapolation_value")
AVERAGE_POOL_INT8 = AveragePoolInt8("average-pool")
GLOBAL_AVERAGE_POOL_INT8 = GlobalAveragePoolInt8("global-average-pool")
PRELU_INT8 = PReluInt8("prelu")
CONCAT_INT8 = ConcatInt8("concat")
RELU_INT8 = ClampInt8("relu", lambda node: ("relu", 0.0, 0.0))
CLIP_INT8 = ClampInt8("clip", lambda node: ("clip", max(node.attrs["min"], -3e38),
                                            min(node.attrs["max"], 3e38)))
